/*
 * test_vfs_cache.c - virgofs's path cache (src/fuse/vfs_cache.c) on its
 * own: a listing given names only and the getattr misses that fetch its
 * entries' attributes at once (vfs_cache_names_listed/_miss), names-only
 * pages ending a directory's being known completely, and a full table
 * swept of its expired entries before anything that still answers or
 * knows a directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/fuse/vfs_cache.h"

static struct virgo_stat file_st(uint64_t size)
{
	return (struct virgo_stat){.type = 'f', .mode = 0644, .size = size, .nlink = 1};
}

static struct virgo_stat dir_st(int64_t ctime_ns)
{
	return (struct virgo_stat){.type = 'd', .mode = 0755, .nlink = 2, .ino = 7,
				   .ctime_ns = ctime_ns};
}

/* The second miss under a directory listed names-only asks for the fill,
 * once, from where the names began; then its listings want attributes. */
static void names_then_fill(void **state)
{
	(void)state;
	vfs_cache_set_timeout(30);
	vfs_cache_set_negative_timeout(30);
	char dir[64];
	uint64_t cursor = 0;
	assert_false(vfs_cache_names_miss("/n1/big/a", dir, sizeof dir, &cursor));
	assert_false(vfs_cache_wants_attrs("/n1/big"));
	vfs_cache_names_listed("/n1/big", 77);
	assert_false(vfs_cache_names_miss("/n1/big/a", dir, sizeof dir, &cursor)); /* one alone */
	assert_true(vfs_cache_names_miss("/n1/big/b", dir, sizeof dir, &cursor));
	assert_string_equal(dir, "/n1/big");
	assert_true(cursor == 77);
	assert_false(vfs_cache_names_miss("/n1/big/c", dir, sizeof dir, &cursor)); /* once */
	assert_true(vfs_cache_wants_attrs("/n1/big"));
	assert_false(vfs_cache_wants_attrs("/n1/other"));
	/* the entries put by the fill answer */
	struct virgo_direntplus d[2] = {{.name = "b", .st = file_st(5)}, {.name = "c", .st = file_st(6)}};
	vfs_cache_listing("/n1/big", d, 2);
	struct virgo_stat v;
	assert_int_equal(vfs_cache_answer("/n1/big/c", &v), 0);
	assert_int_equal(v.size, 6);
	/* a directory too small to hold the path: no fill asked for */
	vfs_cache_names_listed("/n1/big2", 1);
	assert_false(vfs_cache_names_miss("/n1/big2/a", dir, 4, &cursor));
	assert_false(vfs_cache_names_miss("/n1/big2/a", dir, 4, &cursor));
}

/* A names-only page showing a name the cache has no entry for ends the
 * directory's being known completely; names it has leave it so. */
static void names_end_completeness(void **state)
{
	(void)state;
	vfs_cache_set_timeout(30);
	vfs_cache_set_negative_timeout(30);
	struct virgo_stat ds = dir_st(100);
	vfs_cache_put("/n1/made", &ds, true);
	vfs_cache_dir_made("/n1/made", 100);
	struct virgo_stat fs = file_st(1);
	vfs_cache_put("/n1/made/x", &fs, true);
	assert_true(vfs_cache_absent("/n1/made/y"));
	struct virgo_direntplus known = {.name = "x", .st = {.type = 'f'}};
	vfs_cache_names("/n1/made", &known, 1);
	assert_true(vfs_cache_absent("/n1/made/y"));
	struct virgo_direntplus other = {.name = "z", .st = {.type = 'f'}};
	vfs_cache_names("/n1/made", &other, 1);
	assert_false(vfs_cache_absent("/n1/made/y"));
	/* names-only pages put no attributes */
	struct virgo_stat v;
	assert_int_equal(vfs_cache_answer("/n1/made/z", &v), -1);
}

/* A full table: the entries that no longer answer go, and what still
 * answers or knows a directory completely stays. */
static void full_table_swept(void **state)
{
	(void)state;
	vfs_cache_set_timeout(30);
	vfs_cache_set_negative_timeout(30);
	struct virgo_stat ds = dir_st(200);
	vfs_cache_put("/n2/keep", &ds, true);
	vfs_cache_dir_made("/n2/keep", 200);
	struct virgo_stat fs = file_st(9);
	vfs_cache_put("/n2/keep/f", &fs, true); /* answers for 30 s */
	char p[64];
	struct virgo_stat old = file_st(1);
	for (int i = 0; i < 70000; i++) { /* more than the table holds: no answers */
		snprintf(p, sizeof p, "/n2/old/%d", i);
		vfs_cache_put(p, &old, false);
	}
	struct virgo_stat v;
	assert_int_equal(vfs_cache_answer("/n2/keep/f", &v), 0);
	assert_int_equal(v.size, 9);
	assert_true(vfs_cache_absent("/n2/keep/nothing"));
	/* the newest ones are there (put after the sweep) */
	assert_false(vfs_cache_changed("/n2/old/69999", &old));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names_then_fill),
		cmocka_unit_test(names_end_completeness),
		cmocka_unit_test(full_table_swept),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
