/*
 * cloudfs_reply_proto.h - what libvirgo reads out of a cloudfs node's
 * replies (docs/PROTOCOL.md "cloudfs"): the stat fields of stat, open,
 * mkdir and pwrite replies, and readdir pages.  Pure functions over bytes
 * with explicit lengths (no NUL needed), unit-tested and fuzzed.
 */
#ifndef VIRGO_CLOUDFS_REPLY_PROTO_H
#define VIRGO_CLOUDFS_REPLY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "virgo.h"

/* The largest readdir page text taken (conn.c's VC_MAX_STAT: a node's
 * STAT reply is refused beyond it anyway). */
#define CLOUDFS_PAGE_MAX (1u << 20)

/* "<type> <mode> <size> <nlink> <uid> <gid> <atime> <mtime> <ctime> <ino>
 * <blocks>" from s (leading spaces skipped) up to end: 0, *st and *rest
 * (the end of the fields: end or a space); -1 when they do not parse or
 * a field is out of range (mode, uid, gid 32 bits; times signed). */
int cloudfs_reply_stat(const char *s, const char *end, struct virgo_stat *st, const char **rest);

/* How many lines text (n bytes) holds: an upper bound of its entries. */
size_t cloudfs_reply_lines(const char *text, size_t n);

/* What a readdir page's entries are (the flag it was asked with). */
enum cloudfs_page {
	CLOUDFS_PAGE_ENT = 0, /* no flag: "ent <type> <mode> <size> <mtime_ns> <name>" */
	CLOUDFS_PAGE_PLUS = 1, /* s: "entry <stat fields> <name>" */
	CLOUDFS_PAGE_NAMES = 2, /* t: "name <type> <name>" */
};

/* One readdir page as libvirgo collects it: the STAT lines without
 * "STAT ", each ending in '\n' (a '\r' before it is allowed), n bytes
 * at most CLOUDFS_PAGE_MAX.  The lines of kind go to out[k]: for
 * CLOUDFS_PAGE_ENT an array of struct virgo_dirent; else of struct
 * virgo_direntplus (for CLOUDFS_PAGE_NAMES with only st.type set, every
 * other field 0); names %XX-decoded (pathcodec).  At most max entries
 * are written; a line that does not parse (a bad name, a newer node's
 * addition) is skipped.  *next: the "next <cursor>" line's cursor (0: the
 * last page, or none).  Returns the number of entries written, or
 * -EMSGSIZE when n is too large (nothing written). */
long cloudfs_reply_page(const char *text, size_t n, enum cloudfs_page kind, void *out, size_t max,
			uint64_t *next);

/* The cursor of a page's "next <cursor>" line (as cloudfs_reply_page
 * gives it; 0 without one), found from the end of the text (n bytes at
 * most CLOUDFS_PAGE_MAX, else 0), where the node puts it: without
 * parsing the entries. */
uint64_t cloudfs_reply_next(const char *text, size_t n);

#endif
