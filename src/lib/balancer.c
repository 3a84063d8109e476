/*
 * balancer.c - placement policies (balancer.h) and mempool's lb_pick.
 *
 * least_loaded and power_of_two compare jobs per worker: the node's last
 * reported running+queued plus the jobs this client sent there since that
 * report (so a burst of calls within one staleness window spreads out
 * instead of piling onto the node that looked idle).  learned keeps, per
 * function name and node, an EWMA of observed call times and picks the
 * lowest expected completion, ewma * (1 + jobs/workers); a node with no
 * estimate yet is tried first (exploration), so every node gets measured.
 */
#include "balancer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LB_LEARN_FNS 64

struct lb_learned {
	struct {
		char key[64];
		uint64_t used; /* LRU stamp */
		double ewma[VC_MAX_NODES]; /* < 0: no sample yet */
	} fn[LB_LEARN_FNS];
	uint64_t clock;
};

uint64_t lb_rng_next(uint64_t *state)
{
	uint64_t x = *state; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * UINT64_C(2685821657736338717);
}

static uint64_t rng_next(struct vc_client *c)
{
	pthread_mutex_lock(&c->rng_lock);
	uint64_t r = lb_rng_next(&c->rng);
	pthread_mutex_unlock(&c->rng_lock);
	return r;
}

/* Lowest score; ties to a random one of them. */
static int pick_min(const double *score, int n, uint64_t *rng)
{
	double best = INFINITY;
	int ties = 0, pick = -1;
	for (int i = 0; i < n; i++) {
		if (score[i] < best - 1e-9) {
			best = score[i];
			ties = 0;
		}
		if (fabs(score[i] - best) <= 1e-9)
			ties++;
	}
	int k = ties > 1 ? (int)(lb_rng_next(rng) % (uint64_t)ties) : 0;
	for (int i = 0; i < n; i++) {
		if (fabs(score[i] - best) <= 1e-9 && k-- == 0) {
			pick = i;
			break;
		}
	}
	return pick;
}

int lb_choose(enum vc_policy policy, const struct lb_view *v, int n, uint64_t *rng, unsigned *rr)
{
	if (n <= 0)
		return -1;
	double score[VC_MAX_NODES];
	switch (policy) {
	case VC_POLICY_ROUND_ROBIN:
		return (int)((*rr)++ % (unsigned)n);
	case VC_POLICY_LEAST_LOADED:
		for (int i = 0; i < n; i++)
			score[i] = v[i].jobs / (v[i].workers > 0 ? v[i].workers : 1);
		return pick_min(score, n, rng);
	case VC_POLICY_POWER_OF_TWO: {
		if (n == 1)
			return 0;
		int a = (int)(lb_rng_next(rng) % (uint64_t)n);
		int b = (int)(lb_rng_next(rng) % (uint64_t)(n - 1));
		if (b >= a)
			b++;
		double la = v[a].jobs / (v[a].workers > 0 ? v[a].workers : 1);
		double lb = v[b].jobs / (v[b].workers > 0 ? v[b].workers : 1);
		return lb < la ? b : a;
	}
	case VC_POLICY_LEARNED: {
		int unknown = 0;
		for (int i = 0; i < n; i++)
			unknown += v[i].ewma_ms < 0;
		for (int i = 0; i < n; i++) {
			if (unknown) /* explore: only nodes without an estimate */
				score[i] = v[i].ewma_ms < 0 ? v[i].jobs / (v[i].workers > 0 ? v[i].workers : 1) : INFINITY;
			else
				score[i] = v[i].ewma_ms * (1.0 + v[i].jobs / (v[i].workers > 0 ? v[i].workers : 1));
		}
		return pick_min(score, n, rng);
	}
	case VC_POLICY_RANDOM:
	default:
		return (int)(lb_rng_next(rng) % (uint64_t)n);
	}
}

/* Candidate node indexes: svc up, not avoided; all non-avoided if none is up. */
static int candidates(struct vc_client *c, enum vc_svc svc, const uint64_t *avoid, int *cand)
{
	int n = c->cfg.nnodes, ncand = 0, nfall = 0, fallback[VC_MAX_NODES];
	int64_t now = vc_now_ms();
	for (int i = 0; i < n; i++) {
		if (avoid && (avoid[i / 64] >> (i % 64)) & 1)
			continue;
		if (vc_node_up(&c->cfg.nodes[i], svc, now))
			cand[ncand++] = i;
		else
			fallback[nfall++] = i;
	}
	if (ncand == 0) { /* everything is in back-off: try anyway */
		memcpy(cand, fallback, sizeof(int) * (size_t)nfall);
		ncand = nfall;
	}
	return ncand;
}

int lb_pick(struct vc_client *c, const uint64_t *avoid)
{
	int cand[VC_MAX_NODES];
	int ncand = candidates(c, VC_SVC_MEMPOOL, avoid, cand);
	if (ncand == 0)
		return -1;
	if (c->cfg.policy == VC_POLICY_ROUND_ROBIN)
		return cand[atomic_fetch_add(&c->rr, 1) % (unsigned)ncand];
	return cand[rng_next(c) % (uint64_t)ncand];
}

static double parse_stat_or(const char *text, const char *name, double dflt)
{
	size_t nl = strlen(name);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, name, nl) == 0 && l[nl] == ' ')
			return strtod(l + nl + 1, NULL);
	return dflt;
}

static double parse_stat(const char *text, const char *name) { return parse_stat_or(text, name, 0); }

int lb_load_fetch(struct vc_client *c, int idx, struct virgo_load *out)
{
	struct vc_reply rep;
	int rc = vc_call_svc(c, idx, VC_SVC_CPUPOOL, "load\r\n", 6, NULL, 0, VC_IDEMPOTENT,
			     &rep);
	if (rc == 0 && !rep.data)
		rc = -VIRGO_EBADREPLY;
	if (rc) {
		free(rep.data);
		return rc;
	}
	const char *t = (const char *)rep.data;
	struct virgo_load l = {
		.node_id = (unsigned)parse_stat(t, "node_id"),
		.cores = (int)parse_stat(t, "cores"),
		.load1 = parse_stat(t, "load1"),
		.load5 = parse_stat(t, "load5"),
		.load15 = parse_stat(t, "load15"),
		.running = (int)parse_stat(t, "running"),
		.queued = (int)parse_stat(t, "queued"),
		.workers = (int)parse_stat(t, "workers"),
		.queue_max = (int)parse_stat(t, "queue_max"),
		.mem_free = (uint64_t)parse_stat(t, "mem_free"),
		.mem_total = (uint64_t)parse_stat(t, "mem_total"),
		.jobs_done = (uint64_t)parse_stat(t, "jobs_done"),
		.jobs_failed = (uint64_t)parse_stat(t, "jobs_failed"),
		.jobs_rejected = (uint64_t)parse_stat(t, "jobs_rejected"),
		.jobs_cancelled = (uint64_t)parse_stat(t, "jobs_cancelled"),
		/* nodes without the analytics knob report none: full weight */
		.weight = (int)parse_stat_or(t, "weight", 100),
	};
	free(rep.data);
	pthread_mutex_lock(&c->lb_lock);
	struct lb_load *e = &c->load[idx];
	e->valid = true;
	e->fetched_ms = vc_now_ms();
	e->running = l.running;
	e->queued = l.queued;
	e->workers = l.workers > 0 ? l.workers : 1;
	e->load1 = l.load1;
	e->weight = l.weight;
	e->inflight_at_fetch = atomic_load(&c->inflight[idx]);
	pthread_mutex_unlock(&c->lb_lock);
	if (out)
		*out = l;
	return 0;
}

/* The learned entry for key (created, evicting the least recently used);
 * lb_lock held. */
static double *learned_row(struct vc_client *c, const char *key, bool create)
{
	if (!c->learned) {
		if (!create || !(c->learned = calloc(1, sizeof *c->learned)))
			return NULL;
	}
	struct lb_learned *L = c->learned;
	int victim = 0;
	for (int i = 0; i < LB_LEARN_FNS; i++) {
		if (L->fn[i].key[0] && strncmp(L->fn[i].key, key, sizeof L->fn[i].key - 1) == 0) {
			L->fn[i].used = ++L->clock;
			return L->fn[i].ewma;
		}
		if (L->fn[i].used < L->fn[victim].used)
			victim = i;
	}
	if (!create)
		return NULL;
	snprintf(L->fn[victim].key, sizeof L->fn[victim].key, "%s", key);
	L->fn[victim].used = ++L->clock;
	for (int i = 0; i < VC_MAX_NODES; i++)
		L->fn[victim].ewma[i] = -1;
	return L->fn[victim].ewma;
}

void lb_learn(struct vc_client *c, const char *key, int idx, double ms)
{
	pthread_mutex_lock(&c->lb_lock);
	double *row = learned_row(c, key, true);
	if (row)
		row[idx] = row[idx] < 0 ? ms : (1 - LB_EWMA_ALPHA) * row[idx] + LB_EWMA_ALPHA * ms;
	pthread_mutex_unlock(&c->lb_lock);
}

int lb_pick_cpu(struct vc_client *c, enum vc_policy policy, const char *key, const uint64_t *avoid)
{
	int cand[VC_MAX_NODES];
	int n = candidates(c, VC_SVC_CPUPOOL, avoid, cand);
	if (n == 0)
		return -1;
	struct lb_view v[VC_MAX_NODES];
	bool loads = policy == VC_POLICY_LEAST_LOADED || policy == VC_POLICY_POWER_OF_TWO ||
		     policy == VC_POLICY_LEARNED;
	if (loads) {
		/* bounded staleness: refresh entries older than load_max_age_ms */
		int64_t now = vc_now_ms();
		for (int i = 0; i < n; i++) {
			pthread_mutex_lock(&c->lb_lock);
			bool stale = !c->load[cand[i]].valid ||
				     now - c->load[cand[i]].fetched_ms >= c->cfg.load_max_age_ms;
			pthread_mutex_unlock(&c->lb_lock);
			if (stale && lb_load_fetch(c, cand[i], NULL) != 0) {
				/* unreachable now: it is in back-off; drop it */
				cand[i--] = cand[--n];
			}
		}
		if (n == 0)
			return -1;
	}
	pthread_mutex_lock(&c->lb_lock);
	/* weight 0 (the node's analytics knob): no new placement there,
	 * unless every candidate is at 0 */
	int weighted = 0;
	for (int i = 0; i < n; i++)
		weighted += !c->load[cand[i]].valid || c->load[cand[i]].weight > 0;
	if (weighted > 0)
		for (int i = 0; i < n; i++)
			if (c->load[cand[i]].valid && c->load[cand[i]].weight <= 0)
				cand[i--] = cand[--n];
	double *row = policy == VC_POLICY_LEARNED ? learned_row(c, key, false) : NULL;
	for (int i = 0; i < n; i++) {
		struct lb_load *e = &c->load[cand[i]];
		int since = atomic_load(&c->inflight[cand[i]]) - e->inflight_at_fetch;
		v[i].jobs = (e->valid ? e->running + e->queued : 0) + (since > 0 ? since : 0);
		/* a node of weight 200 looks half as loaded as one of 100 */
		if (e->valid && e->weight > 0 && e->weight != 100)
			v[i].jobs *= 100.0 / e->weight;
		v[i].workers = e->valid ? e->workers : 1;
		v[i].ewma_ms = row ? row[cand[i]] : -1;
	}
	pthread_mutex_unlock(&c->lb_lock);
	pthread_mutex_lock(&c->rng_lock);
	unsigned rr = policy == VC_POLICY_ROUND_ROBIN ? atomic_fetch_add(&c->rr_cpu, 1) : 0;
	int k = lb_choose(policy, v, n, &c->rng, &rr);
	pthread_mutex_unlock(&c->rng_lock);
	return k < 0 ? -1 : cand[k];
}
