/*
 * knob_daemon.c - the daemon's own live knobs (knob.h): mem_limit (the
 * node's memory accountant), max_connections (the node-wide connection
 * cap; per-service caps stay as configured) and log_level.  Registered
 * by the server at start-up with pointers to what they change.
 */
#include "knob_daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../common/cfgval.h"
#include "../services/memacct.h"
#include "config.h"
#include "knob.h"
#include "log.h"

static struct {
	struct ma_acct *acct;
	int *max_conns;
} dk;

static int mem_set(void *ctx, const char *v, char *why, size_t cap)
{
	(void)ctx;
	uint64_t x;
	if (cv_size(v, &x) || x < (UINT64_C(1) << 20) || x > VD_MAX_MEM) {
		snprintf(why, cap, "mem_limit must be a size from 1M to 16T (K/M/G/T suffixes)");
		return -EINVAL;
	}
	if (ma_set_limit(dk.acct, x) != 0) {
		struct ma_usage u;
		ma_get_usage(dk.acct, &u);
		snprintf(why, cap, "virgo_malloc allocations already hold %" PRIu64 " bytes",
			 u.pinned);
		return -EINVAL;
	}
	return 0;
}

static void mem_get(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	struct ma_usage u;
	ma_get_usage(dk.acct, &u);
	snprintf(buf, cap, "%" PRIu64, u.limit);
}

static int conns_set(void *ctx, const char *v, char *why, size_t cap)
{
	(void)ctx;
	char *end;
	errno = 0;
	long x = strtol(v, &end, 10);
	struct rlimit rl;
	long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 10000000
			   ? (long)rl.rlim_cur - 64
			   : 1000000;
	if (errno || end == v || *end || x < 1 || x > 1000000) {
		snprintf(why, cap, "max_connections must be 1..1000000");
		return -EINVAL;
	}
	if (x > fds) {
		snprintf(why, cap, "max_connections above this process's open-file limit (%ld)",
			 fds);
		return -EINVAL;
	}
	__atomic_store_n(dk.max_conns, (int)x, __ATOMIC_RELAXED);
	return 0;
}

static void conns_get(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	snprintf(buf, cap, "%d", __atomic_load_n(dk.max_conns, __ATOMIC_RELAXED));
}

static int level_set(void *ctx, const char *v, char *why, size_t cap)
{
	(void)ctx;
	enum vlog_level l;
	if (vlog_parse_level(v, &l)) {
		snprintf(why, cap, "log_level must be error, warn, info or debug");
		return -EINVAL;
	}
	vlog_set_level(l);
	return 0;
}

static void level_get(void *ctx, char *buf, size_t cap)
{
	(void)ctx;
	snprintf(buf, cap, "%s", vlog_level_name(vlog_get_level()));
}

void vknob_daemon_register(struct ma_acct *acct, int *max_conns)
{
	vknob_unregister(&dk);
	dk.acct = acct;
	dk.max_conns = max_conns;
	vknob_register("mem_limit", "bytes all allocations on this node may hold", mem_set,
		       mem_get, &dk);
	vknob_register("max_connections", "open connections at once, node-wide", conns_set,
		       conns_get, &dk);
	vknob_register("log_level", "error, warn, info or debug", level_set, level_get, &dk);
}

void vknob_daemon_unregister(void) { vknob_unregister(&dk); }
