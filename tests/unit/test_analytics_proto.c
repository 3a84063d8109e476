/*
 * test_analytics_proto.c - the kernel analytics formats: the original's
 * virgo_kernel_analytics.conf lines (COMPAT.md), publisher chunks,
 * native requests, limits and malformed input.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/evclock.h"
#include "../../src/services/analytics/analytics_proto.h"

/* All pairs of s as "k=v|k=v|" (bad pieces as "!piece|"). */
static void pairs(const char *s, char *out, size_t cap)
{
	size_t pos = 0, o = 0;
	struct an_pair p;
	int rc;
	out[0] = '\0';
	while ((rc = an_next_pair(s, strlen(s), &pos, &p)) != 0) {
		if (rc > 0)
			o += (size_t)snprintf(out + o, cap - o, "%.*s=%.*s|", (int)p.klen, p.key,
					      (int)p.vlen, p.val);
		else
			o += (size_t)snprintf(out + o, cap - o, "!%.*s|", (int)p.klen, p.key);
		assert_true(o < cap);
	}
}

static void original_conf_lines(void **state)
{
	(void)state;
	char out[1024];
	/* COMPAT.md: the original's file, then the balancer's appended load */
	pairs("match=True,kernel_analytics1=v1\n", out, sizeof out);
	assert_string_equal(out, "match=True|kernel_analytics1=v1|");
	pairs("match=True,kernel_analytics1=v1\n,localhost_load=[0.52, 0.58, 0.59]\n", out,
	      sizeof out);
	assert_string_equal(out, "match=True|kernel_analytics1=v1|localhost_load=[0.52, 0.58, 0.59]|");
	/* notes §898: the Perceptron's variable; §775: nc -l lines */
	pairs("MaxNetworkBandwidth=255", out, sizeof out);
	assert_string_equal(out, "MaxNetworkBandwidth=255|");
	pairs("k1=v1\nk2=v2\r\n", out, sizeof out);
	assert_string_equal(out, "k1=v1|k2=v2|");
	/* several lines, comments, blanks, spaces around, nested brackets */
	pairs("# learnt by AsFer\n  a = 1 ,, b=(x, [y, z]) \n\n# c=3\nd={p: 1, q: 2},e=\n", out,
	      sizeof out);
	assert_string_equal(out, "a=1|b=(x, [y, z])|d={p: 1, q: 2}|e=|");
	/* an unbalanced bracket only lasts to the end of its line */
	pairs("x=[1, 2\ny=3", out, sizeof out);
	assert_string_equal(out, "x=[1, 2|y=3|");
	/* values may hold '=' */
	pairs("expr=a=b", out, sizeof out);
	assert_string_equal(out, "expr=a=b|");
}

static void bad_pieces_are_skipped(void **state)
{
	(void)state;
	char out[4096];
	pairs("novalue,ok=1,bad key=2,=3,k\xff=4,z=9", out, sizeof out);
	assert_string_equal(out, "!novalue|ok=1|!bad key|!|!k\xff|z=9|");
	char big[AN_MAX_VALUE + 16];
	memset(big, 'v', sizeof big);
	memcpy(big, "k=", 2);
	big[AN_MAX_VALUE + 2] = '\0'; /* exactly the limit */
	pairs(big, out, sizeof out);
	assert_int_equal(out[0], 'k');
	memset(big, 'v', sizeof big);
	memcpy(big, "k=", 2);
	big[AN_MAX_VALUE + 3] = '\0'; /* one over */
	pairs(big, out, sizeof out);
	assert_string_equal(out, "!k|");
	char key[AN_MAX_KEY + 8];
	memset(key, 'k', sizeof key);
	snprintf(key + AN_MAX_KEY + 1, 7, "=1");
	pairs(key, out, sizeof out);
	assert_int_equal(out[0], '!');
	assert_true(an_key_ok("a.b:c/d-e_F9", 12));
	assert_false(an_key_ok("", 0));
}

static void requests(void **state)
{
	(void)state;
	struct an_req r;
#define P(s) an_parse_request(s, strlen(s), &r)
	assert_int_equal(P("get match"), 0);
	assert_int_equal(r.cmd, AN_GET);
	assert_int_equal(r.arg_len, 5);
	assert_int_equal(P("GET  match  "), 0);
	assert_int_equal(r.cmd, AN_GET);
	assert_int_equal(r.arg_len, 5);
	assert_int_equal(P("get"), -EINVAL);
	assert_int_equal(P("get a b"), -EINVAL);
	assert_int_equal(P("set cpu_workers=1"), 0);
	assert_int_equal(r.cmd, AN_SET);
	assert_memory_equal(r.arg, "cpu_workers=1", 13);
	assert_int_equal(P("set cpu_workers"), -EINVAL);
	assert_int_equal(P("MaxNetworkBandwidth=255,match=True"), 0);
	assert_int_equal(r.cmd, AN_PUBLISH);
	assert_int_equal(r.arg_len, 34);
	assert_int_equal(P("get=5"), 0); /* a variable named get */
	assert_int_equal(r.cmd, AN_PUBLISH);
	assert_int_equal(P("ls"), 0);
	assert_int_equal(r.cmd, AN_LS);
	assert_int_equal(r.arg_len, 0);
	assert_int_equal(P("ls cpu_"), 0);
	assert_int_equal(r.arg_len, 4);
	assert_int_equal(P("watch"), 0);
	assert_int_equal(r.cmd, AN_WATCH);
	assert_false(r.has_rev);
	assert_int_equal(P("watch from 42"), 0);
	assert_true(r.has_rev);
	assert_int_equal(r.rev, 42);
	assert_int_equal(P("watch from 18446744073709551615"), 0);
	assert_true(r.rev == UINT64_MAX);
	assert_int_equal(P("watch from 18446744073709551616"), -EINVAL);
	assert_int_equal(P("watch from x"), -EINVAL);
	assert_int_equal(P("watch 5"), -EINVAL);
	assert_int_equal(P("history MaxNetworkBandwidth"), 0);
	assert_int_equal(r.cmd, AN_HISTORY);
	assert_int_equal(P(AN_STREAM_START), 0);
	assert_int_equal(r.cmd, AN_STREAM);
	assert_int_equal(P("help"), 0);
	assert_int_equal(r.cmd, AN_HELP);
	assert_int_equal(P("quit"), 0);
	assert_int_equal(r.cmd, AN_QUIT);
	assert_int_equal(P("frobnicate"), -EINVAL);
	assert_int_equal(r.cmd, AN_BAD);
	assert_non_null(r.err);
	assert_int_equal(P("   "), -EINVAL);
#undef P
}

static void random_bytes_never_break_the_parser(void **state)
{
	(void)state;
	uint64_t x = 88172645463325252ull;
	char buf[512];
	for (int round = 0; round < 20000; round++) {
		size_t n = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		n = x % sizeof buf;
		for (size_t i = 0; i < n; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			static const char alpha[] = "ab=,[](){}\n\r #\0xyz09";
			buf[i] = alpha[x % (sizeof alpha - 1)];
		}
		size_t pos = 0, last = 0;
		struct an_pair p;
		int rc, guard = 0;
		while ((rc = an_next_pair(buf, n, &pos, &p)) != 0) {
			assert_true(pos <= n);
			assert_true(pos > last || rc == 0);
			last = pos;
			if (rc > 0) {
				assert_true(p.key >= buf && p.key + p.klen <= buf + n);
				assert_true(p.val >= buf && p.val + p.vlen <= buf + n);
			}
			assert_true(++guard <= (int)n + 1);
		}
		struct an_req r;
		an_parse_request(buf, n, &r);
		if (r.cmd != AN_BAD)
			assert_true(r.arg_len == 0 || (r.arg >= buf && r.arg + r.arg_len <= buf + n));
	}
}

/* the hand-made decimal (evc_u64) of replies and changes: every digit count, the
 * extremes, and nothing written past the number */
static void decimal_numbers(void **state)
{
	(void)state;
	char buf[32], want[32];
	uint64_t vals[] = {0, 1, 9, 10, 99, 100, 12345, 1048576, UINT64_MAX / 2, UINT64_MAX};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		memset(buf, '#', sizeof buf);
		char *e = buf + evc_u64(buf, vals[i]);
		int n = snprintf(want, sizeof want, "%" PRIu64, vals[i]);
		assert_int_equal(e - buf, n);
		assert_memory_equal(buf, want, (size_t)n);
		assert_int_equal(*e, '#');
	}
	for (uint64_t v = 1; v < UINT64_MAX / 10; v *= 10) { /* 10^k - 1 and 10^k */
		char *e = buf + evc_u64(buf, v * 10 - 1);
		assert_int_equal(e - buf, snprintf(want, sizeof want, "%" PRIu64, v * 10 - 1));
		assert_memory_equal(buf, want, (size_t)(e - buf));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(original_conf_lines),
		cmocka_unit_test(bad_pieces_are_skipped),
		cmocka_unit_test(requests),
		cmocka_unit_test(random_bytes_never_break_the_parser),
		cmocka_unit_test(decimal_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
