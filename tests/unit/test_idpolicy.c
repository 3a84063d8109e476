/*
 * test_idpolicy.c - the identity lists and maps of the node's policy keys
 * (idpolicy.c): which entries are well-formed, which entry applies to an
 * identity ("*" for the unnamed, never a named entry for ""), and how
 * items match words (exact, prefix with '*', everything with "*").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/idpolicy.h"

static bool allows(const char *map, const char *id, const char *word, bool restrict_unnamed)
{
	return idpol_map_allows(map, id, word, strlen(word), restrict_unnamed);
}

static void test_list(void **state)
{
	(void)state;
	assert_true(idpol_list_has("alice, bob", "bob"));
	assert_true(idpol_list_has(" alice,bob\tcarol ", "carol"));
	assert_false(idpol_list_has("alice, bob", "bo"));
	assert_false(idpol_list_has("alice, bob", "alice2"));
	assert_false(idpol_list_has("", "alice"));
	assert_false(idpol_list_has("alice", "")); /* the unauthenticated */
}

static void test_map_check(void **state)
{
	(void)state;
	char err[256];
	assert_int_equal(idpol_map_check("", err, sizeof err), 0);
	assert_int_equal(idpol_map_check("  ", err, sizeof err), 0);
	assert_int_equal(idpol_map_check("alice:echo,uname bob:* *:", err, sizeof err), 0);
	assert_int_equal(idpol_map_check("alice:", err, sizeof err), 0);
	assert_int_equal(idpol_map_check("alice echo", err, sizeof err), -1);
	assert_non_null(strstr(err, "'alice'"));
	assert_int_equal(idpol_map_check(":echo", err, sizeof err), -1);
	assert_non_null(strstr(err, "no identity"));
	assert_int_equal(idpol_map_check("a,b:echo", err, sizeof err), -1);
	assert_int_equal(idpol_map_check("alice:echo:true", err, sizeof err), -1);
	assert_int_equal(idpol_map_check("alice:echo,,true", err, sizeof err), -1);
	assert_int_equal(idpol_map_check("alice:,echo", err, sizeof err), -1);
	assert_int_equal(idpol_map_check("alice:echo,", err, sizeof err), -1);
	assert_int_equal(idpol_map_check("alice:echo bob:true alice:uname", err, sizeof err), -1);
	assert_non_null(strstr(err, "two entries"));
	char big[IDPOL_MAX + 8];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	big[1] = ':';
	assert_int_equal(idpol_map_check(big, err, sizeof err), -1);
}

static void test_map_find(void **state)
{
	(void)state;
	const char *items;
	size_t len;
	const char *map = "*:echo alice:echo,uname bob:";
	assert_int_equal(idpol_map_find(map, "alice", &items, &len), 1);
	assert_int_equal(len, strlen("echo,uname"));
	assert_memory_equal(items, "echo,uname", len);
	assert_int_equal(idpol_map_find(map, "bob", &items, &len), 1);
	assert_int_equal(len, 0);
	assert_int_equal(idpol_map_find(map, "carol", &items, &len), 1); /* "*" */
	assert_memory_equal(items, "echo", len);
	assert_int_equal(idpol_map_find(map, "", &items, &len), 1); /* "*" too */
	assert_int_equal(idpol_map_find("alice:echo", "carol", &items, &len), 0);
	assert_int_equal(idpol_map_find("alice:echo", "", &items, &len), 0);
	assert_int_equal(idpol_map_find("", "alice", &items, &len), 0);
}

static void test_items_match(void **state)
{
	(void)state;
	const char *it = "cpu_*,weight,mem_limit";
	size_t n = strlen(it);
	assert_true(idpol_items_match(it, n, "cpu_workers", 11));
	assert_true(idpol_items_match(it, n, "cpu_", 4));
	assert_true(idpol_items_match(it, n, "weight", 6));
	assert_false(idpol_items_match(it, n, "weigh", 5));
	assert_false(idpol_items_match(it, n, "weights", 7));
	assert_false(idpol_items_match(it, n, "cp", 2));
	assert_true(idpol_items_match("*", 1, "anything", 8));
	assert_false(idpol_items_match("", 0, "echo", 4));
}

static void test_map_allows(void **state)
{
	(void)state;
	const char *map = "alice:echo,uname bob:";
	assert_true(allows("", "carol", "rm", true)); /* no policy */
	assert_true(allows(map, "alice", "uname", false));
	assert_false(allows(map, "alice", "true", false));
	assert_false(allows(map, "bob", "echo", false)); /* an empty entry */
	assert_true(allows(map, "carol", "true", false)); /* unnamed: not restricted */
	assert_false(allows(map, "carol", "true", true)); /* unnamed: refused */
	assert_false(allows(map, "", "echo", true));
	assert_true(allows("alice:* *:echo", "", "echo", true));
	assert_false(allows("alice:* *:echo", "", "true", true));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_map_check),
		cmocka_unit_test(test_map_find),
		cmocka_unit_test(test_items_match),
		cmocka_unit_test(test_map_allows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
