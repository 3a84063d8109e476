/*
 * test_auth.c - the AUTH line parser (auth_proto.c) and the tokens a node
 * accepts (auth_tokens.c): whole, partial, malformed and oversized lines;
 * equal, different, prefix and empty tokens; the named tokens file's
 * identities, its mode check, a malformed file, a named token equal to
 * the shared one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static bool match(const struct vd_tokens *t, const char *tok, char *name)
{
	return vd_tokens_match(t, tok, strlen(tok), name, 64);
}

static void test_token_ok(void **state)
{
	(void)state;
	char err[256], name[64];
	struct vd_tokens *t = vd_tokens_load("0123456789abcdef", "", err, sizeof err);
	assert_non_null(t);
	assert_true(match(t, "0123456789abcdef", name));
	assert_string_equal(name, VD_AUTH_SHARED_NAME);
	assert_false(match(t, "0123456789abcdeX", name));
	assert_false(vd_tokens_match(t, "0123456789abcdef", 15, name, sizeof name));
	assert_false(match(t, "0123456789abcdef0", name));
	assert_false(match(t, "", name));
	assert_true(vd_tokens_has(t, "token"));
	assert_int_equal(vd_tokens_named(t), 0);
	vd_tokens_free(t);
	/* no token configured: nothing matches */
	t = vd_tokens_load("", "", err, sizeof err);
	assert_non_null(t);
	assert_false(match(t, "", name));
	assert_false(vd_tokens_has(t, "token"));
	vd_tokens_free(t);
	assert_false(match(NULL, "0123456789abcdef", name));
}

/* path: a file holding text, mode mode. */
static const char *write_file(const char *text, mode_t mode)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/test_auth_%d", (int)getpid());
	unlink(path);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static void test_named_tokens(void **state)
{
	(void)state;
	char err[512], name[64];
	const char *path = write_file("# two clients\nalice alice-token-0123456789\n\n"
				      "  bob\tbob-token-0123456789abc  \r\n",
				      0600);
	struct vd_tokens *t = vd_tokens_load("shared-token-0123456789", path, err, sizeof err);
	assert_non_null(t);
	assert_int_equal(vd_tokens_named(t), 2);
	assert_true(match(t, "alice-token-0123456789", name));
	assert_string_equal(name, "alice");
	assert_true(match(t, "bob-token-0123456789abc", name));
	assert_string_equal(name, "bob");
	assert_true(match(t, "shared-token-0123456789", name));
	assert_string_equal(name, "token");
	assert_false(match(t, "bob-token-0123456789ab", name));
	assert_false(match(t, "bob", name)); /* a name is not a token */
	assert_true(vd_tokens_has(t, "alice"));
	assert_true(vd_tokens_has(t, "token"));
	assert_false(vd_tokens_has(t, "carol"));
	vd_tokens_free(t);
	/* the file alone: no shared token, so "token" is no identity */
	t = vd_tokens_load("", path, err, sizeof err);
	assert_non_null(t);
	assert_false(vd_tokens_has(t, "token"));
	assert_false(match(t, "shared-token-0123456789", name));
	vd_tokens_free(t);

	/* readable by others, or by the group: refused, saying how to fix it */
	path = write_file("alice alice-token-0123456789\n", 0644);
	assert_null(vd_tokens_load("", path, err, sizeof err));
	assert_non_null(strstr(err, "chmod 600"));
	path = write_file("alice alice-token-0123456789\n", 0640);
	assert_null(vd_tokens_load("", path, err, sizeof err));
	/* malformed: the line is named, the token never echoed */
	path = write_file("alice alice-token-0123456789\nbob short\n", 0600);
	assert_null(vd_tokens_load("", path, err, sizeof err));
	assert_non_null(strstr(err, "line 2"));
	assert_null(strstr(err, "short"));
	/* a named token equal to auth_token: a client must be one identity */
	path = write_file("alice alice-token-0123456789\n", 0600);
	assert_null(vd_tokens_load("alice-token-0123456789", path, err, sizeof err));
	assert_non_null(strstr(err, "auth_token"));
	unlink(path);
	/* missing file */
	assert_null(vd_tokens_load("", path, err, sizeof err));
	assert_non_null(strstr(err, path));
	/* not a regular file */
	assert_null(vd_tokens_load("", "/tmp", err, sizeof err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_token_ok),
		cmocka_unit_test(test_named_tokens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
