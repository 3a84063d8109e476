/*
 * test_cloudsync_proto.c - the cloudsync parser (commands, defaults,
 * bounds, names, errors) and the fence syntax the mempool shares; plus the
 * fence table's rule (an older token is refused, equal or newer passes).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/cloudsync/cloudsync_fence.h"
#include "../../src/services/cloudsync/cloudsync_proto.h"
#include "../../src/services/mempool_proto.h"

struct parsed {
	enum cs_parse_result r;
	struct cs_req req;
	size_t used;
	int code;
	const char *msg;
};

static struct parsed parse_n(struct frame_state *st, const char *s, size_t n, bool eof)
{
	struct parsed p;
	p.r = cs_parse(st, (const uint8_t *)s, n, eof, &p.req, &p.used, &p.code, &p.msg);
	return p;
}

#define P(s) parse_n(&st, s, sizeof(s) - 1, false)

static void commands_and_defaults(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("lock backup\r\n");
	assert_int_equal(p.r, CS_REQ);
	assert_int_equal(p.req.op, CS_OP_LOCK);
	assert_int_equal(p.req.name_len, 6);
	assert_memory_equal(p.req.name, "backup", 6);
	assert_int_equal(p.req.ttl_ms, CS_TTL_DEFAULT);
	assert_true(p.req.wait_ms == CS_WAIT_FOREVER);
	assert_int_equal(p.used, 13);
	p = P("LOCK a/b:c@d.e_f-g 5000 250\n");
	assert_int_equal(p.req.op, CS_OP_LOCK);
	assert_int_equal(p.req.ttl_ms, 5000);
	assert_int_equal(p.req.wait_ms, 250);
	p = P("lock x 5000 0\r\n");
	assert_int_equal(p.req.wait_ms, 0);
	p = P("trylock x 100\r\n");
	assert_int_equal(p.req.op, CS_OP_TRYLOCK);
	assert_int_equal(p.req.ttl_ms, 100);
	p = P("renew x\r\n");
	assert_int_equal(p.req.op, CS_OP_RENEW);
	assert_int_equal(p.req.ttl_ms, CS_TTL_DEFAULT);
	assert_int_equal(P("unlock x\r\n").req.op, CS_OP_UNLOCK);
	p = P("ls\r\n");
	assert_int_equal(p.req.op, CS_OP_LS);
	assert_int_equal(p.req.name_len, 0);
	p = P("ls x\r\n");
	assert_int_equal(p.req.name_len, 1);
	assert_int_equal(P("stats\r\n").req.op, CS_OP_STATS);
	assert_int_equal(P("ping\r\n").req.op, CS_OP_PING);
	assert_int_equal(P("help\r\n").req.op, CS_OP_HELP);
	assert_int_equal(P("quit\r\n").req.op, CS_OP_QUIT);
}

static void errors_and_bounds(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed p = P("lock\r\n");
	assert_int_equal(p.r, CS_ERROR);
	assert_int_equal(p.code, EINVAL);
	assert_int_equal(P("lock a b\r\n").code, EINVAL);
	assert_int_equal(P("lock a 0\r\n").code, EINVAL);
	assert_int_equal(P("lock a 86400001\r\n").code, EINVAL);
	assert_int_equal(P("lock a 86400000 86400001\r\n").code, EINVAL);
	assert_int_equal(P("lock a -5\r\n").code, EINVAL);
	assert_int_equal(P("lock a 99999999999999999999\r\n").code, EINVAL);
	assert_int_equal(P("lock a 1 2 3\r\n").code, EINVAL);
	assert_int_equal(P("trylock a 1 2\r\n").code, EINVAL);
	assert_int_equal(P("unlock\r\n").code, EINVAL);
	assert_int_equal(P("unlock a 5\r\n").code, EINVAL);
	assert_int_equal(P("ping x\r\n").code, EINVAL);
	assert_int_equal(P("lock bad|name\r\n").code, EINVAL);
	assert_int_equal(P("frob\r\n").code, ENOSYS);
	char name[CS_NAME_MAX + 2 + 16];
	memset(name, 'n', sizeof name);
	memcpy(name, "lock ", 5);
	memcpy(name + 5 + CS_NAME_MAX, "\r\n", 2); /* exactly the longest name */
	p = parse_n(&st, name, 5 + CS_NAME_MAX + 2, false);
	assert_int_equal(p.r, CS_REQ);
	assert_int_equal(p.req.name_len, CS_NAME_MAX);
	memcpy(name + 5 + CS_NAME_MAX, "n\r\n", 3); /* one more */
	p = parse_n(&st, name, 5 + CS_NAME_MAX + 3, false);
	assert_int_equal(p.code, EINVAL);
	/* partial line, then too long a line */
	p = P("lock ab");
	assert_int_equal(p.r, CS_MORE);
	char big[CS_LINE_MAX + 10];
	memset(big, 'x', sizeof big);
	p = parse_n(&st, big, sizeof big, false);
	assert_int_equal(p.r, CS_ERROR);
	assert_int_equal(p.code, E2BIG);
}

static void fence_syntax(void **state)
{
	(void)state;
	const char *name;
	size_t len;
	uint64_t tok;
	assert_int_equal(cs_fence_parse((const uint8_t *)"backup:42", 9, &name, &len, &tok), 0);
	assert_int_equal(len, 6);
	assert_true(tok == 42);
	/* names may hold ':': the token follows the last one */
	assert_int_equal(cs_fence_parse((const uint8_t *)"a:b:7", 5, &name, &len, &tok), 0);
	assert_int_equal(len, 3);
	assert_true(tok == 7);
	assert_int_equal(cs_fence_parse((const uint8_t *)"a:0", 3, &name, &len, &tok), -1);
	assert_int_equal(cs_fence_parse((const uint8_t *)":5", 2, &name, &len, &tok), -1);
	assert_int_equal(cs_fence_parse((const uint8_t *)"a:", 2, &name, &len, &tok), -1);
	assert_int_equal(cs_fence_parse((const uint8_t *)"a5", 2, &name, &len, &tok), -1);
	assert_int_equal(cs_fence_parse((const uint8_t *)"a b:5", 5, &name, &len, &tok), -1);

	/* the mempool's set takes it after the byte count or the offset */
	struct mp_limits lim = {.max_line = 256, .max_value = 100};
	struct frame_state st = {0};
	struct mp_req r;
	size_t used;
	uint64_t need;
	int code;
	const char *msg;
	const char s1[] = "set 1000000000001 2 fence=lk:9\r\nab\r\n";
	assert_int_equal(mp_parse(&st, (const uint8_t *)s1, sizeof s1 - 1, false, &lim, &r, &used,
				  &need, &code, &msg),
			 MP_REQ);
	assert_non_null(r.fence_name);
	assert_int_equal(r.fence_len, 2);
	assert_true(r.fence_token == 9);
	assert_false(r.has_offset);
	const char s2[] = "set 1000000000001 2 4 fence=lk:9\r\nab\r\n";
	assert_int_equal(mp_parse(&st, (const uint8_t *)s2, sizeof s2 - 1, false, &lim, &r, &used,
				  &need, &code, &msg),
			 MP_REQ);
	assert_true(r.has_offset);
	assert_int_equal(r.offset, 4);
	assert_true(r.fence_token == 9);
	const char s3[] = "set 1000000000001 2\r\nab\r\n"; /* old clients: unfenced */
	assert_int_equal(mp_parse(&st, (const uint8_t *)s3, sizeof s3 - 1, false, &lim, &r, &used,
				  &need, &code, &msg),
			 MP_REQ);
	assert_null(r.fence_name);
	const char s4[] = "set 1000000000001 2 fence=lk:x\r\nab\r\n";
	assert_int_equal(mp_parse(&st, (const uint8_t *)s4, sizeof s4 - 1, false, &lim, &r, &used,
				  &need, &code, &msg),
			 MP_ERROR);
	assert_int_equal(used, sizeof s4 - 1); /* the payload is skipped too */
	const char s5[] = "set 1000000000001 2 fence=a:1 fence=a:2\r\nab\r\n";
	assert_int_equal(mp_parse(&st, (const uint8_t *)s5, sizeof s5 - 1, false, &lim, &r, &used,
				  &need, &code, &msg),
			 MP_ERROR);
}

static int writes;
static int count_write(void *arg)
{
	(void)arg;
	writes++;
	return 0;
}

static void fence_table_rule(void **state)
{
	(void)state;
	uint64_t newest = 0;
	writes = 0;
	assert_int_equal(cs_fence_write("ft", 2, 5, count_write, NULL, &newest), 0);
	assert_int_equal(cs_fence_write("ft", 2, 5, count_write, NULL, &newest), 0); /* same holder */
	assert_int_equal(cs_fence_write("ft", 2, 7, count_write, NULL, &newest), 0);
	assert_int_equal(cs_fence_write("ft", 2, 6, count_write, NULL, &newest), -ESTALE);
	assert_true(newest == 7);
	assert_int_equal(writes, 3);
	/* a grant seen on this node raises the entry: the old holder is out */
	cs_fence_observe("ft", 2, 9);
	assert_int_equal(cs_fence_write("ft", 2, 8, count_write, NULL, &newest), -ESTALE);
	assert_true(cs_fence_newest("ft", 2) == 9);
	/* names never written fenced here are not added by grants */
	cs_fence_observe("other", 5, 100);
	assert_true(cs_fence_newest("other", 5) == 0);
	assert_int_equal(cs_fence_write("other", 5, 1, count_write, NULL, &newest), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(commands_and_defaults),
		cmocka_unit_test(errors_and_bounds),
		cmocka_unit_test(fence_syntax),
		cmocka_unit_test(fence_table_rule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
