/*
 * test_span_reply.c - libvirgo's pure parts: span descriptors and reply
 * line classification.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/vuid.h"
#include "../../src/lib/reply.h"
#include "../../src/lib/span.h"

static void span_round_trip(void **state)
{
	(void)state;
	uint64_t v[3] = {vuid_make(1, false, 10), vuid_make(2, false, 11), vuid_make(3, false, 12)};
	struct span s = {.total = 2500, .chunk = 1000, .n = 3, .vuids = v}, back;
	size_t len;
	char *text = span_format(&s, &len);
	assert_int_equal(span_parse((const uint8_t *)text, len, &back), 0);
	assert_int_equal(back.n, 3);
	assert_true(back.total == 2500 && back.chunk == 1000);
	assert_memory_equal(back.vuids, v, sizeof v);
	span_clear(&back);
	/* damaged descriptors are refused */
	assert_int_equal(span_parse((const uint8_t *)text, len - 1, &back), -EBADMSG);
	text[0] = 'X';
	assert_int_equal(span_parse((const uint8_t *)text, len, &back), -EBADMSG);
	free(text);
	static const char *bad[] = {
		"VSPAN1 2500 1000 2\n000100000000000a\n000200000000000b\n", /* count mismatch */
		"VSPAN1 2500 0 3\n",
		"VSPAN1 100 100 1\n000180000000000a\n", /* chunk is itself a span */
		"VSPAN1 100 100 1\nzz\n",
		"VSPAN1 100 100 1\n000100000000000a\nextra\n",
		"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(span_parse((const uint8_t *)bad[i], strlen(bad[i]), &back), -EBADMSG);
	const char good[] = "VSPAN1 100 100 1\n000100000000000a\n";
	assert_int_equal(span_parse((const uint8_t *)good, sizeof good - 1, &back), 0);
	span_clear(&back);
}

static enum vc_reply_kind kind(const char *l, uint64_t *n, int *err)
{
	return vc_reply_classify(l, strlen(l), n, err);
}

static void replies(void **state)
{
	(void)state;
	uint64_t n = 0;
	int err = 0;
	assert_int_equal(kind("OK", &n, &err), VC_R_OK);
	assert_int_equal(kind("OK 154dc86b9c03", &n, &err), VC_R_OK);
	assert_int_equal(kind("VALUE 42", &n, &err), VC_R_VALUE);
	assert_int_equal(n, 42);
	assert_int_equal(kind("PONG 3", &n, &err), VC_R_PONG);
	assert_int_equal(n, 3);
	assert_int_equal(kind("ERR ENOENT no such allocation", &n, &err), VC_R_ERR);
	assert_int_equal(err, ENOENT);
	assert_int_equal(kind("ERR EWHATEVER x", &n, &err), VC_R_ERR);
	assert_int_equal(err, EPROTO);
	assert_int_equal(kind("STAT bytes 1", &n, &err), VC_R_STAT);
	assert_int_equal(kind("END", &n, &err), VC_R_STAT);
	assert_int_equal(kind("VALUE x", &n, &err), VC_R_BAD);
	assert_int_equal(kind("VALUE", &n, &err), VC_R_BAD);
	assert_int_equal(kind("OKAY", &n, &err), VC_R_BAD);
	assert_int_equal(kind("", &n, &err), VC_R_BAD);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(span_round_trip),
		cmocka_unit_test(replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
