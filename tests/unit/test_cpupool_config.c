/*
 * test_cpupool_config.c - the cpupool keys of virgo_cloud.conf and
 * virgo_client.conf: defaults, ranges, and unknown keys still refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/daemon/config.h"
#include "../../src/daemon/service.h"
#include "../../src/lib/client.h"
#include "../../src/services/cpupool_settings.h"

/* The cpupool's own settings in c (service-owned keys). */
static const struct cp_settings *cps(const struct vd_config *c)
{
	for (int i = 0; vsvc_table[i]; i++)
		if (strcmp(vsvc_table[i]->name, "cpupool") == 0)
			return vd_config_settings(c, i);
	fail_msg("no cpupool service");
	return NULL;
}

static char path[256];

static const char *write_conf(const char *text)
{
	snprintf(path, sizeof path, "/tmp/virgo-test-cpconf-%d.conf", (int)getpid());
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void node_keys(void **s)
{
	(void)s;
	struct vd_config c;
	char err[512];
	vd_config_defaults(&c);
	assert_string_equal(cps(&c)->allow_exec, CP_DEFAULT_ALLOW_EXEC);
	assert_int_equal(cps(&c)->job_timeout_ms, 30000);
	assert_int_equal(cps(&c)->cpu_queue, 64);
	assert_int_equal(cps(&c)->job_max_procs, 64);
	const char *p = write_conf("allow_exec = uname, /usr/bin/sha256sum\nplugins = /x/a.so, /y/b.so\n"
				   "job_timeout_ms = 1500\noutput_cap = 2M\ncpu_workers = 3\n"
				   "cpu_queue = 0\njob_mem_limit = 512M\njob_max_procs = 9\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
	assert_string_equal(cps(&c)->allow_exec, "uname, /usr/bin/sha256sum");
	assert_string_equal(cps(&c)->plugins, "/x/a.so, /y/b.so");
	assert_int_equal(cps(&c)->job_timeout_ms, 1500);
	assert_true(cps(&c)->output_cap == UINT64_C(2) << 20);
	assert_int_equal(cps(&c)->cpu_workers, 3);
	assert_int_equal(cps(&c)->cpu_queue, 0);
	assert_true(cps(&c)->job_mem_limit == UINT64_C(512) << 20);
	assert_int_equal(cps(&c)->job_max_procs, 9);
	/* an empty allow-list is allowed (nothing runs) */
	vd_config_defaults(&c);
	p = write_conf("allow_exec =\n");
	assert_int_equal(vd_config_load(&c, p, err, sizeof err), 0);
	assert_string_equal(cps(&c)->allow_exec, "");
	const char *bad[] = {"job_timeout_ms = 0\n", "output_cap = 2G\n", "cpu_workers = -1\n",
			     "job_mem_limit = 1M\n", "job_mem_limit = 16385G\n", "job_max_procs = 0\n",
			     "cpu_queu = 3\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		vd_config_defaults(&c);
		assert_int_equal(vd_config_load(&c, write_conf(bad[i]), err, sizeof err), -1);
	}
	assert_non_null(strstr(err, "unknown key 'cpu_queu'"));
	unlink(path);
}

static void client_keys(void **s)
{
	(void)s;
	struct vc_config c;
	char err[512];
	vc_config_defaults(&c);
	assert_int_equal(c.clone_policy, VC_POLICY_LEAST_LOADED);
	const char *p = write_conf("node = 1 127.0.0.1\nclone_policy = learned\nclone_timeout_ms = 900\n"
				   "load_max_age_ms = 0\n");
	assert_int_equal(vc_config_load(&c, p, err, sizeof err), 0);
	assert_int_equal(c.clone_policy, VC_POLICY_LEARNED);
	assert_int_equal(c.clone_timeout_ms, 900);
	assert_int_equal(c.load_max_age_ms, 0);
	vc_config_defaults(&c);
	assert_int_equal(vc_config_load(&c, write_conf("clone_policy = fastest\n"), err, sizeof err), -1);
	assert_non_null(strstr(err, "clone_policy"));
	/* mempool's policy still takes only its two */
	vc_config_defaults(&c);
	assert_int_equal(vc_config_load(&c, write_conf("policy = least_loaded\n"), err, sizeof err), -1);
	for (int i = 1; i <= 5; i++)
		assert_int_equal(virgo_policy_parse(virgo_policy_name(i)), i);
	assert_null(virgo_policy_name(0));
	assert_int_equal(virgo_policy_parse("nope"), -22);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(node_keys),
		cmocka_unit_test(client_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
