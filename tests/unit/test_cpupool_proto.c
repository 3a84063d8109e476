/*
 * test_cpupool_proto.c - the cpupool parser: every command, the notes'
 * call syntax and bare names, binary payloads, size limits, bad input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/cpupool_proto.h"

static const struct cp_limits lim = {.max_line = 256, .max_arg = 1000};

struct parsed {
	enum cp_parse_result r;
	struct cp_req req;
	size_t used;
	uint64_t need;
	int code;
	const char *msg;
};

static struct parsed parse(struct frame_state *st, const void *buf, size_t len, bool eof)
{
	struct parsed p;
	p.r = cp_parse(st, buf, len, eof, &lim, &p.req, &p.used, &p.need, &p.code, &p.msg);
	return p;
}

static void clone_binary_payload(void **s)
{
	(void)s;
	struct frame_state st = {0};
	const char in[] = "clone virgo_cloud_test 8\r\na\0b\r\nc \"\r\n";
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.op, CP_OP_CLONE);
	assert_false(p.req.legacy);
	assert_int_equal(p.req.name_len, 16);
	assert_memory_equal(p.req.name, "virgo_cloud_test", 16);
	assert_int_equal(p.req.data_len, 8);
	assert_memory_equal(p.req.data, "a\0b\r\nc \"", 8);
	assert_int_equal(p.used, sizeof in - 1);
	assert_int_equal(p.req.timeout_ms, 0);
}

/* An optional last trace=<context> (eventnet_trace): kept, opaque. */
static void clone_trace_context(void **s)
{
	(void)s;
	struct frame_state st = {0};
	const char in[] = "clone f 2 500 trace=a-run@a-submit@3@1:2\r\nhi\r\n";
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.op, CP_OP_CLONE);
	assert_int_equal(p.req.timeout_ms, 500);
	assert_int_equal(p.req.trace_len, 20);
	assert_memory_equal(p.req.trace, "a-run@a-submit@3@1:2", 20);
	assert_int_equal(p.req.data_len, 2);
	const char nt[] = "clone f 2 trace=x@y@1@1:1\r\nhi\r\n";
	memset(&st, 0, sizeof st);
	p = parse(&st, nt, sizeof nt - 1, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.timeout_ms, 0);
	assert_int_equal(p.req.trace_len, 9);
	const char plain[] = "clone f 2\r\nhi\r\n";
	memset(&st, 0, sizeof st);
	p = parse(&st, plain, sizeof plain - 1, false);
	assert_int_equal(p.r, CP_REQ);
	assert_null(p.req.trace);
	static char big[CP_TRACE_MAX + 64];
	int n = snprintf(big, sizeof big, "clone f 2 trace=");
	memset(big + n, 'a', CP_TRACE_MAX + 1);
	memcpy(big + n + CP_TRACE_MAX + 1, "\r\nhi\r\n", 6);
	memset(&st, 0, sizeof st);
	const struct cp_limits wide = {.max_line = 65536, .max_arg = 1000};
	p.r = cp_parse(&st, (const uint8_t *)big, (size_t)n + CP_TRACE_MAX + 7, false, &wide,
		       &p.req, &p.used, &p.need, &p.code, &p.msg);
	assert_int_equal(p.r, CP_ERROR);
	assert_int_equal(p.code, EINVAL);
}

static void clone_waits_for_payload(void **s)
{
	(void)s;
	struct frame_state st = {0};
	const char in[] = "clone f 10 500\r\nabc";
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, CP_MORE);
	assert_int_equal(p.used, 0);
	assert_true(p.need >= 16 + 11);
	const char full[] = "clone f 10 500\r\n0123456789\r\n";
	p = parse(&st, full, sizeof full - 1, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.timeout_ms, 500);
	assert_int_equal(p.used, sizeof full - 1);
}

static void clone_errors(void **s)
{
	(void)s;
	struct frame_state st = {0};
	struct parsed p = parse(&st, "clone f\r\n", 9, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_int_equal(p.code, EINVAL);
	/* a bad name still has its payload consumed */
	const char bad[] = "clone ../x 3\r\nabc\r\nping\r\n";
	p = parse(&st, bad, sizeof bad - 1, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_int_equal(p.code, EINVAL);
	assert_int_equal(p.used, 19);
	p = parse(&st, bad + 19, sizeof bad - 1 - 19, false);
	assert_int_equal(p.req.op, CP_OP_PING);
	/* timeout 0 is not a timeout */
	p = parse(&st, "clone f 1 0\r\nx\r\n", 16, false);
	assert_int_equal(p.r, CP_ERROR);
}

static void oversized_argument_is_skipped(void **s)
{
	(void)s;
	struct frame_state st = {0};
	const char in[] = "clone f 2000\r\n";
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_int_equal(p.code, E2BIG);
	/* the 2000 bytes (+CRLF) that follow are swallowed across reads */
	uint8_t junk[1500];
	memset(junk, 'p', sizeof junk);
	p = parse(&st, junk, sizeof junk, false);
	assert_int_equal(p.r, CP_MORE);
	assert_int_equal(p.used, sizeof junk);
	uint8_t rest[512];
	memset(rest, 'p', 500);
	memcpy(rest + 500, "\r\nping\r\n", 8);
	p = parse(&st, rest, 508, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.op, CP_OP_PING);
}

static void run_argv_block(void **s)
{
	(void)s;
	struct frame_state st = {0};
	const char in[] = "run 18\r\nsh\0-c\0echo 'a b'\n\0\r\n";
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.op, CP_OP_RUN);
	assert_int_equal(p.req.data_len, 18);
	const char *why;
	assert_int_equal(cp_argv_check(p.req.data, p.req.data_len, &why), 3);
	/* not NUL-terminated, empty program */
	p = parse(&st, "run 2\r\nsh\r\n", 11, false);
	assert_int_equal(p.r, CP_ERROR);
	p = parse(&st, "run 1\r\n\0\r\n", 10, false);
	assert_int_equal(p.r, CP_ERROR);
}

static void argv_limits(void **s)
{
	(void)s;
	uint8_t blk[2 * (CP_ARGS_MAX + 1)];
	for (size_t i = 0; i < sizeof blk; i += 2) {
		blk[i] = 'a';
		blk[i + 1] = 0;
	}
	const char *why;
	assert_int_equal(cp_argv_check(blk, 2 * CP_ARGS_MAX, &why), CP_ARGS_MAX);
	assert_int_equal(cp_argv_check(blk, sizeof blk, &why), -1);
	assert_int_equal(cp_argv_check(blk, 0, &why), -1);
}

static void notes_call_syntax(void **s)
{
	(void)s;
	struct frame_state st = {0};
	const char in[] = "virgo_clone(virgo_cloud_test,hello, \"world\" (x))\r\n";
	struct parsed p = parse(&st, in, sizeof in - 1, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.op, CP_OP_CALL);
	assert_true(p.req.legacy);
	assert_int_equal(p.req.name_len, 16);
	assert_int_equal(p.req.data_len, strlen("hello, \"world\" (x)"));
	assert_memory_equal(p.req.data, "hello, \"world\" (x)", p.req.data_len);
	/* quoted name, no argument */
	p = parse(&st, "virgo_clone(\"virgo_load\")\n", 26, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.name_len, 10);
	assert_int_equal(p.req.data_len, 0);
	/* the original's NUL-padded buffer with a bare name */
	char buf[3000] = "virgo_cloud_test_kernelspace";
	p = parse(&st, buf, sizeof buf, false);
	assert_int_equal(p.r, CP_REQ);
	assert_int_equal(p.req.op, CP_OP_CALL);
	assert_int_equal(p.req.name_len, 28);
	/* unclosed call, junk name */
	p = parse(&st, "virgo_clone(abc\n", 16, false);
	assert_int_equal(p.r, CP_ERROR);
	p = parse(&st, "virgo_clone(a b,c)\n", 19, false);
	assert_int_equal(p.r, CP_ERROR);
}

/* issue 14 #15: a call-syntax line the parser refuses is still flagged as
 * call syntax, so the service closes after its error (as after a call
 * that fails) instead of waiting for idle_timeout; a bad native line is
 * not. */
static void bad_call_syntax_is_legacy(void **s)
{
	(void)s;
	struct frame_state st = {0};
	struct parsed p = parse(&st, "virgo_cloud_get(zz)\n", 20, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_true(p.req.legacy);
	p = parse(&st, "virgo_clone(abc\n", 16, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_true(p.req.legacy);
	p = parse(&st, "virgo_clone(a b,c)\n", 19, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_true(p.req.legacy);
	p = parse(&st, "frobnicate x\n", 13, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_false(p.req.legacy);
	p = parse(&st, "clone f\n", 8, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_false(p.req.legacy);
}

static void simple_commands(void **s)
{
	(void)s;
	struct frame_state st = {0};
	const char *w[] = {"load", "STATS", "ping", "help", "quit"};
	enum cp_op o[] = {CP_OP_LOAD, CP_OP_LOAD, CP_OP_PING, CP_OP_HELP, CP_OP_QUIT};
	for (int i = 0; i < 5; i++) {
		char line[32];
		int n = snprintf(line, sizeof line, "%s\r\n", w[i]);
		struct parsed p = parse(&st, line, (size_t)n, false);
		assert_int_equal(p.r, CP_REQ);
		assert_int_equal(p.req.op, o[i]);
	}
	struct parsed p = parse(&st, "load x\r\n", 8, false);
	assert_int_equal(p.r, CP_ERROR);
	p = parse(&st, "two words\r\n", 11, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_int_equal(p.code, ENOSYS);
}

static void long_line(void **s)
{
	(void)s;
	struct frame_state st = {0};
	char buf[400];
	memset(buf, 'a', sizeof buf);
	struct parsed p = parse(&st, buf, sizeof buf, false);
	assert_int_equal(p.r, CP_ERROR);
	assert_int_equal(p.code, E2BIG);
}

static void names_and_paths(void **s)
{
	(void)s;
	assert_true(cp_fn_name_ok((const uint8_t *)"virgo_cloud_test", 16));
	assert_true(cp_fn_name_ok((const uint8_t *)"_x9", 3));
	assert_false(cp_fn_name_ok((const uint8_t *)"9x", 2));
	assert_false(cp_fn_name_ok((const uint8_t *)"a-b", 3));
	assert_false(cp_fn_name_ok((const uint8_t *)"", 0));
	assert_true(cp_path_traverses("../bin/sh"));
	assert_true(cp_path_traverses("/bin/../bin/sh"));
	assert_true(cp_path_traverses(".."));
	assert_true(cp_path_traverses("a/.."));
	assert_false(cp_path_traverses("a..b"));
	assert_false(cp_path_traverses("/usr/bin/sha256sum"));
}

/* Random bytes never crash the parser or make it read past len. */
static void garbage(void **s)
{
	(void)s;
	unsigned seed = 1;
	uint8_t buf[512];
	for (int round = 0; round < 2000; round++) {
		size_t len = (size_t)(seed % sizeof buf);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (uint8_t)(seed >> 16);
		}
		struct frame_state st = {0};
		size_t off = 0;
		for (int k = 0; k < 64 && off < len; k++) {
			struct parsed p = parse(&st, buf + off, len - off, true);
			assert_true(p.used <= len - off);
			if (p.used == 0)
				break;
			off += p.used;
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clone_binary_payload),
		cmocka_unit_test(clone_trace_context),
		cmocka_unit_test(clone_waits_for_payload),
		cmocka_unit_test(clone_errors),
		cmocka_unit_test(oversized_argument_is_skipped),
		cmocka_unit_test(run_argv_block),
		cmocka_unit_test(argv_limits),
		cmocka_unit_test(notes_call_syntax),
		cmocka_unit_test(bad_call_syntax_is_legacy),
		cmocka_unit_test(simple_commands),
		cmocka_unit_test(long_line),
		cmocka_unit_test(names_and_paths),
		cmocka_unit_test(garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
