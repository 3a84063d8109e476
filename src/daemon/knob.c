/*
 * knob.c - the live-knob registry (knob.h).  A fixed table under one
 * mutex for registration and lookup; a second mutex serialises the
 * validate+apply callbacks (two setters never apply one knob at once,
 * and a callback may block briefly on its module's own lock without
 * holding up lookups).  Reporters and the variable view are called with
 * no registry lock held, so they may call back into the analytics
 * service, which itself calls vknob_set under its own lock.
 */
#include "knob.h"

#include "bw.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vknob {
	const char *name, *doc;
	vknob_set_fn set;
	vknob_get_fn get;
	void *ctx;
};

struct vknob_rep {
	vknob_report_fn fn;
	void *ctx;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t apply_mu = PTHREAD_MUTEX_INITIALIZER;
static struct vknob knobs[VKNOB_MAX];
static int nknobs;
static struct vknob_rep reps[VKNOB_MAX];
static int nreps;
/* the variable view: its own lock, taken before the service's (never
 * while holding reg_mu or apply_mu, which the service takes under its own) */
static pthread_rwlock_t var_mu = PTHREAD_RWLOCK_INITIALIZER;
static vknob_var_fn var_get;
static vknob_env_fn var_env;
static void *var_ctx;

int vknob_register(const char *name, const char *doc, vknob_set_fn set, vknob_get_fn get,
		   void *ctx)
{
	int rc = 0;
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < nknobs; i++)
		if (strcmp(knobs[i].name, name) == 0)
			rc = -EEXIST;
	if (rc == 0 && nknobs == VKNOB_MAX)
		rc = -ENOSPC;
	if (rc == 0)
		knobs[nknobs++] = (struct vknob){name, doc, set, get, ctx};
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

void vknob_unregister(void *ctx)
{
	pthread_mutex_lock(&apply_mu); /* no apply of ctx's knobs is running */
	pthread_mutex_lock(&reg_mu);
	int j = 0;
	for (int i = 0; i < nknobs; i++)
		if (knobs[i].ctx != ctx)
			knobs[j++] = knobs[i];
	nknobs = j;
	j = 0;
	for (int i = 0; i < nreps; i++)
		if (reps[i].ctx != ctx)
			reps[j++] = reps[i];
	nreps = j;
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_unlock(&apply_mu);
	pthread_rwlock_wrlock(&var_mu);
	if (var_ctx == ctx && ctx) {
		var_get = NULL;
		var_env = NULL;
		var_ctx = NULL;
	}
	pthread_rwlock_unlock(&var_mu);
}

static bool lookup(const char *name, struct vknob *out)
{
	bool found = false;
	pthread_mutex_lock(&reg_mu);
	for (int i = 0; i < nknobs && !found; i++)
		if (strcmp(knobs[i].name, name) == 0) {
			*out = knobs[i];
			found = true;
		}
	pthread_mutex_unlock(&reg_mu);
	return found;
}

int vknob_set(const char *name, const char *value, char *why, size_t why_cap)
{
	pthread_mutex_lock(&apply_mu);
	struct vknob k;
	int rc;
	if (!lookup(name, &k)) {
		rc = -ENOENT;
	} else {
		if (why_cap)
			why[0] = '\0';
		rc = k.set(k.ctx, value, why, why_cap);
		if (rc != 0 && why_cap && !why[0])
			snprintf(why, why_cap, "refused");
		if (rc != 0)
			rc = -EINVAL;
	}
	pthread_mutex_unlock(&apply_mu);
	return rc;
}

int vknob_get(const char *name, char *buf, size_t cap)
{
	pthread_mutex_lock(&apply_mu);
	struct vknob k;
	int rc = lookup(name, &k) ? 0 : -ENOENT;
	if (rc == 0)
		k.get(k.ctx, buf, cap);
	pthread_mutex_unlock(&apply_mu);
	return rc;
}

bool vknob_exists(const char *name)
{
	struct vknob k;
	return lookup(name, &k);
}

void vknob_foreach(void (*fn)(void *arg, const char *name, const char *doc), void *arg)
{
	struct vknob copy[VKNOB_MAX];
	pthread_mutex_lock(&reg_mu);
	int n = nknobs;
	memcpy(copy, knobs, sizeof copy);
	pthread_mutex_unlock(&reg_mu);
	for (int i = 0; i < n; i++)
		fn(arg, copy[i].name, copy[i].doc);
}

int vknob_add_reporter(vknob_report_fn fn, void *ctx)
{
	int rc = 0;
	pthread_mutex_lock(&reg_mu);
	if (nreps == VKNOB_MAX)
		rc = -ENOSPC;
	else
		reps[nreps++] = (struct vknob_rep){fn, ctx};
	pthread_mutex_unlock(&reg_mu);
	return rc;
}

void vknob_report(vknob_emit_fn emit, void *arg)
{
	/* under apply_mu: vknob_unregister (a module's fini) waits for it */
	pthread_mutex_lock(&apply_mu);
	struct vknob_rep copy[VKNOB_MAX];
	pthread_mutex_lock(&reg_mu);
	int n = nreps;
	memcpy(copy, reps, sizeof copy);
	pthread_mutex_unlock(&reg_mu);
	pthread_mutex_unlock(&apply_mu);
	for (int i = 0; i < n; i++)
		copy[i].fn(copy[i].ctx, emit, arg);
}

void vknob_set_vars(vknob_var_fn get, vknob_env_fn env, void *ctx)
{
	pthread_rwlock_wrlock(&var_mu);
	var_get = get;
	var_env = env;
	var_ctx = ctx;
	pthread_rwlock_unlock(&var_mu);
}

int vknob_var(const char *key, char *buf, size_t cap)
{
	pthread_rwlock_rdlock(&var_mu);
	int rc = var_get ? var_get(var_ctx, key, buf, cap) : -ENOENT;
	pthread_rwlock_unlock(&var_mu);
	return rc;
}

int vknob_env(char *buf, size_t cap)
{
	pthread_rwlock_rdlock(&var_mu);
	int rc = var_env ? var_env(var_ctx, buf, cap) : 0;
	pthread_rwlock_unlock(&var_mu);
	return rc;
}

/* ---- node-level knobs ---------------------------------------------------- */

static _Atomic int node_weight = 100;

/* A decimal integer min..max, whole string. */
static int parse_int(const char *v, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

static int weight_set(void *ctx, const char *v, char *why, size_t cap)
{
	(void)ctx;
	int64_t x;
	if (parse_int(v, 0, 1000, &x)) {
		snprintf(why, cap, "weight must be an integer 0..1000 (0: place nothing here)");
		return -EINVAL;
	}
	atomic_store(&node_weight, (int)x);
	return 0;
}

static void weight_get(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	snprintf(buf, cap, "%d", atomic_load(&node_weight));
}

static int bandwidth_set(void *ctx, const char *v, char *why, size_t cap)
{
	(void)ctx;
	int64_t x;
	if (parse_int(v, 0, 1000000, &x)) {
		snprintf(why, cap, "MaxNetworkBandwidth must be Mbit/s 0..1000000 (0: no cap)");
		return -EINVAL;
	}
	bw_set_mbit((uint64_t)x); /* server.c's next read or write of a bulk connection */
	return 0;
}

static void bandwidth_get(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	snprintf(buf, cap, "%" PRIu64, bw_mbit());
}

static int node_ctx; /* the node-level knobs' ctx */

void vknob_node_init(void)
{
	vknob_unregister(&node_ctx);
	atomic_store(&node_weight, 100);
	bw_set_mbit(0);
	vknob_register("weight", "placement weight 0..1000 clients' balancers use (0: drain)",
		       weight_set, weight_get, &node_ctx);
	vknob_register("MaxNetworkBandwidth", "Mbit/s cap on bulk transfers (0: none)", bandwidth_set,
		       bandwidth_get, &node_ctx);
}

int vknob_weight(void) { return atomic_load(&node_weight); }
uint64_t vknob_bandwidth_mbit(void) { return bw_mbit(); }
