/*
 * test_mempool_cluster.c - memory pooling end to end on a 3-node loopback
 * cluster of real virgod processes, through libvirgo and raw sockets.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

/* chunk_size 64K makes spanning cheap to test; node limit 8M makes the
 * limit reachable; timeout 1500 ms bounds the dead-node test. */
#define NODE_EXTRA "mem_limit = 8M\nmax_alloc = 4M\n"
#define CLIENT_EXTRA                                                                       \
	"chunk_size = 64K\ntimeout_ms = 1500\nconnect_timeout_ms = 500\nbackoff_ms = 200\n"       \
	"backoff_max_ms = 2000\n"

static struct th_cluster cl;

static int setup(void **state)
{
	(void)state;
	if (th_cluster_start(&cl, 3, NODE_EXTRA, CLIENT_EXTRA) != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

static void fill_random(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)(seed >> 16);
	}
	for (size_t i = 0; i < n; i += 7)
		p[i] = 0; /* plenty of NULs */
}

static uint64_t node_bytes(int idx)
{
	char *text = NULL;
	assert_int_equal(virgo_mempool_stats(idx, &text), 0);
	unsigned long long b = 0;
	const char *p = strstr(text, "\nbytes ");
	assert_non_null(p);
	sscanf(p + 7, "%llu", &b);
	free(text);
	return b;
}

static void round_trip_one_byte(void **state)
{
	(void)state;
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(1, &v), 0);
	assert_int_equal(virgo_set(v, "\0", 1), 0);
	void *d;
	size_t n;
	assert_int_equal(virgo_get(v, &d, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(((uint8_t *)d)[0], 0);
	free(d);
	assert_int_equal(virgo_free(v), 0);
}

static void round_trip_1mib_with_nuls(void **state)
{
	(void)state;
	const size_t n = 1 << 20;
	uint8_t *buf = malloc(n);
	fill_random(buf, n, 42);
	/* a 1 MiB allocation spans 16 chunks of 64K here */
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(n, &v), 0);
	assert_int_equal(virgo_set(v, buf, n), 0);
	void *d;
	size_t got;
	assert_int_equal(virgo_get(v, &d, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(d, buf, n);
	free(d);
	assert_int_equal(virgo_free(v), 0);
	free(buf);
}

static void unspanned_1mib_raw_value(void **state)
{
	(void)state;
	/* one allocation carrying 1 MiB in a single length-prefixed set */
	const size_t n = 1 << 20;
	int fd = th_connect(th_port(&cl, 0, 30000));
	assert_true(fd >= 0);
	char line[256];
	assert_int_equal(th_send(fd, "malloc 1048576\r\n", 16), 0);
	assert_true(th_recv_until(fd, line, sizeof line, "\r\n", 3000) > 0);
	assert_memory_equal(line, "OK ", 3);
	char hex[32];
	sscanf(line + 3, "%31s", hex);
	uint8_t *buf = malloc(n);
	fill_random(buf, n, 7);
	char hdr[96];
	int hl = snprintf(hdr, sizeof hdr, "set %s %zu\r\n", hex, n);
	assert_int_equal(th_send(fd, hdr, (size_t)hl), 0);
	assert_int_equal(th_send(fd, buf, n), 0);
	assert_int_equal(th_send(fd, "\r\n", 2), 0);
	assert_true(th_recv_until(fd, line, sizeof line, "\r\n", 3000) > 0);
	assert_string_equal(line, "OK\r\n");
	virgo_vuid_t v;
	assert_int_equal(virgo_vuid_parse(hex, &v), 0);
	void *d;
	size_t got;
	assert_int_equal(virgo_get(v, &d, &got), 0);
	assert_int_equal(got, n);
	assert_memory_equal(d, buf, n);
	free(d);
	free(buf);
	assert_int_equal(virgo_free(v), 0);
	close(fd);
}

static void spanning_allocation(void **state)
{
	(void)state;
	uint64_t before[3];
	for (int i = 0; i < 3; i++)
		before[i] = node_bytes(i);
	const size_t n = 300000; /* 5 chunks of 64K */
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(n, &v), 0);
	int nodes_used = 0;
	uint64_t grown = 0;
	for (int i = 0; i < 3; i++) {
		uint64_t b = node_bytes(i);
		nodes_used += b > before[i];
		grown += b - before[i];
	}
	assert_true(grown >= n);
	assert_true(nodes_used >= 2);
	/* patch across a chunk boundary, read it back by range */
	const char msg[] = "across-the-boundary";
	assert_int_equal(virgo_set_at(v, 65536 - 5, msg, sizeof msg), 0);
	char back[sizeof msg];
	assert_int_equal(virgo_get_at(v, 65536 - 5, back, sizeof msg), 0);
	assert_memory_equal(back, msg, sizeof msg);
	/* whole value: zeros up to the patch, then the patch */
	void *d;
	size_t got;
	assert_int_equal(virgo_get(v, &d, &got), 0);
	assert_int_equal(got, 65536 - 5 + sizeof msg);
	assert_memory_equal((char *)d + 65536 - 5, msg, sizeof msg);
	assert_int_equal(((char *)d)[10], 0);
	free(d);
	/* a shorter whole-value set replaces everything */
	assert_int_equal(virgo_set(v, "short", 5), 0);
	assert_int_equal(virgo_get(v, &d, &got), 0);
	assert_int_equal(got, 5);
	assert_memory_equal(d, "short", 5);
	free(d);
	/* writing past the end is refused, never an overflow */
	assert_int_equal(virgo_set_at(v, n - 2, "abc", 3), -ERANGE);
	uint8_t *big = calloc(1, n + 1);
	assert_int_equal(virgo_set(v, big, n + 1), -ERANGE);
	free(big);
	assert_int_equal(virgo_free(v), 0);
	for (int i = 0; i < 3; i++)
		assert_true(node_bytes(i) == before[i]);
	assert_int_equal(virgo_free(v), -ENOENT);
}

/* Another client frees a span this one has cached: the answer is ENOENT,
 * never stale data. */
static void span_freed_elsewhere(void **state)
{
	(void)state;
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(200000, &v), 0);
	assert_int_equal(virgo_set(v, "cached", 6), 0); /* descriptor now cached */
	char hex[17], line[256], buf[8192];
	virgo_vuid_format(v, hex);
	int port = th_port(&cl, (int)virgo_vuid_node(v) - 1, 30000);
	int fd = th_connect(port);
	int n = snprintf(line, sizeof line, "get %s\r\n", hex);
	assert_int_equal(th_send(fd, line, (size_t)n), 0);
	/* VALUE <n>, the descriptor (ends in LF), then CRLF */
	assert_true(th_recv_until(fd, buf, sizeof buf, "\n\r\n", 3000) > 0);
	close(fd);
	/* free it through a second, independent libvirgo-free path: raw
	 * frees of each chunk and the descriptor */
	char *p = strstr(buf, "VSPAN1");
	assert_non_null(p);
	p = strchr(p, '\n') + 1;
	char chunk[17];
	while (sscanf(p, "%16[0-9a-f]", chunk) == 1) {
		virgo_vuid_t cv;
		assert_int_equal(virgo_vuid_parse(chunk, &cv), 0);
		int cfd = th_connect(th_port(&cl, (int)virgo_vuid_node(cv) - 1, 30000));
		n = snprintf(line, sizeof line, "free %s\r\n", chunk);
		th_send(cfd, line, (size_t)n);
		assert_true(th_recv_until(cfd, line, sizeof line, "\r\n", 3000) > 0);
		assert_string_equal(line, "OK\r\n");
		close(cfd);
		p = strchr(p, '\n') + 1;
	}
	fd = th_connect(port);
	n = snprintf(line, sizeof line, "free %s\r\n", hex);
	th_send(fd, line, (size_t)n);
	assert_true(th_recv_until(fd, line, sizeof line, "\r\n", 3000) > 0);
	close(fd);
	void *d;
	size_t len;
	assert_int_equal(virgo_get(v, &d, &len), -ENOENT);
	assert_int_equal(virgo_get(v, &d, &len), -ENOENT);
	assert_int_equal(virgo_set(v, "x", 1), -ENOENT);
}

static void free_then_get_and_double_free(void **state)
{
	(void)state;
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(100, &v), 0);
	assert_int_equal(virgo_set(v, "x", 1), 0);
	assert_int_equal(virgo_free(v), 0);
	void *d;
	size_t n;
	assert_int_equal(virgo_get(v, &d, &n), -ENOENT);
	assert_int_equal(virgo_set(v, "x", 1), -ENOENT);
	assert_int_equal(virgo_free(v), -ENOENT);
	assert_string_equal(virgo_strerror(-ENOENT), "no such allocation (unknown or already freed VUID)");
}

static void write_past_size(void **state)
{
	(void)state;
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(10, &v), 0);
	assert_int_equal(virgo_set(v, "0123456789A", 11), -ERANGE);
	assert_int_equal(virgo_set_at(v, 8, "abc", 3), -ERANGE);
	assert_int_equal(virgo_set_at(v, 7, "abc", 3), 0);
	char b[4];
	assert_int_equal(virgo_get_at(v, 9, b, 2), -ERANGE);
	assert_int_equal(virgo_free(v), 0);
}

static void memory_limit(void **state)
{
	(void)state;
	/* per node: a raw malloc above the 8M limit (but under max_alloc
	 * after earlier ones) gets ENOMEM, and the node keeps serving.
	 * (4M - 64K: each allocation also counts its overhead.) */
	int fd = th_connect(th_port(&cl, 1, 30000));
	char line[256];
	virgo_vuid_t held[3];
	int nheld = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(th_send(fd, "malloc 4128768\r\n", 16), 0);
		assert_true(th_recv_until(fd, line, sizeof line, "\r\n", 3000) > 0);
		if (strncmp(line, "OK ", 3) == 0) {
			line[strcspn(line, "\r")] = 0;
			assert_int_equal(virgo_vuid_parse(line + 3, &held[nheld++]), 0);
		} else {
			assert_memory_equal(line, "ERR ENOMEM ", 11);
		}
	}
	assert_int_equal(nheld, 2); /* 2 x 4M fit in 8M, the third does not */
	assert_int_equal(th_send(fd, "ping\r\n", 6), 0);
	assert_true(th_recv_until(fd, line, sizeof line, "\r\n", 3000) > 0);
	assert_string_equal(line, "PONG 2\r\n");
	close(fd);
	/* cluster-wide: more than all nodes together hold is ENOMEM */
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(30u << 20, &v), -ENOMEM);
	for (int i = 0; i < nheld; i++)
		assert_int_equal(virgo_free(held[i]), 0);
	/* everything that failed was rolled back: at once, or (a node too
	 * slow to answer a free under load is skipped and remembered) by a
	 * later memory call */
	int64_t deadline = th_now_ms() + 10000;
	uint64_t left = 1;
	while (left && th_now_ms() < deadline) {
		left = 0;
		for (int i = 0; i < 3; i++)
			left += node_bytes(i);
		if (left)
			assert_int_equal(virgo_free(held[0]), -ENOENT); /* retries them */
	}
	assert_true(left == 0);
}

static void bad_input_keeps_node_serving(void **state)
{
	(void)state;
	int fd = th_connect(th_port(&cl, 0, 30000));
	char buf[4096];
	/* malformed lines each get one error */
	const char *bad = "malloc\r\nmalloc abc\r\nget zz\r\nset 1 2 3 4 5 6 7\r\nfrob\r\n"
			  "virgo_cloud_malloc(\r\nfree 10000000000000\r\n";
	assert_int_equal(th_send(fd, bad, strlen(bad)), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "ERR ENOENT", 3000) > 0);
	int errs = 0;
	for (char *p = buf; (p = strstr(p, "ERR ")); p++)
		errs++;
	assert_int_equal(errs, 7);
	/* a 10 MiB line: one E2BIG, then the connection still works */
	size_t big = 10u << 20;
	char *line = malloc(big);
	memset(line, 'A', big);
	assert_int_equal(th_send(fd, line, big), 0);
	assert_int_equal(th_send(fd, "\r\nping\r\n", 8), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "PONG", 5000) > 0);
	assert_non_null(strstr(buf, "ERR E2BIG"));
	free(line);
	/* garbage bytes: errors, no crash, still serving */
	uint8_t junk[65536];
	unsigned s = 1;
	for (size_t i = 0; i < sizeof junk; i++) {
		s = s * 1103515245u + 12345u;
		junk[i] = (uint8_t)(s >> 16);
	}
	assert_int_equal(th_send(fd, junk, sizeof junk), 0);
	assert_int_equal(th_send(fd, "\r\nping\r\n", 8), 0);
	ssize_t r = th_recv_until(fd, buf, sizeof buf, "PONG 1", 5000);
	assert_true(r > 0);
	close(fd);
	/* and a fresh client is served */
	unsigned id;
	assert_int_equal(virgo_ping(0, &id, NULL), 0);
	assert_int_equal(id, 1);
}

static void notes_call_syntax(void **state)
{
	(void)state;
	char buf[4096];
	/* the original's client: NUL-padded 3000-byte request, one call */
	int fd = th_connect(th_port(&cl, 2, 30000));
	char req[3000] = {0};
	strcpy(req, "virgo_cloud_malloc(1000)");
	assert_int_equal(th_send(fd, req, sizeof req), 0);
	ssize_t r = th_recv_until(fd, buf, sizeof buf, NULL, 3000); /* until close */
	assert_true(r > 2);
	assert_memory_equal(buf + r - 2, "\r\n", 2);
	buf[r - 2] = 0;
	virgo_vuid_t v;
	assert_int_equal(virgo_vuid_parse(buf, &v), 0);
	assert_int_equal(virgo_vuid_node(v), 3);
	close(fd);
	char hex[17];
	virgo_vuid_format(v, hex);
	/* set with quotes around the id, data with commas and parens */
	fd = th_connect(th_port(&cl, 2, 30000));
	char cmd[256];
	int n = snprintf(cmd, sizeof cmd, "virgo_cloud_set(\"%s\",a,b (c))\r\nvirgo_cloud_get(%s)\r\n",
			 hex, hex);
	assert_int_equal(th_send(fd, cmd, (size_t)n), 0);
	r = th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	char want[128];
	snprintf(want, sizeof want, "%s\r\na,b (c)\r\n", hex);
	assert_string_equal(buf, want);
	close(fd);
	/* a client that sends one line and half-closes gets its reply */
	fd = th_connect(th_port(&cl, 2, 30000));
	n = snprintf(cmd, sizeof cmd, "virgo_cloud_free(%s)", hex);
	assert_int_equal(th_send(fd, cmd, (size_t)n), 0);
	shutdown(fd, SHUT_WR);
	r = th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	assert_string_equal(buf, "OK\r\n");
	close(fd);
}

static void pipelining_in_order(void **state)
{
	(void)state;
	int fd = th_connect(th_port(&cl, 0, 30000));
	char buf[65536];
	assert_int_equal(th_send(fd, "malloc 64\r\n", 11), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", 3000) > 0);
	char hex[32];
	sscanf(buf + 3, "%31s", hex);
	char req[65536];
	size_t o = 0;
	for (int i = 0; i < 200; i++)
		o += (size_t)snprintf(req + o, sizeof req - o, "set %s 4\r\n%04d\r\nget %s\r\n", hex, i, hex);
	assert_int_equal(th_send(fd, req, o), 0);
	char last[64];
	snprintf(last, sizeof last, "VALUE 4\r\n0199\r\n");
	ssize_t r = th_recv_until(fd, buf, sizeof buf, last, 5000);
	assert_true(r > 0);
	char *p = buf;
	for (int i = 0; i < 200; i++) {
		char exp[64];
		int el = snprintf(exp, sizeof exp, "OK\r\nVALUE 4\r\n%04d\r\n", i);
		assert_memory_equal(p, exp, (size_t)el);
		p += el;
	}
	snprintf(req, sizeof req, "free %s\r\nquit\r\n", hex);
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	r = th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	assert_string_equal(buf, "OK\r\n");
	close(fd);
}

#define CONC_CLIENTS 50
#define CONC_PAIRS 1000

static void *conc_worker(void *arg)
{
	intptr_t id = (intptr_t)arg;
	virgo_vuid_t v;
	if (virgo_malloc(64, &v) != 0)
		return (void *)1;
	intptr_t bad = 0;
	for (int i = 0; i < CONC_PAIRS && !bad; i++) {
		char val[64];
		int n = snprintf(val, sizeof val, "client-%ld-iteration-%d", (long)id, i);
		void *d = NULL;
		size_t len = 0;
		if (virgo_set(v, val, (size_t)n) != 0 || virgo_get(v, &d, &len) != 0 ||
		    len != (size_t)n || memcmp(d, val, len) != 0)
			bad = 1;
		free(d);
	}
	if (virgo_free(v) != 0)
		bad = 1;
	return (void *)bad;
}

static void concurrent_clients(void **state)
{
	(void)state;
	pthread_t th[CONC_CLIENTS];
	int64_t t0 = th_now_ms();
	for (intptr_t i = 0; i < CONC_CLIENTS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, conc_worker, (void *)i), 0);
	int bad = 0;
	for (int i = 0; i < CONC_CLIENTS; i++) {
		void *r;
		pthread_join(th[i], &r);
		bad += r != NULL;
	}
	int64_t ms = th_now_ms() - t0;
	print_message("%d clients x %d set/get pairs: %lld ms (%.0f ops/s)\n", CONC_CLIENTS,
		      CONC_PAIRS, (long long)ms, 2.0 * CONC_CLIENTS * CONC_PAIRS * 1000.0 / (double)(ms ? ms : 1));
	assert_int_equal(bad, 0);
}

#define MIDRUN_THREADS 6

struct midrun {
	virgo_vuid_t v[3]; /* one allocation per node */
	_Atomic int ops, stop;
	_Atomic int64_t max_ms;
	_Atomic int errors_dead, errors_live;
};

static void *midrun_worker(void *arg)
{
	struct midrun *m = arg;
	for (unsigned i = 0; !m->stop; i++) {
		int k = (int)(i % 3);
		int64_t t0 = th_now_ms();
		int rc = virgo_set(m->v[k], "payload", 7);
		int64_t dt = th_now_ms() - t0;
		int64_t cur = m->max_ms;
		while (dt > cur && !atomic_compare_exchange_weak(&m->max_ms, &cur, dt))
			;
		if (rc != 0) {
			if (virgo_vuid_node(m->v[k]) == 3)
				m->errors_dead++;
			else
				m->errors_live++;
		}
		m->ops++;
	}
	return NULL;
}

/* Node 3 is SIGKILLed while clients hammer all three nodes: calls to it
 * fail fast, calls to the others keep succeeding, nothing hangs; then it
 * is restarted and clients use it again after the back-off. */
static void node_killed_mid_run(void **state)
{
	(void)state;
	static struct midrun m;
	memset(&m, 0, sizeof m);
	/* place one allocation on each node (random policy: retry until) */
	virgo_vuid_t extra[64];
	int nextra = 0;
	for (int have = 0; have != 7 && nextra < 64;) {
		virgo_vuid_t v;
		assert_int_equal(virgo_malloc(16, &v), 0);
		int k = (int)virgo_vuid_node(v) - 1;
		if (!(have & (1 << k))) {
			m.v[k] = v;
			have |= 1 << k;
		} else {
			extra[nextra++] = v;
		}
	}
	pthread_t th[MIDRUN_THREADS];
	for (int i = 0; i < MIDRUN_THREADS; i++)
		pthread_create(&th[i], NULL, midrun_worker, &m);
	int64_t deadline = th_now_ms() + 5000;
	while (m.ops < 2000 && th_now_ms() < deadline)
		sched_yield();
	th_node_signal(&cl, 2, SIGKILL);
	int at_kill = m.ops;
	deadline = th_now_ms() + 5000;
	while (m.ops < at_kill + 3000 && th_now_ms() < deadline)
		sched_yield();
	m.stop = 1;
	for (int i = 0; i < MIDRUN_THREADS; i++)
		pthread_join(th[i], NULL);
	print_message("mid-run kill: %d ops, %d errors on the dead node, %d elsewhere, "
		      "slowest call %lld ms\n",
		      (int)m.ops, (int)m.errors_dead, (int)m.errors_live, (long long)m.max_ms);
	assert_true(m.ops >= at_kill + 3000);
	assert_true(m.errors_dead > 0);
	assert_int_equal(m.errors_live, 0);
	assert_true(m.max_ms < 1500 + 500); /* timeout_ms + scheduling margin */
	/* restart node 3: after its back-off it is used again */
	assert_int_equal(th_node_start(&cl, 2), 0);
	deadline = th_now_ms() + 10000;
	int used = 0;
	while (!used && th_now_ms() < deadline) {
		virgo_vuid_t v;
		assert_int_equal(virgo_malloc(16, &v), 0);
		used = virgo_vuid_node(v) == 3;
		assert_int_equal(virgo_free(v), 0);
	}
	assert_true(used);
	assert_int_equal(virgo_free(m.v[0]), 0);
	assert_int_equal(virgo_free(m.v[1]), 0);
	for (int i = 0; i < nextra; i++)
		if (virgo_vuid_node(extra[i]) != 3)
			assert_int_equal(virgo_free(extra[i]), 0);
}

/* Runs last: it stops node 3. */
static void dead_node_is_an_error_not_a_hang(void **state)
{
	(void)state;
	/* find an allocation that lives on node 3 */
	virgo_vuid_t v = 0, tries[256];
	int nt = 0;
	int64_t until = th_now_ms() + 10000; /* node 3 may still be in back-off */
	while (nt < 256 && th_now_ms() < until) {
		assert_int_equal(virgo_malloc(16, &tries[nt]), 0);
		if (virgo_vuid_node(tries[nt++]) == 3) {
			v = tries[nt - 1];
			break;
		}
	}
	assert_true(v != 0);
	/* a stopped (hung) node: the call fails within timeout_ms */
	th_node_signal(&cl, 2, SIGSTOP);
	int64_t t0 = th_now_ms();
	assert_int_equal(virgo_set(v, "x", 1), -ETIMEDOUT);
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 1400 && took < 3000);
	/* a killed node: connection refused, quickly */
	th_node_signal(&cl, 2, SIGCONT);
	th_node_signal(&cl, 2, SIGKILL);
	t0 = th_now_ms();
	void *d;
	size_t n;
	int rc = virgo_get(v, &d, &n);
	assert_true(rc == -ECONNREFUSED || rc == -ECONNRESET);
	assert_true(th_now_ms() - t0 < 1500);
	/* placement now avoids the dead node and still succeeds */
	for (int i = 0; i < 20; i++) {
		virgo_vuid_t w;
		assert_int_equal(virgo_malloc(16, &w), 0);
		assert_true(virgo_vuid_node(w) != 3);
		assert_int_equal(virgo_free(w), 0);
	}
	for (int i = 0; i < nt; i++)
		if (virgo_vuid_node(tries[i]) != 3)
			assert_int_equal(virgo_free(tries[i]), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip_one_byte),
		cmocka_unit_test(round_trip_1mib_with_nuls),
		cmocka_unit_test(unspanned_1mib_raw_value),
		cmocka_unit_test(spanning_allocation),
		cmocka_unit_test(span_freed_elsewhere),
		cmocka_unit_test(free_then_get_and_double_free),
		cmocka_unit_test(write_past_size),
		cmocka_unit_test(memory_limit),
		cmocka_unit_test(bad_input_keeps_node_serving),
		cmocka_unit_test(notes_call_syntax),
		cmocka_unit_test(pipelining_in_order),
		cmocka_unit_test(concurrent_clients),
		cmocka_unit_test(node_killed_mid_run),
		cmocka_unit_test(dead_node_is_an_error_not_a_hang),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
