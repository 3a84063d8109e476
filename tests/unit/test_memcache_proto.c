/*
 * test_memcache_proto.c - the memcached text protocol parser: every
 * command's syntax, memcached's error strings, key and length limits,
 * data-block terminators, swallowing, partial input, exptime rules.
 *
 * run() feeds a whole input through mc_parse and returns a transcript:
 * one "op key ..." or "E:<error>" per request, ';'-separated.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/memcache_proto.h"

static const struct mc_limits lim = {.max_line = 2048, .max_item = 1024};
static char out[8192];

static void describe(const struct mc_req *r, char *b, size_t cap)
{
	static const char *names[] = {"?", "get", "set", "add", "replace", "append", "prepend",
				      "cas", "delete", "incr", "decr", "touch", "flush_all",
				      "stats", "version", "verbosity", "quit", "metadump"};
	int n = snprintf(b, cap, "%s", names[r->op]);
	if (r->op == MC_OP_GET) {
		n += snprintf(b + n, cap - (size_t)n, "%s%s", r->with_cas ? "+cas" : "",
			      r->touch ? "+touch" : "");
		if (r->touch)
			n += snprintf(b + n, cap - (size_t)n, " exp=%lld", (long long)r->exptime);
		size_t pos = 0;
		const uint8_t *k;
		size_t kl;
		while (mc_next_key(r, &pos, &k, &kl))
			n += snprintf(b + n, cap - (size_t)n, " %.*s", (int)kl, (const char *)k);
	} else if (r->key) {
		n += snprintf(b + n, cap - (size_t)n, " %.*s", (int)r->key_len,
			      (const char *)r->key);
	}
	if (r->op >= MC_OP_SET && r->op <= MC_OP_CAS)
		n += snprintf(b + n, cap - (size_t)n, " f=%u exp=%lld data=%.*s", r->flags,
			      (long long)r->exptime, (int)r->data_len, (const char *)r->data);
	if (r->op == MC_OP_CAS)
		n += snprintf(b + n, cap - (size_t)n, " cas=%llu", (unsigned long long)r->cas);
	if (r->op == MC_OP_INCR || r->op == MC_OP_DECR)
		n += snprintf(b + n, cap - (size_t)n, " d=%llu", (unsigned long long)r->delta);
	if (r->op == MC_OP_TOUCH)
		n += snprintf(b + n, cap - (size_t)n, " exp=%lld", (long long)r->exptime);
	if (r->op == MC_OP_FLUSH_ALL || r->op == MC_OP_VERBOSITY)
		n += snprintf(b + n, cap - (size_t)n, " %lld", (long long)r->delay);
	if (r->arg)
		n += snprintf(b + n, cap - (size_t)n, " %.*s", (int)r->arg_len,
			      (const char *)r->arg);
	if (r->op == MC_OP_METADUMP)
		n += snprintf(b + n, cap - (size_t)n, " class1=%u", r->dump_class);
	if (r->op == MC_OP_STATS && r->arg_len == 9 && memcmp(r->arg, "cachedump", 9) == 0)
		n += snprintf(b + n, cap - (size_t)n, " class=%u limit=%u", r->dump_class,
			      r->dump_limit);
	if (r->noreply)
		snprintf(b + n, cap - (size_t)n, " noreply");
}

/* Parses all of s (n bytes, or strlen); "+more" ends a transcript that
 * stopped needing more input. */
static const char *run_n(const char *s, size_t n)
{
	struct mc_parse_state st = {0};
	size_t pos = 0, o = 0;
	out[0] = '\0';
	while (pos < n) {
		struct mc_req r;
		size_t used, need;
		const char *err;
		enum mc_parse_result pr = mc_parse(&st, (const uint8_t *)s + pos, n - pos, &lim, &r,
						   &used, &need, &err);
		pos += used;
		char one[1024];
		if (pr == MC_REQ)
			describe(&r, one, sizeof one);
		else if (pr == MC_ERROR) /* Q: an error of a noreply command (not sent) */
			snprintf(one, sizeof one, "%s:%s", r.noreply ? "Q" : "E", err);
		else if (used == 0) {
			snprintf(one, sizeof one, "+more");
			pos = n;
		} else
			continue;
		o += (size_t)snprintf(out + o, sizeof out - o, "%s%s", o ? ";" : "", one);
	}
	return out;
}

static const char *run(const char *s) { return run_n(s, strlen(s)); }

static void get_family(void **state)
{
	(void)state;
	assert_string_equal(run("get a\r\n"), "get a");
	assert_string_equal(run("get a b  c\n"), "get a b c");
	assert_string_equal(run("gets a b\r\n"), "get+cas a b");
	assert_string_equal(run("gat 10 a b\r\n"), "get+touch exp=10 a b");
	assert_string_equal(run("gats -1 a\r\n"), "get+cas+touch exp=-1 a");
	assert_string_equal(run("gat 10\r\n"), "get+touch exp=10");
	assert_string_equal(run("gat x a\r\n"), "E:CLIENT_ERROR invalid exptime argument");
	assert_string_equal(run("get\r\n"), "E:ERROR");
	assert_string_equal(run("GET a\r\n"), "E:ERROR");
	/* many keys: more than the token cap */
	assert_string_equal(run("get 1 2 3 4 5 6 7 8 9 10 11\r\n"), "get 1 2 3 4 5 6 7 8 9 10 11");
}

static void key_limit_250(void **state)
{
	(void)state;
	char buf[600], k250[251], k251[252];
	memset(k250, 'k', 250);
	k250[250] = '\0';
	memset(k251, 'k', 251);
	k251[251] = '\0';
	snprintf(buf, sizeof buf, "get %s\r\n", k250);
	assert_int_equal(strlen(run(buf)), 4 + 250);
	snprintf(buf, sizeof buf, "get a %s\r\n", k251);
	assert_string_equal(run(buf), "E:CLIENT_ERROR bad command line format");
	snprintf(buf, sizeof buf, "set %s 0 0 1\r\nx\r\n", k250);
	assert_int_equal(strncmp(run(buf), "set kkk", 7), 0);
	/* refused, and its data block is swallowed, not run as a command */
	snprintf(buf, sizeof buf, "set %s 0 0 3\r\nget\r\nversion\r\n", k251);
	assert_string_equal(run(buf), "E:CLIENT_ERROR bad command line format;version");
	snprintf(buf, sizeof buf, "delete %s\r\n", k251);
	assert_string_equal(run(buf), "E:CLIENT_ERROR bad command line format");
}

static void storage(void **state)
{
	(void)state;
	assert_string_equal(run("set a 5 10 3\r\nabc\r\n"), "set a f=5 exp=10 data=abc");
	assert_string_equal(run("set a 5 10 3 noreply\r\nabc\r\n"),
			    "set a f=5 exp=10 data=abc noreply");
	assert_string_equal(run("set a 4294967295 -1 0\r\n\r\n"),
			    "set a f=4294967295 exp=-1 data=");
	assert_string_equal(run("add a 0 0 1\r\nx\r\nreplace a 0 0 1\r\ny\r\n"),
			    "add a f=0 exp=0 data=x;replace a f=0 exp=0 data=y");
	assert_string_equal(run("append a 0 0 1\r\nx\r\nprepend a 0 0 1\r\ny\r\n"),
			    "append a f=0 exp=0 data=x;prepend a f=0 exp=0 data=y");
	assert_string_equal(run("cas a 0 0 1 77\r\nx\r\n"), "cas a f=0 exp=0 data=x cas=77");
	assert_string_equal(run("cas a 0 0 1 77 noreply\r\nx\r\n"),
			    "cas a f=0 exp=0 data=x cas=77 noreply");
	assert_string_equal(run("cas a 0 0 1\r\nx\r\n"), "E:ERROR;E:ERROR");
	/* binary data block: CR, LF and NUL inside */
	const char bin[] = "set b 0 0 4\r\n\r\n\0z\r\nversion\r\n";
	assert_string_equal(run_n(bin, sizeof bin - 1), "set b f=0 exp=0 data=\r\n;version");
	assert_string_equal(run("set a 0 0 1\r\n"), "+more");
	assert_string_equal(run("set a 0 0 1\r\nx\r"), "+more");
}

static void bad_lengths_and_numbers(void **state)
{
	(void)state;
	assert_string_equal(run("set a 0 0 -1\r\n"), "E:CLIENT_ERROR bad command line format");
	assert_string_equal(run("set a 0 0 4294967300\r\n"),
			    "E:CLIENT_ERROR bad command line format");
	assert_string_equal(run("set a 0 0 99999999999999999999999\r\n"),
			    "E:CLIENT_ERROR bad command line format");
	assert_string_equal(run("set a 0 0 x\r\n"), "E:CLIENT_ERROR bad command line format");
	assert_string_equal(run("set a -1 0 1\r\nx\r\n"), "E:CLIENT_ERROR bad command line format");
	assert_string_equal(run("set a 4294967296 0 1\r\nx\r\n"),
			    "E:CLIENT_ERROR bad command line format");
	assert_string_equal(run("set a 0 x 1\r\nx\r\nversion\r\n"),
			    "E:CLIENT_ERROR bad command line format;version");
	/* above max_item: memcached's message, and the data is swallowed */
	char big[3000];
	int n = snprintf(big, sizeof big, "set a 0 0 2000\r\n");
	memset(big + n, 'v', 2000);
	n += 2000;
	n += snprintf(big + n, sizeof big - (size_t)n, "\r\nversion\r\n");
	assert_string_equal(run_n(big, (size_t)n), "E:SERVER_ERROR object too large for cache;version");
}

static void missing_data_terminator(void **state)
{
	(void)state;
	/* exactly <bytes>+2 are taken, as memcached does */
	assert_string_equal(run("set a 0 0 2\r\nabcd\r\nversion\r\n"),
			    "E:CLIENT_ERROR bad data chunk;E:ERROR;version");
	assert_string_equal(run("set a 0 0 2\r\nab\nxversion\r\n"),
			    "E:CLIENT_ERROR bad data chunk;version");
}

static void other_commands(void **state)
{
	(void)state;
	assert_string_equal(run("delete a\r\ndelete a 0\r\ndelete a noreply\r\n"),
			    "delete a;delete a;delete a noreply");
	assert_string_equal(run("delete a 5\r\n"),
			    "E:CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
	assert_string_equal(run("incr a 1\r\ndecr a 18446744073709551615 noreply\r\n"),
			    "incr a d=1;decr a d=18446744073709551615 noreply");
	assert_string_equal(run("incr a -1\r\nincr a 18446744073709551616\r\nincr a x\r\n"),
			    "E:CLIENT_ERROR invalid numeric delta argument;"
			    "E:CLIENT_ERROR invalid numeric delta argument;"
			    "E:CLIENT_ERROR invalid numeric delta argument");
	assert_string_equal(run("incr a\r\n"), "E:ERROR");
	assert_string_equal(run("touch a 10\r\ntouch a x\r\n"),
			    "touch a exp=10;E:CLIENT_ERROR invalid exptime argument");
	assert_string_equal(run("flush_all\r\nflush_all 10 noreply\r\nflush_all x\r\n"),
			    "flush_all 0;flush_all 10 noreply;E:CLIENT_ERROR invalid exptime argument");
	assert_string_equal(run("verbosity 1\r\nverbosity\r\nverbosity x\r\nverbosity 1 noreply\r\n"),
			    "verbosity 1;E:ERROR;E:CLIENT_ERROR bad command line format;"
			    "verbosity 1 noreply");
	assert_string_equal(run("verbosity noreply\r\nverbosity a b c\r\n"),
			    "Q:CLIENT_ERROR bad command line format;E:ERROR");
	assert_string_equal(run("stats\r\nstats items\r\nstats a b\r\n"),
			    "stats;stats items;E:ERROR");
	assert_string_equal(run("stats cachedump 1 0\r\nstats cachedump 63 4294967295 x\r\n"
				"stats cachedump 64 0\r\nstats cachedump 1\r\nstats cachedump\r\n"
				"stats cachedump x 0\r\nstats cachedump 1 -1\r\n"
				"stats cachedump 1 4294967296\r\n"),
			    "stats cachedump class=1 limit=0;stats cachedump class=63 limit=4294967295;"
			    "E:CLIENT_ERROR Illegal slab id;E:CLIENT_ERROR bad command line;"
			    "E:CLIENT_ERROR bad command line;E:CLIENT_ERROR bad command line format;"
			    "E:CLIENT_ERROR bad command line format;"
			    "E:CLIENT_ERROR bad command line format");
	/* memcached's token counts and noreply rules: noreply silences errors
	 * too; an extra last token that is not noreply is ignored */
	assert_string_equal(run("incr a noreply\r\nincr a x noreply\r\nincr a 1 junk\r\n"
				"incr a 1 2 3\r\nincr a +2\r\nincr a 0007\r\nincr a -0\r\n"),
			    "Q:CLIENT_ERROR invalid numeric delta argument;"
			    "Q:CLIENT_ERROR invalid numeric delta argument;incr a d=1;E:ERROR;"
			    "incr a d=2;incr a d=7;incr a d=0");
	assert_string_equal(run("touch a 0 junk\r\ntouch a x noreply\r\ntouch a\r\n"),
			    "touch a exp=0;Q:CLIENT_ERROR invalid exptime argument;E:ERROR");
	assert_string_equal(run("delete a 1 noreply\r\ndelete a 0 0 0\r\ndelete noreply\r\n"
				"delete a x y\r\n"),
			    "Q:CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply];"
			    "E:ERROR;delete noreply;"
			    "E:CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]");
	assert_string_equal(run("flush_all x noreply\r\nflush_all 0 0\r\nflush_all 1 2 3\r\n"),
			    "Q:CLIENT_ERROR invalid exptime argument;flush_all 0;E:ERROR");
	assert_string_equal(run("set a 0 0 x noreply\r\n"), "Q:CLIENT_ERROR bad command line format");
	/* a NUL ends the line, as in memcached (it reads a C string) */
	assert_string_equal(run_n("get a\0 b\r\nver\0sion\r\n\0\r\n", 23),
			    "get a;E:ERROR;E:ERROR");
	assert_string_equal(run("lru_crawler metadump all\r\nlru_crawler metadump hash\r\n"
				"lru_crawler metadump 1\r\nlru_crawler metadump 2,3\r\n"
				"lru_crawler metadump 0,1,63\r\n"),
			    "metadump class1=1;metadump class1=1;metadump class1=1;"
			    "metadump class1=0;metadump class1=1");
	assert_string_equal(run("lru_crawler metadump 64\r\nlru_crawler metadump 1,\r\n"
				"lru_crawler metadump x\r\nlru_crawler metadump ,1\r\n"
				"lru_crawler metadump\r\nlru_crawler crawl all\r\nlru_crawler\r\n"),
			    "E:CLIENT_ERROR bad class id;E:CLIENT_ERROR bad class id;"
			    "E:CLIENT_ERROR bad class id;E:CLIENT_ERROR bad class id;"
			    "E:ERROR;E:ERROR;E:ERROR");
	assert_string_equal(run("version\r\nversion x\r\nquit\r\n"), "version;version;quit");
	assert_string_equal(run("\r\nbogus\r\n"), "E:ERROR;E:ERROR");
}

static void long_line_recovers(void **state)
{
	(void)state;
	static char buf[5000];
	memset(buf, 'x', 3000);
	strcpy(buf + 3000, "\r\nversion\r\n");
	assert_string_equal(run(buf), "E:CLIENT_ERROR line too long;version");
	/* a line within the limit but not yet terminated waits */
	assert_string_equal(run("get abc"), "+more");
}

static void partial_input_needs(void **state)
{
	(void)state;
	struct mc_parse_state st = {0};
	struct mc_req r;
	size_t used, need;
	const char *err;
	const char *s = "set a 0 0 100\r\n0123";
	assert_int_equal(mc_parse(&st, (const uint8_t *)s, strlen(s), &lim, &r, &used, &need, &err),
			 MC_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(need, 15 + 100 + 2);
}

static void head_only_parse(void **state)
{
	(void)state;
	struct mc_parse_state st = {0};
	struct mc_req r;
	size_t used, need;
	const char *err;
	const char *s = "set big 3 0 1000\r\nxx";
	assert_int_equal(mc_parse_head(&st, (const uint8_t *)s, strlen(s), &lim, &r, &used, &need, &err),
			 MC_REQ);
	assert_int_equal(r.op, MC_OP_SET);
	assert_null(r.data);
	assert_int_equal(r.data_len, 1000);
	assert_int_equal(r.flags, 3);
	assert_int_equal(used, 18);
	assert_int_equal(need, 18 + 1000 + 2);
	assert_memory_equal(r.key, "big", 3);
	/* errors and other commands come back as from mc_parse */
	s = "set big 0 0 5000\r\n";
	assert_int_equal(mc_parse_head(&st, (const uint8_t *)s, strlen(s), &lim, &r, &used, &need, &err),
			 MC_ERROR);
	assert_string_equal(err, "SERVER_ERROR object too large for cache");
	assert_int_equal(st.swallow, 5002);
	st.swallow = 0;
	s = "get a\r\n";
	assert_int_equal(mc_parse_head(&st, (const uint8_t *)s, strlen(s), &lim, &r, &used, &need, &err),
			 MC_REQ);
	assert_int_equal(r.op, MC_OP_GET);
}

static void exptime_rules(void **state)
{
	(void)state;
	const int64_t now = 1700000000;
	assert_int_equal(mc_exptime_abs(0, now), 0);
	assert_int_equal(mc_exptime_abs(-1, now), 1);
	assert_int_equal(mc_exptime_abs(10, now), now + 10);
	assert_int_equal(mc_exptime_abs(MC_REALTIME_MAXDELTA, now), now + MC_REALTIME_MAXDELTA);
	assert_int_equal(mc_exptime_abs(MC_REALTIME_MAXDELTA + 1, now), 1); /* 1970: past */
	assert_int_equal(mc_exptime_abs(now + 5, now), now + 5);
	assert_int_equal(mc_exptime_abs(now, now), 1);
}

static void u64_format(void **state)
{
	(void)state;
	char b[24];
	b[mc_u64_str(0, b)] = '\0';
	assert_string_equal(b, "0");
	b[mc_u64_str(UINT64_MAX, b)] = '\0';
	assert_string_equal(b, "18446744073709551615");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_family),	      cmocka_unit_test(key_limit_250),
		cmocka_unit_test(storage),	      cmocka_unit_test(bad_lengths_and_numbers),
		cmocka_unit_test(missing_data_terminator), cmocka_unit_test(other_commands),
		cmocka_unit_test(long_line_recovers), cmocka_unit_test(partial_input_needs),
		cmocka_unit_test(head_only_parse),
		cmocka_unit_test(exptime_rules),      cmocka_unit_test(u64_format),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
