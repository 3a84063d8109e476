/*
 * test_auth.c - the AUTH line parser (auth_proto.c) and the token
 * comparison (auth.c): whole, partial, malformed and oversized lines;
 * equal, different, prefix and empty tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/daemon/auth.h"

static int parse(const char *s, const char **tok, size_t *toklen)
{
	return vd_auth_parse(s, strlen(s), tok, toklen);
}

static void test_parse(void **state)
{
	(void)state;
	const char *t;
	size_t n;
	assert_int_equal(parse("AUTH abc\r\nping\r\n", &t, &n), 10);
	assert_int_equal(n, 3);
	assert_memory_equal(t, "abc", 3);
	assert_int_equal(parse("auth   xyz\n", &t, &n), 11);
	assert_int_equal(n, 3);
	assert_int_equal(parse("AUTH abc", &t, &n), 0); /* not whole yet */
	assert_int_equal(parse("", &t, &n), 0);
	assert_int_equal(parse("ping\r\n", &t, &n), -1);
	assert_int_equal(parse("AUTH \r\n", &t, &n), -1);
	assert_int_equal(parse("AUTH a b\r\n", &t, &n), -1);
	assert_int_equal(parse("AUTHabc\r\n", &t, &n), -1);
	assert_int_equal(parse("AUTH a\x01" "b\r\n", &t, &n), -1);
	char big[VD_AUTH_MAX_LINE + 10];
	memset(big, 'a', sizeof big);
	memcpy(big, "AUTH ", 5);
	assert_int_equal(vd_auth_parse(big, sizeof big, &t, &n), -1); /* no LF in the limit */
	assert_int_equal(vd_auth_parse(big, 100, &t, &n), 0);
	big[VD_AUTH_MAX_LINE + 5] = '\n';
	assert_int_equal(vd_auth_parse(big, sizeof big, &t, &n), -1); /* LF past the limit */
}

static void test_token_ok(void **state)
{
	(void)state;
	assert_true(vd_auth_token_ok("0123456789abcdef", "0123456789abcdef", 16));
	assert_false(vd_auth_token_ok("0123456789abcdef", "0123456789abcdeX", 16));
	assert_false(vd_auth_token_ok("0123456789abcdef", "0123456789abcde", 15));
	assert_false(vd_auth_token_ok("0123456789abcdef", "0123456789abcdef0", 17));
	assert_false(vd_auth_token_ok("", "", 0)); /* no token configured: nothing matches */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_token_ok),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
