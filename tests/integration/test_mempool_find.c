/*
 * test_mempool_find.c - memory you can find again (issue 15), on real
 * virgod processes: `ls` pages through 100,000 allocations in bounded
 * node memory, every one listed exactly once; leases end (and renew
 * keeps one alive); `free owner=` frees a tag on every node; a malloc
 * re-sent with the same request id allocates once; `virgo ls`, `malloc
 * --ttl --owner` and `free --owner` from the CLI; a malloc that timed out
 * on a stopped node is reclaimed by libvirgo once the node runs again.
 */
#include <errno.h>
#include <signal.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

#if defined(__SANITIZE_ADDRESS__)
#define TF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TF_ASAN 1
#endif
#endif
#ifndef TF_ASAN
#define TF_ASAN 0
#endif

static struct th_cluster cl;

static int raw_open(int node)
{
	int fd = th_connect(th_port(&cl, node, 30000));
	assert_true(fd >= 0);
	struct timeval tv = {30, 0}; /* a broken node fails the test, never hangs it */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	return fd;
}

/* One request, one reply line (without CRLF) into line. */
static void raw_call(int fd, const char *req, char *line, size_t cap)
{
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	ssize_t n = th_recv_until(fd, line, cap, "\r\n", 30000);
	assert_true(n > 0);
	char *e = strstr(line, "\r\n");
	assert_non_null(e);
	assert_true(e + 2 == line + n); /* exactly one line */
	*e = '\0';
}

static uint64_t stat_of(int node, const char *name)
{
	int fd = raw_open(node);
	char buf[4096], want[64];
	assert_int_equal(th_send(fd, "stats\r\n", 7), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 30000) > 0);
	close(fd);
	snprintf(want, sizeof want, "STAT %s ", name);
	char *p = strstr(buf, want);
	assert_non_null(p);
	return strtoull(p + strlen(want), NULL, 10);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* 100,000 allocations on one node, listed page by page: each exactly
 * once, every page bounded, and the node's memory does not grow with
 * the listing (it never holds more than a page). */
static void ls_pages_100k(void **state)
{
	(void)state;
	enum { N = 100000, BATCH = 1000 };
	int fd = raw_open(1);
	uint64_t before = stat_of(1, "allocations");
	static char req[BATCH * 16];
	size_t rl = 0;
	for (int i = 0; i < BATCH; i++)
		rl += (size_t)snprintf(req + rl, sizeof req - rl, "malloc 1\r\n");
	static char rbuf[1 << 16];
	for (int b = 0; b < N / BATCH; b++) {
		assert_int_equal(th_send(fd, req, rl), 0);
		int lines = 0;
		while (lines < BATCH) {
			ssize_t n = recv(fd, rbuf, sizeof rbuf, 0);
			assert_true(n > 0);
			for (ssize_t k = 0; k < n; k++)
				lines += rbuf[k] == '\n';
		}
		assert_int_equal(lines, BATCH);
	}
	close(fd);
	assert_int_equal(stat_of(1, "allocations"), before + N);

	pid_t pid = cl.nodes[1].pid;
	long rss0 = th_proc_kb(pid, "VmRSS");
	uint64_t *seen = malloc((N + 1000) * sizeof *seen);
	assert_non_null(seen);
	size_t total = 0, pages = 0, biggest = 0;
	uint64_t cursor = 0;
	do {
		struct virgo_alloc_info *v;
		size_t n;
		assert_int_equal(virgo_ls(1, &cursor, 1000, &v, &n), 0);
		pages++;
		if (n > biggest)
			biggest = n;
		assert_true(total + n <= N + 1000);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(v[i].size, 1);
			assert_int_equal(v[i].ttl_s, -1);
			seen[total++] = v[i].vuid;
		}
		free(v);
	} while (cursor != 0);
	long rss1 = th_proc_kb(pid, "VmRSS");
	printf("# ls: %zu entries in %zu pages (largest %zu); node RSS %ld -> %ld kB\n", total,
	       pages, biggest, rss0, rss1);
	assert_int_equal(total, before + N);
	qsort(seen, total, sizeof *seen, cmp_u64);
	for (size_t i = 1; i < total; i++)
		assert_true(seen[i] != seen[i - 1]); /* none twice */
	free(seen);
	/* a page is about 1000 entries: whole buckets, chains of a few */
	assert_true(biggest <= 1100);
	assert_true(pages >= N / 1100);
	if (!TF_ASAN)
		assert_true(rss1 - rss0 < 4096); /* the listing buffers one page */
}

/* A page in progress survives frees and mallocs: entries present
 * throughout are still listed exactly once. */
static void ls_stable_under_churn(void **state)
{
	(void)state;
	enum { N = 3000 };
	virgo_vuid_t keep[N];
	struct virgo_malloc_opts o = {.owner = "churn-keep"};
	for (int i = 0; i < N; i++)
		assert_int_equal(virgo_malloc_ex(8, &o, &keep[i]), 0);
	int on0 = 0;
	for (int i = 0; i < N; i++)
		on0 += virgo_vuid_node(keep[i]) == cl.nodes[0].id;
	uint64_t cursor = 0;
	size_t found = 0;
	int round = 0;
	do {
		struct virgo_alloc_info *v;
		size_t n;
		assert_int_equal(virgo_ls(0, &cursor, 50, &v, &n), 0);
		for (size_t i = 0; i < n; i++)
			found += strcmp(v[i].owner, "churn-keep") == 0;
		free(v);
		/* churn between pages: new allocations make the node's
		 * buckets double under the cursor */
		for (int k = 0; k < 200 && round < 40; k++) {
			virgo_vuid_t t;
			struct virgo_malloc_opts t_o = {.owner = "churn-tmp"};
			assert_int_equal(virgo_malloc_ex(8, &t_o, &t), 0);
		}
		round++;
	} while (cursor != 0);
	assert_int_equal(found, (size_t)on0);
	uint64_t freed = 0;
	assert_int_equal(virgo_free_owner("churn-tmp", &freed), 0);
	assert_int_equal(freed, 200 * 40);
	assert_int_equal(virgo_free_owner("churn-keep", &freed), 0);
	assert_int_equal(freed, N);
}

/* A lease ends: the node frees it (polled with a deadline); a renewed
 * one lives on, and ls shows its lease and tag. */
static void ttl_expires_and_renew_keeps(void **state)
{
	(void)state;
	struct virgo_malloc_opts o = {.ttl_ms = 1000, .owner = "ttl-test"};
	virgo_vuid_t a, b;
	assert_int_equal(virgo_malloc_ex(100, &o, &a), 0);
	assert_int_equal(virgo_malloc_ex(100, &o, &b), 0);
	assert_int_equal(virgo_renew(b, 600000), 0);
	assert_int_equal(virgo_set(a, "x", 1), 0);
	int64_t deadline = th_now_ms() + 15000;
	int rc;
	void *d;
	size_t l;
	while ((rc = virgo_get(a, &d, &l)) == 0) {
		free(d);
		assert_true(th_now_ms() < deadline);
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(rc, -ENOENT);
	assert_int_equal(virgo_get(b, &d, &l), 0);
	free(d);
	/* b is listed with its lease and tag */
	int idx = -1;
	for (int i = 0; i < virgo_node_count(); i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		if (ni.id == virgo_vuid_node(b))
			idx = i;
	}
	assert_true(idx >= 0);
	uint64_t cursor = 0;
	bool listed = false;
	do {
		struct virgo_alloc_info *v;
		size_t n;
		assert_int_equal(virgo_ls(idx, &cursor, 1000, &v, &n), 0);
		for (size_t i = 0; i < n; i++) {
			if (v[i].vuid != b)
				continue;
			listed = true;
			assert_string_equal(v[i].owner, "ttl-test");
			assert_true(v[i].ttl_s > 500 && v[i].ttl_s <= 600);
			assert_int_equal(v[i].size, 100);
		}
		free(v);
	} while (cursor != 0);
	assert_true(listed);
	/* renewing to 0 removes the lease; a freed one cannot be renewed */
	assert_int_equal(virgo_renew(b, 0), 0);
	assert_int_equal(virgo_free(b), 0);
	assert_int_equal(virgo_renew(b, 1000), -ENOENT);
	assert_true(stat_of(0, "expired") + stat_of(1, "expired") >= 1);
}

/* free owner= frees that tag on every node, nothing else. */
static void free_by_owner_everywhere(void **state)
{
	(void)state;
	struct virgo_malloc_opts job = {.owner = "job-7"}, other = {.owner = "job-8"};
	virgo_vuid_t v[8], keep;
	unsigned nodes_hit = 0;
	for (int i = 0; i < 8; i++) {
		assert_int_equal(virgo_malloc_ex(64, &job, &v[i]), 0);
		nodes_hit |= 1u << (virgo_vuid_node(v[i]) & 7);
	}
	assert_int_equal(virgo_malloc_ex(64, &other, &keep), 0);
	uint64_t freed = 0;
	assert_int_equal(virgo_free_owner("job-7", &freed), 0);
	assert_int_equal(freed, 8);
	void *d;
	size_t l;
	for (int i = 0; i < 8; i++)
		assert_int_equal(virgo_get(v[i], &d, &l), -ENOENT);
	assert_int_equal(virgo_get(keep, &d, &l), 0);
	free(d);
	assert_int_equal(virgo_free(keep), 0);
	/* a bad tag is refused before anything is sent */
	struct virgo_malloc_opts bad = {.owner = "no spaces"};
	assert_int_equal(virgo_malloc_ex(64, &bad, &keep), -EINVAL);
	/* a tag cannot smuggle a second command into the request line */
	assert_int_equal(virgo_free_owner("x\r\nfree owner=job-8", &freed), -EINVAL);
}

/* The same request id twice gets the same VUID and one allocation; old
 * clients' plain malloc is unaffected. */
static void rid_resend_allocates_once(void **state)
{
	(void)state;
	int fd = raw_open(0);
	char l1[128], l2[128], l3[128];
	uint64_t before = stat_of(0, "allocations");
	raw_call(fd, "malloc 10 rid=1234abcd owner=rid-test\r\n", l1, sizeof l1);
	assert_memory_equal(l1, "OK ", 3);
	close(fd);
	fd = raw_open(0); /* as a re-send on a fresh connection */
	raw_call(fd, "malloc 10 owner=rid-test rid=1234abcd\r\n", l2, sizeof l2);
	assert_string_equal(l1, l2);
	assert_int_equal(stat_of(0, "allocations"), before + 1);
	assert_true(stat_of(0, "malloc_replayed") >= 1);
	raw_call(fd, "malloc 10 rid=1234abce\r\n", l3, sizeof l3);
	assert_memory_equal(l3, "OK ", 3);
	assert_string_not_equal(l1, l3);
	raw_call(fd, "malloc 10\r\n", l3, sizeof l3); /* old syntax */
	assert_memory_equal(l3, "OK ", 3);
	raw_call(fd, "malloc 10 rid=xyz\r\n", l3, sizeof l3);
	assert_memory_equal(l3, "ERR EINVAL ", 11);
	raw_call(fd, "free owner=rid-test\r\n", l3, sizeof l3);
	assert_string_equal(l3, "OK 1");
	close(fd);
}

static const char *cli_conf_arg(void) { return cl.client_conf; }

/* The CLI: malloc --ttl --owner, ls, free --owner. */
static void cli_ls_and_owner(void **state)
{
	(void)state;
	char virgo[512], out[65536];
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	const char *m[] = {virgo, "-c", cli_conf_arg(), "malloc", "5000", "--ttl", "1h",
			   "--owner", "cli-tag", NULL};
	assert_int_equal(th_run(m, out, sizeof out, 30000), 0);
	char hex[32];
	assert_int_equal(sscanf(out, "%31s", hex), 1);
	const char *ls[] = {virgo, "-c", cli_conf_arg(), "ls", NULL};
	assert_int_equal(th_run(ls, out, sizeof out, 60000), 0);
	char *line = strstr(out, hex);
	assert_non_null(line);
	char *eol = strchr(line, '\n');
	assert_non_null(eol);
	*eol = '\0';
	assert_non_null(strstr(line, " 5000 "));
	assert_non_null(strstr(line, "cli-tag"));
	assert_non_null(strstr(line, " 60m ")); /* 1h left, shown as 60m */
	const char *bad[] = {virgo, "-c", cli_conf_arg(), "malloc", "5000", "--ttl", "soon", NULL};
	assert_int_equal(th_run(bad, out, sizeof out, 30000), 2);
	const char *f[] = {virgo, "-c", cli_conf_arg(), "free", "--owner", "cli-tag", NULL};
	assert_int_equal(th_run(f, out, sizeof out, 30000), 0);
	assert_string_equal(out, "1\n");
}

/* ---- a malloc the client gave up on --------------------------------- */

static struct th_cluster hung;

/* The node is stopped when the malloc arrives: the client times out, the
 * node allocates once it runs again.  libvirgo re-sends that exact
 * request (same rid) during a later call: the node answers the VUID it
 * allocated, and libvirgo frees it.  Nothing is left behind. */
static void timed_out_malloc_is_reclaimed(void **state)
{
	(void)state;
	assert_int_equal(th_cluster_client(&hung), 0); /* libvirgo: the one-node cluster */
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(10, &v), 0); /* a pooled connection */
	assert_int_equal(virgo_free(v), 0);
	th_node_signal(&hung, 0, SIGSTOP);
	int64_t t0 = th_now_ms();
	assert_int_equal(virgo_malloc(10, &v), -ETIMEDOUT);
	assert_true(th_now_ms() - t0 >= 900);
	th_node_signal(&hung, 0, SIGCONT);
	int port = th_port(&hung, 0, 30000);
	/* the node runs the malloc it had queued */
	int64_t deadline = th_now_ms() + 15000;
	for (;;) {
		int fd = th_connect(port);
		assert_true(fd >= 0);
		char buf[4096];
		assert_int_equal(th_send(fd, "stats\r\n", 7), 0);
		assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 30000) > 0);
		close(fd);
		char *p = strstr(buf, "STAT ops_malloc ");
		assert_non_null(p);
		if (strtoull(p + 16, NULL, 10) >= 2)
			break;
		assert_true(th_now_ms() < deadline);
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, NULL);
	}
	/* later calls reconcile it; poll until the node holds nothing */
	uint64_t left = 1;
	while (th_now_ms() < deadline) {
		assert_int_equal(virgo_malloc(10, &v), 0);
		assert_int_equal(virgo_free(v), 0);
		int fd = th_connect(port);
		char buf[4096];
		assert_int_equal(th_send(fd, "stats\r\n", 7), 0);
		assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 30000) > 0);
		close(fd);
		char *p = strstr(buf, "STAT allocations ");
		assert_non_null(p);
		left = strtoull(p + 17, NULL, 10);
		if (left == 0)
			break;
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(left, 0);
}

static int setup(void **state)
{
	(void)state;
	if (th_cluster_start(&cl, 2, "mem_limit = 64M\nthreads = 2\n", "") != 0)
		return -1;
	/* one node whose client gives up after 1 s (timed_out_malloc_...) */
	if (th_cluster_start(&hung, 1, "threads = 2\n",
			     "timeout_ms = 1000\nconnect_timeout_ms = 500\nbackoff_ms = 1\n"
			     "backoff_max_ms = 1\n") != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	int a = th_cluster_teardown(&cl);
	int b = th_cluster_teardown(&hung);
	return a | b;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rid_resend_allocates_once),
		cmocka_unit_test(free_by_owner_everywhere),
		cmocka_unit_test(ttl_expires_and_renew_keeps),
		cmocka_unit_test(ls_stable_under_churn),
		cmocka_unit_test(cli_ls_and_owner),
		cmocka_unit_test(ls_pages_100k),
		cmocka_unit_test(timed_out_malloc_is_reclaimed), /* last: switches the client */
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
