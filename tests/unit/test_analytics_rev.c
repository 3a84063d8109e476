/*
 * test_analytics_rev.c - the analytics revisions' reservation file
 * (src/services/analytics/analytics_rev.h): a first start continues from
 * 0, every later start above every revision an earlier one could give, a
 * block that runs out is extended, nodes sharing the file never overlap,
 * and a corrupt file is an error, never "0".
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/services/analytics/analytics_rev.h"

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "%s/anrev-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

/* the scratch directory and the reservation files in it go */
static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		char path[400];
		while ((e = readdir(d)))
			if (e->d_name[0] != '.') {
				snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
				unlink(path);
			}
		closedir(d);
	}
	return rmdir(dir);
}

static void memory_only(void **state)
{
	(void)state;
	struct an_rev r;
	uint64_t base = 7, rev = 5;
	char err[200];
	assert_int_equal(an_rev_open(&r, "", 1, &base, err, sizeof err), 0);
	assert_int_equal(base, 0);
	assert_int_equal(an_rev_need(&r, &rev, err, sizeof err), 0);
	assert_int_equal(rev, 5);
}

static void restarts_continue_above(void **state)
{
	(void)state;
	struct an_rev r, r2;
	uint64_t base, base2;
	char err[200];
	assert_int_equal(an_rev_open(&r, dir, 1, &base, err, sizeof err), 0);
	assert_int_equal(base, 0);
	/* the first block runs out: the next is reserved before it is used */
	uint64_t rev = AN_REV_BLOCK;
	assert_int_equal(an_rev_need(&r, &rev, err, sizeof err), 0);
	assert_int_equal(rev, AN_REV_BLOCK);
	/* a restart (or another node on the same file) starts above both */
	assert_int_equal(an_rev_open(&r2, dir, 1, &base2, err, sizeof err), 0);
	assert_int_equal(base2, 2 * AN_REV_BLOCK);
	/* the first one's next block then jumps past the second's */
	rev = 2 * AN_REV_BLOCK;
	assert_int_equal(an_rev_need(&r, &rev, err, sizeof err), 0);
	assert_int_equal(rev, 3 * AN_REV_BLOCK);
	/* another node id: its own file */
	assert_int_equal(an_rev_open(&r2, dir, 2, &base2, err, sizeof err), 0);
	assert_int_equal(base2, 0);
}

static void corrupt_file_is_an_error(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/analytics-9.rev", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("12x\n", f);
	fclose(f);
	struct an_rev r;
	uint64_t base;
	char err[200];
	assert_int_equal(an_rev_open(&r, dir, 9, &base, err, sizeof err), -EIO);
	assert_int_equal(r.path[0], '\0'); /* memory only, the caller logs why */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(memory_only),
		cmocka_unit_test(restarts_continue_above),
		cmocka_unit_test(corrupt_file_is_an_error),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
