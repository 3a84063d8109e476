/*
 * cpupool_knobs.c - the cpupool's live knobs and learnt variables
 * (cpupool_knobs.h).  Each knob parses and bounds the new value and only
 * then applies it: cpu_workers/cpu_queue resize the pool (cp_pool_resize:
 * more threads start at once, fewer take effect as running jobs end),
 * job_timeout_ms applies to jobs accepted from then on.  The run-time
 * table is a small LRU under its own mutex, written by pool threads.
 */
#include "cpupool_knobs.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../daemon/knob.h"
#include "cpupool_load.h"

struct cp_knobs {
	struct cp_pool *pool;
	_Atomic int *job_timeout_ms;
	pthread_mutex_t mu; /* fn */
	struct {
		char key[100]; /* "runtime_ms.<name>" */
		double ewma;
		uint64_t used; /* LRU stamp; 0: free */
		bool fresh; /* changed since the last report */
	} fn[CP_LEARN_FNS];
	uint64_t clock;
};

static int parse_int(const char *v, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	if (errno || end == v || *end || x < min || x > max)
		return -1;
	*out = x;
	return 0;
}

static int workers_set(void *ctx, const char *v, char *why, size_t cap)
{
	struct cp_knobs *k = ctx;
	long x;
	if (parse_int(v, 0, 1024, &x)) {
		snprintf(why, cap, "cpu_workers must be 0..1024 (0: one per core)");
		return -EINVAL;
	}
	if (x == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		x = n > 0 ? n : 1;
	}
	struct cp_pool_counts c;
	cp_pool_counts(k->pool, &c);
	int rc = cp_pool_resize(k->pool, (int)x, c.queue_max);
	if (rc != 0)
		snprintf(why, cap, "cannot start worker threads: %s", strerror(-rc));
	return rc;
}

static void workers_get(void *ctx, char *buf, size_t cap)
{
	struct cp_pool_counts c;
	cp_pool_counts(((struct cp_knobs *)ctx)->pool, &c);
	snprintf(buf, cap, "%d", c.workers);
}

static int queue_set(void *ctx, const char *v, char *why, size_t cap)
{
	struct cp_knobs *k = ctx;
	long x;
	if (parse_int(v, 0, 100000, &x)) {
		snprintf(why, cap, "cpu_queue must be 0..100000");
		return -EINVAL;
	}
	struct cp_pool_counts c;
	cp_pool_counts(k->pool, &c);
	int rc = cp_pool_resize(k->pool, c.workers, (int)x);
	if (rc != 0)
		snprintf(why, cap, "cannot resize the queue: %s", strerror(-rc));
	return rc;
}

static void queue_get(void *ctx, char *buf, size_t cap)
{
	struct cp_pool_counts c;
	cp_pool_counts(((struct cp_knobs *)ctx)->pool, &c);
	snprintf(buf, cap, "%d", c.queue_max);
}

static int timeout_set(void *ctx, const char *v, char *why, size_t cap)
{
	struct cp_knobs *k = ctx;
	long x;
	if (parse_int(v, 1, 86400000, &x)) {
		snprintf(why, cap, "job_timeout_ms must be 1..86400000");
		return -EINVAL;
	}
	atomic_store(k->job_timeout_ms, (int)x);
	return 0;
}

static void timeout_get(void *ctx, char *buf, size_t cap)
{
	snprintf(buf, cap, "%d", atomic_load(((struct cp_knobs *)ctx)->job_timeout_ms));
}

static void report(void *ctx, vknob_emit_fn emit, void *arg)
{
	struct cp_knobs *k = ctx;
	struct cp_load l;
	memset(&l, 0, sizeof l);
	cp_load_sample(&l);
	char v[128];
	snprintf(v, sizeof v, "[%.2f, %.2f, %.2f]", l.load1, l.load5, l.load15);
	emit(arg, "localhost_load", v);
	struct {
		char key[100];
		char val[32];
	} out[CP_LEARN_FNS];
	int n = 0;
	pthread_mutex_lock(&k->mu);
	for (int i = 0; i < CP_LEARN_FNS; i++)
		if (k->fn[i].used && k->fn[i].fresh) {
			k->fn[i].fresh = false;
			snprintf(out[n].key, sizeof out[n].key, "%s", k->fn[i].key);
			snprintf(out[n].val, sizeof out[n].val, "%.1f", k->fn[i].ewma);
			n++;
		}
	pthread_mutex_unlock(&k->mu);
	for (int i = 0; i < n; i++)
		emit(arg, out[i].key, out[i].val);
}

struct cp_knobs *cp_knobs_new(struct cp_pool *pool, _Atomic int *job_timeout_ms)
{
	struct cp_knobs *k = calloc(1, sizeof *k);
	if (!k)
		return NULL;
	k->pool = pool;
	k->job_timeout_ms = job_timeout_ms;
	pthread_mutex_init(&k->mu, NULL);
	vknob_register("cpu_workers", "cpupool jobs running at once (0: one per core)",
		       workers_set, workers_get, k);
	vknob_register("cpu_queue", "cpupool jobs waiting beyond the workers", queue_set,
		       queue_get, k);
	vknob_register("job_timeout_ms", "a cpupool job's deadline", timeout_set, timeout_get, k);
	vknob_add_reporter(report, k);
	return k;
}

void cp_knobs_free(struct cp_knobs *k)
{
	if (!k)
		return;
	vknob_unregister(k);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

void cp_knobs_learn(struct cp_knobs *k, const char *name, double ms)
{
	if (!k)
		return;
	char key[100];
	int n = snprintf(key, sizeof key, "runtime_ms.");
	for (const char *s = name; *s && n < (int)sizeof key - 1; s++) {
		char c = *s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			  c == '_' || c == '.' || c == '/' || c == '-';
		if (c == '"')
			continue; /* vlog_quote's quotes */
		key[n++] = ok ? c : '_';
	}
	key[n] = '\0';
	pthread_mutex_lock(&k->mu);
	int victim = 0, hit = -1;
	for (int i = 0; i < CP_LEARN_FNS && hit < 0; i++) {
		if (k->fn[i].used && strcmp(k->fn[i].key, key) == 0)
			hit = i;
		else if (k->fn[i].used < k->fn[victim].used)
			victim = i;
	}
	if (hit < 0) {
		hit = victim;
		snprintf(k->fn[hit].key, sizeof k->fn[hit].key, "%s", key);
		k->fn[hit].ewma = ms;
	} else {
		k->fn[hit].ewma = (1 - CP_LEARN_ALPHA) * k->fn[hit].ewma + CP_LEARN_ALPHA * ms;
	}
	k->fn[hit].used = ++k->clock;
	k->fn[hit].fresh = true;
	pthread_mutex_unlock(&k->mu);
}

char **cp_knobs_env(void)
{
	char *vars = malloc(CP_ENV_BYTES);
	if (!vars)
		return NULL;
	int n = vknob_env(vars, CP_ENV_BYTES);
	if (n <= 0) {
		free(vars);
		return NULL;
	}
	size_t used = 0;
	for (int i = 0; i < n; i++)
		used += strlen(vars + used) + 1;
	static const char path[] = "PATH=/usr/local/bin:/usr/bin:/bin", lc[] = "LC_ALL=C";
	size_t ptrs = sizeof(char *) * (size_t)(n + 3);
	char **env = malloc(ptrs + sizeof path + sizeof lc + used);
	if (!env) {
		free(vars);
		return NULL;
	}
	char *s = (char *)env + ptrs;
	memcpy(s, path, sizeof path);
	env[0] = s;
	s += sizeof path;
	memcpy(s, lc, sizeof lc);
	env[1] = s;
	s += sizeof lc;
	memcpy(s, vars, used);
	for (int i = 0; i < n; i++) {
		env[2 + i] = s;
		s += strlen(s) + 1;
	}
	env[n + 2] = NULL;
	free(vars);
	return env;
}
