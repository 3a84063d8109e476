/*
 * test_cpupool_cluster.c - CPU pooling end to end on a 3-node loopback
 * cluster of real virgod processes: every work kind, binary arguments,
 * the notes' telnet forms, refusals, deadlines, output cap, the bounded
 * queue, cancel on disconnect, each placement policy (seeded), a node
 * killed mid-job, and the CLI's run and map.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

/* libvirgo's generator, to predict the seeded random policy */
uint64_t lb_rng_next(uint64_t *state);

#define SEED 7
#define NODE_EXTRA                                                                         \
	"allow_exec = echo, sh, sleep, true\njob_timeout_ms = 4000\noutput_cap = 64K\n"         \
	"cpu_workers = 2\ncpu_queue = 2\n"
#define CLIENT_EXTRA                                                                        \
	"timeout_ms = 3000\nconnect_timeout_ms = 500\nbackoff_ms = 300\nbackoff_max_ms = 1000\n" \
	"clone_timeout_ms = 8000\nload_max_age_ms = 0\nseed = 7\n"

static struct th_cluster cl;
static char node_extra[3][700];

static int setup(void **state)
{
	(void)state;
	const char *dir = th_build_dir();
	for (int i = 0; i < 3; i++)
		snprintf(node_extra[i], sizeof node_extra[i], "plugins = %s/libvtp_%s.so\n", dir,
			 i == 1 ? "slow" : "fast");
	const char *extra[3] = {node_extra[0], node_extra[1], node_extra[2]};
	if (th_cluster_start_nodes(&cl, 3, NODE_EXTRA, extra, CLIENT_EXTRA) != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* A fresh client: the seeded generator and every table start over. */
static void reinit(void)
{
	assert_int_equal(th_cluster_client(&cl), 0);
}

static struct virgo_load load_of(int idx)
{
	struct virgo_load l;
	assert_int_equal(virgo_load(idx, &l), 0);
	return l;
}

/* Polls until node idx reports running+queued == want (deadline 5 s). */
static void wait_jobs(int idx, int running, int queued)
{
	int64_t deadline = th_now_ms() + 5000;
	for (;;) {
		struct virgo_load l = load_of(idx);
		if (l.running == running && l.queued == queued)
			return;
		if (th_now_ms() > deadline)
			fail_msg("node %d: running %d queued %d, want %d %d", idx + 1, l.running,
				 l.queued, running, queued);
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void wait_no_children(int idx)
{
	int64_t deadline = th_now_ms() + 5000;
	while (th_children(cl.nodes[idx].pid) != 0) {
		if (th_now_ms() > deadline)
			fail_msg("node %d still has %d children", idx + 1,
				 th_children(cl.nodes[idx].pid));
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static void builtin_echo_binary_args(void **s)
{
	(void)s;
	/* spaces, quotes, CR/LF, NULs: all bytes come back on every node */
	uint8_t arg[60000];
	for (size_t i = 0; i < sizeof arg; i++)
		arg[i] = (uint8_t)(i * 7 + (i >> 8));
	memcpy(arg, "a b \"q\" 'x'\r\n\n\0end", 18);
	for (unsigned id = 1; id <= 3; id++) {
		struct virgo_call_opts o = {.node_id = id};
		void *out;
		size_t n;
		unsigned on = 0;
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", arg, sizeof arg, &o, &out, &n, &on),
				 0);
		assert_int_equal(on, id);
		assert_int_equal(n, sizeof arg);
		assert_memory_equal(out, arg, sizeof arg);
		free(out);
	}
	/* empty argument, empty result */
	void *out = (void *)1;
	size_t n = 1;
	assert_int_equal(virgo_clone("virgo_cloud_test", NULL, 0, &out, &n), 0);
	assert_int_equal(n, 0);
	assert_null(out);
	/* a result beyond output_cap (64K) is refused, not truncated */
	uint8_t *big = calloc(1, 70000);
	assert_int_equal(virgo_clone("virgo_cloud_test", big, 70000, &out, &n), -E2BIG);
	free(big);
}

static void builtin_sleep_and_load(void **s)
{
	(void)s;
	void *out;
	size_t n;
	assert_int_equal(virgo_clone("virgo_sleep", "50", 2, &out, &n), 0);
	assert_int_equal(n, 8);
	assert_memory_equal(out, "slept 50", 8);
	free(out);
	assert_int_equal(virgo_clone("virgo_sleep", "soon", 4, &out, &n), -EINVAL);
	struct virgo_call_opts o = {.node_id = 2};
	assert_int_equal(virgo_clone_ex("virgo_load", NULL, 0, &o, &out, &n, NULL), 0);
	assert_non_null(memmem(out, n, "node_id 2\n", 10));
	assert_non_null(memmem(out, n, "workers 2\n", 10));
	free(out);
	struct virgo_load l = load_of(2);
	assert_int_equal(l.node_id, 3);
	assert_true(l.cores >= 1);
	assert_int_equal(l.workers, 2);
	assert_int_equal(l.queue_max, 2);
	assert_true(l.mem_total > 0 && l.mem_free <= l.mem_total);
}

static void telnet_forms(void **s)
{
	(void)s;
	char buf[4096];
	int port = th_port(&cl, 0, 10000);
	/* the notes' call: bare result, then the node closes */
	int fd = th_connect(port);
	const char *req = "virgo_clone(virgo_cloud_test,hello, \"world\" (x))\n";
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, NULL, 3000) >= 0);
	assert_string_equal(buf, "hello, \"world\" (x)\r\n");
	close(fd);
	/* the original client: a bare name in a NUL-padded 3000-byte buffer */
	fd = th_connect(port);
	char padded[3000] = "virgo_cloud_test_kernelspace";
	assert_int_equal(th_send(fd, padded, sizeof padded), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, NULL, 3000) >= 0);
	assert_string_equal(buf, "\r\n");
	close(fd);
	/* one request and a half-close: the reply still comes */
	fd = th_connect(port);
	req = "virgo_clone(virgo_sleep,200)";
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	shutdown(fd, SHUT_WR);
	assert_true(th_recv_until(fd, buf, sizeof buf, NULL, 3000) >= 0);
	assert_string_equal(buf, "slept 200\r\n");
	close(fd);
	/* an allowed program through the call syntax: the argument is argv[1] */
	fd = th_connect(port);
	req = "virgo_clone(echo,two words)\r\n";
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, NULL, 3000) >= 0);
	assert_string_equal(buf, "two words\n\r\n");
	close(fd);
	/* refusals answer ERR and close as well */
	fd = th_connect(port);
	req = "virgo_clone(/bin/../bin/sh,-c)\n";
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, NULL, 3000) >= 0);
	assert_memory_equal(buf, "ERR EACCES ", 11);
	close(fd);
}

static void native_pipelining_in_order(void **s)
{
	(void)s;
	char buf[4096];
	int fd = th_connect(th_port(&cl, 1, 10000));
	const char req[] = "clone virgo_sleep 3\r\n150\r\nclone virgo_cloud_test 1\r\nA\r\n"
			   "run 11\r\necho\0a\0b c\0\r\nping\r\nhelp\r\n";
	assert_int_equal(th_send(fd, req, sizeof req - 1), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 5000) > 0);
	const char want[] = "VALUE 9\r\nslept 150\r\nVALUE 1\r\nA\r\n"
			    "VALUE 6 exit 0 6 0\r\na b c\n\r\nPONG 2\r\nHELP ";
	assert_memory_equal(buf, want, sizeof want - 1);
	/* bad input gets one error each and the connection keeps serving */
	const char bad[] = "clone\r\nclone f x\r\nrun 3\r\nabc\r\nfrob\r\nload\r\n";
	assert_int_equal(th_send(fd, bad, sizeof bad - 1), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 3000) > 0);
	int errs = 0;
	for (char *p = buf; (p = strstr(p, "ERR ")); p++)
		errs++;
	assert_int_equal(errs, 4);
	assert_non_null(strstr(buf, "STAT running"));
	close(fd);
}

static void plugin_functions(void **s)
{
	(void)s;
	const uint8_t arg[] = {'a', 0, 'b', '\n', ' ', '"', 0xff};
	void *out;
	size_t n;
	assert_int_equal(virgo_clone("tp_reverse", arg, sizeof arg, &out, &n), 0);
	assert_int_equal(n, sizeof arg);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(((uint8_t *)out)[i], arg[sizeof arg - 1 - i]);
	free(out);
	/* the function's own error comes back */
	assert_int_equal(virgo_clone("tp_fail", "x", 1, &out, &n), -EINVAL);
	/* unknown functions, and libc's through the plugin's dependencies */
	assert_int_equal(virgo_clone("no_such_function", "x", 1, &out, &n), -ENOENT);
	assert_int_equal(virgo_clone("system", "true", 4, &out, &n), -ENOENT);
	assert_int_equal(virgo_clone("bad name", "x", 1, &out, &n), -EINVAL);
	/* a function that runs past its deadline: ETIMEDOUT at the deadline,
	 * and the cancel flag lets it return (the worker comes free) */
	struct virgo_call_opts o = {.node_id = 1, .timeout_ms = 300};
	int64_t t0 = th_now_ms();
	assert_int_equal(virgo_clone_ex("tp_spin", NULL, 0, &o, &out, &n, NULL), -ETIMEDOUT);
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 290 && took < 2500);
	wait_jobs(0, 0, 0);
}

static void executables(void **s)
{
	(void)s;
	const char *argv[] = {"sh", "-c", "printf '%s|' \"$@\"; echo err >&2; exit 7", "x", "a b",
			      "'q\"", "l1\nl2", "", NULL};
	struct virgo_run_result r;
	assert_int_equal(virgo_run(argv, &r), 0);
	assert_int_equal(r.exit_code, 7);
	assert_false(r.signaled);
	const char want[] = "a b|'q\"|l1\nl2||";
	assert_int_equal(r.out_len, sizeof want - 1);
	assert_memory_equal(r.out, want, sizeof want - 1);
	assert_int_equal(r.err_len, 4);
	assert_memory_equal(r.err, "err\n", 4);
	assert_true(r.node_id >= 1 && r.node_id <= 3);
	virgo_run_result_free(&r);
	/* by absolute path, and killed by a signal */
	const char *k[] = {"/bin/sh", "-c", "kill -9 $$", NULL};
	assert_int_equal(virgo_run(k, &r), 0);
	assert_true(r.signaled);
	assert_int_equal(r.term_signal, 9);
	assert_int_equal(r.exit_code, 137);
	virgo_run_result_free(&r);
	/* refused: not allowed, path traversal, a function name via run */
	const char *no[] = {"rm", "-rf", "/tmp/nothing-here", NULL};
	assert_int_equal(virgo_run(no, &r), -EACCES);
	const char *trav[] = {"../../../../bin/sh", "-c", "true", NULL};
	assert_int_equal(virgo_run(trav, &r), -EACCES);
	const char *trav2[] = {"/bin/../bin/sh", "-c", "true", NULL};
	assert_int_equal(virgo_run(trav2, &r), -EACCES);
	const char *fn[] = {"virgo_cloud_test", NULL};
	assert_int_equal(virgo_run(fn, &r), -EACCES);
	/* and clone of a program name says to use run */
	void *out;
	size_t n;
	assert_int_equal(virgo_clone("echo", "x", 1, &out, &n), -EINVAL);
}

static void output_cap(void **s)
{
	(void)s;
	const char *argv[] = {"sh", "-c", "head -c 200000 /dev/zero; echo tail >&2", NULL};
	struct virgo_run_result r;
	assert_int_equal(virgo_run(argv, &r), 0);
	assert_int_equal(r.exit_code, 0);
	assert_int_equal(r.out_len, 65536);
	assert_int_equal(r.err_len, 5);
	assert_true(r.truncated);
	virgo_run_result_free(&r);
}

static void timeout_kills_no_zombie(void **s)
{
	(void)s;
	const char *argv[] = {"sh", "-c", "sleep 30 & sleep 30", NULL};
	struct virgo_call_opts o = {.node_id = 2, .timeout_ms = 400};
	struct virgo_run_result r;
	int64_t t0 = th_now_ms();
	assert_int_equal(virgo_run_ex(argv, &o, &r), -ETIMEDOUT);
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 390 && took < 3000);
	assert_int_equal(th_children(cl.nodes[1].pid), 0); /* reaped before the reply */
	wait_jobs(1, 0, 0);
}

static void busy_and_queueing(void **s)
{
	(void)s;
	/* node 3: 2 workers + 2 queue slots; the 5th job is refused at once */
	struct virgo_call_opts o = {.node_id = 3};
	virgo_job_t j[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(virgo_clone_submit("virgo_sleep", "800", 3, &o, &j[i]), 0);
	wait_jobs(2, 2, 2);
	void *out;
	size_t n;
	int64_t t0 = th_now_ms();
	assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &n, NULL), -EBUSY);
	assert_true(th_now_ms() - t0 < 500);
	/* without a fixed node the job goes elsewhere */
	unsigned on = 0;
	struct virgo_call_opts any = {.policy = VIRGO_POLICY_RANDOM};
	for (int i = 0; i < 6; i++) {
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &any, &out, &n, &on), 0);
		assert_true(on != 3 || i < 0);
		free(out);
	}
	/* the queued ones run after the first two: all succeed */
	for (int i = 0; i < 4; i++) {
		assert_int_equal(virgo_job_poll(j[i]) >= 0, 1);
		struct virgo_run_result r;
		assert_int_equal(virgo_job_wait(j[i], 5000, &r), 0);
		assert_int_equal(r.node_id, 3);
		assert_memory_equal(r.out, "slept 800", 9);
		virgo_run_result_free(&r);
	}
	assert_int_equal(virgo_job_poll(j[0]), -ENOENT);
	struct virgo_load l = load_of(2);
	assert_true(l.jobs_rejected >= 1);
}

static void disconnect_cancels(void **s)
{
	(void)s;
	struct virgo_load before = load_of(0);
	int fd = th_connect(th_port(&cl, 0, 10000));
	const char req[] = "run 9\r\nsleep\00030\0\r\n";
	assert_int_equal(th_send(fd, req, sizeof req - 1), 0);
	wait_jobs(0, 1, 0);
	assert_int_equal(th_children(cl.nodes[0].pid), 1);
	close(fd);
	wait_jobs(0, 0, 0);
	wait_no_children(0);
	struct virgo_load after = load_of(0);
	assert_int_equal(after.jobs_cancelled, before.jobs_cancelled + 1);
	/* running and queued jobs whose clients leave are cancelled: two
	 * sleeps fill the workers, a third waits in the queue; when the three
	 * clients leave, all three count as cancelled, none as done, long
	 * before the sleeps (3 s) could have ended on their own */
	const char sl[] = "clone virgo_sleep 4\r\n3000\r\n";
	int fds[3];
	for (int i = 0; i < 3; i++) {
		fds[i] = th_connect(th_port(&cl, 0, 10000));
		assert_int_equal(th_send(fds[i], sl, sizeof sl - 1), 0);
		wait_jobs(0, i < 2 ? i + 1 : 2, i < 2 ? 0 : 1);
	}
	before = load_of(0);
	int64_t t0 = th_now_ms();
	for (int i = 2; i >= 0; i--) /* the queued one first: it must not start */
		close(fds[i]);
	for (;;) { /* cancelled is counted a moment before the worker is free */
		after = load_of(0);
		if (after.jobs_cancelled == before.jobs_cancelled + 3 && after.running == 0 &&
		    after.queued == 0)
			break;
		if (th_now_ms() - t0 > 2000)
			fail_msg("%llu of 3 jobs cancelled 2 s after their clients left; "
				 "running %d, queued %d",
				 (unsigned long long)(after.jobs_cancelled - before.jobs_cancelled),
				 after.running, after.queued);
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(after.jobs_done, before.jobs_done);
	assert_int_equal(after.running, 0);
	assert_int_equal(after.queued, 0);
}

static void policy_round_robin(void **s)
{
	(void)s;
	reinit();
	struct virgo_call_opts o = {.policy = VIRGO_POLICY_ROUND_ROBIN};
	for (int i = 0; i < 9; i++) {
		void *out;
		size_t n;
		unsigned on;
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &n, &on), 0);
		assert_int_equal(on, (unsigned)(i % 3) + 1);
		free(out);
	}
}

static void policy_random_seeded(void **s)
{
	(void)s;
	reinit();
	uint64_t rng = SEED * 2 + 1; /* how libvirgo seeds from `seed` */
	struct virgo_call_opts o = {.policy = VIRGO_POLICY_RANDOM};
	for (int i = 0; i < 30; i++) {
		void *out;
		size_t n;
		unsigned on;
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &n, &on), 0);
		assert_int_equal(on, (unsigned)(lb_rng_next(&rng) % 3) + 1);
		free(out);
	}
}

/* Loads node 1 with two running jobs and node 2 with one. */
static void make_skew(virgo_job_t *j)
{
	struct virgo_call_opts n1 = {.node_id = 1}, n2 = {.node_id = 2};
	assert_int_equal(virgo_clone_submit("virgo_sleep", "1500", 4, &n1, &j[0]), 0);
	assert_int_equal(virgo_clone_submit("virgo_sleep", "1500", 4, &n1, &j[1]), 0);
	assert_int_equal(virgo_clone_submit("virgo_sleep", "1500", 4, &n2, &j[2]), 0);
	wait_jobs(0, 2, 0);
	wait_jobs(1, 1, 0);
}

static void drain_skew(virgo_job_t *j)
{
	for (int i = 0; i < 3; i++) {
		struct virgo_run_result r;
		assert_int_equal(virgo_job_wait(j[i], 5000, &r), 0);
		virgo_run_result_free(&r);
	}
}

static void policy_least_loaded(void **s)
{
	(void)s;
	reinit();
	virgo_job_t j[3];
	make_skew(j);
	struct virgo_call_opts o = {.policy = VIRGO_POLICY_LEAST_LOADED};
	for (int i = 0; i < 5; i++) {
		void *out;
		size_t n;
		unsigned on;
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &n, &on), 0);
		assert_int_equal(on, 3);
		free(out);
	}
	drain_skew(j);
}

static void policy_power_of_two(void **s)
{
	(void)s;
	reinit();
	virgo_job_t j[3];
	make_skew(j);
	struct virgo_call_opts o = {.policy = VIRGO_POLICY_POWER_OF_TWO};
	int seen[4] = {0};
	for (int i = 0; i < 12; i++) {
		void *out;
		size_t n;
		unsigned on;
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &n, &on), 0);
		seen[on]++;
		free(out);
	}
	assert_int_equal(seen[1], 0); /* the heaviest never wins a pair */
	assert_true(seen[3] > 0);
	drain_skew(j);
}

static void policy_learned(void **s)
{
	(void)s;
	reinit();
	/* tp_work takes 150 ms on node 2 (slow plugin), 5 ms elsewhere */
	struct virgo_call_opts o = {.policy = VIRGO_POLICY_LEARNED};
	int seen[4] = {0};
	for (int i = 0; i < 12; i++) {
		void *out;
		size_t n;
		unsigned on;
		assert_int_equal(virgo_clone_ex("tp_work", NULL, 0, &o, &out, &n, &on), 0);
		if (i < 3)
			assert_int_equal(seen[on], 0); /* exploring: each node once */
		seen[on]++;
		free(out);
	}
	assert_int_equal(seen[2], 1); /* measured once, then avoided */
	assert_int_equal(seen[1] + seen[3], 11);
}

static void cli_run_and_map(void **s)
{
	(void)s;
	char virgo[700], out[8192];
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	const char *run[] = {virgo, "-c", cl.client_conf, "run", "--on", "node2", "--", "sh", "-c",
			     "echo out; echo err >&2; exit 3", NULL};
	assert_int_equal(th_run(run, out, sizeof out, 10000), 3);
	assert_non_null(strstr(out, "out\n"));
	assert_non_null(strstr(out, "err\n"));
	const char *denied[] = {virgo, "-c", cl.client_conf, "run", "--", "rm", "/x", NULL};
	assert_int_equal(th_run(denied, out, sizeof out, 10000), 125);
	const char *clone[] = {virgo, "-c", cl.client_conf, "clone", "virgo_cloud_test", "hi there", NULL};
	assert_int_equal(th_run(clone, out, sizeof out, 10000), 0);
	assert_string_equal(out, "hi there");
	/* later inputs finish first; output stays in input order */
	const char *map[] = {virgo, "-c", cl.client_conf, "map", "-j", "4", "--", "sh", "-c",
			     "sleep $1; echo in-$1", "x", "{}", ":::", "0.4", "0.3", "0.2", "0.1", "0",
			     NULL};
	assert_int_equal(th_run(map, out, sizeof out, 10000), 0);
	assert_string_equal(out, "in-0.4\nin-0.3\nin-0.2\nin-0.1\nin-0\n");
	/* without {} the input is appended */
	const char *app[] = {virgo, "-c", cl.client_conf, "map", "--", "echo", "v", ":::", "a", "b",
			     NULL};
	assert_int_equal(th_run(app, out, sizeof out, 10000), 0);
	assert_string_equal(out, "v a\nv b\n");
	const char *st[] = {virgo, "-c", cl.client_conf, "status", NULL};
	assert_int_equal(th_run(st, out, sizeof out, 10000), 0);
	assert_non_null(strstr(out, "RUN/WORKERS"));
}

/* Runs last: it kills node 3 (then restarts it). */
static void node_killed_mid_job(void **s)
{
	(void)s;
	reinit();
	struct virgo_call_opts n3 = {.node_id = 3};
	virgo_job_t j;
	assert_int_equal(virgo_clone_submit("virgo_sleep", "3000", 4, &n3, &j), 0);
	wait_jobs(2, 1, 0);
	th_node_signal(&cl, 2, SIGKILL);
	struct virgo_run_result r;
	int64_t t0 = th_now_ms();
	int rc = virgo_job_wait(j, 5000, &r);
	assert_true(rc == -ECONNRESET || rc == -EPIPE);
	assert_true(th_now_ms() - t0 < 1500);
	/* every policy now avoids node 3 */
	for (int p = VIRGO_POLICY_RANDOM; p <= VIRGO_POLICY_LEARNED; p++) {
		struct virgo_call_opts o = {.policy = p};
		for (int i = 0; i < 4; i++) {
			void *out;
			size_t n;
			unsigned on;
			assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &n, &on), 0);
			assert_true(on != 3);
			free(out);
		}
	}
	/* back up: once its back-off ends, round robin reaches it again */
	assert_int_equal(th_node_start(&cl, 2), 0);
	struct virgo_call_opts rr = {.policy = VIRGO_POLICY_ROUND_ROBIN};
	int64_t deadline = th_now_ms() + 5000;
	unsigned on = 0;
	while (on != 3 && th_now_ms() < deadline) {
		void *out;
		size_t n;
		assert_int_equal(virgo_clone_ex("virgo_cloud_test", "x", 1, &rr, &out, &n, &on), 0);
		free(out);
	}
	assert_int_equal(on, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(builtin_echo_binary_args),
		cmocka_unit_test(builtin_sleep_and_load),
		cmocka_unit_test(telnet_forms),
		cmocka_unit_test(native_pipelining_in_order),
		cmocka_unit_test(plugin_functions),
		cmocka_unit_test(executables),
		cmocka_unit_test(output_cap),
		cmocka_unit_test(timeout_kills_no_zombie),
		cmocka_unit_test(busy_and_queueing),
		cmocka_unit_test(disconnect_cancels),
		cmocka_unit_test(policy_round_robin),
		cmocka_unit_test(policy_random_seeded),
		cmocka_unit_test(policy_least_loaded),
		cmocka_unit_test(policy_power_of_two),
		cmocka_unit_test(policy_learned),
		cmocka_unit_test(cli_run_and_map),
		cmocka_unit_test(node_killed_mid_job),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
