/*
 * pathcodec.h - file names as one protocol token (%XX escapes).
 *
 * A cloudfs path or directory entry name may hold any byte but NUL: spaces,
 * newlines, '%', UTF-8.  On the wire it travels as one whitespace-free
 * token: bytes <= 0x20, >= 0x7f and '%' become %XX.  Shared by the node's
 * parser and libvirgo; pure functions.
 */
#ifndef VIRGO_PATHCODEC_H
#define VIRGO_PATHCODEC_H

#include <stddef.h>
#include <stdint.h>

/* Decodes a token of n bytes into out (cap bytes, NUL-terminated).
 * 0, or -1: bad escape, a NUL byte, empty, or longer than cap - 1. */
int pathcodec_decode(const uint8_t *s, size_t n, char *out, size_t cap);
/* Encodes n bytes as one token into out (at most cap bytes with a NUL);
 * returns the length it needs without the NUL, like snprintf. */
size_t pathcodec_encode(const char *s, size_t n, char *out, size_t cap);

#endif
