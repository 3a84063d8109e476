/*
 * health.c - node health shared across processes (virgo_health_cache): a
 * node that hangs costs every one-shot client a full reply timeout, so
 * the virgo command remembers, in a small per-user file, which nodes'
 * services timed out in the last minute; a later process starts with
 * them in back-off, so placement (malloc, clone, run) tries the other
 * nodes first and one hung node costs a user about one timeout a minute,
 * not one per command.  Only timeouts are kept: a refused connection
 * costs nothing to retry.  Calls addressed to a node (ping, stats, a
 * VUID's get/set/free) still go to it.  The file holds lines
 * "<host> <port_offset> <service> <wall-clock ms of the timeout>", is
 * replaced by rename (concurrent writers lose an update, never the
 * file), and is at most VC_HEALTH_MAX_BYTES.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "client.h"

#define VC_HEALTH_MAX_BYTES 65536

static int64_t wall_ms(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void vc_health_hung(struct vc_client *c, int idx, enum vc_svc svc)
{
	atomic_store_explicit(&c->cfg.nodes[idx].hung_at_ms[svc], wall_ms(),
			      memory_order_relaxed);
}

/* Applies one line of the file: the node's service timed out at `at`;
 * still fresh, it starts in back-off for what is left of max_age. */
static void health_apply(struct vc_client *c, const char *host, int off, int svc, int64_t at,
			 int64_t now)
{
	int64_t left = at + c->health_max_age_ms - now;
	if (svc < 0 || svc >= VC_SVC_COUNT || left <= 0 || at > now + 1000)
		return;
	for (int i = 0; i < c->cfg.nnodes; i++) {
		struct vc_node *n = &c->cfg.nodes[i];
		if (n->port_offset != off || strcmp(n->host, host) != 0)
			continue;
		pthread_mutex_lock(&n->lock);
		int64_t until = vc_now_ms() + left;
		if (n->down_until_ms[svc] < until) {
			n->down_until_ms[svc] = until;
			n->backoff_ms[svc] = (int)(left < c->cfg.backoff_max_ms ? left
										: c->cfg.backoff_max_ms);
			if (n->backoff_ms[svc] <= 0)
				n->backoff_ms[svc] = 1;
		}
		pthread_mutex_unlock(&n->lock);
		int64_t zero = 0;
		atomic_compare_exchange_strong(&n->hung_at_ms[svc], &zero, at);
	}
}

int virgo_health_cache(const char *path, int max_age_ms)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (!path || !*path || strlen(path) >= sizeof c->health_path || max_age_ms <= 0)
		return vc_err_done("health cache", -EINVAL);
	snprintf(c->health_path, sizeof c->health_path, "%s", path);
	c->health_max_age_ms = max_age_ms;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : vc_err_done("health cache", -errno);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd); /* not ours: neither read nor (virgo_fini) replaced */
		c->health_path[0] = '\0';
		return vc_err_done("health cache", -EPERM);
	}
	FILE *f = fdopen(fd, "r");
	if (!f) {
		close(fd);
		return 0;
	}
	char line[256], host[sizeof c->cfg.nodes[0].host];
	int64_t now = wall_ms();
	size_t total = 0;
	while (total < VC_HEALTH_MAX_BYTES && fgets(line, sizeof line, f)) {
		total += strlen(line);
		int off, svc;
		long long at;
		if (sscanf(line, "%63s %d %d %lld", host, &off, &svc, &at) == 4)
			health_apply(c, host, off, svc, (int64_t)at, now);
	}
	fclose(f);
	return 0;
}

void vc_health_save(struct vc_client *c)
{
	if (!c->health_path[0])
		return;
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.%ld.tmp", c->health_path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(tmp);
		return;
	}
	int64_t now = wall_ms();
	for (int i = 0; i < c->cfg.nnodes; i++)
		for (int s = 0; s < VC_SVC_COUNT; s++) {
			struct vc_node *n = &c->cfg.nodes[i];
			int64_t at = atomic_load_explicit(&n->hung_at_ms[s], memory_order_relaxed);
			if (at && at + c->health_max_age_ms > now)
				fprintf(f, "%s %d %d %lld\n", n->host, n->port_offset, s,
					(long long)at);
		}
	if (fclose(f) != 0 || rename(tmp, c->health_path) != 0)
		unlink(tmp);
}
