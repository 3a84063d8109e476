/*
 * test_cloudfs_reply_proto.c - libvirgo's parser of cloudfs replies
 * (src/lib/cloudfs_reply_proto.c): stat fields and readdir pages, good
 * and damaged.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/lib/cloudfs_reply_proto.h"

static int stat_of(const char *s, struct virgo_stat *st, const char **rest)
{
	return cloudfs_reply_stat(s, s + strlen(s), st, rest);
}

static void stat_fields(void **state)
{
	(void)state;
	struct virgo_stat st;
	const char *rest;
	const char *s = " f 644 4096 1 1000 100 -5 1796289960610779200 3 42 8 name";
	assert_int_equal(stat_of(s, &st, &rest), 0);
	assert_int_equal(st.type, 'f');
	assert_int_equal(st.mode, 0644);
	assert_int_equal(st.size, 4096);
	assert_int_equal(st.nlink, 1);
	assert_int_equal(st.uid, 1000);
	assert_int_equal(st.gid, 100);
	assert_true(st.atime_ns == -5);
	assert_true(st.mtime_ns == 1796289960610779200LL);
	assert_true(st.ctime_ns == 3);
	assert_int_equal(st.ino, 42);
	assert_int_equal(st.blocks, 8);
	assert_string_equal(rest, " name");
	/* the fields alone, spaces doubled */
	assert_int_equal(stat_of("d  755 0 2 0 0 0 0 0 7 0", &st, &rest), 0);
	assert_int_equal(st.type, 'd');
	assert_int_equal(st.mode, 0755);
	assert_string_equal(rest, "");
	/* the end is the length given, not a NUL */
	s = "f 644 1 1 0 0 0 0 0 1 0 trailing";
	assert_int_equal(cloudfs_reply_stat(s, s + 23, &st, &rest), 0);
	assert_int_equal(st.blocks, 0);
	assert_true(rest == s + 23);
	static const char *bad[] = {
		"",
		"f",
		"ff 644 1 1 0 0 0 0 0 1 0",
		"f 648 1 1 0 0 0 0 0 1 0", /* not octal */
		"f 644 1 1 0 0 0 0 0 1", /* a field short */
		"f 644 1 1 0 0 0 0 0 1 0x", /* glued */
		"f 644 -1 1 0 0 0 0 0 1 0", /* only times are signed */
		"f 644 1 1 4294967296 0 0 0 0 1 0", /* uid beyond 32 bits */
		"f 40000000000 1 1 0 0 0 0 0 1 0", /* mode beyond 32 bits */
		"f 644 18446744073709551616 1 0 0 0 0 0 1 0", /* beyond 64 bits */
		"f 644 1 1 0 0 9223372036854775808 0 0 1 0", /* a time beyond int64 */
		"f 644 1 1 0 0 - 0 0 1 0",
		"f 644 1 1 0 0 +1 0 0 1 0",
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_int_equal(stat_of(bad[i], &st, &rest), -1);
	/* the widest values that fit */
	assert_int_equal(stat_of("f 37777777777 18446744073709551615 1 4294967295 0 "
				 "-9223372036854775807 9223372036854775807 0 1 0",
				 &st, &rest),
			 0);
	assert_int_equal(st.mode, 0xffffffffu);
	assert_true(st.size == UINT64_MAX);
	assert_true(st.atime_ns == -INT64_MAX && st.mtime_ns == INT64_MAX);
}

static void page_plus(void **state)
{
	(void)state;
	const char *text = "entry f 644 10 1 0 0 1 2 3 11 8 a\n"
			   "entry d 755 4096 2 0 0 1 2 3 12 8 sub%20dir\r\n"
			   "entry f 644 10 1 0 0 1 2 3 13 8 bad%2\n" /* bad escape: skipped */
			   "entry f 644 ten 1 0 0 1 2 3 14 8 c\n" /* bad field: skipped */
			   "entry f 644 10 1 0 0 1 2 3 15 8\n" /* no name: skipped */
			   "future thing\n" /* a newer node's line: skipped */
			   "entry l 777 1 1 0 0 1 2 3 16 0 %E2%82%AC x\n" /* extra token: ignored */
			   "next 12345\n";
	size_t n = strlen(text);
	assert_int_equal(cloudfs_reply_lines(text, n), 8);
	struct virgo_direntplus d[8];
	uint64_t next = 99;
	assert_int_equal(cloudfs_reply_page(text, n, CLOUDFS_PAGE_PLUS, d, 8, &next), 3);
	assert_true(next == 12345);
	assert_string_equal(d[0].name, "a");
	assert_int_equal(d[0].st.ino, 11);
	assert_string_equal(d[1].name, "sub dir");
	assert_int_equal(d[1].st.type, 'd');
	assert_int_equal(d[1].st.nlink, 2);
	assert_string_equal(d[2].name, "\xe2\x82\xac");
	assert_int_equal(d[2].st.type, 'l');
	/* max bounds what is written; the cursor is still read */
	memset(d, 0x5a, sizeof d);
	assert_int_equal(cloudfs_reply_page(text, n, CLOUDFS_PAGE_PLUS, d, 1, &next), 1);
	assert_string_equal(d[0].name, "a");
	assert_int_equal(d[1].name[0], 0x5a);
	assert_true(next == 12345);
	/* the plain form's lines are not taken for plus */
	assert_int_equal(cloudfs_reply_page("ent f 644 1 0 x\n", 16, CLOUDFS_PAGE_PLUS, d, 8, &next), 0);
	assert_true(next == 0);
	/* cut anywhere: never more than the whole, never past the length */
	for (size_t cut = 0; cut <= n; cut++) {
		long k = cloudfs_reply_page(text, cut, CLOUDFS_PAGE_PLUS, d, 8, &next);
		assert_true(k >= 0 && k <= 3);
	}
	/* a name longer than 255 bytes is skipped */
	char longl[1200];
	int w = snprintf(longl, sizeof longl, "entry f 644 1 1 0 0 1 2 3 4 0 ");
	memset(longl + w, 'n', 256);
	strcpy(longl + w + 256, "\nnext 0\n");
	assert_int_equal(cloudfs_reply_page(longl, strlen(longl), CLOUDFS_PAGE_PLUS, d, 8, &next), 0);
	longl[w + 255] = '\n';
	assert_int_equal(cloudfs_reply_page(longl, (size_t)w + 256, CLOUDFS_PAGE_PLUS, d, 8, &next), 1);
	assert_int_equal(strlen(d[0].name), 255);
}

static void page_plain(void **state)
{
	(void)state;
	const char *text = "ent f 644 10 -1 a\n"
			   "ent d 755 4096 7 b%25\n"
			   "ent f 9 10 1 c\n" /* not octal: skipped */
			   "ent f 644 10 1\n" /* no name: skipped */
			   "entry f 644 10 1 0 0 1 2 3 11 8 e\n" /* the plus form: skipped */
			   "next 0\n";
	struct virgo_dirent d[8];
	uint64_t next = 5;
	assert_int_equal(cloudfs_reply_page(text, strlen(text), CLOUDFS_PAGE_ENT, d, 8, &next), 2);
	assert_true(next == 0);
	assert_string_equal(d[0].name, "a");
	assert_int_equal(d[0].type, 'f');
	assert_int_equal(d[0].mode, 0644);
	assert_int_equal(d[0].size, 10);
	assert_true(d[0].mtime_ns == -1);
	assert_string_equal(d[1].name, "b%");
	assert_int_equal(d[1].type, 'd');
	/* no page at all, and one too large */
	assert_int_equal(cloudfs_reply_page("", 0, CLOUDFS_PAGE_ENT, d, 8, &next), 0);
	assert_int_equal(cloudfs_reply_lines("", 0), 0);
	assert_int_equal(cloudfs_reply_lines("x", 1), 1);
	assert_int_equal(cloudfs_reply_page(text, CLOUDFS_PAGE_MAX + 1, CLOUDFS_PAGE_ENT, d, 8, &next),
			 -EMSGSIZE);
}

/* Flag t's page: "name <type> <name>" lines, the type only (every other
 * field 0); the other forms and bad lines skipped. */
static void page_names(void **state)
{
	(void)state;
	const char *text = "name f a\r\n"
			   "name d b%20c\n"
			   "name l\n" /* no name: skipped */
			   "name ff x\n" /* not one letter: skipped */
			   "ent f 644 10 1 e\n"
			   "entry f 644 10 1 0 0 1 2 3 11 8 e\n"
			   "name p %zz\n" /* a bad escape: skipped */
			   "next 77\n";
	struct virgo_direntplus d[8];
	memset(d, 0x55, sizeof d);
	uint64_t next = 0;
	assert_int_equal(cloudfs_reply_page(text, strlen(text), CLOUDFS_PAGE_NAMES, d, 8, &next), 2);
	assert_true(next == 77);
	assert_string_equal(d[0].name, "a");
	assert_int_equal(d[0].st.type, 'f');
	assert_int_equal(d[0].st.size, 0);
	assert_int_equal(d[0].st.mode, 0);
	assert_true(d[0].st.ino == 0 && d[0].st.mtime_ns == 0);
	assert_string_equal(d[1].name, "b c");
	assert_int_equal(d[1].st.type, 'd');
	/* the other kinds take none of them */
	assert_int_equal(cloudfs_reply_page("name f a\n", 9, CLOUDFS_PAGE_PLUS, d, 8, &next), 0);
	assert_int_equal(cloudfs_reply_page("name f a\n", 9, CLOUDFS_PAGE_ENT, d, 8, &next), 0);
	assert_int_equal(cloudfs_reply_page(text, strlen(text), CLOUDFS_PAGE_NAMES, d, 1, &next), 1);
}

/* A full page as the node makes it (4,096 entries): every one parsed. */
static void page_full(void **state)
{
	(void)state;
	size_t cap = 4096 * 160 + 32, n = 0;
	char *text = malloc(cap);
	assert_non_null(text);
	for (int i = 0; i < 4096; i++)
		n += (size_t)snprintf(text + n, cap - n,
				      "entry f 644 4096 1 1000 1000 1796289960610779200 "
				      "1796289960610779201 1796289960610779202 %d 8 f%06d\n",
				      1000 + i, i);
	n += (size_t)snprintf(text + n, cap - n, "next 987654321\n");
	struct virgo_direntplus *d = malloc(4097 * sizeof *d);
	assert_non_null(d);
	assert_int_equal(cloudfs_reply_lines(text, n), 4097);
	uint64_t next;
	assert_int_equal(cloudfs_reply_page(text, n, CLOUDFS_PAGE_PLUS, d, 4097, &next), 4096);
	assert_true(next == 987654321);
	char want[16];
	for (int i = 0; i < 4096; i++) {
		snprintf(want, sizeof want, "f%06d", i);
		assert_string_equal(d[i].name, want);
		assert_int_equal(d[i].st.ino, 1000 + i);
		assert_true(d[i].st.ctime_ns == 1796289960610779202LL);
	}
	free(d);
	free(text);
}

/* The cursor read from the end of a page, before its entries are
 * parsed, is the one a full parse gives. */
static void page_next(void **state)
{
	(void)state;
	static const char *pages[] = {
		"entry f 644 10 1 0 0 1 2 3 11 8 a\nnext 77\n",
		"entry f 644 10 1 0 0 1 2 3 11 8 a\r\nnext 78\r\n",
		"next 5\nentry f 644 10 1 0 0 1 2 3 11 8 a\nnext 79", /* the last one counts */
		"next 80\n\n\n",
		"entry f 644 10 1 0 0 1 2 3 11 8 a\n",
		"next x\n",
		"next 18446744073709551616\n",
		"",
		"\n",
		"nex",
	};
	static const uint64_t want[] = {77, 78, 79, 80, 0, 0, 0, 0, 0, 0};
	struct virgo_direntplus d[4];
	for (size_t i = 0; i < sizeof pages / sizeof *pages; i++) {
		uint64_t next;
		size_t n = strlen(pages[i]);
		assert_true(cloudfs_reply_page(pages[i], n, CLOUDFS_PAGE_PLUS, d, 4, &next) >= 0);
		assert_true(next == want[i]);
		assert_true(cloudfs_reply_next(pages[i], n) == want[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(stat_fields),
		cmocka_unit_test(page_plus),
		cmocka_unit_test(page_plain),
		cmocka_unit_test(page_names),
		cmocka_unit_test(page_full),
		cmocka_unit_test(page_next),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
