/*
 * auth.h - the shared-token authentication of plain connections: a client
 * of a node with auth_token set sends "AUTH <token>\r\n" as its first
 * line; the node answers "OK" and serves it, or "ERR EACCES ..." and
 * closes.  The parser (auth_proto.c) is a pure function over bytes; the
 * comparison (auth.c) takes the same time whatever the tokens hold.
 */
#ifndef VIRGO_AUTH_H
#define VIRGO_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* The longest AUTH line accepted (the token is at most 255 bytes). */
#define VD_AUTH_MAX_LINE 512

/* buf/len: the first bytes of a connection.  > 0: the AUTH line is whole
 * and that many bytes long (with its LF); *tok and *toklen give the token
 * inside buf.  0: not whole yet (and len < VD_AUTH_MAX_LINE).  -1: not an
 * AUTH line, an empty token, or longer than VD_AUTH_MAX_LINE. */
int vd_auth_parse(const char *buf, size_t len, const char **tok, size_t *toklen);

/* Is got[0..gotlen) the token want?  Compares SHA-256 digests with
 * CRYPTO_memcmp: no early exit, no length leak. */
bool vd_auth_token_ok(const char *want, const char *got, size_t gotlen);

#endif
