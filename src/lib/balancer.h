/*
 * balancer.h - node placement for libvirgo (the notes' §889 registry and
 * §890 PRG balancer, plus round robin, power of two choices and a learned
 * expected-completion-time policy, §898).
 *
 * lb_choose is pure (the node views and the random state in, an index
 * out) so every policy is unit-tested deterministically; lb_pick_cpu wraps
 * it with the client's live state: back-off, the load table (refreshed
 * from the nodes' cpupool `load` when older than load_max_age_ms) and this
 * client's own jobs in flight since the last refresh.
 */
#ifndef VIRGO_BALANCER_H
#define VIRGO_BALANCER_H

#include <stdbool.h>
#include <stdint.h>

#include "client.h"

struct lb_view {
	double jobs; /* estimated running + queued jobs on the node */
	int workers; /* its cpupool workers (>= 1) */
	double ewma_ms; /* learned runtime of this function there; < 0: unknown */
};

/* Picks one of n candidate views per policy; *rng is xorshift state
 * (advanced), *rr a round-robin counter (advanced).  Returns 0..n-1, or -1
 * when n == 0.  Ties go to a random one of the tied (seeded: repeatable). */
int lb_choose(enum vc_policy policy, const struct lb_view *v, int n, uint64_t *rng, unsigned *rr);

/* One xorshift64* step. */
uint64_t lb_rng_next(uint64_t *state);

/* Placement of a cpupool job running function/program `key` (learned
 * policy), skipping nodes in back-off and those in `avoid` (may be NULL).
 * -1 if no node is left. */
int lb_pick_cpu(struct vc_client *c, enum vc_policy policy, const char *key,
		const uint64_t *avoid);

/* Records that `key` took ms on node idx (learned policy, EWMA). */
void lb_learn(struct vc_client *c, const char *key, int idx, double ms);

/* Refreshes node idx's load entry now (also used by virgo_load). */
int lb_load_fetch(struct vc_client *c, int idx, struct virgo_load *out);

/* The EWMA weight of a new observation. */
#define LB_EWMA_ALPHA 0.3

#endif
