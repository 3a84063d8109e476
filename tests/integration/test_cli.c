/*
 * test_cli.c - the virgo command as a user meets it, run as a separate
 * process (th_run) against a real 2-node loopback cluster: every
 * command's --help/-h and `virgo help <cmd>` (usage, examples, exit 0,
 * never parsed as an argument), bad arguments (exit 2 with a reason),
 * -c/--config errors, sizes with units, the error detail (the node, the
 * operation and the node's own sentence, also through virgo_last_error()
 * in C), and the exit codes: 124 at a deadline, 125 not run, 1 for a
 * failed program in map, status non-zero with a node down, and `get`'s
 * newline on a terminal.  The command list of `virgo help` is compared
 * with docs/man/virgo.1 when that page exists (skipped otherwise).
 *
 * $VIRGO_CLI overrides the binary under test (th_virgo_cli: to check these tests
 * against an older build).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

#define NODE_EXTRA "allow_exec = echo, sh, sleep, true, false\njob_timeout_ms = 4000\n"
#define CLIENT_EXTRA "timeout_ms = 3000\nconnect_timeout_ms = 500\nclone_timeout_ms = 8000\n"

static struct th_cluster cl;
static char virgo[700];
static char out[65536];

static int setup(void **state)
{
	(void)state;
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	if (th_cluster_start(&cl, 2, NODE_EXTRA, CLIENT_EXTRA) != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* Runs `virgo -c <client conf> args...` (NULL-terminated); output in out. */
static int cli(const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	int rc = th_cliv(virgo, cl.client_conf, out, sizeof out, 20000, a0, ap);
	va_end(ap);
	return rc;
}

/* The commands `virgo help` lists: lines "  <name> ..." (lowercase name
 * right after two spaces).  Returns how many, names in names[]. */
static int help_commands(char names[][32], int max)
{
	const char *av[] = {virgo, "help", NULL};
	assert_int_equal(th_run(av, out, sizeof out, 10000), 0);
	int n = 0;
	for (char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (l[0] != ' ' || l[1] != ' ' || l[2] < 'a' || l[2] > 'z')
			continue;
		size_t len = strspn(l + 2, "abcdefghijklmnopqrstuvwxyz_-");
		if (n < max && len < 32) {
			memcpy(names[n], l + 2, len);
			names[n][len] = '\0';
			n++;
		}
	}
	return n;
}

static void help_for_every_command(void **s)
{
	(void)s;
	char names[64][32];
	int n = help_commands(names, 64);
	assert_true(n >= 12);
	static char first[65536];
	for (int i = 0; i < n; i++) {
		const char *help[] = {virgo, "help", names[i], NULL};
		assert_int_equal(th_run(help, first, sizeof first, 10000), 0);
		char want[64];
		snprintf(want, sizeof want, "usage: virgo [-c FILE] %s", names[i]);
		if (!strstr(first, want))
			fail_msg("virgo help %s: no '%s' in:\n%s", names[i], want, first);
		assert_non_null(strstr(first, "Examples:\n  $ virgo "));
		/* --help and -h after the command: the same text, exit 0,
		 * never taken as an argument */
		const char *flags[] = {"--help", "-h"};
		for (int f = 0; f < 2; f++) {
			int rc = cli(names[i], flags[f], NULL);
			if (rc != 0 || strcmp(out, first) != 0)
				fail_msg("virgo %s %s: exit %d:\n%s", names[i], flags[f], rc, out);
		}
	}
	/* also after other arguments */
	assert_int_equal(cli("malloc", "12", "--help", NULL), 0);
	assert_non_null(strstr(out, "usage: virgo [-c FILE] malloc <size>"));
	assert_null(strstr(out, "not a"));
	assert_int_equal(cli("owner", "k", "--help", NULL), 0);
	assert_int_equal(strncmp(out, "usage: virgo", 12), 0);
	assert_null(strstr(out, "k node")); /* no placement printed */
	/* after "--" the words belong to the program */
	assert_int_equal(cli("run", "--", "sh", "-c", "printf '%s\\n' \"$0\"", "--help", NULL), 0);
	assert_string_equal(out, "--help\n");
	/* the top-level forms */
	const char *top[] = {virgo, "--help", NULL};
	assert_int_equal(th_run(top, out, sizeof out, 10000), 0);
	assert_non_null(strstr(out, "  malloc "));
	const char *none[] = {virgo, NULL};
	assert_int_equal(th_run(none, out, sizeof out, 10000), 2);
}

struct bad {
	const char *args[8];
	const char *reason;
};

static void bad_arguments_exit_2_with_a_reason(void **s)
{
	(void)s;
	static const struct bad cases[] = {
		{{"malloc", NULL}, "wants exactly one size"},
		{{"malloc", "abc", NULL}, "'abc' is not a size"},
		{{"malloc", "-5", NULL}, "'-5' is not a size"},
		{{"malloc", "64X", NULL}, "'64X' is not a size"},
		{{"malloc", "1", "2", NULL}, "wants exactly one size"},
		{{"set", NULL}, "wants a VUID and the data"},
		{{"set", "zz", "data", NULL}, "'zz' is not a VUID"},
		{{"set", "0001000000000001", "data", "--offset", NULL}, "--offset needs a value"},
		{{"set", "0001000000000001", "data", "--offset", "x", NULL}, "'x' is not a size"},
		{{"set", "0001000000000001", "data", "--bogus", NULL}, "unknown option '--bogus'"},
		{{"get", NULL}, "wants a VUID"},
		{{"get", "0001000000000001", "0", NULL}, "wants a VUID"},
		{{"get", "0001000000000001", "0", "zz", NULL}, "'zz' is not a size"},
		{{"free", NULL}, "wants exactly one VUID"},
		{{"free", "nothex", NULL}, "'nothex' is not a VUID"},
		{{"clone", NULL}, "wants a function name"},
		{{"clone", "f", "a", "b", NULL}, "one argument at most"},
		{{"clone", "--policy", "bogus", "f", NULL}, "unknown policy 'bogus'"},
		{{"clone", "--on", "nodeX", "f", NULL}, "--on wants a node id"},
		{{"clone", "--timeout", NULL}, "--timeout needs a value"},
		{{"run", NULL}, "wants a program"},
		{{"run", "--timeout", "soon", "--", "true", NULL}, "not 'soon'"},
		{{"run", "--frobnicate", "1", "--", "true", NULL}, "unknown option '--frobnicate'"},
		{{"map", "--", NULL}, "wants a command"},
		{{"map", "--", ":::", "a", NULL}, "wants a command"},
		{{"map", "-j", "0", "--", "echo", ":::", "a", NULL}, "-j wants a whole number"},
		{{"ping", "extra", NULL}, "takes no arguments"},
		{{"status", "extra", NULL}, "unknown argument 'extra'"},
		{{"stats", "x", NULL}, "not 'x'"},
		{{"stats", "1", "2", NULL}, "at most one node id"},
		{{"owner", NULL}, "wants at least one key"},
		{{"owner", "ok", "", NULL}, "1..250 bytes, not 0"},
		{{"malloc", "0", NULL}, "at least 1 byte"},
		{{"help", "nosuchcmd", NULL}, "unknown command 'nosuchcmd'"},
		{{"nosuchcmd", NULL}, "unknown command 'nosuchcmd'"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *av[16];
		int n = 0;
		av[n++] = virgo;
		av[n++] = "-c";
		av[n++] = cl.client_conf;
		for (int k = 0; cases[i].args[k]; k++)
			av[n++] = cases[i].args[k];
		av[n] = NULL;
		int rc = th_run(av, out, sizeof out, 10000);
		if (rc != 2 || !strstr(out, cases[i].reason))
			fail_msg("virgo %s %s: exit %d (want 2), want '%s' in:\n%s", cases[i].args[0],
				 cases[i].args[1] ? cases[i].args[1] : "", rc, cases[i].reason, out);
	}
	const char *badopt[] = {virgo, "--frob", "ping", NULL};
	assert_int_equal(th_run(badopt, out, sizeof out, 10000), 2);
	assert_non_null(strstr(out, "unknown option '--frob'"));
}

static void config_flag_errors(void **s)
{
	(void)s;
	char missing[400], empty[400], badkey[400];
	snprintf(missing, sizeof missing, "%s/no-such.conf", cl.dir);
	snprintf(empty, sizeof empty, "%s/empty.conf", cl.dir);
	snprintf(badkey, sizeof badkey, "%s/badkey.conf", cl.dir);
	FILE *f = fopen(empty, "w");
	assert_non_null(f);
	fclose(f);
	f = fopen(badkey, "w");
	assert_non_null(f);
	fputs("node = 1 127.0.0.1\nfrobnicate = 3\n", f);
	fclose(f);
	struct {
		const char *flag, *path, *why;
	} cases[] = {
		{"-c", missing, "No such file"},
		{"--config", missing, "No such file"},
		{"-c", cl.dir, "directory"},
		{"--config", empty, "empty"},
		{"-c", badkey, "frobnicate"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const char *av[] = {virgo, cases[i].flag, cases[i].path, "ping", NULL};
		int rc = th_run(av, out, sizeof out, 10000);
		if (rc != 2 || !strstr(out, cases[i].path) || !strstr(out, cases[i].why))
			fail_msg("virgo %s %s ping: exit %d (want 2), want the path and '%s' in:\n%s",
				 cases[i].flag, cases[i].path, rc, cases[i].why, out);
	}
	/* the flag as the README spells it, and the old --conf */
	const char *names[] = {"--config", "--conf", "-c"};
	for (int i = 0; i < 3; i++) {
		const char *av[] = {virgo, names[i], cl.client_conf, "ping", NULL};
		assert_int_equal(th_run(av, out, sizeof out, 10000), 0);
		assert_non_null(strstr(out, "node 2"));
	}
	/* the library too: an explicit directory or empty file is an error */
	virgo_fini();
	assert_int_equal(virgo_init(cl.dir), -VIRGO_ECONF);
	assert_non_null(strstr(virgo_last_error(), "is a directory"));
	assert_int_equal(virgo_init(empty), -VIRGO_ECONF);
	assert_non_null(strstr(virgo_last_error(), "is empty"));
	assert_int_equal(virgo_init(missing), -VIRGO_ECONF);
	assert_non_null(strstr(virgo_last_error(), "no-such.conf"));
	assert_int_equal(th_cluster_client(&cl), 0);
	char eq[400];
	snprintf(eq, sizeof eq, "--config=%s", cl.client_conf);
	const char *av[] = {virgo, eq, "ping", NULL};
	assert_int_equal(th_run(av, out, sizeof out, 10000), 0);
}

/* the VUID malloc printed (first line of out) */
static void take_vuid(char v[32])
{
	size_t n = strcspn(out, "\n");
	assert_true(n > 0 && n < 32);
	memcpy(v, out, n);
	v[n] = '\0';
}

static void sizes_with_units(void **s)
{
	(void)s;
	char v[32];
	assert_int_equal(cli("malloc", "64K", NULL), 0);
	take_vuid(v);
	/* a patch at 1K, a range read with units: the value is 64 KiB */
	assert_int_equal(cli("set", v, "AB", "--offset", "1K", NULL), 0);
	assert_int_equal(cli("get", v, "1K", "2", NULL), 0);
	assert_string_equal(out, "AB");
	assert_int_equal(cli("set", v, "--offset=2k", "CD", NULL), 0);
	assert_int_equal(cli("get", v, "2KB", "2", NULL), 0);
	assert_string_equal(out, "CD");
	/* the last byte is inside; one past it is not */
	assert_int_equal(cli("get", v, "65535", "1", NULL), 0);
	assert_int_equal(cli("get", v, "64K", "1", NULL), 1);
	assert_int_equal(cli("free", v, NULL), 0);
	/* 2M spans nodes (chunk_size 1M) */
	assert_int_equal(cli("malloc", "2M", NULL), 0);
	take_vuid(v);
	assert_int_equal(cli("get", v, "2047K", "1K", NULL), 0);
	assert_int_equal(cli("free", v, NULL), 0);
}

static void error_detail_names_node_and_operation(void **s)
{
	(void)s;
	/* the CLI: the node's own sentence, not the memory wording */
	assert_int_equal(cli("clone", "--on", "node2", "nosuchfn", NULL), 1);
	char want[200];
	snprintf(want, sizeof want, "node 2 (127.0.0.1:%d): clone 'nosuchfn': no such function",
		 th_port(&cl, 1, 10000));
	if (!strstr(out, want))
		fail_msg("want '%s' in:\n%s", want, out);
	assert_null(strstr(out, "allocation"));
	assert_int_equal(cli("free", "0001000000abcdef", NULL), 1);
	snprintf(want, sizeof want, "node 1 (127.0.0.1:%d): free: no such allocation",
		 th_port(&cl, 0, 30000));
	if (!strstr(out, want))
		fail_msg("want '%s' in:\n%s", want, out);
	/* the library call, per thread and per call */
	struct virgo_call_opts o = {.node_id = 1};
	void *res = NULL;
	size_t n = 0;
	assert_int_equal(virgo_clone_ex("nosuchfn", NULL, 0, &o, &res, &n, NULL), -ENOENT);
	snprintf(want, sizeof want, "node 1 (127.0.0.1:%d): clone 'nosuchfn': no such function",
		 th_port(&cl, 0, 10000));
	assert_non_null(strstr(virgo_last_error(), want));
	assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &res, &n, NULL), 0);
	free(res);
	assert_string_equal(virgo_last_error(), "");
	/* a node id the client config does not list: said so */
	o.node_id = 7;
	assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &res, &n, NULL),
			 -VIRGO_ENONODE);
	assert_non_null(strstr(virgo_last_error(), "no node 7 in the client config ("));
	assert_non_null(strstr(virgo_last_error(), cl.client_conf));
	/* a local reason, still named */
	assert_int_equal(virgo_clone_ex("bad name", NULL, 0, NULL, &res, &n, NULL), -EINVAL);
	assert_string_equal(virgo_last_error(), "clone: Invalid argument");
	/* an async job hands its thread's detail to virgo_job_wait */
	o.node_id = 2;
	virgo_job_t j;
	assert_int_equal(virgo_clone_submit("nosuchfn2", NULL, 0, &o, &j), 0);
	struct virgo_run_result r;
	assert_int_equal(virgo_job_wait(j, 10000, &r), -ENOENT);
	assert_non_null(strstr(virgo_last_error(), "node 2 "));
	assert_non_null(strstr(virgo_last_error(), "clone 'nosuchfn2'"));
}

/* A fake node: answers one request with an ERR line whose sentence
 * carries terminal control bytes. */
static void *hostile_node(void *arg)
{
	int lfd = *(int *)arg;
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	if (poll(&p, 1, 10000) != 1)
		return NULL;
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return NULL;
	char buf[512];
	size_t got = 0;
	while (got < sizeof buf && !memchr(buf, '\n', got)) {
		p = (struct pollfd){.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 10000) != 1)
			break;
		ssize_t r = read(fd, buf + got, sizeof buf - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	static const char reply[] = "ERR ENOENT gone\x1b]0;pwned\x07 \x1b[31mred\r\n";
	if (write(fd, reply, sizeof reply - 1) < 0)
		perror("write");
	close(fd);
	return NULL;
}

static void node_sentence_cannot_drive_the_terminal(void **s)
{
	(void)s;
	int lfd = -1, off = 0;
	for (int tries = 0; tries < 20 && lfd < 0; tries++) {
		off = th_offset_base(1);
		lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int one = 1;
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in a = {.sin_family = AF_INET,
					.sin_port = htons((uint16_t)(30000 + off)),
					.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4) != 0) {
			close(lfd);
			lfd = -1;
		}
	}
	assert_true(lfd >= 0);
	char conf[400];
	snprintf(conf, sizeof conf, "%s/hostile.conf", cl.dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "node = 1 127.0.0.1 %d\n", off);
	fclose(f);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, hostile_node, &lfd), 0);
	const char *av[] = {virgo, "-c", conf, "free", "0001000000000001", NULL};
	int rc = th_run(av, out, sizeof out, 10000);
	pthread_join(th, NULL);
	close(lfd);
	assert_int_equal(rc, 1);
	assert_non_null(strstr(out, "free: gone?]0;pwned? ?[31mred"));
	assert_null(strchr(out, '\x1b'));
	assert_null(strchr(out, '\x07'));
}

static void exit_code_124_at_deadline_125_not_run(void **s)
{
	(void)s;
	/* killed at its deadline: 124, as timeout(1) */
	int64_t t0 = th_now_ms();
	assert_int_equal(cli("run", "--timeout", "300", "--", "sleep", "5", NULL), 124);
	assert_true(th_now_ms() - t0 < 4000);
	assert_non_null(strstr(out, "deadline"));
	/* not run (not in allow_exec): 125, the node's reason */
	assert_int_equal(cli("run", "--", "rm", "-rf", "/nonexistent", NULL), 125);
	assert_non_null(strstr(out, "node "));
	/* the program's own status passes through */
	assert_int_equal(cli("run", "--", "sh", "-c", "exit 3", NULL), 3);
	/* map: a failed program is 1, a job the node refused is 125 */
	assert_int_equal(cli("map", "--", "sh", "-c", "exit $0", ":::", "0", "1", NULL), 1);
	assert_int_equal(cli("map", "--", "rm", ":::", "a", NULL), 125);
	assert_int_equal(cli("map", "--", "true", ":::", "a", "b", NULL), 0);
}

/* Runs `printf %s input | virgo -c <conf> args...` through sh; output in out. */
static int cli_stdin(const char *input, const char *args)
{
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "printf '%%s' '%s' | '%s' -c '%s' %s", input, virgo,
		 cl.client_conf, args);
	const char *av[] = {"/bin/sh", "-c", cmd, NULL};
	return th_run(av, out, sizeof out, 20000);
}

static void map_reads_stdin_and_v_names_the_node(void **s)
{
	(void)s;
	/* no :::: one input per line from stdin, empty lines skipped, the
	 * last line without its newline still counts; order kept */
	assert_int_equal(cli_stdin("a\nb\n\nc", "map -j 3 -- echo x{}"), 0);
	assert_string_equal(out, "xa\nxb\nxc\n");
	assert_int_equal(cli_stdin("1\r\n0\n", "map -- sh -c 'exit $0'"), 1);
	assert_int_equal(cli_stdin("", "map -- echo"), 0);
	assert_string_equal(out, "");
	/* ::: still wins over stdin */
	assert_int_equal(cli_stdin("zzz\n", "map -- echo ::: q"), 0);
	assert_string_equal(out, "q\n");
	/* -v: one stderr line per job with the input, node id and exit status */
	assert_int_equal(cli_stdin("0\n3\n", "map -v --on node2 -- sh -c 'exit $0'"), 1);
	assert_non_null(strstr(out, "virgo: map input 1 '0': node 2, exit 0\n"));
	assert_non_null(strstr(out, "virgo: map input 2 '3': node 2, exit 3\n"));
	assert_int_equal(cli("map", "-v", "--", "true", ":::", "a", "b", "c", NULL), 0);
	int lines = 0;
	for (char *p = out; (p = strstr(p, "virgo: map input ")); p++)
		lines++;
	assert_int_equal(lines, 3);
	if (!strstr(out, ": node 1, exit 0\n") && !strstr(out, ": node 2, exit 0\n"))
		fail_msg("no node named in:\n%s", out);
	/* a command is still required */
	assert_int_equal(cli_stdin("a\n", "map"), 2);
	assert_int_equal(cli_stdin("a\n", "map -- ::: a"), 2);
}

static void get_ends_with_newline_on_a_terminal(void **s)
{
	(void)s;
	/* get on a terminal ends with a newline; in a pipe it does not */
	assert_int_equal(cli("malloc", "16", NULL), 0);
	char v[32];
	take_vuid(v);
	assert_int_equal(cli("set", v, "hello", NULL), 0);
	assert_int_equal(cli("get", v, NULL), 0);
	assert_string_equal(out, "hello");
	const char *tty[] = {virgo, "-c", cl.client_conf, "get", v, NULL};
	static char tb[4096];
	assert_int_equal(th_run_tty(tty, tb, sizeof tb, 10000), 0);
	assert_string_equal(tb, "hello\r\n");
	assert_int_equal(cli("free", v, NULL), 0);
}

static void status_nonzero_when_a_node_is_down(void **s)
{
	(void)s;
	/* status: 0 with every node up, non-zero with one down */
	assert_int_equal(cli("status", NULL), 0);
	th_node_signal(&cl, 1, SIGKILL);
	assert_int_equal(cli("status", NULL), 1);
	assert_non_null(strstr(out, "DOWN"));
	assert_int_equal(cli("ping", NULL), 1);
	/* a call to it names the node, the operation and the transport error */
	assert_int_equal(cli("clone", "--on", "2", "virgo_cloud_test", "x", NULL), 1);
	char want[200];
	snprintf(want, sizeof want, "virgo: node 2 (127.0.0.1:%d): clone 'virgo_cloud_test': ",
		 th_port(&cl, 1, 10000));
	if (!strstr(out, want))
		fail_msg("want '%s' in:\n%s", want, out);
	assert_int_equal(th_node_start(&cl, 1), 0);
	assert_int_equal(cli("status", NULL), 0);
}

/* What prog (python over o) says of out (a `virgo ... --json` reply). */
static int json_check(const char *prog, char *res, size_t cap)
{
	int rc = th_json_eval(out, prog, res, cap);
	assert_true(rc != -2);
	return rc;
}

static void status_addresses_pool_memory_and_json(void **s)
{
	(void)s;
	/* pin some memory on node 1 so the pool columns have something */
	assert_int_equal(cli("malloc", "3M", NULL), 0);
	char v[32];
	take_vuid(v);
	assert_int_equal(cli("status", NULL), 0);
	char want[64];
	for (int k = 0; k < 2; k++) {
		snprintf(want, sizeof want, "\n%-5d 127.0.0.1:%d ", k + 1, th_port(&cl, k, 30000));
		if (!strstr(out, want))
			fail_msg("no '%s' in:\n%s", want + 1, out);
	}
	assert_non_null(strstr(out, "ADDRESS"));
	assert_non_null(strstr(out, "PINNED/LIMIT"));
	/* human units: the 3 MiB allocation shows as M, the limit as M or G */
	assert_non_null(strstr(out, "M/"));
	assert_null(strstr(out, "3145728"));
	/* --json: valid JSON, numbers as numbers, states "up" */
	assert_int_equal(cli("status", "--json", NULL), 0);
	static char res[4096];
	if (json_check("len(o['nodes']), o['down'], [n['state'] for n in o['nodes']], "
		       "[n['id'] for n in o['nodes']], "
		       "sum(n['pool']['bytes'] for n in o['nodes']) >= 3145728, "
		       "all(isinstance(n['pool']['limit'], int) and n['pool']['limit'] > 0 "
		       "for n in o['nodes']), "
		       "all(isinstance(n['load1'], float) for n in o['nodes']), "
		       "o['nodes'][1]['address'] == '127.0.0.1:%d' % o['nodes'][1]['ports']['mempool']",
		       res, sizeof res) != 0)
		fail_msg("not valid JSON:\n%s\n%.2000s", res, out);
	assert_string_equal(res, "2 0 ['up', 'up'] [1, 2] True True True True\n");
	assert_int_equal(cli("status", "--frobnicate", NULL), 2);
	/* (free first: a span with a chunk on the killed node would not be) */
	assert_int_equal(cli("free", v, NULL), 0);
	/* a node down: still valid JSON, "down", exit 1 */
	th_node_signal(&cl, 1, SIGKILL);
	assert_int_equal(cli("status", "--json", NULL), 1);
	if (json_check("o['down'], [n['state'] for n in o['nodes']], 'pool' in o['nodes'][1], "
		       "len(o['nodes'][1]['error']) > 0",
		       res, sizeof res) != 0)
		fail_msg("not valid JSON:\n%s\n%.2000s", res, out);
	assert_string_equal(res, "1 ['up', 'down'] False True\n");
	assert_int_equal(th_node_start(&cl, 1), 0);
}

/* docs/man/virgo.1 has one ".SS <command>" per command: the same set as
 * `virgo help` lists. */
static void man_page_lists_the_same_commands(void **s)
{
	(void)s;
	char path[800];
	snprintf(path, sizeof path, "%s/../../docs/man/virgo.1", th_build_dir());
	FILE *f = fopen(path, "r");
	if (!f) {
		print_message("no %s yet: skipped\n", path);
		skip();
	}
	char man[64][32];
	int nm = 0;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, ".SS ", 4) != 0)
			continue;
		char *w = line + 4;
		/* also the .SS "\fBmalloc\fR [args]" forms */
		while (*w == ' ' || *w == '"' || (w[0] == '\\' && w[1] == 'f' && w[2]))
			w += *w == '\\' ? 3 : 1;
		size_t len = strspn(w, "abcdefghijklmnopqrstuvwxyz_-");
		if (len && len < 32 && nm < 64) {
			memcpy(man[nm], w, len);
			man[nm++][len] = '\0';
		}
	}
	fclose(f);
	char help[64][32];
	int nh = help_commands(help, 64);
	for (int i = 0; i < nh; i++) {
		bool found = false;
		for (int k = 0; k < nm && !found; k++)
			found = strcmp(help[i], man[k]) == 0;
		if (!found)
			fail_msg("'virgo help' lists %s; virgo.1 has no .SS %s", help[i], help[i]);
	}
	for (int k = 0; k < nm; k++) {
		bool found = false;
		for (int i = 0; i < nh && !found; i++)
			found = strcmp(help[i], man[k]) == 0;
		if (!found)
			fail_msg("virgo.1 has .SS %s; 'virgo help' does not list it", man[k]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(help_for_every_command),
		cmocka_unit_test(bad_arguments_exit_2_with_a_reason),
		cmocka_unit_test(config_flag_errors),
		cmocka_unit_test(sizes_with_units),
		cmocka_unit_test(error_detail_names_node_and_operation),
		cmocka_unit_test(node_sentence_cannot_drive_the_terminal),
		cmocka_unit_test(exit_code_124_at_deadline_125_not_run),
		cmocka_unit_test(map_reads_stdin_and_v_names_the_node),
		cmocka_unit_test(get_ends_with_newline_on_a_terminal),
		cmocka_unit_test(status_nonzero_when_a_node_is_down),
		cmocka_unit_test(status_addresses_pool_memory_and_json),
		cmocka_unit_test(man_page_lists_the_same_commands),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
