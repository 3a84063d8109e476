/*
 * test_config.c - virgo_cloud.conf and virgo_client.conf parsing: keys,
 * ranges, unknown keys named with their line, the legacy address line.
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

#include "../../src/common/cfgval.h"
#include "../../src/daemon/config.h"
#include "../../src/daemon/service.h"
#include "../../src/lib/client.h"

static char path[256];

static const char *write_conf(const char *text)
{
	snprintf(path, sizeof path, "/tmp/virgo-test-conf-%d.conf", (int)getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void values(void **state)
{
	(void)state;
	uint64_t sz;
	assert_int_equal(cv_size("256M", &sz), 0);
	assert_true(sz == 256u << 20);
	assert_int_equal(cv_size("2G", &sz), 0);
	assert_true(sz == UINT64_C(2) << 30);
	assert_int_equal(cv_size("64kb", &sz), 0);
	assert_true(sz == 65536);
	assert_int_equal(cv_size("12", &sz), 0);
	assert_int_equal(cv_size("-1", &sz), -1);
	assert_int_equal(cv_size("12X", &sz), -1);
	assert_int_equal(cv_size("99999999999999999999G", &sz), -1);
	long v;
	assert_int_equal(cv_int("42", 0, 100, &v), 0);
	assert_int_equal(cv_int("101", 0, 100, &v), -1);
	assert_int_equal(cv_int("4x", 0, 100, &v), -1);
	bool b;
	assert_int_equal(cv_bool("Yes", &b), 0);
	assert_true(b);
	assert_int_equal(cv_bool("off", &b), 0);
	assert_false(b);
	assert_int_equal(cv_bool("maybe", &b), -1);
}

static void daemon_config(void **state)
{
	(void)state;
	struct vd_config c;
	char err[512];
	vd_config_defaults(&c);
	assert_int_equal(c.node_id, 1);
	assert_int_equal(vd_config_port(&c, 0), 30000);
	const char *p = write_conf("# node 2\nnode_id = 2\nport_offset = 5\nmem_limit = 1G\n"
				   "mempool_port = 31000\nlog_level = debug\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
	assert_int_equal(c.node_id, 2);
	assert_int_equal(c.port_offset, 5);
	assert_true(c.mem_limit == UINT64_C(1) << 30);
	assert_int_equal(vd_config_port(&c, 0), 31000);
	assert_int_equal(c.log_level, VLOG_DEBUG);
	/* worker threads: per service, <service>_threads overrides threads */
	vd_config_defaults(&c);
	p = write_conf("threads = 3\nmemcache_threads = 5\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
	/* (a service may have its own default: the analytics' one loop) */
	for (int i = 0; vsvc_table[i]; i++)
		assert_int_equal(vd_config_threads(&c, i),
				 strcmp(vsvc_table[i]->name, "memcache") == 0 ? 5
				 : vsvc_table[i]->threads > 0		      ? vsvc_table[i]->threads
									      : 3);
	p = write_conf("mempool_threads = 257\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, ":1: bad value '257' for mempool_threads"));
	vd_config_defaults(&c);
	assert_true(vd_config_threads(&c, 0) >= 1); /* 0 = one per core */
	/* cpu_affinity: on unless turned off; a yes/no */
	assert_true(c.cpu_affinity);
	p = write_conf("cpu_affinity = no\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
	assert_false(c.cpu_affinity);
	p = write_conf("cpu_affinity = sometimes\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, "bad value 'sometimes' for cpu_affinity (yes or no)"));
	/* unknown key: named, with its line */
	vd_config_defaults(&c);
	p = write_conf("node_id = 2\n\nmem_limt = 1G\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, ":3: unknown key 'mem_limt'"));
	/* bad values */
	p = write_conf("node_id = 0\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, ":1: bad value '0' for node_id"));
	p = write_conf("port_offset = 99999\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	p = write_conf("node_id 2\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, ":1:"));
	/* the original's file: one line of addresses */
	vd_config_defaults(&c);
	p = write_conf("127.0.0.1,127.0.0.1\nnode_id = 3\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
	assert_int_equal(c.node_id, 3);
	/* every size is bounded, so no size arithmetic can wrap (issue 14 #8) */
	vd_config_defaults(&c);
	p = write_conf("max_value = 18446744073709551615\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, ":1: bad value '18446744073709551615' for max_value"));
	p = write_conf("max_value = 2G\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	p = write_conf("max_value = 1G\nmax_alloc = 16384G\nmem_limit = 16384G\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
	p = write_conf("mem_limit = 16385G\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	p = write_conf("max_alloc = 16385G\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
	/* lines longer than libinih's 199 characters: whole values, and
	 * errors on the line they are on */
	{
		char text[4096], list[2048] = "";
		for (int i = 0; i < 100; i++)
			snprintf(list + strlen(list), sizeof list - strlen(list), "%sprog%02d",
				 i ? ", " : "", i);
		vd_config_defaults(&c);
		snprintf(text, sizeof text, "# long\nallow_exec =  %s   ; a comment\nnode_id = 4\n",
			 list);
		p = write_conf(text);
		assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
		for (int i = 0; vsvc_table[i]; i++) /* a service's own key */
			if (strcmp(vsvc_table[i]->name, "cpupool") == 0)
				assert_string_equal(vd_config_settings(&c, i), list);
		assert_int_equal(c.node_id, 4);
		snprintf(text, sizeof text, "\nallow_exec = %s\nnode_id = 0\n", list);
		p = write_conf(text);
		assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
		assert_non_null(strstr(err, ":3: bad value '0' for node_id"));
		snprintf(text, sizeof text, "\n\nno_such_key = %s\n", list);
		p = write_conf(text);
		assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
		assert_non_null(strstr(err, ":3: unknown key 'no_such_key'"));
		snprintf(text, sizeof text, "# %s\n%s\n", list, list);
		p = write_conf(text); /* a long comment is fine, a long junk line is not */
		assert_int_equal(vd_config_load(&c, p, err, sizeof err), -1);
		assert_non_null(strstr(err, ":2: syntax error"));
	}
	/* missing file */
	assert_int_equal(vd_config_load(&c, "/nonexistent/virgo.conf", err, sizeof err), -1);
	assert_non_null(strstr(err, "No such file"));
	unlink(path);
}

static void client_config(void **state)
{
	(void)state;
	struct vc_config c;
	char err[512];
	vc_config_defaults(&c);
	assert_int_equal(c.nnodes, 3);
	assert_int_equal(c.nodes[2].port_offset, 2);
	const char *p = write_conf("node = 7 10.0.0.7\nnode = 9 host9 3\npolicy = round_robin\n"
				   "chunk_size = 64K\ntimeout_ms = 250\nseed = 5\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), 0);
	assert_int_equal(c.nnodes, 2);
	assert_int_equal(c.nodes[0].id, 7);
	assert_string_equal(c.nodes[1].host, "host9");
	assert_int_equal(c.nodes[1].port_offset, 3);
	assert_int_equal(c.policy, VC_POLICY_ROUND_ROBIN);
	assert_true(c.chunk_size == 65536);
	assert_int_equal(c.timeout_ms, 250);
	assert_true(c.seeded);
	/* the notes' forms */
	vc_config_defaults(&c);
	p = write_conf("10.0.0.1,10.0.0.2, 10.0.0.3\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), 0);
	assert_int_equal(c.nnodes, 3);
	assert_int_equal(c.nodes[2].id, 3);
	assert_string_equal(c.nodes[2].host, "10.0.0.3");
	vc_config_defaults(&c);
	p = write_conf("node_ip_addrs_in_cloud = 10.0.0.1,10.0.0.2\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), 0);
	assert_int_equal(c.nnodes, 2);
	/* errors */
	vc_config_defaults(&c);
	p = write_conf("node = 1 a\nnode = 1 b\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, ":2: node id 1 listed twice"));
	p = write_conf("policy = fastest\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), -1);
	p = write_conf("timeout = 5\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), -1);
	assert_non_null(strstr(err, "unknown key 'timeout'"));
	p = write_conf("node = 0 host\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), -1);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(values),
		cmocka_unit_test(daemon_config),
		cmocka_unit_test(client_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
