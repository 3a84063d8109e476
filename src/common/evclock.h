/*
 * evclock.h - vector clocks over the nodes of a cluster (EventNet).
 *
 * A clock is a sparse, node-sorted list of (node id, counter) pairs: entry
 * n counts the events recorded on node n that causally precede (or are)
 * the event carrying it.  Pure functions: parse and format the wire form
 * "1:17,2:4", merge (component-wise max) and compare (before / after /
 * equal / concurrent).  Shared by the eventnet service and libvirgo.
 */
#ifndef VIRGO_EVCLOCK_H
#define VIRGO_EVCLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVC_MAX 64 /* nodes one clock can name */
#define EVC_TEXT_MAX (EVC_MAX * 27) /* "65535:18446744073709551615," each */

struct evc_ent {
	uint16_t node;
	uint64_t c;
};

struct evc {
	unsigned n; /* entries used, sorted by node, no zero counters */
	struct evc_ent e[EVC_MAX];
};

enum evc_order {
	EVC_EQUAL = 0,
	EVC_BEFORE, /* a < b: a happened before b */
	EVC_AFTER, /* b < a */
	EVC_CONCURRENT,
};

/* Parses "<node>:<count>[,...]" (nodes 1..65535, counts >= 1, any order,
 * no duplicates) of len bytes; "-" is the empty clock.  0 or -1. */
int evc_parse(struct evc *v, const char *s, size_t len);
/* Writes the wire form ("-" when empty) into out (EVC_TEXT_MAX + 1
 * bytes); returns its length. */
size_t evc_format(const struct evc *v, char *out);
/* The same for a raw array of n entries (no terminating NUL when n > 0
 * is not guaranteed: it writes one). */
size_t evc_format_ents(const struct evc_ent *e, unsigned n, char *out);
/* Writes v in decimal (no NUL); returns its length (at most 20). */
size_t evc_u64(char *out, uint64_t v);
/* The counter of node (0 when absent). */
uint64_t evc_get(const struct evc *v, uint16_t node);
/* Sets node's counter (c > 0); -1 when the clock already names EVC_MAX nodes. */
int evc_set(struct evc *v, uint16_t node, uint64_t c);
/* dst = max(dst, src) component-wise; -1 when the result would name too
 * many nodes (dst unchanged then). */
int evc_merge(struct evc *dst, const struct evc *src);
/* Same, with src as a raw array of n entries. */
int evc_merge_ents(struct evc *dst, const struct evc_ent *src, unsigned n);
/* How a relates to b. */
enum evc_order evc_compare_ents(const struct evc_ent *a, unsigned an, const struct evc_ent *b,
				unsigned bn);
enum evc_order evc_compare(const struct evc *a, const struct evc *b);
/* "before", "after", "equal", "concurrent" (static). */
const char *evc_order_name(enum evc_order o);

#endif
