/*
 * analytics_rev.h - analytics revisions that never repeat across
 * restarts.  Variables and their history live in memory, so a restart
 * loses them; what must not happen is a watcher resuming "after revision
 * R" from a restarted node whose new revisions reuse R's numbers and so
 * silently skip or mix changes.  The node keeps, in
 * <analytics_dir>/analytics-<node id>.rev, a number above every revision
 * it has given: at start it continues from there and reserves a block of
 * AN_REV_BLOCK revisions ahead (written to a temporary file, fsync'd,
 * renamed), and reserves again when a block runs out.  So after a
 * restart revisions jump ahead, and a watch from an earlier revision is
 * told ERANGE (its history was reset: re-read and watch from now).
 */
#ifndef VIRGO_ANALYTICS_REV_H
#define VIRGO_ANALYTICS_REV_H

#include <stddef.h>
#include <stdint.h>

#define AN_REV_BLOCK (UINT64_C(1) << 20)

struct an_rev {
	char path[320]; /* "" when revisions are in memory only */
	uint64_t limit; /* revisions below it may be given */
};

/* dir "": in memory only (r->limit UINT64_MAX, *base 0).  Else 0 and
 * *base, the revision to continue after (0 on a first start), with a
 * block reserved; or -errno with err filled (the caller may fall back to
 * memory). */
int an_rev_open(struct an_rev *r, const char *dir, unsigned node_id, uint64_t *base, char *err,
		size_t errlen);

/* Revision *rev is about to be given: reserves the next block first when
 * it reaches the limit (raising *rev past what another node sharing the
 * file reserved).  0, or -errno with err filled (no revision may be
 * given: a restart could give it again). */
int an_rev_need(struct an_rev *r, uint64_t *rev, char *err, size_t errlen);

#endif
