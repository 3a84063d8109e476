/*
 * test_cli_ops.c - the virgo command as an operator leans on it (issue
 * 15), run as separate processes against a real 3-node loopback cluster:
 * `virgo status` and `virgo ping` ask every node at once, so with two
 * nodes stopped (SIGSTOP: they accept connections and never answer) one
 * call costs about one reply timeout, not one per node and service; a
 * node answering with another id is named by ping; status shows each
 * node's memcache hit rate, items and evictions (table and --json) as the
 * memcache port's own stats give them; an allocation made without
 * --owner carries the default tag <host>:<pid> (the CLI: of the program
 * that ran it), which `virgo free --owner` reclaims, in C too.
 */
#include <errno.h>
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

/* the reply timeout every test below measures against */
#define TIMEOUT_MS 2000
#define CLIENT_EXTRA "timeout_ms = 2000\nconnect_timeout_ms = 500\n"

static struct th_cluster cl;
static char virgo[700];
static char out[65536];

static int setup(void **state)
{
	(void)state;
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	unsetenv("VIRGO_OWNER");
	/* background jobs live under $XDG_RUNTIME_DIR: a private one */
	static char rt[400];
	snprintf(rt, sizeof rt, "%s/runtime", th_tmpdir());
	if (mkdir(rt, 0700) != 0 && errno != EEXIST)
		return -1;
	setenv("XDG_RUNTIME_DIR", rt, 1);
	if (th_cluster_start(&cl, 3, "allow_exec = sleep, sh\njob_timeout_ms = 20000\n",
			     CLIENT_EXTRA) != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* Runs `virgo -c <conf> args...` (NULL-terminated); output in out. */
static int cli_conf(const char *conf, const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	int rc = th_cliv(virgo, conf, out, sizeof out, 30000, a0, ap);
	va_end(ap);
	return rc;
}
#define cli(...) cli_conf(cl.client_conf, __VA_ARGS__)

/* Runs `virgo <args>` and returns how long it took (ms); *rc its status. */
static int64_t timed(int *rc, const char *cmd, const char *arg)
{
	int64_t t0 = th_now_ms();
	*rc = cli(cmd, arg, NULL);
	return th_now_ms() - t0;
}

/* Every node running again (a failed test must not leave one stopped). */
static int resume(void **s)
{
	(void)s;
	for (int i = 0; i < cl.n; i++)
		if (cl.nodes[i].pid > 0)
			kill(cl.nodes[i].pid, SIGCONT);
	return 0;
}

/* Two of three nodes stopped: status (3 services each) and ping answer
 * within about one timeout, and report exactly those two down. */
static void hung_nodes_cost_one_timeout(void **s)
{
	(void)s;
	th_node_signal(&cl, 1, SIGSTOP);
	th_node_signal(&cl, 2, SIGSTOP);
	int rc;
	int64_t ms = timed(&rc, "status", NULL);
	fprintf(stderr, "status with 2 hung nodes: %lld ms (timeout %d)\n", (long long)ms,
		TIMEOUT_MS);
	assert_int_equal(rc, 1);
	/* asked one after another it would be 6 timeouts (2 nodes x 3
	 * services); in parallel one, plus start-up */
	if (ms < TIMEOUT_MS - 100 || ms > TIMEOUT_MS * 7 / 4)
		fail_msg("status took %lld ms with 2 hung nodes (want about %d):\n%s",
			 (long long)ms, TIMEOUT_MS, out);
	char want[96], addr[32];
	for (int k = 0; k < 3; k++) {
		snprintf(addr, sizeof addr, "127.0.0.1:%d", th_port(&cl, k, 30000));
		snprintf(want, sizeof want, "\n%-5d %-21s %s ", k + 1, addr, k ? "DOWN " : "up   ");
		if (!strstr(out, want))
			fail_msg("no '%s' in:\n%s", want + 1, out);
	}
	ms = timed(&rc, "ping", NULL);
	fprintf(stderr, "ping with 2 hung nodes: %lld ms\n", (long long)ms);
	assert_int_equal(rc, 1);
	if (ms < TIMEOUT_MS - 100 || ms > TIMEOUT_MS * 7 / 4)
		fail_msg("ping took %lld ms with 2 hung nodes (want about %d):\n%s", (long long)ms,
			 TIMEOUT_MS, out);
	assert_non_null(strstr(out, "node 1 127.0.0.1"));
	assert_non_null(strstr(out, "node 2 127.0.0.1"));
	assert_non_null(strstr(out, "node 3 127.0.0.1"));
	assert_int_equal((int)(strstr(out, "DOWN") != NULL), 1);
	/* the order is the configuration's, whatever answered first */
	assert_true(strstr(out, "node 1 ") < strstr(out, "node 2 "));
	assert_true(strstr(out, "node 2 ") < strstr(out, "node 3 "));
	/* the next commands know (XDG_RUNTIME_DIR/virgo-health) that nodes 2
	 * and 3 hung: mallocs go to node 1 at once, not after a timeout each */
	for (int i = 0; i < 4; i++) {
		ms = timed(&rc, "malloc", "100");
		assert_int_equal(rc, 0);
		if (ms > TIMEOUT_MS / 2)
			fail_msg("malloc %d took %lld ms with 2 hung nodes known", i, (long long)ms);
		virgo_vuid_t v;
		assert_int_equal(virgo_vuid_parse(strtok(out, "\n"), &v), 0);
		assert_int_equal(virgo_vuid_node(v), 1);
		char hex[17];
		virgo_vuid_format(v, hex);
		assert_int_equal(cli("free", hex, NULL), 0);
	}
	resume(NULL);
	/* all back: fast again, exit 0 */
	ms = timed(&rc, "status", NULL);
	assert_int_equal(rc, 0);
	assert_true(ms < TIMEOUT_MS);
	/* status heard from them: they are placed on again */
	char path[500];
	snprintf(path, sizeof path, "%s/virgo-health", getenv("XDG_RUNTIME_DIR"));
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char line[256];
	int lines = 0;
	while (fgets(line, sizeof line, f))
		lines++;
	fclose(f);
	assert_int_equal(lines, 0);
}

/* A client config that gives nodes 1 and 2 each other's addresses: ping
 * says which id answered, exit 1. */
static void ping_names_a_node_with_another_id(void **s)
{
	(void)s;
	char conf[400];
	snprintf(conf, sizeof conf, "%s/swapped.conf", cl.dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "node = 1 127.0.0.1 %d\nnode = 2 127.0.0.1 %d\nnode = 3 127.0.0.1 %d\n%s",
		cl.nodes[1].offset, cl.nodes[0].offset, cl.nodes[2].offset, CLIENT_EXTRA);
	fclose(f);
	assert_int_equal(cli_conf(conf, "ping", NULL), 1);
	assert_non_null(strstr(out, "answers as node 2 (check virgo_client.conf)"));
	assert_non_null(strstr(out, "answers as node 1 (check virgo_client.conf)"));
	assert_non_null(strstr(out, "node 3 127.0.0.1"));
	assert_non_null(strstr(out, ": up, "));
}

/* One memcache request on node i; the reply (up to END or a line). */
static void mc(int i, const char *req, const char *until)
{
	int fd = th_connect(th_port(&cl, i, 11211));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	static char buf[4096];
	assert_true(th_recv_until(fd, buf, sizeof buf, until, 10000) > 0);
	close(fd);
}

/* The value of "STAT <key> <n>" in node i's memcache stats. */
static unsigned long long mc_stat(int i, const char *key)
{
	int fd = th_connect(th_port(&cl, i, 11211));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "stats\r\n", 7), 0);
	static char buf[16384];
	assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 10000) > 0);
	close(fd);
	char pat[80];
	snprintf(pat, sizeof pat, "STAT %s ", key);
	const char *p = strstr(buf, pat);
	assert_non_null(p);
	return strtoull(p + strlen(pat), NULL, 10);
}

/* What prog (python over o) says of out (a `virgo ... --json` reply). */
static int json_check(const char *prog, char *res, size_t cap)
{
	int rc = th_json_eval(out, prog, res, cap);
	assert_true(rc != -2);
	return rc;
}

/* Node 2's memcache: 3 hits and 1 miss; status shows 75% and the same
 * counts as the port's own stats. */
static void status_shows_memcache_hit_rate(void **s)
{
	(void)s;
	mc(1, "set hr-k 0 0 2\r\nhi\r\n", "\r\n");
	for (int i = 0; i < 3; i++)
		mc(1, "get hr-k\r\n", "END\r\n");
	mc(1, "get hr-none\r\n", "END\r\n");
	unsigned long long hits = mc_stat(1, "get_hits"), misses = mc_stat(1, "get_misses");
	unsigned long long items = mc_stat(1, "curr_items"), ev = mc_stat(1, "evictions");
	assert_true(hits >= 3 && misses >= 1);
	assert_int_equal(cli("status", NULL), 0);
	assert_non_null(strstr(out, "HIT%"));
	assert_non_null(strstr(out, "EVICT"));
	assert_non_null(strstr(out, "ITEMS"));
	char want[32];
	snprintf(want, sizeof want, " %.0f%% ", 100.0 * (double)hits / (double)(hits + misses));
	if (!strstr(out, want))
		fail_msg("no '%s' in:\n%s", want, out);
	assert_int_equal(cli("status", "--json", NULL), 0);
	static char res[4096];
	if (json_check("o['nodes'][1]['memcache']['get_hits'], "
		       "o['nodes'][1]['memcache']['get_misses'], "
		       "o['nodes'][1]['memcache']['items'], o['nodes'][1]['memcache']['evictions'], "
		       "round(o['nodes'][1]['memcache']['hit_rate'], 3), "
		       "all('memcache' in n for n in o['nodes'])",
		       res, sizeof res) != 0)
		fail_msg("not valid JSON:\n%s\n%.2000s", res, out);
	char exp[200];
	snprintf(exp, sizeof exp, "%llu %llu %llu %llu %g True\n", hits, misses, items, ev,
		 (double)(long long)((double)hits / (double)(hits + misses) * 1000 + 0.5) / 1000);
	assert_string_equal(res, exp);
	mc(1, "delete hr-k\r\n", "\r\n");
}

/* This process's default tag: "<host>:<pid>". */
static void default_tag(char *buf, size_t cap, long pid)
{
	char host[256];
	assert_int_equal(gethostname(host, sizeof host), 0);
	host[53] = '\0';
	snprintf(buf, cap, "%s:%ld", host, pid);
}

/* virgo malloc without --owner: tagged <host>:<pid of its parent> (this
 * test); virgo ls shows it; virgo free --owner reclaims it and only it;
 * --owner '' makes an untagged one; $VIRGO_OWNER overrides. */
static void cli_malloc_default_owner(void **s)
{
	(void)s;
	char tag[128];
	default_tag(tag, sizeof tag, (long)getpid());
	assert_int_equal(cli("malloc", "100", NULL), 0);
	assert_int_equal(cli("malloc", "5M", NULL), 0); /* a span: chunks + descriptor */
	assert_int_equal(cli("malloc", "100", "--owner", "", NULL), 0);
	char untagged[32];
	snprintf(untagged, sizeof untagged, "%.*s", (int)strcspn(out, "\n"), out);
	assert_int_equal(cli("ls", NULL), 0);
	if (!strstr(out, tag))
		fail_msg("no owner '%s' in virgo ls:\n%s", tag, out);
	assert_int_equal(cli("free", "--owner", tag, NULL), 0);
	/* 1 + the span's chunks (5M at the default 1M chunk) + descriptor */
	unsigned long freed = strtoul(out, NULL, 10);
	if (freed < 3)
		fail_msg("free --owner %s: %s", tag, out);
	assert_int_equal(cli("ls", NULL), 0);
	assert_null(strstr(out, tag));
	assert_non_null(strstr(out, untagged));
	assert_int_equal(cli("free", untagged, NULL), 0);
	/* $VIRGO_OWNER names the tag */
	setenv("VIRGO_OWNER", "nightly-batch", 1);
	assert_int_equal(cli("malloc", "100", NULL), 0);
	unsetenv("VIRGO_OWNER");
	assert_int_equal(cli("free", "--owner", "nightly-batch", NULL), 0);
	assert_int_equal(strtoul(out, NULL, 10), 1);
}

/* The same from C: virgo_malloc carries virgo_owner_default(). */
static void lib_malloc_default_owner(void **s)
{
	(void)s;
	char tag[128];
	default_tag(tag, sizeof tag, (long)getpid());
	assert_string_equal(virgo_owner_default(), tag);
	virgo_vuid_t v[3];
	for (int i = 0; i < 3; i++)
		assert_int_equal(virgo_malloc(64, &v[i]), 0);
	struct virgo_malloc_opts none = {.owner = ""};
	virgo_vuid_t keep;
	assert_int_equal(virgo_malloc_ex(64, &none, &keep), 0);
	uint64_t freed = 0;
	assert_int_equal(virgo_free_owner(tag, &freed), 0);
	assert_int_equal(freed, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(virgo_free(v[i]), -ENOENT);
	assert_int_equal(virgo_free(keep), 0);
	setenv("VIRGO_OWNER", "bad tag", 1); /* not a valid tag: the default */
	assert_string_equal(virgo_owner_default(), tag);
	setenv("VIRGO_OWNER", "svc-a", 1);
	assert_string_equal(virgo_owner_default(), "svc-a");
	unsetenv("VIRGO_OWNER");
}

/* Jobs running on the cluster's cpupools right now (summed). */
static int cluster_running(void)
{
	int sum = 0;
	for (int i = 0; i < 3; i++) {
		struct virgo_load ld;
		if (virgo_load(i, &ld) == 0)
			sum += ld.running;
	}
	return sum;
}

/* Polls until cluster_running() == want; true if it got there. */
static bool running_becomes(int want)
{
	int64_t deadline = th_now_ms() + 15000;
	while (th_now_ms() < deadline) {
		if (cluster_running() == want)
			return true;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return false;
}

/* `virgo jobs`' line for job id: state and holder pid; false if absent. */
static bool job_line(long id, char *state, size_t cap, long *pid)
{
	assert_int_equal(cli("jobs", NULL), 0);
	assert_int_equal(strncmp(out, "JOB ", 4), 0);
	char pat[32];
	snprintf(pat, sizeof pat, "\n%ld ", id);
	const char *l = strstr(out, pat);
	if (!l)
		return false;
	char st[32], node[16];
	long p = 0;
	/* "exit 3" is two words: the state is everything before the node */
	if (sscanf(l + 1, "%*d %31s", st) != 1)
		return false;
	if (strcmp(st, "exit") == 0) {
		int code;
		sscanf(l + 1, "%*d exit %d %15s %ld", &code, node, &p);
		snprintf(state, cap, "exit %d", code);
	} else {
		sscanf(l + 1, "%*d %*s %15s %ld", node, &p);
		snprintf(state, cap, "%s", st);
	}
	if (pid)
		*pid = p;
	return true;
}

/* clone/run --bg print a job id at once; virgo jobs lists them; wait
 * prints the result and exits as the foreground command would (0, the
 * program's status, 124 at its deadline); cancel stops a running job and
 * the node kills the program; a holder killed outright shows as lost. */
static void background_jobs(void **s)
{
	(void)s;
	assert_int_equal(cluster_running(), 0);
	assert_int_equal(cli("clone", "--bg", "virgo_cloud_test", "hello bg", NULL), 0);
	long j1 = strtol(out, NULL, 10);
	assert_int_equal(cli("run", "--bg", "--", "sh", "-c", "echo out; echo err >&2; exit 3",
			     NULL),
			 0);
	long j2 = strtol(out, NULL, 10);
	int64_t t0 = th_now_ms();
	assert_int_equal(cli("run", "--bg", "--", "sleep", "30", NULL), 0);
	assert_true(th_now_ms() - t0 < 2000); /* at once, not after the job */
	long j3 = strtol(out, NULL, 10);
	assert_true(j1 >= 1 && j2 == j1 + 1 && j3 == j2 + 1);
	char st[32];
	long pid = 0;
	assert_true(job_line(j3, st, sizeof st, &pid));
	assert_string_equal(st, "running");
	assert_true(pid > 0);
	assert_non_null(strstr(out, "run -- sleep 30"));
	assert_non_null(strstr(out, "clone virgo_cloud_test hello bg"));
	/* results, as the foreground commands print them */
	char id[24];
	snprintf(id, sizeof id, "%ld", j1);
	assert_int_equal(cli("wait", id, NULL), 0);
	assert_string_equal(out, "hello bg");
	snprintf(id, sizeof id, "%%%ld", j2); /* the shell's %N form */
	assert_int_equal(cli("wait", id, NULL), 3);
	assert_non_null(strstr(out, "out\n"));
	assert_non_null(strstr(out, "err\n"));
	assert_int_equal(cli("wait", id, NULL), 1); /* collected: gone */
	assert_non_null(strstr(out, "no job"));
	/* cancel: the node kills the sleep */
	assert_true(running_becomes(1));
	snprintf(id, sizeof id, "%ld", j3);
	assert_int_equal(cli("cancel", id, NULL), 0);
	assert_non_null(strstr(out, "cancelled"));
	assert_true(running_becomes(0));
	assert_false(job_line(j3, st, sizeof st, NULL));
	/* killed at its deadline: 124 */
	assert_int_equal(cli("run", "--bg", "--timeout", "300", "--", "sleep", "10", NULL), 0);
	snprintf(id, sizeof id, "%ld", strtol(out, NULL, 10));
	assert_int_equal(cli("wait", id, NULL), 124);
	/* a holder killed outright: lost, and the node cancels the job */
	assert_int_equal(cli("run", "--bg", "--", "sleep", "30", NULL), 0);
	long j5 = strtol(out, NULL, 10);
	assert_true(running_becomes(1));
	assert_true(job_line(j5, st, sizeof st, &pid));
	assert_int_equal(kill((pid_t)pid, SIGKILL), 0);
	int64_t deadline = th_now_ms() + 10000;
	while (job_line(j5, st, sizeof st, NULL) && strcmp(st, "lost") != 0 &&
	       th_now_ms() < deadline) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_string_equal(st, "lost");
	assert_true(running_becomes(0));
	snprintf(id, sizeof id, "%ld", j5);
	assert_int_equal(cli("wait", id, NULL), 125);
	assert_non_null(strstr(out, "without a result"));
	/* usage */
	assert_int_equal(cli("wait", NULL), 2);
	assert_int_equal(cli("cancel", "x", NULL), 2);
	assert_int_equal(cli("jobs", "extra", NULL), 2);
}

/* virgo map on a terminal draws done/total, failures and an ETA on
 * stderr while it runs (about 1.2 s here) and clears the line; in a pipe
 * it prints none of it. */
static void map_progress_on_a_terminal(void **s)
{
	(void)s;
	const char *av[] = {virgo, "-c", cl.client_conf, "map", "-j", "2", "--", "sleep", ":::",
			    "x", "0.4", "0.4", "0.4", "0.4", "0.4", "0.4", NULL};
	static char tty[65536];
	assert_int_equal(th_run_tty(av, tty, sizeof tty, 20000), 1); /* "sleep x" failed */
	if (!strstr(tty, "virgo map: ") || !strstr(tty, "/7 done, 1 failed, ") ||
	    !strstr(tty, " elapsed, ETA "))
		fail_msg("no progress line on the terminal:\n%s", tty);
	/* the last thing on the terminal clears the progress line */
	const char *last = NULL;
	for (const char *p = tty; (p = strstr(p, "virgo map: ")); p++)
		last = p;
	assert_non_null(strstr(last, "\r\033[K"));
	/* in a pipe: no progress, no escape sequences */
	assert_int_equal(th_run(av, out, sizeof out, 20000), 1);
	assert_null(strstr(out, "virgo map: "));
	assert_null(strchr(out, '\033'));
}

/* The bash completion offers exactly the commands `virgo help` lists. */
static void completion_lists_every_command(void **s)
{
	(void)s;
	char path[800];
	snprintf(path, sizeof path, "%s/../../packaging/virgo.bash-completion", th_build_dir());
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	static char comp[1024];
	char line[1024];
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "_virgo_cmds=\"", 13) == 0)
			snprintf(comp, sizeof comp, " %.*s ", (int)strcspn(line + 13, "\""), line + 13);
	fclose(f);
	assert_true(comp[0] != '\0');
	const char *av[] = {virgo, "help", NULL};
	assert_int_equal(th_run(av, out, sizeof out, 10000), 0);
	int n = 0, words = 0;
	for (char *l = out; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (l[0] != ' ' || l[1] != ' ' || l[2] < 'a' || l[2] > 'z')
			continue;
		char w[40];
		snprintf(w, sizeof w, " %.*s ", (int)strspn(l + 2, "abcdefghijklmnopqrstuvwxyz"),
			 l + 2);
		if (!strstr(comp, w))
			fail_msg("virgo help lists%sbut the bash completion does not", w);
		n++;
	}
	for (char *p = comp; (p = strchr(p, ' ')) && p[1]; p++)
		words++;
	assert_int_equal(words, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(hung_nodes_cost_one_timeout, resume),
		cmocka_unit_test(ping_names_a_node_with_another_id),
		cmocka_unit_test(status_shows_memcache_hit_rate),
		cmocka_unit_test(cli_malloc_default_owner),
		cmocka_unit_test(lib_malloc_default_owner),
		cmocka_unit_test(background_jobs),
		cmocka_unit_test(map_progress_on_a_terminal),
		cmocka_unit_test(completion_lists_every_command),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
