/*
 * cloudfs_reply_proto.c - the stat fields and readdir pages of a cloudfs
 * node's replies (cloudfs_reply_proto.h).  A listing of 10,000 entries is
 * 10,000 lines of 12 fields each, so this walks the page once, numbers
 * read by frame_dec (no strtok_r, strtoull or sscanf, nothing
 * allocated): the page's text is read where it lies and each entry is
 * written straight into the caller's array.
 */
#include "cloudfs_reply_proto.h"

#include <errno.h>
#include <string.h>

#include "../common/frame.h" /* frame_dec */
#include "../common/pathcodec.h"

/* The length of the token at p: up to the next space or end. */
static size_t tok_len(const char *p, const char *end)
{
	const char *q = p;
	while (q < end && *q != ' ')
		q++;
	return (size_t)(q - p);
}

/* The decimal token at *p, at most max (frame_dec): 0 and *p past it,
 * or -1. */
static int num_dec(const char **p, const char *end, uint64_t max, uint64_t *v)
{
	size_t n = tok_len(*p, end);
	if (frame_dec((const uint8_t *)*p, n, max, v) != 0)
		return -1;
	*p += n;
	return 0;
}

/* The octal token at *p (a mode), within 32 bits. */
static int num_oct(const char **p, const char *end, uint64_t *v)
{
	size_t n = tok_len(*p, end);
	uint64_t x = 0;
	if (n == 0 || n > 11)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '7')
			return -1;
		x = x * 8 + (uint64_t)((*p)[i] - '0');
	}
	if (x > UINT32_MAX)
		return -1;
	*p += n;
	*v = x;
	return 0;
}

/* An optional '-' and a decimal token, within int64_t. */
static int num_i64(const char **p, const char *end, int64_t *v)
{
	const char *q = *p;
	bool neg = q < end && *q == '-';
	uint64_t u;
	if (neg)
		q++;
	if (num_dec(&q, end, (uint64_t)INT64_MAX, &u) != 0)
		return -1;
	*v = neg ? -(int64_t)u : (int64_t)u;
	*p = q;
	return 0;
}

/* One or more spaces at *p (skipped): 0, else -1. */
static int spaces(const char **p, const char *end)
{
	const char *q = *p;
	while (q < end && *q == ' ')
		q++;
	if (q == *p)
		return -1;
	*p = q;
	return 0;
}

int cloudfs_reply_stat(const char *s, const char *end, struct virgo_stat *st, const char **rest)
{
	const char *p = s;
	while (p < end && *p == ' ')
		p++;
	if (end - p < 2 || p[1] != ' ')
		return -1;
	char type = *p++;
	uint64_t u[10]; /* mode size nlink uid gid atime mtime ctime ino blocks */
	int64_t t[3];
	for (int i = 0; i < 10; i++) {
		if (spaces(&p, end) != 0)
			return -1;
		if (i >= 5 && i <= 7) { /* times may precede 1970 */
			if (num_i64(&p, end, &t[i - 5]) != 0)
				return -1;
			continue;
		}
		bool narrow = i == 3 || i == 4; /* uid, gid: 32 bits */
		if (i == 0 ? num_oct(&p, end, &u[i]) != 0
			   : num_dec(&p, end, narrow ? UINT32_MAX : UINT64_MAX, &u[i]) != 0)
			return -1;
	}
	if (p < end && *p != ' ')
		return -1;
	*st = (struct virgo_stat){.type = type,
				  .mode = (unsigned)u[0],
				  .size = u[1],
				  .nlink = u[2],
				  .ino = u[8],
				  .blocks = u[9],
				  .uid = (unsigned)u[3],
				  .gid = (unsigned)u[4],
				  .atime_ns = t[0],
				  .mtime_ns = t[1],
				  .ctime_ns = t[2]};
	*rest = p;
	return 0;
}

size_t cloudfs_reply_lines(const char *text, size_t n)
{
	size_t lines = 0;
	for (const char *p = text, *end = text + n; p < end; lines++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		p = nl ? nl + 1 : end;
	}
	return lines;
}

static bool starts(const char *l, const char *end, const char *word, size_t n)
{
	return (size_t)(end - l) >= n && memcmp(l, word, n) == 0;
}

/* The name token at p (after spaces): decoded into name (cap bytes).  0,
 * or -1 (none, too long, a bad escape). */
static int name_token(const char *p, const char *end, char *name, size_t cap)
{
	if (spaces(&p, end) != 0)
		return -1;
	size_t n = tok_len(p, end);
	if (n == 0 || n > 3 * (cap - 1))
		return -1;
	return pathcodec_decode((const uint8_t *)p, n, name, cap);
}

/* "entry <stat fields> <name>" after "entry" */
static int line_plus(const char *p, const char *end, struct virgo_direntplus *d)
{
	const char *rest;
	if (cloudfs_reply_stat(p, end, &d->st, &rest) != 0)
		return -1;
	return name_token(rest, end, d->name, sizeof d->name);
}

/* "ent <type> <mode> <size> <mtime_ns> <name>" after "ent" */
static int line_plain(const char *p, const char *end, struct virgo_dirent *d)
{
	uint64_t mode, size;
	int64_t mt;
	if (spaces(&p, end) != 0 || end - p < 2 || p[1] != ' ')
		return -1;
	char type = *p++;
	if (spaces(&p, end) != 0 || num_oct(&p, end, &mode) != 0 || spaces(&p, end) != 0 ||
	    num_dec(&p, end, UINT64_MAX, &size) != 0 || spaces(&p, end) != 0 ||
	    num_i64(&p, end, &mt) != 0)
		return -1;
	if (name_token(p, end, d->name, sizeof d->name) != 0)
		return -1;
	d->type = type;
	d->mode = (unsigned)mode;
	d->size = size;
	d->mtime_ns = mt;
	return 0;
}

/* "name <type> <name>" after "name": the type only, other fields 0 */
static int line_name(const char *p, const char *end, struct virgo_direntplus *d)
{
	if (spaces(&p, end) != 0 || end - p < 2 || p[1] != ' ')
		return -1;
	d->st = (struct virgo_stat){.type = *p};
	return name_token(p + 1, end, d->name, sizeof d->name);
}

long cloudfs_reply_page(const char *text, size_t n, enum cloudfs_page kind, void *out, size_t max,
			uint64_t *next)
{
	*next = 0;
	if (n > CLOUDFS_PAGE_MAX)
		return -EMSGSIZE;
	struct virgo_direntplus *dp = out;
	struct virgo_dirent *d = out;
	size_t k = 0;
	for (const char *l = text, *end = text + n; l < end;) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		const char *le = nl ? nl : end;
		const char *next_line = nl ? nl + 1 : end;
		if (le > l && le[-1] == '\r')
			le--;
		if (starts(l, le, "next ", 5)) {
			const char *p = l + 5;
			uint64_t v;
			*next = num_dec(&p, le, UINT64_MAX, &v) == 0 ? v : 0;
		} else if (k < max && kind == CLOUDFS_PAGE_PLUS && starts(l, le, "entry ", 6)) {
			if (line_plus(l + 5, le, &dp[k]) == 0)
				k++;
		} else if (k < max && kind == CLOUDFS_PAGE_ENT && starts(l, le, "ent ", 4)) {
			if (line_plain(l + 3, le, &d[k]) == 0)
				k++;
		} else if (k < max && kind == CLOUDFS_PAGE_NAMES && starts(l, le, "name ", 5)) {
			if (line_name(l + 4, le, &dp[k]) == 0)
				k++;
		}
		l = next_line;
	}
	return (long)k;
}

uint64_t cloudfs_reply_next(const char *text, size_t n)
{
	if (n > CLOUDFS_PAGE_MAX)
		return 0;
	const char *end = text + n;
	while (end > text) { /* lines from the last: the node writes "next" last */
		const char *le = end;
		if (le[-1] == '\n')
			le--;
		const char *l = le;
		while (l > text && l[-1] != '\n')
			l--;
		if (le > l && le[-1] == '\r')
			le--;
		if (starts(l, le, "next ", 5)) {
			const char *p = l + 5;
			uint64_t v;
			return num_dec(&p, le, UINT64_MAX, &v) == 0 ? v : 0;
		}
		end = l;
	}
	return 0;
}
