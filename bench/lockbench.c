/*
 * lockbench.c - lock round trips and handoffs against cloudsync or Redis.
 *
 *   lockbench -s virgo|redis|zk -p PORT [-c CLIENTS] [-d SECS] [-r RETRY_US] [-H HOLD_US]
 *
 * Each client is a thread with its own connection, taking and releasing
 * one lock ("bench") in a loop for SECS seconds, holding it HOLD_US (a
 * sleep, as for I/O in the critical section: with 2 cores, a busy wait
 * would measure the scheduler; default 0).
 * cloudsync: "lock bench 30000" (waits in line, the node pushes the grant)
 * and "unlock bench".  Redis, as its users do it: "SET bench <token> NX PX
 * 30000" and "DEL bench"; a client that finds the lock taken sleeps
 * RETRY_US and tries again (redis-py's Lock sleeps 100 ms by default).
 * ZooKeeper (PORT is its client port), its lock recipe used directly with
 * the C client, as cloudsync's zookeeper backend does it: create an
 * ephemeral sequential znode under /lockbench/bench, list the children,
 * hold the lock if ours is the lowest, else watch the one before it; the
 * release deletes the znode.
 * Prints one line: clients, acquisitions per second, handoffs per second
 * (acquisitions by another client than the previous holder: a lock that
 * one client keeps re-taking while the others sleep hands off nothing),
 * and the wait from wanting the lock to holding it (p50, p99, max, µs);
 * with one client that wait is the acquire's round trip and acq_per_s is
 * acquire+release pairs per second.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#define MAXC 64
#define MAXS 2000000

static int port, nclients = 1, secs = 2, retry_us = 100000, hold_us;
static int redis, zk;
static _Atomic int stop;
static _Atomic int last_holder = -1;
static _Atomic long handoffs; /* grants to another client than the last holder */
static int64_t *waits[MAXC];
static size_t nwaits[MAXC];

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int conn(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

struct rd {
	char buf[4096];
	size_t len;
};

/* One reply line into line (no CRLF). */
static void line_in(int fd, struct rd *r, char *line, size_t cap)
{
	for (;;) {
		char *nl = memchr(r->buf, '\n', r->len);
		if (nl) {
			size_t n = (size_t)(nl - r->buf);
			size_t k = n && r->buf[n - 1] == '\r' ? n - 1 : n;
			if (k >= cap)
				k = cap - 1;
			memcpy(line, r->buf, k);
			line[k] = '\0';
			memmove(r->buf, nl + 1, r->len - n - 1);
			r->len -= n + 1;
			return;
		}
		ssize_t got = read(fd, r->buf + r->len, sizeof r->buf - r->len);
		if (got <= 0) {
			fprintf(stderr, "connection closed\n");
			exit(1);
		}
		r->len += (size_t)got;
	}
}

static void out(int fd, const char *s)
{
	size_t n = strlen(s);
	if (write(fd, s, n) != (ssize_t)n) {
		perror("write");
		exit(1);
	}
}

/* ---- ZooKeeper's recipe, synchronous calls ---------------------------- */

struct zkw {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int fired;
};

static void zk_watch(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)state;
	(void)path;
	struct zkw *w = ctx;
	if (type == ZOO_SESSION_EVENT)
		return;
	pthread_mutex_lock(&w->mu);
	w->fired = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->mu);
}

static void zk_session(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
	(void)zh;
	(void)type;
	(void)state;
	(void)path;
	(void)ctx;
}

static zhandle_t *zk_open(void)
{
	char hosts[64];
	snprintf(hosts, sizeof hosts, "127.0.0.1:%d", port);
	zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
	zhandle_t *zh = zookeeper_init(hosts, zk_session, 10000, NULL, NULL, 0);
	for (int i = 0; zh && zoo_state(zh) != ZOO_CONNECTED_STATE && i < 1000; i++)
		usleep(10000);
	if (!zh || zoo_state(zh) != ZOO_CONNECTED_STATE) {
		fprintf(stderr, "zookeeper: no session\n");
		exit(1);
	}
	zoo_create(zh, "/lockbench", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
	zoo_create(zh, "/lockbench/bench", "", 0, &ZOO_OPEN_ACL_UNSAFE, 0, NULL, 0);
	return zh;
}

static uint64_t zk_seq(const char *s)
{
	const char *d = strrchr(s, '-');
	return d ? strtoull(d + 1, NULL, 10) : UINT64_MAX;
}

/* Takes the lock; *mine gets our znode's path. */
static void zk_acquire(zhandle_t *zh, char *mine, size_t cap)
{
	if (zoo_create(zh, "/lockbench/bench/n-", "", 0, &ZOO_OPEN_ACL_UNSAFE,
		       ZOO_EPHEMERAL | ZOO_SEQUENCE, mine, (int)cap) != ZOK) {
		fprintf(stderr, "zookeeper: create failed\n");
		exit(1);
	}
	uint64_t me = zk_seq(mine);
	for (;;) {
		struct String_vector sv;
		if (zoo_get_children(zh, "/lockbench/bench", 0, &sv) != ZOK) {
			fprintf(stderr, "zookeeper: get_children failed\n");
			exit(1);
		}
		char pred[256] = "";
		uint64_t ps = 0;
		for (int i = 0; i < sv.count; i++) {
			uint64_t q = zk_seq(sv.data[i]);
			if (q < me && (!pred[0] || q > ps)) {
				snprintf(pred, sizeof pred, "/lockbench/bench/%s", sv.data[i]);
				ps = q;
			}
		}
		deallocate_String_vector(&sv);
		if (!pred[0])
			return;
		struct zkw w = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
		int rc = zoo_wexists(zh, pred, zk_watch, &w, NULL);
		if (rc == ZNONODE)
			continue; /* (the watch waits for a creation: w must outlive it) */
		pthread_mutex_lock(&w.mu);
		while (!w.fired)
			pthread_cond_wait(&w.cond, &w.mu);
		pthread_mutex_unlock(&w.mu);
	}
}

static void *client(void *arg)
{
	int id = (int)(intptr_t)arg;
	zhandle_t *zh = zk ? zk_open() : NULL;
	int fd = zk ? -1 : conn();
	char mine[256];
	struct rd r = {.len = 0};
	char line[256], cmd[128];
	waits[id] = malloc(MAXS * sizeof(int64_t));
	uint64_t seq = 0;
	while (!stop && nwaits[id] < MAXS) {
		int64_t t0 = now_us();
		if (zk) {
			zk_acquire(zh, mine, sizeof mine);
		} else if (redis) {
			for (;;) {
				snprintf(cmd, sizeof cmd, "SET bench %d-%llu NX PX 30000\r\n", id,
					 (unsigned long long)++seq);
				out(fd, cmd);
				line_in(fd, &r, line, sizeof line);
				if (strcmp(line, "+OK") == 0)
					break;
				if (stop)
					goto done;
				usleep((useconds_t)retry_us);
			}
		} else {
			out(fd, "lock bench 30000\r\n");
			line_in(fd, &r, line, sizeof line);
			if (strncmp(line, "QUEUED", 6) == 0)
				line_in(fd, &r, line, sizeof line);
			if (strncmp(line, "OK", 2) != 0) {
				fprintf(stderr, "lock: %s\n", line);
				exit(1);
			}
		}
		int64_t got = now_us();
		if (atomic_exchange(&last_holder, id) != id)
			handoffs++;
		waits[id][nwaits[id]++] = got - t0;
		if (hold_us)
			usleep((useconds_t)hold_us);
		if (zk) {
			zoo_delete(zh, mine, -1);
			continue;
		}
		out(fd, redis ? "DEL bench\r\n" : "unlock bench\r\n");
		line_in(fd, &r, line, sizeof line);
	}
done:
	if (zh)
		zookeeper_close(zh);
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "s:p:c:d:r:H:")) != -1) {
		switch (o) {
		case 's': redis = strcmp(optarg, "redis") == 0; zk = strcmp(optarg, "zk") == 0; break;
		case 'p': port = atoi(optarg); break;
		case 'c': nclients = atoi(optarg); break;
		case 'd': secs = atoi(optarg); break;
		case 'r': retry_us = atoi(optarg); break;
		case 'H': hold_us = atoi(optarg); break;
		default: return 2;
		}
	}
	if (!port || nclients < 1 || nclients > MAXC)
		return 2;
	pthread_t th[MAXC];
	int64_t t0 = now_us();
	for (int i = 0; i < nclients; i++)
		pthread_create(&th[i], NULL, client, (void *)(intptr_t)i);
	usleep((useconds_t)secs * 1000000);
	stop = 1;
	for (int i = 0; i < nclients; i++)
		pthread_join(th[i], NULL);
	double el = (double)(now_us() - t0) / 1e6;
	size_t n = 0;
	for (int i = 0; i < nclients; i++)
		n += nwaits[i];
	int64_t *all = malloc((n ? n : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < nclients; i++) {
		memcpy(all + k, waits[i], nwaits[i] * sizeof *all);
		k += nwaits[i];
		free(waits[i]);
	}
	qsort(all, n, sizeof *all, cmp64);
	printf("clients=%d acq_per_s=%.0f handoffs_per_s=%.0f wait_p50_us=%lld wait_p99_us=%lld "
	       "wait_max_us=%lld\n",
	       nclients, n / el, handoffs / el, n ? (long long)all[n / 2] : 0LL,
	       n ? (long long)all[(size_t)(n * 0.99)] : 0LL, n ? (long long)all[n - 1] : 0LL);
	free(all);
	return 0;
}
