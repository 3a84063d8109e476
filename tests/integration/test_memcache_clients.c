/*
 * test_memcache_clients.c - a real memcached client (libmemcached, the
 * library behind memcslap and most C/PHP/Ruby bindings) against a real
 * three-node virgod cluster: client-side ketama sharding puts every key on
 * the node virgo_key_owner names, and the client's own calls (mget, cas,
 * incr/decr, append/prepend, add/replace, touch, delete, noreply batches,
 * stats, key dump, version, flush, binary values) get the answers it
 * expects.
 * Needs libmemcached-dev (installed by make test); without it the tests
 * report themselves skipped.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdbool.h>
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

#if __has_include(<libmemcached/memcached.h>)
#include <libmemcached/memcached.h>

#define NODES 3
#define NKEYS 300

static struct th_cluster cl;
static memcached_st *mc;          /* the sharding client over all nodes */
static memcached_st *one[NODES];  /* a client of each single node */

static memcached_st *client(int first, int count)
{
	memcached_st *m = memcached_create(NULL);
	assert_non_null(m);
	for (int i = first; i < first + count; i++)
		assert_int_equal(memcached_server_add(m, "127.0.0.1", (in_port_t)th_port(&cl, i, 11211)),
				 MEMCACHED_SUCCESS);
	assert_int_equal(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
			 MEMCACHED_SUCCESS);
	assert_int_equal(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SUPPORT_CAS, 1),
			 MEMCACHED_SUCCESS);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 5000);
	return m;
}

static int setup(void **state)
{
	(void)state;
	if (th_cluster_start(&cl, NODES, "mem_limit = 64M\n", "") != 0)
		return -1;
	if (th_cluster_client(&cl) != 0)
		return -1;
	mc = client(0, NODES);
	for (int i = 0; i < NODES; i++)
		one[i] = client(i, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	memcached_free(mc);
	for (int i = 0; i < NODES; i++)
		memcached_free(one[i]);
	return th_cluster_teardown(&cl);
}

static void key(int i, char *buf, size_t cap) { snprintf(buf, cap, "user:%d:profile", i); }

static void want_value(memcached_st *m, const char *k, const char *want, uint32_t want_flags)
{
	size_t len = 0;
	uint32_t flags = 0;
	memcached_return_t rc;
	char *v = memcached_get(m, k, strlen(k), &len, &flags, &rc);
	if (rc != MEMCACHED_SUCCESS || !v)
		fail_msg("get %s: %s", k, memcached_strerror(m, rc));
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
	assert_int_equal(flags, want_flags);
	free(v);
}

static void want_missing(memcached_st *m, const char *k)
{
	size_t len;
	uint32_t flags;
	memcached_return_t rc;
	char *v = memcached_get(m, k, strlen(k), &len, &flags, &rc);
	assert_null(v);
	assert_int_equal(rc, MEMCACHED_NOTFOUND);
}

/* Keys set through the sharding client live exactly on the node
 * virgo_key_owner names, and on no other. */
static void sharding_matches_key_owner(void **state)
{
	(void)state;
	int per_node[NODES] = {0};
	for (int i = 0; i < NKEYS; i++) {
		char k[64], v[64];
		key(i, k, sizeof k);
		snprintf(v, sizeof v, "value-%d", i);
		memcached_return_t rc = memcached_set(mc, k, strlen(k), v, strlen(v), 0, (uint32_t)i);
		if (rc != MEMCACHED_SUCCESS)
			fail_msg("set %s: %s", k, memcached_strerror(mc, rc));
	}
	for (int i = 0; i < NKEYS; i++) {
		char k[64], v[64];
		key(i, k, sizeof k);
		snprintf(v, sizeof v, "value-%d", i);
		int owner = virgo_key_owner(k, strlen(k));
		assert_in_range(owner, 0, NODES - 1);
		assert_int_equal(memcached_generate_hash(mc, k, strlen(k)), (uint32_t)owner);
		per_node[owner]++;
		for (int n = 0; n < NODES; n++)
			if (n == owner)
				want_value(one[n], k, v, (uint32_t)i);
			else
				want_missing(one[n], k);
	}
	for (int n = 0; n < NODES; n++)
		assert_true(per_node[n] > NKEYS / 10); /* every node takes a share */
	/* the nodes' own counts add up to the keys: none stored twice */
	memcached_return_t rc;
	memcached_stat_st *st = memcached_stat(mc, NULL, &rc);
	assert_int_equal(rc, MEMCACHED_SUCCESS);
	uint64_t items = 0;
	for (int n = 0; n < NODES; n++) {
		assert_int_equal(st[n].curr_items, (uint64_t)per_node[n]);
		items += st[n].curr_items;
	}
	assert_int_equal(items, NKEYS);
	memcached_stat_free(mc, st);
}

static memcached_return_t dump_cb(const memcached_st *m, const char *k, size_t len, void *ctx)
{
	(void)m;
	int *seen = ctx, i = -1;
	char tail[16] = "";
	if (len < 64 && sscanf(k, "user:%d:%15s", &i, tail) == 2 && strcmp(tail, "profile") == 0 &&
	    i >= 0 && i < NKEYS)
		seen[i]++;
	else
		seen[NKEYS]++; /* a key nobody set */
	return MEMCACHED_SUCCESS;
}

/* libmemcached's key dump (memcdump; stats cachedump on every node)
 * lists each key set above exactly once across the cluster. */
static void dump_lists_every_key(void **state)
{
	(void)state;
	int seen[NKEYS + 1] = {0};
	memcached_dump_fn cb[] = {dump_cb};
	assert_int_equal(memcached_dump(mc, cb, seen, 1), MEMCACHED_SUCCESS);
	for (int i = 0; i < NKEYS; i++)
		if (seen[i] != 1)
			fail_msg("key %d dumped %d times", i, seen[i]);
	assert_int_equal(seen[NKEYS], 0);
}

/* One mget over keys of every node, as clients batch them. */
static void multi_get_across_nodes(void **state)
{
	(void)state;
	enum { N = 60 };
	char keys[N][64];
	const char *kp[N];
	size_t kl[N];
	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof keys[i], "mget-%d", i);
		kp[i] = keys[i];
		kl[i] = strlen(keys[i]);
		if (i % 3 != 2) /* every third key is missing */
			assert_int_equal(memcached_set(mc, kp[i], kl[i], kp[i], kl[i], 0, 7),
					 MEMCACHED_SUCCESS);
	}
	assert_int_equal(memcached_mget(mc, kp, kl, N), MEMCACHED_SUCCESS);
	bool seen[N] = {false};
	int found = 0;
	memcached_return_t rc;
	memcached_result_st *r;
	while ((r = memcached_fetch_result(mc, NULL, &rc)) != NULL) {
		assert_int_equal(rc, MEMCACHED_SUCCESS);
		int i = atoi(memcached_result_key_value(r) + 5);
		assert_in_range(i, 0, N - 1);
		assert_false(seen[i]);
		assert_true(i % 3 != 2);
		seen[i] = true;
		assert_int_equal(memcached_result_length(r), kl[i]);
		assert_memory_equal(memcached_result_value(r), kp[i], kl[i]);
		assert_int_equal(memcached_result_flags(r), 7);
		memcached_result_free(r);
		found++;
	}
	assert_int_equal(found, N - N / 3);
}

static uint64_t cas_of(const char *k)
{
	assert_int_equal(memcached_mget(mc, &k, (size_t[]){strlen(k)}, 1), MEMCACHED_SUCCESS);
	memcached_return_t rc;
	memcached_result_st *r = memcached_fetch_result(mc, NULL, &rc);
	assert_non_null(r);
	uint64_t cas = memcached_result_cas(r);
	memcached_result_free(r);
	while ((r = memcached_fetch_result(mc, NULL, &rc)) != NULL) /* END */
		memcached_result_free(r);
	assert_true(cas != 0);
	return cas;
}

static void cas_and_conditional_stores(void **state)
{
	(void)state;
	const char *k = "cas-key";
	assert_int_equal(memcached_set(mc, k, strlen(k), "a", 1, 0, 0), MEMCACHED_SUCCESS);
	uint64_t c1 = cas_of(k);
	assert_int_equal(memcached_cas(mc, k, strlen(k), "b", 1, 0, 0, c1), MEMCACHED_SUCCESS);
	/* the same cas again is stale now */
	assert_int_equal(memcached_cas(mc, k, strlen(k), "c", 1, 0, 0, c1), MEMCACHED_DATA_EXISTS);
	want_value(mc, k, "b", 0);
	assert_true(cas_of(k) != c1);
	assert_int_equal(memcached_cas(mc, "cas-none", 8, "x", 1, 0, 0, c1), MEMCACHED_NOTFOUND);

	assert_int_equal(memcached_add(mc, k, strlen(k), "d", 1, 0, 0), MEMCACHED_NOTSTORED);
	assert_int_equal(memcached_replace(mc, "rep-none", 8, "d", 1, 0, 0), MEMCACHED_NOTSTORED);
	assert_int_equal(memcached_add(mc, "add-new", 7, "e", 1, 0, 3), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_replace(mc, "add-new", 7, "f", 1, 0, 4), MEMCACHED_SUCCESS);
	want_value(mc, "add-new", "f", 4);

	assert_int_equal(memcached_append(mc, k, strlen(k), "zz", 2, 0, 0), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_prepend(mc, k, strlen(k), "aa", 2, 0, 0), MEMCACHED_SUCCESS);
	want_value(mc, k, "aabzz", 0);
	assert_int_equal(memcached_append(mc, "app-none", 8, "x", 1, 0, 0), MEMCACHED_NOTSTORED);
}

static void counters(void **state)
{
	(void)state;
	uint64_t v = 0;
	assert_int_equal(memcached_set(mc, "ctr", 3, "41", 2, 0, 0), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_increment(mc, "ctr", 3, 1, &v), MEMCACHED_SUCCESS);
	assert_int_equal(v, 42);
	assert_int_equal(memcached_decrement(mc, "ctr", 3, 50, &v), MEMCACHED_SUCCESS);
	assert_int_equal(v, 0); /* decr floors at 0 */
	assert_int_equal(memcached_set(mc, "ctr", 3, "18446744073709551615", 20, 0, 0),
			 MEMCACHED_SUCCESS);
	assert_int_equal(memcached_increment(mc, "ctr", 3, 2, &v), MEMCACHED_SUCCESS);
	assert_int_equal(v, 1); /* incr wraps at 2^64 */
	assert_int_equal(memcached_increment(mc, "ctr-none", 8, 1, &v), MEMCACHED_NOTFOUND);
	assert_int_equal(memcached_set(mc, "ctr", 3, "abc", 3, 0, 0), MEMCACHED_SUCCESS);
	assert_int_not_equal(memcached_increment(mc, "ctr", 3, 1, &v), MEMCACHED_SUCCESS);
}

static void touch_and_delete(void **state)
{
	(void)state;
	assert_int_equal(memcached_set(mc, "tk", 2, "v", 1, 0, 0), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_touch(mc, "tk", 2, 1000), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_touch(mc, "tk-none", 7, 1000), MEMCACHED_NOTFOUND);
	/* an exptime in the past (absolute) expires the item at once */
	assert_int_equal(memcached_touch(mc, "tk", 2, 60 * 60 * 24 * 30 + 1), MEMCACHED_SUCCESS);
	want_missing(mc, "tk");
	assert_int_equal(memcached_set(mc, "dk", 2, "v", 1, 0, 0), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_delete(mc, "dk", 2, 0), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_delete(mc, "dk", 2, 0), MEMCACHED_NOTFOUND);
	want_missing(mc, "dk");
}

/* Values with CR, LF, NUL and "END" inside, up to half a megabyte. */
static void binary_values(void **state)
{
	(void)state;
	static const size_t sizes[] = {0, 1, 5, 4095, 4096, 65536, 512 * 1024};
	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		size_t n = sizes[s];
		char *v = malloc(n + 1);
		assert_non_null(v);
		for (size_t i = 0; i < n; i++)
			v[i] = "\r\nEND\r\n\0VALUE x"[(i * 7 + s) % 16];
		char k[32];
		snprintf(k, sizeof k, "bin-%zu", n);
		assert_int_equal(memcached_set(mc, k, strlen(k), v, n, 0, 9), MEMCACHED_SUCCESS);
		size_t len = 0;
		uint32_t flags;
		memcached_return_t rc;
		char *got = memcached_get(mc, k, strlen(k), &len, &flags, &rc);
		assert_int_equal(rc, MEMCACHED_SUCCESS);
		assert_int_equal(len, n);
		if (n)
			assert_memory_equal(got, v, n);
		free(got);
		free(v);
	}
}

/* noreply batches: the client sends sets without waiting; every one of
 * them is stored, in order. */
static void noreply_batch(void **state)
{
	(void)state;
	memcached_st *m = client(0, NODES);
	assert_int_equal(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_NOREPLY, 1), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1),
			 MEMCACHED_SUCCESS);
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 1000; i++) {
			char k[32], v[32];
			snprintf(k, sizeof k, "nr-%d", i);
			snprintf(v, sizeof v, "%d-%d", round, i);
			memcached_return_t rc = memcached_set(m, k, strlen(k), v, strlen(v), 0, 0);
			assert_true(rc == MEMCACHED_SUCCESS || rc == MEMCACHED_BUFFERED);
		}
	assert_int_equal(memcached_flush_buffers(m), MEMCACHED_SUCCESS);
	memcached_free(m);
	for (int i = 0; i < 1000; i += 37) {
		char k[32], v[32];
		snprintf(k, sizeof k, "nr-%d", i);
		snprintf(v, sizeof v, "2-%d", i);
		want_value(mc, k, v, 0);
	}
}

/* Stores n items "<prefix>-<i>-ssss..." (200-byte keys, 1-byte values)
 * on node 0, as noreply batches. */
static void fill_node0(const char *prefix, int n)
{
	memcached_st *m = client(0, 1);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_NOREPLY, 1);
	memcached_behavior_set(m, MEMCACHED_BEHAVIOR_BUFFER_REQUESTS, 1);
	for (int i = 0; i < n; i++) {
		char k[256];
		int l = snprintf(k, sizeof k, "%s-%05d-", prefix, i);
		memset(k + l, 's', 200 - (size_t)l);
		memcached_set(m, k, 200, "v", 1, 0, 0);
	}
	assert_int_equal(memcached_flush_buffers(m), MEMCACHED_SUCCESS);
	memcached_free(m);
}

/* Reads exactly n bytes (deadline 30 s); true when they came. */
static bool read_exactly(int fd, char *buf, size_t n)
{
	int64_t end = th_now_ms() + 30000;
	size_t got = 0;
	while (got < n && th_now_ms() < end) {
		ssize_t r = th_recv_until(fd, buf + got, n - got + 1, NULL, 10000);
		if (r <= 0) {
			print_message("read %zu of %zu bytes\n", got, n);
			return false;
		}
		got += (size_t)r;
	}
	return got == n;
}

/* 64 pipelined "stats cachedump 1 0" (1.3 KB asking for about 128 MB) are
 * all answered, byte for byte, while the node's memory stays bounded: the
 * port stops taking requests while 1 MB of replies waits (VSVC_MORE). */
static void pipelined_dumps_stay_bounded(void **state)
{
	(void)state;
	enum { ITEMS = 9000, REQS = 64 };
	assert_int_equal(memcached_flush(mc, 0), MEMCACHED_SUCCESS);
	fill_node0("dump", ITEMS);
	int fd = th_connect(th_port(&cl, 0, 11211));
	assert_true(fd >= 0);
	static char first[3 << 20];
	assert_int_equal(th_send(fd, "stats cachedump 1 0\r\n", 21), 0);
	ssize_t len = th_recv_until(fd, first, sizeof first, "END\r\n", 5000);
	assert_true(len > (ssize_t)ITEMS * 200);
	assert_memory_equal(first + len - 5, "END\r\n", 5);

	long before = th_proc_kb(cl.nodes[0].pid, "VmHWM");
	assert_true(before > 0);
	static char reqs[REQS * 21];
	for (int i = 0; i < REQS; i++)
		memcpy(reqs + i * 21, "stats cachedump 1 0\r\n", 21);
	assert_int_equal(th_send(fd, reqs, sizeof reqs), 0);
	static char all[(size_t)REQS * (3 << 20)];
	assert_true((size_t)len * REQS < sizeof all);
	assert_true(read_exactly(fd, all, (size_t)len * REQS));
	for (int i = 0; i < REQS; i++)
		assert_memory_equal(all + (size_t)i * (size_t)len, first, (size_t)len);
	assert_int_equal(th_send(fd, "version\r\n", 9), 0); /* and nothing else came */
	char v[64];
	assert_true(th_recv_until(fd, v, sizeof v, "\r\n", 3000) > 0);
	assert_string_equal(v, "VERSION 1.6.0-virgo\r\n");
	close(fd);
	/* bounded (unbounded: about 128 MB) */
	assert_int_equal(th_peak_growth_ok(cl.nodes[0].pid, before, 48 * 1024), 0);
}

/* A metadump with nothing pipelined behind it, to a client whose small
 * receive window fills at once: the dump (about 16 MB) resumes every time
 * the socket drains, to its END. */
static void metadump_to_a_slow_reader(void **state)
{
	(void)state;
	enum { ITEMS = 60000 };
	assert_int_equal(memcached_flush(mc, 0), MEMCACHED_SUCCESS);
	fill_node0("slow", ITEMS);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int small = 4096;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)th_port(&cl, 0, 11211)),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
	assert_int_equal(th_send(fd, "lru_crawler metadump all\r\n", 26), 0);
	static char all[32 << 20];
	size_t got = 0;
	int64_t end = th_now_ms() + 20000;
	while (!(got >= 5 && memcmp(all + got - 5, "END\r\n", 5) == 0) && th_now_ms() < end) {
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, 3000) != 1)
			break;
		ssize_t r = recv(fd, all + got, sizeof all - got, 0);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	if (got < 5 || memcmp(all + got - 5, "END\r\n", 5) != 0)
		fail_msg("metadump stalled after %zu bytes", got);
	int lines = 0;
	for (char *l = all; (l = memmem(l, (size_t)(all + got - l), "key=slow-", 9)) != NULL; l += 9)
		lines++;
	assert_int_equal(lines, ITEMS);
}

static void version_and_flush(void **state)
{
	(void)state;
	assert_int_equal(memcached_version(mc), MEMCACHED_SUCCESS);
	for (int n = 0; n < NODES; n++) {
		const memcached_instance_st *s = memcached_server_instance_by_position(mc, (uint32_t)n);
		assert_int_equal(memcached_server_major_version(s), 1);
		assert_int_equal(memcached_server_minor_version(s), 6);
	}
	assert_int_equal(memcached_set(mc, "fk", 2, "v", 1, 0, 0), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_flush(mc, 0), MEMCACHED_SUCCESS);
	want_missing(mc, "fk");
	char k[64];
	key(1, k, sizeof k);
	want_missing(mc, k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sharding_matches_key_owner),
		cmocka_unit_test(dump_lists_every_key),
		cmocka_unit_test(multi_get_across_nodes),
		cmocka_unit_test(cas_and_conditional_stores),
		cmocka_unit_test(counters),
		cmocka_unit_test(touch_and_delete),
		cmocka_unit_test(binary_values),
		cmocka_unit_test(noreply_batch),
		cmocka_unit_test(pipelined_dumps_stay_bounded),
		cmocka_unit_test(metadump_to_a_slow_reader),
		cmocka_unit_test(version_and_flush),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
#else
static void libmemcached_clients(void **state)
{
	(void)state;
	print_message("libmemcached-dev not installed: real-client tests skipped\n");
	skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(libmemcached_clients)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
