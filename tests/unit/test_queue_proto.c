/*
 * test_queue_proto.c - the queue parser: push with binary payloads split
 * across reads, sub/read/join/ack/ls/stat, the telnet path, limits and
 * error paths (a bad push's payload is skipped, never parsed), join's
 * shared flag and the group files' owner line (queue_owner.c).
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

#include "../../src/services/queue/queue_int.h"
#include "../../src/services/queue/queue_proto.h"

static const struct qp_limits lim = {.max_line = 128, .max_record = 1000};

struct parsed {
	enum qp_parse_result r;
	struct qp_req req;
	size_t used;
	uint64_t need;
	int code;
	const char *msg;
};

static struct parsed parse(struct frame_state *st, const char *s, size_t n, bool eof)
{
	struct parsed p;
	p.r = qp_parse(st, (const uint8_t *)s, n, eof, &lim, &p.req, &p.used, &p.need, &p.code,
		       &p.msg);
	return p;
}

#define P(s) parse(&st, s, sizeof(s) - 1, false)

static void push_binary(void **state)
{
	(void)state;
	struct frame_state st = {0};
	static const char in[] = "push orders 5\r\na\0\r\nb\r\n";
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, QP_REQ);
	assert_int_equal(p.req.op, QP_PUSH);
	assert_int_equal(p.req.topic_len, 6);
	assert_memory_equal(p.req.topic, "orders", 6);
	assert_int_equal(p.req.data_len, 5);
	assert_memory_equal(p.req.data, "a\0\r\nb", 5);
	assert_int_equal(p.used, sizeof in - 1);
	assert_false(p.req.has_ts);
	p = P("push t 2 ts=77\r\nhi\r\n");
	assert_int_equal(p.r, QP_REQ);
	assert_true(p.req.has_ts);
	assert_int_equal(p.req.ts, 77);
	p = P("push t 0\r\n\r\n");
	assert_int_equal(p.r, QP_REQ);
	assert_int_equal(p.req.data_len, 0);
}

static void push_split(void **state)
{
	(void)state;
	struct frame_state st = {0};
	static const char in[] = "push x 10\r\n0123456789\r\n";
	for (size_t cut = 1; cut < sizeof in - 1; cut++) {
		struct parsed p = parse(&st, in, cut, false);
		assert_int_equal(p.r, QP_MORE);
		assert_int_equal(p.used, 0);
	}
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, QP_REQ);
	assert_int_equal(p.req.data_len, 10);
}

static void push_errors(void **state)
{
	(void)state;
	struct frame_state st = {0};
	/* too big: the payload is swallowed, the next command parses */
	char big[1200 + 64];
	int n = snprintf(big, sizeof big, "push t 1001\r\n");
	memset(big + n, 'p', 1001);
	memcpy(big + n + 1001, "\r\nping\r\n", 8);
	size_t len = (size_t)n + 1001 + 8;
	struct parsed p = parse(&st, big, len, false);
	assert_int_equal(p.r, QP_ERROR);
	assert_int_equal(p.code, E2BIG);
	size_t off = p.used;
	p = parse(&st, big + off, len - off, false);
	assert_int_equal(p.r, QP_REQ);
	assert_int_equal(p.req.op, QP_PING);
	/* a bad topic name: payload still skipped */
	struct frame_state st2 = {0};
	static const char bad[] = "push ../etc 3\r\nabc\r\nls\r\n";
	p = parse(&st2, bad, sizeof bad - 1, false);
	assert_int_equal(p.r, QP_ERROR);
	assert_int_equal(p.code, EINVAL);
	p = parse(&st2, bad + p.used, sizeof bad - 1 - p.used, false);
	assert_int_equal(p.r, QP_REQ);
	assert_int_equal(p.req.op, QP_LS);
	/* bad terminator */
	struct frame_state st3 = {0};
	p = parse(&st3, "push t 3\r\nabcX\r\n", 16, false);
	assert_int_equal(p.r, QP_ERROR);
	assert_int_equal(p.code, EINVAL);
	st3 = (struct frame_state){0};
	p = parse(&st3, "push t x\r\n", 10, false);
	assert_int_equal(p.r, QP_ERROR);
	assert_int_equal(p.code, EINVAL);
	p = parse(&st3, "push t 1 ts=9 extra more\r\nx\r\n", 29, false);
	assert_int_equal(p.r, QP_ERROR);
}

static void commands(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("sub orders\r\n");
	assert_int_equal(p.req.op, QP_SUB);
	assert_true(p.req.from_end);
	p = P("sub orders 42\r\n");
	assert_false(p.req.from_end);
	assert_int_equal(p.req.from, 42);
	p = P("sub orders end\r\n");
	assert_true(p.req.from_end);
	p = P("read orders 7 3\r\n");
	assert_int_equal(p.req.op, QP_READ);
	assert_int_equal(p.req.from, 7);
	assert_int_equal(p.req.count, 3);
	p = P("read orders 7\r\n");
	assert_int_equal(p.req.count, QP_READ_DEFAULT);
	p = P("read orders 7 0\r\n");
	assert_int_equal(p.r, QP_ERROR);
	p = P("read orders\r\n");
	assert_int_equal(p.r, QP_ERROR);
	p = P("join orders billing\r\n");
	assert_int_equal(p.req.op, QP_JOIN);
	assert_int_equal(p.req.group_len, 7);
	assert_int_equal(p.req.max_inflight, QP_INFLIGHT_DEFAULT);
	p = P("join orders billing 4\r\n");
	assert_int_equal(p.req.max_inflight, 4);
	p = P("join orders billing 5000\r\n");
	assert_int_equal(p.r, QP_ERROR);
	p = P("join orders .hidden\r\n");
	assert_int_equal(p.r, QP_ERROR);
	p = P("ack 12\r\n");
	assert_int_equal(p.req.op, QP_ACK);
	assert_int_equal(p.req.offset, 12);
	p = P("ack\r\n");
	assert_int_equal(p.r, QP_ERROR);
	p = P("stat orders\r\n");
	assert_int_equal(p.req.op, QP_STAT);
	p = P("LS\r\n");
	assert_int_equal(p.req.op, QP_LS);
	p = P("ls x\r\n");
	assert_int_equal(p.r, QP_ERROR);
	p = P("quit\r\n");
	assert_int_equal(p.req.op, QP_QUIT);
	p = P("sub a b c d e f\r\n");
	assert_int_equal(p.r, QP_ERROR);
}

static void telnet_path(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("hello kingcobra\n");
	assert_int_equal(p.r, QP_REQ);
	assert_int_equal(p.req.op, QP_LINE);
	assert_int_equal(p.req.data_len, 15);
	assert_memory_equal(p.req.data, "hello kingcobra", 15);
	/* more words than a command has: still one request */
	p = P("a b c d e f g h\r\n");
	assert_int_equal(p.req.op, QP_LINE);
	assert_int_equal(p.req.data_len, 15);
	/* NUL padding ends the line (the original clients) */
	static const char pad[] = "req\0\0\0\0";
	p = parse(&st, pad, sizeof pad - 1, false);
	assert_int_equal(p.req.op, QP_LINE);
	assert_int_equal(p.req.data_len, 3);
	/* unterminated at EOF counts */
	p = parse(&st, "tail", 4, true);
	assert_int_equal(p.req.op, QP_LINE);
	/* a line longer than max_line */
	char line[300];
	memset(line, 'x', sizeof line);
	p = parse(&st, line, sizeof line, false);
	assert_int_equal(p.r, QP_ERROR);
	assert_int_equal(p.code, E2BIG);
}

static void names(void **state)
{
	(void)state;
	assert_true(qp_name_valid("orders", 6));
	assert_true(qp_name_valid("a.b-c_D9", 8));
	assert_false(qp_name_valid("", 0));
	assert_false(qp_name_valid(".x", 2));
	assert_false(qp_name_valid("a/b", 3));
	char n[70];
	memset(n, 'a', sizeof n);
	assert_true(qp_name_valid(n, 64));
	assert_false(qp_name_valid(n, 65));
}

/* join ... shared: the group a join creates is anyone's; "shared" is only
 * a flag as the last of four or five words (a group may be named so). */
static void join_shared(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("join orders billing shared\r\n");
	assert_int_equal(p.r, QP_REQ);
	assert_true(p.req.shared);
	assert_int_equal(p.req.max_inflight, QP_INFLIGHT_DEFAULT);
	p = P("join orders billing 4 shared\r\n");
	assert_int_equal(p.r, QP_REQ);
	assert_true(p.req.shared);
	assert_int_equal(p.req.max_inflight, 4);
	p = P("join orders shared\r\n");
	assert_int_equal(p.r, QP_REQ);
	assert_false(p.req.shared);
	assert_memory_equal(p.req.group, "shared", 6);
	p = P("join orders billing 4\r\n");
	assert_false(p.req.shared);
	p = P("join orders billing 4 5 shared\r\n");
	assert_int_equal(p.r, QP_ERROR);
	p = P("join orders billing shared shared\r\n");
	assert_int_equal(p.r, QP_ERROR);
}

/* The owner line of a group file (queue_owner.c): written and read back;
 * anything else is no owner. */
static void owner_line(void **state)
{
	(void)state;
	char buf[64];
	uint64_t id = 0;
	bool sh = true;
	int n = qo_format(buf, sizeof buf, UINT64_C(0x0123456789abcdef), false);
	assert_int_equal(qo_parse(buf, (size_t)n, &id, &sh), 0);
	assert_true(id == UINT64_C(0x0123456789abcdef));
	assert_false(sh);
	n = qo_format(buf, sizeof buf, 7, true);
	assert_int_equal(qo_parse(buf, (size_t)n - 1, &id, &sh), 0); /* without its LF */
	assert_true(id == 7 && sh);
	static const char *const bad[] = {
		"", "owner", "owner 0123456789abcdef", "owner 0123456789abcdeX shared\n",
		"owner 0123456789ABCDEF shared\n", "owner 0123456789abcdef  shared\n",
		"owner 0123456789abcdef public\n", "owned 0123456789abcdef shared\n",
		"owner 0123456789abcdef sharedx\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(qo_parse(bad[i], strlen(bad[i]), &id, &sh), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(push_binary), cmocka_unit_test(push_split),
		cmocka_unit_test(push_errors), cmocka_unit_test(commands),
		cmocka_unit_test(telnet_path), cmocka_unit_test(names),
		cmocka_unit_test(join_shared), cmocka_unit_test(owner_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
