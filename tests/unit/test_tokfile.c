/*
 * test_tokfile.c - the named tokens file's parser (tokfile_proto.c):
 * entries, comments, blank lines and CRLF; every refusal (field count,
 * bad names and the reserved "token", short, long and non-printable
 * tokens, duplicate names and tokens, NUL bytes, long lines, too many
 * entries, too large a file) names its line; entries beyond max are
 * counted, not stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/tokfile.h"

static struct tokfile_entry ents[TOKFILE_MAX_ENTRIES];
static char err[256];

static int parse(const char *s)
{
	err[0] = '\0';
	return tokfile_parse(s, strlen(s), ents, TOKFILE_MAX_ENTRIES, err, sizeof err);
}

static void field_is(const char *p, size_t n, const char *want)
{
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

static void test_entries(void **state)
{
	(void)state;
	assert_int_equal(parse(""), 0);
	assert_int_equal(parse("# only a comment\n\n   \n\t# indented comment\n"), 0);
	assert_int_equal(parse("# clients\nalice 0123456789abcdef0123\r\n\n"
			       "  bob.x@example\t\tABCDEFGHIJKLMNOP!#~  \n"
			       "c_d-e 0123456789abcdef0124"), /* no final LF */
			 3);
	field_is(ents[0].name, ents[0].namelen, "alice");
	field_is(ents[0].token, ents[0].toklen, "0123456789abcdef0123");
	assert_int_equal(ents[0].line, 2);
	field_is(ents[1].name, ents[1].namelen, "bob.x@example");
	field_is(ents[1].token, ents[1].toklen, "ABCDEFGHIJKLMNOP!#~");
	assert_int_equal(ents[1].line, 4);
	field_is(ents[2].name, ents[2].namelen, "c_d-e");
	assert_int_equal(ents[2].line, 5);
}

static void refused(const char *s, const char *line)
{
	assert_int_equal(parse(s), -1);
	if (!strstr(err, line))
		fail_msg("'%s': error '%s' does not name %s", s, err, line);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("alice\n", "line 1");
	refused("# c\nalice 0123456789abcdef extra\n", "line 2");
	refused("ali:ce 0123456789abcdef\n", "line 1"); /* ':' would break policy maps */
	refused("ali,ce 0123456789abcdef\n", "line 1");
	refused("* 0123456789abcdef\n", "line 1");
	refused("token 0123456789abcdef\n", "line 1"); /* the shared token's identity */
	refused("alice 0123456789abcde\n", "line 1"); /* 15 bytes */
	refused("alice 0123456789abcd\x7f" "f\n", "line 1");
	refused("alice 0123456789abcdef\nalice fedcba9876543210\n", "line 2");
	refused("alice 0123456789abcdef\nbob 0123456789abcdef\n", "line 2");
	assert_non_null(strstr(err, "alice")); /* which other name has it */
	/* the token is a secret: an error never quotes it */
	refused("alice tooshort-secret\xff\n", "line 1");
	assert_null(strstr(err, "tooshort"));
	char name[TOKFILE_NAME_MAX + 2];
	memset(name, 'n', sizeof name);
	name[sizeof name - 1] = '\0';
	char line[400];
	snprintf(line, sizeof line, "%s 0123456789abcdef\n", name);
	refused(line, "line 1");
	snprintf(line, sizeof line, "%s 0123456789abcdef\n", name + 1); /* 63: fine */
	assert_int_equal(parse(line), 1);
	char tok[TOKFILE_TOKEN_MAX + 2];
	memset(tok, 't', sizeof tok);
	tok[sizeof tok - 1] = '\0';
	snprintf(line, sizeof line, "alice %s\n", tok);
	refused(line, "line 1");
	snprintf(line, sizeof line, "alice %s\n", tok + 1); /* 255: fine */
	assert_int_equal(parse(line), 1);
	/* a NUL byte */
	assert_int_equal(tokfile_parse("alice 0123456789abcdef\0\n", 24, ents, 4, err, sizeof err), -1);
	/* a line over the limit, even a comment */
	char *big = malloc(TOKFILE_MAX_LINE + 8);
	assert_non_null(big);
	memset(big, '#', TOKFILE_MAX_LINE + 1);
	big[TOKFILE_MAX_LINE + 1] = '\n';
	big[TOKFILE_MAX_LINE + 2] = '\0';
	refused(big, "line 1");
	free(big);
	/* a file over the limit */
	assert_int_equal(tokfile_parse("", TOKFILE_MAX_BYTES + 1, ents, 4, err, sizeof err), -1);
}

static void test_counts(void **state)
{
	(void)state;
	size_t cap = (size_t)(TOKFILE_MAX_ENTRIES + 1) * 40;
	char *buf = malloc(cap);
	assert_non_null(buf);
	size_t n = 0;
	for (int i = 0; i < TOKFILE_MAX_ENTRIES; i++)
		n += (size_t)snprintf(buf + n, cap - n, "c%d tok-%016d\n", i, i);
	assert_int_equal(tokfile_parse(buf, n, ents, TOKFILE_MAX_ENTRIES, err, sizeof err),
			 TOKFILE_MAX_ENTRIES);
	/* fewer slots than entries: all counted, the first stored */
	assert_int_equal(tokfile_parse(buf, n, ents, 2, err, sizeof err), TOKFILE_MAX_ENTRIES);
	field_is(ents[1].name, ents[1].namelen, "c1");
	n += (size_t)snprintf(buf + n, cap - n, "one-more tok-one-more-0123\n");
	assert_int_equal(tokfile_parse(buf, n, ents, TOKFILE_MAX_ENTRIES, err, sizeof err), -1);
	assert_non_null(strstr(err, "more than"));
	free(buf);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(tokfile_name_ok("alice", 5));
	assert_true(tokfile_name_ok("ci-runner_2.prod@eu", 19));
	assert_false(tokfile_name_ok("", 0));
	assert_false(tokfile_name_ok("token", 5));
	assert_true(tokfile_name_ok("tokens", 6));
	assert_false(tokfile_name_ok("a b", 3));
	assert_false(tokfile_name_ok("a/b", 3));
	assert_false(tokfile_name_ok("a:b", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
