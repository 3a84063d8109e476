/*
 * test_eventnet_proto.c - the EventNet parser: every message form of the
 * notes and of the original (edges with three fields and with two and a
 * trailing '#', vertices with '-' and '#' separators, the misspelt
 * vertextmsg), the native commands, limits and malformed input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/eventnet/eventnet_proto.h"

struct parsed {
	enum evn_parse_result r;
	struct evn_req req;
	size_t used;
	int code;
	const char *msg;
};

static struct parsed parse_n(const char *s, size_t n, size_t max_line)
{
	struct parsed p;
	struct frame_state st = {0};
	p.r = evn_parse(&st, (const uint8_t *)s, n, false, max_line, &p.req, &p.used, &p.code, &p.msg);
	return p;
}

#define P(s) parse_n(s, strlen(s), 4096)

static void assert_str(struct evn_str s, const char *want)
{
	assert_int_equal(s.n, strlen(want));
	assert_memory_equal(s.p, want, s.n);
}

static void legacy_edges(void **state)
{
	(void)state;
	struct parsed p = P("eventnet_edgemsg#3#1#2\n"); /* the notes: <id>#<from>#<to> */
	assert_int_equal(p.r, EVN_REQ);
	assert_int_equal(p.req.op, EVN_OP_EDGE);
	assert_true(p.req.legacy);
	assert_str(p.req.id, "1");
	assert_str(p.req.id2, "2");
	assert_int_equal(p.used, strlen("eventnet_edgemsg#3#1#2\n"));

	p = P("eventnet_edgemsg#7#8#\n"); /* the original: <from>#<to># */
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.id, "7");
	assert_str(p.req.id2, "8");

	p = P("eventnet_edgemsg#7#8\r\n"); /* COMPAT.md: without the trailing # */
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.id, "7");
	assert_str(p.req.id2, "8");

	/* NUL-padded, as the original kernel clients sent BUF_SIZE bytes */
	char padded[64] = "eventnet_edgemsg#a#b#c";
	p = parse_n(padded, sizeof padded, 4096);
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.id, "b");
	assert_str(p.req.id2, "c");

	p = P("eventnet_edgemsg#1\n");
	assert_int_equal(p.r, EVN_ERROR);
	assert_int_equal(p.code, EINVAL);
	assert_true(p.req.legacy);
	p = P("eventnet_edgemsg#1#2#3#4#5\n");
	assert_int_equal(p.r, EVN_ERROR);
	p = P("eventnet_edgemsg#1##\n");
	assert_int_equal(p.r, EVN_ERROR);
	p = P("eventnet_edgemsg#a b#c\n");
	assert_int_equal(p.r, EVN_ERROR);
}

static void legacy_vertices(void **state)
{
	(void)state;
	struct parsed p = P("eventnet_vertexmsg#1-alice,bob-(hello,hi)\n");
	assert_int_equal(p.r, EVN_REQ);
	assert_int_equal(p.req.op, EVN_OP_LOG);
	assert_true(p.req.legacy);
	assert_str(p.req.id, "1");
	assert_str(p.req.partakers, "alice,bob");
	assert_str(p.req.conv, "(hello,hi)");

	p = P("eventnet_vertextmsg#2-carol-(a,b),(c,d)\n"); /* the notes' spelling */
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.id, "2");
	assert_str(p.req.partakers, "carol");
	assert_str(p.req.conv, "(a,b),(c,d)");

	p = P("eventnet_vertexmsg#3#alice,bob#(a,b)#(c,d)\n"); /* the original's '#' form */
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.id, "3");
	assert_str(p.req.partakers, "alice,bob");
	assert_str(p.req.conv, "(a,b)#(c,d)");

	p = P("eventnet_vertexmsg#4#dave#(x,y)#\n"); /* a trailing '#' */
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.conv, "(x,y)");

	p = P("eventnet_vertexmsg#5-eve\n"); /* no conversation */
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.partakers, "eve");
	assert_int_equal(p.req.conv.n, 0);

	p = P("eventnet_vertexmsg#6-a-conv with - dashes and spaces\n");
	assert_int_equal(p.r, EVN_REQ);
	assert_str(p.req.conv, "conv with - dashes and spaces");

	p = P("eventnet_vertexmsg#nosep\n");
	assert_int_equal(p.r, EVN_ERROR);
	p = P("eventnet_vertexmsg#-a-b\n"); /* empty id */
	assert_int_equal(p.r, EVN_ERROR);
	p = P("eventnet_vertexmsg#1-a\x01-b\n");
	assert_int_equal(p.r, EVN_ERROR);
	p = P("eventnet_vertexmsg#1-a-b\x02\n");
	assert_int_equal(p.r, EVN_ERROR);
	p = P("eventnet_bogus#1\n");
	assert_int_equal(p.r, EVN_ERROR);
}

static void native_log(void **state)
{
	(void)state;
	struct parsed p = P("log login partakers=alice,web1 after=a,b clock=2:5,1:3 lamport=9 "
			    "conv=(GET, /login) more\n");
	assert_int_equal(p.r, EVN_REQ);
	assert_int_equal(p.req.op, EVN_OP_LOG);
	assert_false(p.req.legacy);
	assert_str(p.req.id, "login");
	assert_str(p.req.partakers, "alice,web1");
	assert_int_equal(p.req.nafter, 2);
	assert_str(p.req.after[0], "a");
	assert_str(p.req.after[1], "b");
	assert_true(p.req.has_clock);
	assert_int_equal(p.req.clock.n, 2);
	assert_int_equal(p.req.clock.e[0].node, 1); /* sorted */
	assert_int_equal(p.req.clock.e[0].c, 3);
	assert_int_equal(p.req.lamport, 9);
	assert_str(p.req.conv, "(GET, /login) more");

	p = P("log x\n");
	assert_int_equal(p.r, EVN_REQ);
	assert_int_equal(p.req.nafter, 0);
	assert_false(p.req.has_clock);

	const char *bad[] = {
		"log\n", "log a#b\n", "log a,b\n", "log a@b\n", "log -\n", "log x bogus=1\n",
		"log x clock=0:1\n", "log x clock=1:0\n", "log x clock=1:1,1:2\n", "log x clock=1:\n",
		"log x clock=1:1,\n", "log x lamport=abc\n", "log x after=\n", "log x after=a,,b\n",
		"log x partakers=a#b\n", "log x partakers=-\n",
		"log x after=1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p = P(bad[i]);
		assert_int_equal(p.r, EVN_ERROR);
		assert_int_equal(p.code, EINVAL);
		assert_non_null(p.msg);
	}
	char id[EVN_ID_MAX + 8] = "log ";
	memset(id + 4, 'x', EVN_ID_MAX + 1);
	id[4 + EVN_ID_MAX + 1] = '\n';
	p = parse_n(id, 4 + EVN_ID_MAX + 2, 4096);
	assert_int_equal(p.r, EVN_ERROR);
}

static void native_queries(void **state)
{
	(void)state;
	struct parsed p = P("edge a b\n");
	assert_int_equal(p.req.op, EVN_OP_EDGE);
	assert_false(p.req.legacy);
	assert_str(p.req.id, "a");
	assert_str(p.req.id2, "b");
	p = P("before a b\n");
	assert_int_equal(p.req.op, EVN_OP_BEFORE);
	p = P("get a\n");
	assert_int_equal(p.req.op, EVN_OP_GET);
	p = P("why a\n");
	assert_int_equal(p.req.op, EVN_OP_WHY);
	assert_int_equal(p.req.count, EVN_WHY_DEFAULT);
	p = P("why a 5\n");
	assert_int_equal(p.req.count, 5);
	p = P("dump\n");
	assert_int_equal(p.req.op, EVN_OP_DUMP);
	assert_int_equal(p.req.cursor, 0);
	assert_int_equal(p.req.count, EVN_DUMP_DEFAULT);
	p = P("dump 10 20\n");
	assert_int_equal(p.req.cursor, 10);
	assert_int_equal(p.req.count, 20);
	const char *bare[] = {"tail\n", "clock\n", "stats\n", "ping\n", "help\n", "quit\n"};
	enum evn_op ops[] = {EVN_OP_TAIL, EVN_OP_CLOCK, EVN_OP_STATS,
			     EVN_OP_PING, EVN_OP_HELP,  EVN_OP_QUIT};
	for (size_t i = 0; i < 6; i++) {
		p = P(bare[i]);
		assert_int_equal(p.r, EVN_REQ);
		assert_int_equal(p.req.op, ops[i]);
	}
	const char *bad[] = {"edge a\n",  "edge a b c\n", "before a\n", "get\n",
			     "why a 100001\n", "dump x\n", "dump 0 0\n", "dump 0 10001\n",
			     "tail x\n", "frobnicate\n", "get a#b\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		p = P(bad[i]);
		assert_int_equal(p.r, EVN_ERROR);
	}
}

static void framing_and_limits(void **state)
{
	(void)state;
	/* incomplete line: more */
	struct parsed p = P("log abc");
	assert_int_equal(p.r, EVN_MORE);
	/* a line over max_line is an error, once */
	char big[300];
	memset(big, 'a', sizeof big);
	memcpy(big, "log ", 4);
	big[sizeof big - 1] = '\n';
	p = parse_n(big, sizeof big, 64);
	assert_int_equal(p.r, EVN_ERROR);
	assert_int_equal(p.code, E2BIG);
	/* pipelined: one request per call */
	const char *two = "ping\nstats\n";
	p = P(two);
	assert_int_equal(p.req.op, EVN_OP_PING);
	assert_int_equal(p.used, 5);
}

static void clocks(void **state)
{
	(void)state;
	struct evc a, b;
	assert_int_equal(evc_parse(&a, "1:2,3:1", 7), 0);
	assert_int_equal(evc_parse(&b, "1:2,3:2", 7), 0);
	assert_int_equal(evc_compare(&a, &b), EVC_BEFORE);
	assert_int_equal(evc_compare(&b, &a), EVC_AFTER);
	assert_int_equal(evc_compare(&a, &a), EVC_EQUAL);
	assert_int_equal(evc_parse(&b, "2:1", 3), 0);
	assert_int_equal(evc_compare(&a, &b), EVC_CONCURRENT);
	assert_int_equal(evc_merge(&a, &b), 0);
	char t[EVC_TEXT_MAX + 1];
	evc_format(&a, t);
	assert_string_equal(t, "1:2,2:1,3:1");
	assert_int_equal(evc_parse(&b, "-", 1), 0);
	assert_int_equal(b.n, 0);
	evc_format(&b, t);
	assert_string_equal(t, "-");
	assert_int_equal(evc_parse(&b, "65536:1", 7), -1);
	assert_int_equal(evc_parse(&b, "1:99999999999999999999", 22), -1);
	/* 65 nodes do not fit */
	struct evc big = {0};
	for (unsigned i = 1; i <= EVC_MAX; i++)
		assert_int_equal(evc_set(&big, (uint16_t)i, 1), 0);
	assert_int_equal(evc_set(&big, EVC_MAX + 1, 1), -1);
}

/* A control byte anywhere in a conversation is refused (the check goes
 * eight bytes a step); bytes 0x80-0xff (UTF-8) are text. */
static void conversation_bytes(void **state)
{
	(void)state;
	for (int pos = 0; pos < 40; pos++) {
		const unsigned char bad[] = {0x01, 0x1f, 0x7f, 0x09};
		for (size_t b = 0; b < sizeof bad; b++) {
			char line[80] = "log c conv=";
			size_t o = strlen(line);
			memset(line + o, 'x', 40);
			line[o + (size_t)pos] = (char)bad[b];
			memcpy(line + o + 40, "\n", 2);
			struct parsed p = parse_n(line, o + 41, 4096);
			if (!(bad[b] == 0x09 && pos == 39)) /* a trailing blank is trimmed */
				assert_int_equal(p.r, EVN_ERROR);
		}
		char line[80] = "log c conv=";
		size_t o = strlen(line);
		memset(line + o, 'x', 40);
		line[o + (size_t)pos] = (char)0xc3;
		memcpy(line + o + 40, "\n", 2);
		struct parsed p = parse_n(line, o + 41, 4096);
		assert_int_equal(p.r, EVN_REQ);
		assert_int_equal(p.req.conv.n, 40);
	}
}

/* evc_u64 (two digits a step) at its edges. */
static void numbers(void **state)
{
	(void)state;
	const uint64_t v[] = {0, 9, 10, 99, 100, 101, 999, 1000, 123456789, UINT64_MAX};
	const char *want[] = {"0",   "9",    "10",        "99",
			      "100", "101",  "999",       "1000",
			      "123456789", "18446744073709551615"};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char b[24];
		size_t n = evc_u64(b, v[i]);
		assert_int_equal(n, strlen(want[i]));
		assert_memory_equal(b, want[i], n);
	}
}

/* A trace context: <id>@<cause>@<lamport>@<vclock>. */
static void trace_contexts(void **state)
{
	(void)state;
	struct evn_trace_ctx t;
	const char ok[] = "clone-7-1-run@clone-7-1-submit@12@1:3,2:5";
	assert_int_equal(evn_trace_parse(ok, sizeof ok - 1, &t), 0);
	assert_int_equal(t.id.n, 13);
	assert_memory_equal(t.id.p, "clone-7-1-run", 13);
	assert_int_equal(t.cause.n, 16);
	assert_memory_equal(t.cause.p, "clone-7-1-submit", 16);
	assert_int_equal(t.lamport, 12);
	assert_int_equal(t.clock.n, 2);
	assert_int_equal(t.clock.e[1].node, 2);
	assert_int_equal(t.clock.e[1].c, 5);
	const char *bad[] = {"",
			     "a@b@1",
			     "a@b@x@1:1",
			     "@b@1@1:1",
			     "a@@1@1:1",
			     "a b@c@1@1:1",
			     "a@c@1@1:1@",
			     "a@c@1@0:1",
			     "a,b@c@1@1:1",
			     "a@c@99999999999999999999@1:1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(evn_trace_parse(bad[i], strlen(bad[i]), &t), -1);
	static char huge[EVN_TRACE_MAX + 2];
	memset(huge, 'a', sizeof huge - 1);
	assert_int_equal(evn_trace_parse(huge, sizeof huge - 1, &t), -1);
}

static void random_bytes_never_break_the_parser(void **state)
{
	(void)state;
	srand(18);
	static const char *seeds[] = {"eventnet_edgemsg#", "eventnet_vertexmsg#", "log ", "why ",
				      "clock=", "after=", "#", "-", ",", "\n", " ", "\0"};
	for (int round = 0; round < 3000; round++) {
		char buf[512];
		size_t n = 0;
		while (n < sizeof buf - 32) {
			if (rand() % 3 == 0) {
				const char *s = seeds[rand() % 12];
				size_t l = strlen(s) ? strlen(s) : 1;
				memcpy(buf + n, s, l);
				n += l;
			} else {
				buf[n++] = (char)(rand() % 256);
			}
			if (rand() % 40 == 0)
				break;
		}
		struct frame_state st = {0};
		size_t off = 0;
		for (int steps = 0; off < n && steps < 10000; steps++) {
			struct evn_req req;
			size_t used;
			int code;
			const char *msg;
			enum evn_parse_result r = evn_parse(&st, (const uint8_t *)buf + off, n - off, true,
							    128, &req, &used, &code, &msg);
			assert_true(used <= n - off);
			if (r == EVN_ERROR)
				assert_non_null(msg);
			off += used;
			if (r == EVN_MORE && used == 0)
				break;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(legacy_edges),
		cmocka_unit_test(legacy_vertices),
		cmocka_unit_test(native_log),
		cmocka_unit_test(native_queries),
		cmocka_unit_test(framing_and_limits),
		cmocka_unit_test(clocks),
		cmocka_unit_test(numbers),
		cmocka_unit_test(conversation_bytes),
		cmocka_unit_test(trace_contexts),
		cmocka_unit_test(random_bytes_never_break_the_parser),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
