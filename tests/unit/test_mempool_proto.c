/*
 * test_mempool_proto.c - the mempool parser: native commands, the notes'
 * call syntax, payload handling, limits and error paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/mempool_proto.h"

static const struct mp_limits lim = {.max_line = 128, .max_value = 1000};

struct parsed {
	enum mp_parse_result r;
	struct mp_req req;
	size_t used;
	uint64_t need;
	int code;
	const char *msg;
};

static struct parsed parse(struct frame_state *st, const char *s, size_t n, bool eof)
{
	struct parsed p;
	p.r = mp_parse(st, (const uint8_t *)s, n, eof, &lim, &p.req, &p.used, &p.need, &p.code, &p.msg);
	return p;
}

#define P(s) parse(&st, s, sizeof(s) - 1, false)

static void native_commands(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("malloc 5000\r\n");
	assert_int_equal(p.r, MP_REQ);
	assert_int_equal(p.req.op, MP_OP_MALLOC);
	assert_int_equal(p.req.size, 5000);
	assert_false(p.req.legacy);
	p = P("malloc 64 span\r\n");
	assert_true(p.req.span);
	p = P("get 1000000000abc\r\n");
	assert_int_equal(p.req.op, MP_OP_GET);
	assert_true(p.req.vuid == 0x1000000000abcULL);
	assert_false(p.req.has_offset);
	p = P("get 1000000000abc 10 20\r\n");
	assert_true(p.req.has_offset);
	assert_int_equal(p.req.offset, 10);
	assert_int_equal(p.req.length, 20);
	p = P("FREE 1000000000abc\n");
	assert_int_equal(p.req.op, MP_OP_FREE);
	assert_int_equal(P("stats\r\n").req.op, MP_OP_STATS);
	assert_int_equal(P("ping\r\n").req.op, MP_OP_PING);
	assert_int_equal(P("help\r\n").req.op, MP_OP_HELP);
	assert_int_equal(P("quit\r\n").req.op, MP_OP_QUIT);
}

/* Issue 15: malloc's optional key=value words, ls, renew, free owner=. */
static void find_memory_commands(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("malloc 5000 ttl=3600000 owner=host:42 rid=00ff\r\n");
	assert_int_equal(p.r, MP_REQ);
	assert_int_equal(p.req.size, 5000);
	assert_int_equal(p.req.ttl_ms, 3600000);
	assert_int_equal(p.req.owner_len, 7);
	assert_memory_equal(p.req.owner, "host:42", 7);
	assert_true(p.req.has_rid);
	assert_int_equal(p.req.rid, 0xff);
	assert_false(p.req.span);
	p = P("malloc 64 rid=FFFFFFFFFFFFFFFF span\r\n");
	assert_int_equal(p.r, MP_REQ);
	assert_true(p.req.span);
	assert_true(p.req.rid == UINT64_MAX);
	p = P("malloc 64\r\n");
	assert_false(p.req.has_rid);
	assert_null(p.req.owner);
	assert_int_equal(p.req.ttl_ms, 0);
	p = P("ls\r\n");
	assert_int_equal(p.req.op, MP_OP_LS);
	assert_int_equal(p.req.cursor, 0);
	assert_int_equal(p.req.count, MP_LS_DEFAULT);
	p = P("ls 1f00000000000a 1000\r\n");
	assert_int_equal(p.req.op, MP_OP_LS);
	assert_true(p.req.cursor == 0x1f00000000000aULL);
	assert_int_equal(p.req.count, 1000);
	p = P("renew 1000000000abc 5000\r\n");
	assert_int_equal(p.req.op, MP_OP_RENEW);
	assert_int_equal(p.req.ttl_ms, 5000);
	p = P("free owner=job-7\r\n");
	assert_int_equal(p.req.op, MP_OP_FREE_OWNER);
	assert_int_equal(p.req.owner_len, 5);
	static const char *bad[] = {
		"malloc 1 ttl=0\r\n",	   "malloc 1 ttl=x\r\n",	  "malloc 1 ttl=1 ttl=2\r\n",
		"malloc 1 owner=\r\n",	   "malloc 1 owner=a,b\r\n", "malloc 1 rid=\r\n",
		"malloc 1 rid=12345678901234567\r\n", "malloc 1 rid=g\r\n", "malloc 1 span span\r\n",
		"malloc 1 foo=1\r\n",	   "ls 0 0\r\n",		  "ls 0 1001\r\n",
		"ls zz\r\n",		   "ls 0 1 2\r\n",		  "renew 1000000000abc\r\n",
		"renew 1000000000abc x\r\n", "free owner=\r\n",	  "free owner=a b\r\n",
		"malloc 1 owner=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&st, 0, sizeof st);
		p = parse(&st, bad[i], strlen(bad[i]), false);
		assert_int_equal(p.r, MP_ERROR);
		assert_int_equal(p.code, EINVAL);
		assert_int_equal(p.used, strlen(bad[i]));
	}
	assert_true(mp_owner_valid("a.b_c-d:e@f/9", 13));
	assert_false(mp_owner_valid("a b", 3));
	assert_false(mp_owner_valid("", 0));
}

static void set_with_payload(void **state)
{
	(void)state;
	struct frame_state st = {0};
	const char req[] = "set 1000000000abc 5\r\nh\0\r\no\r\nping\r\n";
	struct parsed p = parse(&st, req, sizeof req - 1, false);
	assert_int_equal(p.r, MP_REQ);
	assert_int_equal(p.req.op, MP_OP_SET);
	assert_int_equal(p.req.data_len, 5);
	assert_memory_equal(p.req.data, "h\0\r\no", 5);
	assert_int_equal(p.used, sizeof "set 1000000000abc 5\r\nh\0\r\no\r\n" - 1);
	assert_false(p.req.has_offset);
	p = P("set 1000000000abc 2 7\r\nhi\r\n");
	assert_true(p.req.has_offset);
	assert_int_equal(p.req.offset, 7);
	/* payload not here yet: nothing consumed, told how much to wait for */
	p = P("set 1000000000abc 100\r\nabc");
	assert_int_equal(p.r, MP_MORE);
	assert_int_equal(p.used, 0);
	assert_int_equal(p.need, 23 + 101);
	/* zero-length value */
	p = P("set 1000000000abc 0\r\n\r\n");
	assert_int_equal(p.r, MP_REQ);
	assert_int_equal(p.req.data_len, 0);
}

static void set_errors(void **state)
{
	(void)state;
	struct frame_state st = {0};
	/* bad data terminator: error, the rest of that line is dropped */
	struct parsed p = P("set 1000000000abc 2\r\nhiXX\r\nping\r\n");
	assert_int_equal(p.r, MP_ERROR);
	assert_int_equal(p.code, EINVAL);
	p = parse(&st, "XX\r\nping\r\n", 10, false);
	assert_int_equal(p.r, MP_REQ);
	assert_int_equal(p.req.op, MP_OP_PING);
	/* too large: E2BIG and the payload is swallowed, not buffered */
	memset(&st, 0, sizeof st);
	p = P("set 1000000000abc 5000\r\n");
	assert_int_equal(p.r, MP_ERROR);
	assert_int_equal(p.code, E2BIG);
	assert_int_equal(st.swallow, 5000);
	char junk[5000];
	memset(junk, 'z', sizeof junk);
	p = parse(&st, junk, sizeof junk, false);
	assert_int_equal(p.r, MP_MORE);
	assert_int_equal(p.used, sizeof junk);
	p = P("\r\nping\r\n");
	assert_int_equal(p.r, MP_REQ);
	assert_int_equal(p.req.op, MP_OP_PING);
	/* bad vuid with a readable count: payload still consumed */
	memset(&st, 0, sizeof st);
	p = P("set nothex 2\r\nhi\r\nping\r\n");
	assert_int_equal(p.r, MP_ERROR);
	assert_int_equal(p.code, EINVAL);
	assert_int_equal(p.used, sizeof "set nothex 2\r\nhi\r\n" - 1);
	/* negative or huge counts */
	p = P("set 1000000000abc -1\r\n");
	assert_int_equal(p.r, MP_ERROR);
	p = P("set 1000000000abc 99999999999999999999999\r\n");
	assert_int_equal(p.r, MP_ERROR);
}

static void malformed(void **state)
{
	(void)state;
	struct frame_state st = {0};
	static const char *bad[] = {"malloc\r\n",	    "malloc x\r\n",	 "malloc 1 2\r\n",
				    "get\r\n",		    "get 1000000000abc 1\r\n", "free\r\n",
				    "free 0\r\n",	    "stats now\r\n",	 "frob\r\n",
				    "a b c d e f g h\r\n", "get 1000000000abc 0 2000\r\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&st, 0, sizeof st);
		struct parsed p = parse(&st, bad[i], strlen(bad[i]), false);
		assert_int_equal(p.r, MP_ERROR);
		assert_int_equal(p.used, strlen(bad[i]));
		assert_non_null(p.msg);
	}
	/* line too long */
	memset(&st, 0, sizeof st);
	char big[400];
	memset(big, 'x', sizeof big);
	struct parsed p = parse(&st, big, sizeof big, false);
	assert_int_equal(p.r, MP_ERROR);
	assert_int_equal(p.code, E2BIG);
}

static void legacy_call_syntax(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("virgo_cloud_malloc(1000)\r\n");
	assert_int_equal(p.r, MP_REQ);
	assert_true(p.req.legacy);
	assert_int_equal(p.req.op, MP_OP_MALLOC);
	assert_int_equal(p.req.size, 1000);
	p = P("virgo_cloud_malloc(\"2500\")\n");
	assert_int_equal(p.req.size, 2500);
	p = P("virgo_cloud_set(\"1000000000abc\",\"testdata\")\r\n");
	assert_int_equal(p.req.op, MP_OP_SET);
	assert_true(p.req.vuid == 0x1000000000abcULL);
	assert_int_equal(p.req.data_len, 10);
	assert_memory_equal(p.req.data, "\"testdata\"", 10);
	p = P("virgo_cloud_set(1000000000abc,a, b) c)\r\n");
	assert_int_equal(p.req.data_len, 7);
	assert_memory_equal(p.req.data, "a, b) c", 7);
	p = P("virgo_cloud_set(1000000000abc,)\r\n");
	assert_int_equal(p.r, MP_REQ);
	assert_int_equal(p.req.data_len, 0);
	p = P("virgo_cloud_get(1000000000abc)\r\n");
	assert_int_equal(p.req.op, MP_OP_GET);
	p = P("virgo_cloud_free( 1000000000abc )\r\n");
	assert_int_equal(p.req.op, MP_OP_FREE);
	/* the original's NUL-padded buffer */
	char padded[3000] = "virgo_cloud_get(1000000000abc)";
	p = parse(&st, padded, sizeof padded, false);
	assert_int_equal(p.r, MP_REQ);
	p = parse(&st, padded + p.used, sizeof padded - p.used, false);
	assert_int_equal(p.r, MP_MORE);
	/* errors */
	assert_int_equal(P("virgo_cloud_malloc(abc)\r\n").r, MP_ERROR);
	assert_int_equal(P("virgo_cloud_malloc(10\r\n").r, MP_ERROR);
	assert_int_equal(P("virgo_cloud_set(1000000000abc)\r\n").r, MP_ERROR);
	assert_int_equal(P("virgo_cloud_get(xyz)\r\n").r, MP_ERROR);
	p = P("virgo_cloud_explode(1)\r\n");
	assert_int_equal(p.r, MP_ERROR);
	assert_int_equal(p.code, ENOSYS);
}

/* Every byte string must yield a request, an error or "more", consume
 * within bounds, and never read outside the buffer (ASan watches). */
static void random_bytes_never_break_the_parser(void **state)
{
	(void)state;
	unsigned s = 12345;
	for (int round = 0; round < 2000; round++) {
		struct frame_state st = {0};
		size_t n = (size_t)(s % 300) + 1;
		uint8_t *buf = malloc(n);
		for (size_t i = 0; i < n; i++) {
			s = s * 1103515245u + 12345u;
			uint8_t b = (uint8_t)(s >> 16);
			static const char alphabet[] = "set get malloc free 0123456789abcdef \r\n\0(),\"virgo_cloud_";
			buf[i] = (s & 0x100) ? b : (uint8_t)alphabet[b % (sizeof alphabet - 1)];
		}
		size_t off = 0;
		for (int steps = 0; off < n && steps < 1000; steps++) {
			struct mp_req req;
			size_t used;
			uint64_t need;
			int code;
			const char *msg;
			enum mp_parse_result r =
				mp_parse(&st, buf + off, n - off, true, &lim, &req, &used, &need, &code, &msg);
			assert_true(used <= n - off);
			if (r == MP_REQ && req.op == MP_OP_SET) {
				assert_true(req.data >= buf + off && req.data + req.data_len <= buf + n);
			}
			off += used;
			if (r == MP_MORE && used == 0)
				break;
		}
		free(buf);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(find_memory_commands),
		cmocka_unit_test(native_commands),
		cmocka_unit_test(set_with_payload),
		cmocka_unit_test(set_errors),
		cmocka_unit_test(malformed),
		cmocka_unit_test(legacy_call_syntax),
		cmocka_unit_test(random_bytes_never_break_the_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
