/*
 * test_cpupool_plugin.c - plugin lookup (cpupool_plugin.c) on the test
 * plugin built with an export table (libvtp_fast.so) and without one
 * (libvtp_notable.so): only table entries, or without a table only the
 * library's own function symbols, are found; data symbols, functions left
 * out of the table and a dependency's functions (libc) never are.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "../harness.h"

#include "../../src/services/cpupool_plugin.h"

static struct cp_plugins *open_lib(const char *name)
{
	char list[600];
	snprintf(list, sizeof list, " %s/%s ", th_build_dir(), name);
	struct cp_plugins *p = NULL;
	assert_int_equal(cp_plugins_open(list, &p), 0);
	assert_non_null(p);
	return p;
}

static void with_table(void **s)
{
	(void)s;
	struct cp_plugins *p = open_lib("libvtp_fast.so");
	virgo_fn f = cp_plugins_find(p, "tp_reverse");
	assert_non_null(f);
	void *out = NULL;
	size_t n = 0;
	int cancel = 0;
	assert_int_equal(f("abc", 3, &out, &n, &cancel), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(out, "cba", 3);
	free(out);
	assert_non_null(cp_plugins_find(p, "tp_stubborn"));
	assert_null(cp_plugins_find(p, "plugin_version")); /* data */
	assert_null(cp_plugins_find(p, "tp_hidden")); /* exported, not in the table */
	assert_null(cp_plugins_find(p, "virgo_plugin_functions"));
	assert_null(cp_plugins_find(p, "system")); /* libc */
	cp_plugins_free(p);
}

static void without_table(void **s)
{
	(void)s;
	struct cp_plugins *p = open_lib("libvtp_notable.so");
	assert_non_null(cp_plugins_find(p, "tp_notable_only"));
	assert_non_null(cp_plugins_find(p, "tp_reverse"));
	assert_null(cp_plugins_find(p, "plugin_version")); /* issue 14 #3 */
	assert_null(cp_plugins_find(p, "system"));
	assert_null(cp_plugins_find(p, "malloc"));
	assert_null(cp_plugins_find(p, "no_such_function"));
	cp_plugins_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(with_table),
		cmocka_unit_test(without_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
