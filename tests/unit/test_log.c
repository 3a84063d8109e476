/*
 * test_log.c - the daemon's logger (src/daemon/log.c): client-chosen
 * strings cannot forge or break a line (vlog_quote), a call site a client
 * can trigger at will logs at most VLOG_RL_BURST lines a second and says
 * how many it held back, and a log file moved away is reopened by path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/daemon/log.h"
#include "../harness.h"

static void quote_escapes_and_bounds(void **state)
{
	(void)state;
	char b[64];
	assert_string_equal(vlog_quote(b, sizeof b, "sleep", 5), "sleep");
	assert_string_equal(vlog_quote(b, sizeof b, "", 0), "\"\"");
	assert_string_equal(vlog_quote(b, sizeof b, "a b", 3), "\"a b\"");
	assert_string_equal(vlog_quote(b, sizeof b, "x\ny=1", 5), "\"x\\x0ay=1\"");
	assert_string_equal(vlog_quote(b, sizeof b, "q\"\\\x80", 4), "q\\x22\\x5c\\x80");
	char big[300];
	memset(big, 'a', sizeof big);
	vlog_quote(b, 16, big, sizeof big);
	assert_int_equal(strlen(b), 15);
	assert_string_equal(b + 12, "...");
	/* escapes are never cut in half */
	memset(big, '\n', sizeof big);
	vlog_quote(b, 16, big, sizeof big);
	assert_true(strlen(b) <= 15);
	assert_string_equal(b + strlen(b) - 3, "...");
	assert_int_equal((strlen(b) - 3) % 4, 0);
}

static int count(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	char line[1200];
	int n = 0;
	while (f && fgets(line, sizeof line, f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

/* one call site for every line below */
static void flood(int i) { log_warn_every("flood_event n=%d", i); }

static void burst_then_suppressed_count(void **state)
{
	(void)state;
	char path[320], moved[330];
	snprintf(path, sizeof path, "%s/t.log", th_tmpdir());
	snprintf(moved, sizeof moved, "%s.1", path);
	assert_int_equal(vlog_open_file(path), 0);
	/* start at the beginning of a second so the burst is not split */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	time_t s0 = ts.tv_sec;
	do
		clock_gettime(CLOCK_MONOTONIC, &ts);
	while (ts.tv_sec == s0);
	for (int i = 0; i < 20; i++)
		flood(i);
	assert_int_equal(count(path, "flood_event"), VLOG_RL_BURST);
	s0 = ts.tv_sec;
	do
		clock_gettime(CLOCK_MONOTONIC, &ts);
	while (ts.tv_sec == s0);
	flood(100);
	assert_int_equal(count(path, "flood_event n=100 suppressed=15"), 1);
	/* logrotate moved it: the next lines go to a new file at the path */
	assert_int_equal(rename(path, moved), 0);
	log_warn("before reopen");
	assert_int_equal(vlog_reopen(), 0);
	log_warn("after reopen");
	assert_int_equal(count(moved, "before reopen"), 1);
	assert_int_equal(count(path, "after reopen"), 1);
	assert_int_equal(count(moved, "after reopen"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(quote_escapes_and_bounds),
		cmocka_unit_test(burst_then_suppressed_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
