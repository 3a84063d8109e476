/*
 * test_tokens.c - named tokens (auth_tokens_file) against a real virgod
 * on plain TCP: the token a client sends names its identity.
 *
 * The node has a shared auth_token and a tokens file naming alice and bob;
 * its policy lets bob run only `true` (cpupool_programs).  What must hold:
 * each name is its own identity: bob gets EACCES on get/set/free/renew of
 * alice's private allocation and may use her shared one, the shared
 * token's identity ("token") is a third; bob may run `true` but not `echo`,
 * alice both; a wrong or missing token is refused; a file that group or
 * others may read stops the node at start with a message saying how to
 * fix it; a malformed file on SIGHUP keeps the old tokens (and the log
 * says why); removing bob from the file and SIGHUP refuses bob's new
 * connections and closes his open one, while alice's open connection
 * keeps working.  `virgo certs add-token` writes a token the node takes
 * after SIGHUP (the file stays mode 0600), `revoke-token` removes it.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

#define SHARED "shared-token-0123456789"
#define ALICE "alice-token-0123456789abcdef"
#define BOB "bob-token-0123456789abcdef"

static struct th_cluster cl;
static char dir[300], tokens[400];

static void write_tokens(const char *path, const char *text, mode_t mode)
{
	char tmp[450];
	snprintf(tmp, sizeof tmp, "%s.new", path);
	FILE *f = fopen(tmp, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* libvirgo as the holder of token tok. */
static void as(const char *tok)
{
	char path[400];
	snprintf(path, sizeof path, "%s/client-%.5s.conf", dir, tok);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "node = 1 127.0.0.1 %d\npool_size = 0\ntimeout_ms = 3000\nauth_token = %s\n",
		cl.nodes[0].offset, tok);
	fclose(f);
	virgo_fini();
	assert_int_equal(virgo_init(path), 0);
}

/* A raw mempool connection authenticated with tok: the fd, or -1 if
 * the node refused it. */
static int raw_auth(const char *tok)
{
	int fd = th_connect(th_port(&cl, 0, 30000));
	assert_true(fd >= 0);
	char line[300], buf[512];
	snprintf(line, sizeof line, "AUTH %s\r\nping\r\n", tok);
	assert_int_equal(th_send(fd, line, strlen(line)), 0);
	if (th_recv_until(fd, buf, sizeof buf, "PONG", 3000) <= 0 || !strstr(buf, "PONG")) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Does the open connection fd still answer a ping? */
static bool raw_alive(int fd)
{
	char buf[256];
	if (th_send(fd, "ping\r\n", 6) != 0)
		return false;
	return th_recv_until(fd, buf, sizeof buf, "PONG", 3000) > 0 && strstr(buf, "PONG");
}

static void nap(void)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

/* Until the node's log holds text (deadline 5 s). */
static bool log_has(const char *text)
{
	for (int64_t end = th_now_ms() + 5000; th_now_ms() < end; nap()) {
		FILE *f = fopen(cl.nodes[0].log, "r");
		if (!f)
			continue;
		char line[1024];
		bool found = false;
		while (!found && fgets(line, sizeof line, f))
			found = strstr(line, text) != NULL;
		fclose(f);
		if (found)
			return true;
	}
	return false;
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "%s", th_tmpdir());
	snprintf(tokens, sizeof tokens, "%s/tokens", dir);
	FILE *f = fopen(tokens, "w");
	if (!f)
		return -1;
	fprintf(f, "# the clients of this node\nalice " ALICE "\nbob " BOB "\n");
	fclose(f);
	if (chmod(tokens, 0600) != 0)
		return -1;
	char node[800];
	snprintf(node, sizeof node,
		 "auth_token = " SHARED "\nauth_tokens_file = %s\ncpupool_programs = bob:true\n",
		 tokens);
	return th_cluster_start(&cl, 1, node, "auth_token = " SHARED "\n");
}

static int group_teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* alice's private allocation is hers; her shared one anyone's. */
static void test_ownership(void **state)
{
	(void)state;
	as(ALICE);
	virgo_vuid_t mine, shared;
	assert_int_equal(virgo_malloc(16, &mine), 0);
	assert_int_equal(virgo_set(mine, "alice's", 7), 0);
	struct virgo_malloc_opts so = {.shared = 1};
	assert_int_equal(virgo_malloc_ex(16, &so, &shared), 0);
	assert_int_equal(virgo_set(shared, "ours", 4), 0);

	as(BOB);
	void *got = NULL;
	size_t len = 0;
	assert_int_equal(virgo_get(mine, &got, &len), -EACCES);
	assert_int_equal(virgo_set(mine, "bob", 3), -EACCES);
	assert_int_equal(virgo_free(mine), -EACCES);
	assert_int_equal(virgo_renew(mine, 1000), -EACCES);
	assert_int_equal(virgo_get(shared, &got, &len), 0);
	assert_int_equal(len, 4);
	free(got);
	assert_int_equal(virgo_set(shared, "both", 4), 0);
	/* the shared token's identity is another again */
	as(SHARED);
	assert_int_equal(virgo_get(mine, &got, &len), -EACCES);

	as(ALICE);
	assert_int_equal(virgo_get(mine, &got, &len), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "alice's", 7);
	free(got);
	assert_int_equal(virgo_free(mine), 0);
	assert_int_equal(virgo_free(shared), 0);
}

static int run_as(const char *tok, const char *prog)
{
	const char *const argv[] = {prog, NULL};
	struct virgo_run_result res;
	memset(&res, 0, sizeof res);
	as(tok);
	int rc = virgo_run(argv, &res);
	if (rc == 0)
		assert_int_equal(res.exit_code, 0);
	virgo_run_result_free(&res);
	return rc;
}

/* cpupool_programs = bob:true names bob by his token's name. */
static void test_cpupool_programs(void **state)
{
	(void)state;
	assert_int_equal(run_as(BOB, "true"), 0);
	assert_int_equal(run_as(BOB, "echo"), -EACCES);
	assert_int_equal(run_as(ALICE, "echo"), 0);
}

static void test_wrong_token(void **state)
{
	(void)state;
	char buf[512];
	int fd = th_connect(th_port(&cl, 0, 30000));
	assert_true(fd >= 0);
	const char *req = "AUTH " ALICE "x\r\nping\r\n";
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	assert_non_null(strstr(buf, "ERR EACCES wrong token"));
	assert_null(strstr(buf, "PONG"));
	close(fd);
	/* a name is not a token */
	assert_int_equal(raw_auth("alice"), -1);
	/* no AUTH line */
	fd = th_connect(th_port(&cl, 0, 30000));
	assert_int_equal(th_send(fd, "ping\r\n", 6), 0);
	th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	assert_non_null(strstr(buf, "ERR EACCES"));
	close(fd);
	/* libvirgo with a wrong token */
	char path[400];
	snprintf(path, sizeof path, "%s/wrong.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "node = 1 127.0.0.1 %d\ntimeout_ms = 3000\nauth_token = wrong-token-0123456789\n",
		cl.nodes[0].offset);
	fclose(f);
	virgo_fini();
	assert_int_equal(virgo_init(path), 0);
	assert_int_equal(virgo_ping(0, NULL, NULL), -EACCES);
}

/* A tokens file others may read: the node will not start, and says why. */
static void test_bad_mode_refused_at_start(void **state)
{
	(void)state;
	char path[400], conf[400], out[4096], off[16];
	snprintf(path, sizeof path, "%s/open-tokens", dir);
	write_tokens(path, "alice " ALICE "\n", 0644);
	snprintf(conf, sizeof conf, "%s/open.conf", dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "auth_tokens_file = %s\n", path);
	fclose(f);
	snprintf(off, sizeof off, "%d", th_offset_base(1));
	const char *argv[] = {th_virgod(), "-c", conf, "-o", off, NULL};
	int rc = th_run(argv, out, sizeof out, 10000);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(out, path));
	assert_non_null(strstr(out, "chmod 600"));
	assert_null(strstr(out, ALICE)); /* the secret is not logged */
}

/* A file that no longer parses: the node keeps the tokens it had. */
static void test_malformed_reload_keeps_old(void **state)
{
	(void)state;
	write_tokens(tokens, "alice " ALICE "\nbob\n", 0600);
	th_node_signal(&cl, 0, SIGHUP);
	assert_true(log_has("line 2: want '<name> <token>'; keeping the old tokens"));
	int fd = raw_auth(BOB);
	assert_true(fd >= 0);
	close(fd);
	write_tokens(tokens, "alice " ALICE "\nbob " BOB "\n", 0600);
}

/* bob removed and SIGHUP: refused from then on, his open connection
 * closed; alice's open connection is not touched. */
static void test_removed_refused_after_reload(void **state)
{
	(void)state;
	int a = raw_auth(ALICE), b = raw_auth(BOB);
	assert_true(a >= 0);
	assert_true(b >= 0);
	write_tokens(tokens, "# bob left\nalice " ALICE "\n", 0600);
	th_node_signal(&cl, 0, SIGHUP);
	int fd = -1;
	for (int64_t end = th_now_ms() + 5000; th_now_ms() < end; nap()) {
		if ((fd = raw_auth(BOB)) < 0)
			break;
		close(fd);
	}
	assert_int_equal(fd, -1); /* a new connection of bob: refused */
	char buf[256];
	/* his open one: closed by the node (EOF, no reply) */
	assert_int_equal(th_recv_until(b, buf, sizeof buf, NULL, 5000), 0);
	close(b);
	assert_true(raw_alive(a));
	close(a);
	as(BOB);
	assert_int_equal(virgo_ping(0, NULL, NULL), -EACCES);
	as(ALICE);
	assert_int_equal(virgo_ping(0, NULL, NULL), 0);
}

/* `virgo certs add-token carol`: the token it prints is carol's after a
 * reload; `revoke-token carol` and a reload refuse it again. */
static void test_cli_add_revoke(void **state)
{
	(void)state;
	char virgo[400], out[4096], tok[300] = "";
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	const char *add[] = {virgo, "certs", "add-token", "carol", "--file", tokens, NULL};
	assert_int_equal(th_run(add, out, sizeof out, 10000), 0);
	const char *at = strstr(out, "\nauth_token = ");
	assert_non_null(at);
	assert_int_equal(sscanf(at, "\nauth_token = %299s", tok), 1);
	assert_int_equal(strlen(tok), 64);
	struct stat st;
	assert_int_equal(stat(tokens, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	th_node_signal(&cl, 0, SIGHUP);
	int fd = -1;
	for (int64_t end = th_now_ms() + 5000; fd < 0 && th_now_ms() < end; nap())
		fd = raw_auth(tok);
	assert_true(fd >= 0);
	close(fd);
	const char *rev[] = {virgo, "certs", "revoke-token", "carol", "--file", tokens, NULL};
	assert_int_equal(th_run(rev, out, sizeof out, 10000), 0);
	assert_int_not_equal(th_run(rev, out, sizeof out, 10000), 0); /* gone already */
	th_node_signal(&cl, 0, SIGHUP);
	for (int64_t end = th_now_ms() + 5000; th_now_ms() < end; nap()) {
		if ((fd = raw_auth(tok)) < 0)
			break;
		close(fd);
	}
	assert_int_equal(fd, -1);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ownership),
		cmocka_unit_test(test_cpupool_programs),
		cmocka_unit_test(test_wrong_token),
		cmocka_unit_test(test_bad_mode_refused_at_start),
		cmocka_unit_test(test_malformed_reload_keeps_old),
		cmocka_unit_test(test_removed_refused_after_reload),
		cmocka_unit_test(test_cli_add_revoke),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
