/*
 * test_ketama_libmemcached.c - virgo_key_owner places keys exactly where a
 * real memcached client (libmemcached with KETAMA_WEIGHTED) sends them, for
 * a cluster that includes the default port 11211 (which libmemcached leaves
 * out of its point names) and two shifted ports.  Needs libmemcached-dev;
 * without it the test reports itself skipped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "virgo.h"

#if __has_include(<libmemcached/memcached.h>)
#include <libmemcached/memcached.h>

static void same_placement_as_libmemcached(void **state)
{
	(void)state;
	char conf[256];
	snprintf(conf, sizeof conf, "/tmp/virgo-ketama-%d.conf", (int)getpid());
	FILE *f = fopen(conf, "w");
	/* memcached ports 11211, 11212, 11213 and 11311 (offsets 0, 1, 2, 100) */
	fprintf(f, "node = 1 127.0.0.1 0\nnode = 2 127.0.0.1 1\nnode = 3 127.0.0.1 2\n"
		   "node = 4 127.0.0.1 100\n");
	fclose(f);
	virgo_fini();
	assert_int_equal(virgo_init(conf), 0);
	memcached_st *m = memcached_create(NULL);
	static const in_port_t ports[] = {11211, 11212, 11213, 11311};
	for (int i = 0; i < 4; i++)
		assert_int_equal(memcached_server_add(m, "127.0.0.1", ports[i]), MEMCACHED_SUCCESS);
	assert_int_equal(memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1),
			 MEMCACHED_SUCCESS);
	int per_node[4] = {0};
	for (int i = 0; i < 5000; i++) {
		char key[64];
		int n = snprintf(key, sizeof key, i % 2 ? "user:%d" : "session-%d-x", i);
		uint32_t want = memcached_generate_hash(m, key, (size_t)n);
		int got = virgo_key_owner(key, (size_t)n);
		assert_int_equal(got, (int)want);
		per_node[got]++;
	}
	for (int i = 0; i < 4; i++)
		assert_true(per_node[i] > 500); /* every node takes a share */
	memcached_free(m);
	virgo_fini();
	unlink(conf);
}
#else
static void same_placement_as_libmemcached(void **state)
{
	(void)state;
	print_message("libmemcached-dev not installed: comparison skipped\n");
	skip();
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_placement_as_libmemcached),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
