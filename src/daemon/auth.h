/*
 * auth.h - token authentication of plain connections: a client of a node
 * with auth_token or auth_tokens_file set sends "AUTH <token>\r\n" as its
 * first line; the node answers "OK" and serves it, or "ERR EACCES ..."
 * and closes.  The shared auth_token makes the connection the identity
 * "token"; a token of the named tokens file (tokfile.h) makes it that
 * token's name, the identity every ownership and policy check sees (as a
 * client certificate's CN does).  The parser (auth_proto.c) is a pure
 * function over bytes; the comparison (auth_tokens.c) takes the same time
 * whatever the tokens hold and whichever of them matches.
 */
#ifndef VIRGO_AUTH_H
#define VIRGO_AUTH_H

#include <stdbool.h>
#include <stddef.h>

/* The longest AUTH line accepted (the token is at most 255 bytes). */
#define VD_AUTH_MAX_LINE 512
/* The identity of the shared auth_token. */
#define VD_AUTH_SHARED_NAME "token"

/* buf/len: the first bytes of a connection.  > 0: the AUTH line is whole
 * and that many bytes long (with its LF); *tok and *toklen give the token
 * inside buf.  0: not whole yet (and len < VD_AUTH_MAX_LINE).  -1: not an
 * AUTH line, an empty token, or longer than VD_AUTH_MAX_LINE. */
int vd_auth_parse(const char *buf, size_t len, const char **tok, size_t *toklen);

/* The tokens a node accepts (auth_tokens.c): immutable once loaded; a
 * reload builds a new set. */
struct vd_tokens;

/* The set of the shared token `shared` ("" for none) and of the named
 * tokens file at path ("" for none).  The file must be a regular file
 * that neither group nor others may access (it holds secrets: chmod 600),
 * at most TOKFILE_MAX_BYTES, that parses (tokfile.h), none of whose tokens
 * is the shared one.  A new set (the caller frees it with
 * vd_tokens_free), or NULL with a sentence naming the file in err. */
struct vd_tokens *vd_tokens_load(const char *shared, const char *path, char *err, size_t errlen);

void vd_tokens_free(struct vd_tokens *t);

/* How many named tokens t holds (the shared one not counted). */
size_t vd_tokens_named(const struct vd_tokens *t);

/* Does t still accept the identity name ("token": the shared token is
 * set; another: the file names it)? */
bool vd_tokens_has(const struct vd_tokens *t, const char *name);

/* Which identity the token got[0..gotlen) authenticates: true with the
 * name (VD_AUTH_SHARED_NAME or a token's name) copied into name (namelen
 * >= 64), or false.  The SHA-256 digest of got is compared with every
 * token's by CRYPTO_memcmp, all of them whatever matched: the time taken
 * tells neither how much of a guess was right, nor the tokens' lengths,
 * nor which entry matched.  t NULL: nothing matches. */
bool vd_tokens_match(const struct vd_tokens *t, const char *got, size_t gotlen, char *name,
		     size_t namelen);

#endif
