/*
 * md5.h - MD5 (RFC 1321), only for ketama key placement (lib/ketama.c):
 * memcached clients place keys with MD5 points, so we must compute the
 * same ones.  Not for anything security-related.
 */
#ifndef VIRGO_MD5_H
#define VIRGO_MD5_H

#include <stddef.h>
#include <stdint.h>

/* Writes the 16-byte digest of data[0..len) to out. */
void md5_digest(const void *data, size_t len, uint8_t out[16]);

#endif
