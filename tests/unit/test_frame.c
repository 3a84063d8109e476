/*
 * test_frame.c - request framing: terminators, NUL padding, oversized
 * lines, payloads and swallowing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/frame.h"

static enum frame_result next(struct frame_state *st, const char *s, size_t n, bool eof,
			      size_t max, char *line, size_t *used)
{
	const uint8_t *l;
	size_t ll;
	enum frame_result r = frame_next_line(st, (const uint8_t *)s, n, eof, max, &l, &ll, used);
	if (r == FRAME_LINE) {
		memcpy(line, l, ll);
		line[ll] = '\0';
	}
	return r;
}

static void terminators(void **state)
{
	(void)state;
	struct frame_state st = {0};
	char line[64];
	size_t used;
	assert_int_equal(next(&st, "ping\r\nx", 7, false, 100, line, &used), FRAME_LINE);
	assert_string_equal(line, "ping");
	assert_int_equal(used, 6);
	assert_int_equal(next(&st, "ping\nx", 6, false, 100, line, &used), FRAME_LINE);
	assert_int_equal(used, 5);
	assert_int_equal(next(&st, "ping\0\0\0", 7, false, 100, line, &used), FRAME_LINE);
	assert_int_equal(used, 5);
	/* lone CR at the end: wait for a possible LF */
	assert_int_equal(next(&st, "ping\r", 5, false, 100, line, &used), FRAME_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(next(&st, "ping\r", 5, true, 100, line, &used), FRAME_LINE);
	/* no terminator: more, unless EOF */
	assert_int_equal(next(&st, "pin", 3, false, 100, line, &used), FRAME_MORE);
	assert_int_equal(next(&st, "pin", 3, true, 100, line, &used), FRAME_LINE);
	assert_string_equal(line, "pin");
}

static void skips_empty_and_nul_padding(void **state)
{
	(void)state;
	struct frame_state st = {0};
	char line[64];
	size_t used;
	const char buf[] = "\0\0\r\n\r\nget x\n";
	assert_int_equal(next(&st, buf, sizeof buf - 1, false, 100, line, &used), FRAME_LINE);
	assert_string_equal(line, "get x");
	assert_int_equal(used, sizeof buf - 1);
	assert_int_equal(next(&st, "\0\0\0\0", 4, false, 100, line, &used), FRAME_MORE);
	assert_int_equal(used, 4);
}

static void too_long_then_recovers(void **state)
{
	(void)state;
	struct frame_state st = {0};
	char line[64];
	size_t used;
	char big[300];
	memset(big, 'a', sizeof big);
	assert_int_equal(next(&st, big, sizeof big, false, 16, line, &used), FRAME_TOOLONG);
	assert_true(st.discard_line);
	/* the rest of the long line, across reads, is dropped */
	assert_int_equal(next(&st, big, sizeof big, false, 16, line, &used), FRAME_MORE);
	assert_int_equal(used, sizeof big);
	assert_int_equal(next(&st, "aaa\nping\n", 9, false, 16, line, &used), FRAME_LINE);
	assert_string_equal(line, "ping");
	assert_false(st.discard_line);
}

static void payload(void **state)
{
	(void)state;
	size_t used;
	uint64_t need = 0;
	const uint8_t *b = (const uint8_t *)"hello\r\nnext";
	assert_int_equal(frame_payload(b, 11, 5, false, &used, &need), PAYLOAD_OK);
	assert_int_equal(used, 7);
	assert_int_equal(frame_payload(b, 6, 5, false, &used, &need), PAYLOAD_MORE);
	assert_int_equal(need, 7);
	assert_int_equal(frame_payload(b, 3, 5, false, &used, &need), PAYLOAD_MORE);
	assert_int_equal(need, 6);
	assert_int_equal(frame_payload((const uint8_t *)"hello\n", 6, 5, false, &used, &need),
			 PAYLOAD_OK);
	assert_int_equal(used, 6);
	assert_int_equal(frame_payload((const uint8_t *)"helloXX", 7, 5, false, &used, &need),
			 PAYLOAD_BADTERM);
	assert_int_equal(frame_payload((const uint8_t *)"hel", 3, 5, true, &used, &need),
			 PAYLOAD_BADTERM);
	assert_int_equal(frame_payload((const uint8_t *)"hello", 5, 5, true, &used, &need),
			 PAYLOAD_OK);
	/* a length near UINT64_MAX (a caller with an unbounded max_value)
	 * must not wrap into "complete" (issue 14 #8) */
	need = 0;
	assert_int_equal(frame_payload(b, 11, UINT64_MAX, false, &used, &need), PAYLOAD_MORE);
	assert_true(need == UINT64_MAX);
	assert_int_equal(frame_payload(b, 11, UINT64_MAX - 1, false, &used, &need), PAYLOAD_MORE);
	assert_true(need == UINT64_MAX);
	assert_int_equal(frame_payload(b, 11, UINT64_MAX, true, &used, &need), PAYLOAD_BADTERM);
	/* payload bytes may be anything, NULs and CRLFs included */
	assert_int_equal(frame_payload((const uint8_t *)"\0\r\n\0\n\r\n", 7, 5, false, &used, &need),
			 PAYLOAD_OK);
}

static void tokens_and_numbers(void **state)
{
	(void)state;
	const uint8_t *tok[3];
	size_t tl[3];
	const char *l = "  set\tab  12 ";
	assert_int_equal(frame_tokens((const uint8_t *)l, strlen(l), tok, tl, 3), 3);
	assert_int_equal(tl[1], 2);
	assert_int_equal(frame_tokens((const uint8_t *)"a b c d", 7, tok, tl, 3), -1);
	uint64_t v;
	assert_int_equal(frame_u64((const uint8_t *)"\"42\"", 4, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(frame_u64((const uint8_t *)"18446744073709551615", 20, &v), 0);
	assert_int_equal(frame_u64((const uint8_t *)"18446744073709551616", 20, &v), -1);
	assert_int_equal(frame_u64((const uint8_t *)"-1", 2, &v), -1);
	assert_int_equal(frame_u64((const uint8_t *)"", 0, &v), -1);
	assert_int_equal(frame_u64((const uint8_t *)"12a", 3, &v), -1);
	/* frame_dec: a bound, no quotes */
	assert_int_equal(frame_dec((const uint8_t *)"65535", 5, 65535, &v), 0);
	assert_int_equal(v, 65535);
	assert_int_equal(frame_dec((const uint8_t *)"65536", 5, 65535, &v), -1);
	assert_int_equal(frame_dec((const uint8_t *)"7", 1, 5, &v), -1);
	assert_int_equal(frame_dec((const uint8_t *)"5", 1, 5, &v), 0);
	assert_int_equal(frame_dec((const uint8_t *)"\"4\"", 3, 9, &v), -1);
}

static void swallow(void **state)
{
	(void)state;
	struct frame_state st = {.swallow = 10};
	char line[64];
	size_t used;
	assert_int_equal(next(&st, "0123456", 7, false, 100, line, &used), FRAME_MORE);
	assert_int_equal(used, 7);
	assert_int_equal(st.swallow, 3);
	assert_int_equal(next(&st, "789ping\n", 8, false, 100, line, &used), FRAME_LINE);
	assert_string_equal(line, "ping");
}

/* frame_body: the payload a request line announced ("set x 5\r\nhello\r\n"
 * with the line parsed up to used = 13, after "pad ") */
static void body(void **state)
{
	(void)state;
	const uint8_t *b = (const uint8_t *)"pad set x 5\r\nhello\r\nnext";
	const uint8_t *line = b + 4;
	size_t used = 13, consumed;
	uint64_t need = 0;
	struct frame_state st = {0};
	/* all there */
	assert_int_equal(frame_body(&st, b, 24, false, line, used, 5, 5, &consumed, &need),
			 FRAME_BODY_OK);
	assert_int_equal(consumed, 20);
	/* not yet: the line stays, only what precedes it is dropped */
	need = 0;
	assert_int_equal(frame_body(&st, b, 17, false, line, used, 5, 5, &consumed, &need),
			 FRAME_BODY_MORE);
	assert_int_equal(consumed, 4);
	assert_int_equal(need, 6 + 9); /* "hello" + at least an LF, and the line */
	/* too big: swallowed with its terminator, the rest of the line dropped */
	assert_int_equal(frame_body(&st, b, 24, false, line, used, 5, 4, &consumed, &need),
			 FRAME_BODY_TOOBIG);
	assert_int_equal(consumed, 18);
	assert_true(st.discard_line);
	assert_int_equal(st.swallow, 0);
	/* a bad terminator */
	st = (struct frame_state){0};
	const uint8_t *bad = (const uint8_t *)"set x 5\r\nhelloXXmore\n";
	assert_int_equal(frame_body(&st, bad, 21, false, bad, 9, 5, 5, &consumed, &need),
			 FRAME_BODY_BADTERM);
	assert_true(st.discard_line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(terminators),	     cmocka_unit_test(skips_empty_and_nul_padding),
		cmocka_unit_test(too_long_then_recovers), cmocka_unit_test(payload),
		cmocka_unit_test(tokens_and_numbers),   cmocka_unit_test(swallow), cmocka_unit_test(body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
