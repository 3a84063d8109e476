/*
 * test_cloudsync.c - cluster locks against a real 3-node cluster: the
 * protocol over raw sockets, FIFO order of waiters, waiters and holders
 * that disconnect, bounded waits, mutual exclusion of 16 clients
 * incrementing a counter in mempool (exact count, hold intervals never
 * overlap), a SIGSTOPped holder that loses its lease and whose late fenced
 * write is refused (ESTALE), and tokens that keep growing across a restart
 * of the lock's home node.  Every wait is a poll with a deadline.
 */
#include <errno.h>
#include <inttypes.h>
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

#define CS_BASE 40000
#define MP_BASE 30000

static struct th_cluster cl;

static int setup(void **state)
{
	(void)state;
	if (th_cluster_start(&cl, 3, NULL, NULL) != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

static int cs_conn(int node)
{
	int fd = th_connect(th_port(&cl, node, CS_BASE));
	assert_true(fd >= 0);
	return fd;
}

/* Sends line and reads one reply line (multi-line replies: until needle). */
static void req_until(int fd, const char *line, char *buf, size_t cap, const char *needle)
{
	assert_int_equal(th_send(fd, line, strlen(line)), 0);
	ssize_t n = th_recv_until(fd, buf, cap, needle, 5000);
	if (n <= 0)
		fail_msg("no reply to %s", line);
}

static void req(int fd, const char *line, char *buf, size_t cap)
{
	req_until(fd, line, buf, cap, "\r\n");
}

static uint64_t ok_token(const char *reply)
{
	uint64_t t = 0;
	if (sscanf(reply, "OK %" SCNu64, &t) != 1)
		fail_msg("expected OK <token>, got: %s", reply);
	return t;
}

static uint64_t queued_ticket(const char *reply)
{
	uint64_t t = 0;
	if (sscanf(reply, "QUEUED %" SCNu64, &t) != 1)
		fail_msg("expected QUEUED <ticket>, got: %s", reply);
	return t;
}

static void protocol_basics(void **state)
{
	(void)state;
	char buf[4096];
	int a = cs_conn(0), b = cs_conn(0);
	req(a, "lock basics 10000\r\n", buf, sizeof buf);
	uint64_t t1 = ok_token(buf);
	assert_true(t1 > 0);
	assert_non_null(strstr(buf, " 10000\r\n"));
	req(b, "trylock basics\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR EBUSY"));
	req(b, "lock basics 1000 0\r\n", buf, sizeof buf); /* wait 0 = try */
	assert_non_null(strstr(buf, "ERR EBUSY"));
	req(a, "lock basics\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR EDEADLK"));
	req_until(b, "ls\r\n", buf, sizeof buf, "END\r\n");
	assert_non_null(strstr(buf, "STAT lock basics "));
	req(a, "renew basics 20000\r\n", buf, sizeof buf);
	assert_true(ok_token(buf) == t1);
	req(b, "renew basics\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR ENOLCK"));
	req(b, "unlock basics\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR ENOLCK"));
	req(a, "unlock basics\r\n", buf, sizeof buf);
	assert_string_equal(buf, "OK\r\n");
	req(a, "unlock basics\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR ENOLCK"));
	req(b, "trylock basics\r\n", buf, sizeof buf);
	assert_true(ok_token(buf) > t1);
	/* bad input: errors, and the connection keeps serving */
	req(a, "lock bad|name\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR EINVAL"));
	req(a, "lock x 0\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR EINVAL"));
	req(a, "frobnicate\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR ENOSYS"));
	req(a, "ping\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "PONG 1"));
	close(a);
	close(b);
}

/* Waiters queue in arrival order and are served in ticket order. */
static void fifo_order(void **state)
{
	(void)state;
	char buf[4096];
	enum { NW = 6 };
	int h = cs_conn(1), w[NW];
	uint64_t ticket[NW];
	req(h, "lock fifo\r\n", buf, sizeof buf);
	uint64_t prev = ok_token(buf);
	for (int i = 0; i < NW; i++) {
		w[i] = cs_conn(1);
		req(w[i], "lock fifo\r\n", buf, sizeof buf);
		ticket[i] = queued_ticket(buf);
		assert_true(ticket[i] > prev);
		char pos[32];
		snprintf(pos, sizeof pos, " %d\r\n", i + 1); /* its place in line */
		assert_non_null(strstr(buf, pos));
		prev = ticket[i];
	}
	req(h, "unlock fifo\r\n", buf, sizeof buf);
	for (int i = 0; i < NW; i++) {
		/* w[i] is granted (with its ticket as token) while every later
		 * waiter still waits: ls shows w[i]'s token as the holder's */
		assert_true(th_recv_until(w[i], buf, sizeof buf, "\r\n", 5000) > 0);
		assert_true(ok_token(buf) == ticket[i]);
		req_until(h, "ls fifo\r\n", buf, sizeof buf, "END\r\n");
		char want[64];
		snprintf(want, sizeof want, "STAT lock fifo %" PRIu64 " ", ticket[i]);
		assert_non_null(strstr(buf, want));
		req(w[i], "unlock fifo\r\n", buf, sizeof buf);
		assert_string_equal(buf, "OK\r\n");
	}
	for (int i = 0; i < NW; i++)
		close(w[i]);
	close(h);
}

static int ls_waiters(int fd, const char *name)
{
	char line[64], buf[4096];
	snprintf(line, sizeof line, "ls %s\r\n", name);
	req_until(fd, line, buf, sizeof buf, "END\r\n");
	int n = 0;
	for (char *p = buf; (p = strstr(p, "STAT waiter ")); p++)
		n++;
	return n;
}

/* A waiter that hangs up leaves the line; the next one is served. */
static void waiter_disconnect_leaves_queue(void **state)
{
	(void)state;
	char buf[512];
	int h = cs_conn(2), w1 = cs_conn(2), w2 = cs_conn(2);
	req(h, "lock leave\r\n", buf, sizeof buf);
	ok_token(buf);
	req(w1, "lock leave\r\n", buf, sizeof buf);
	queued_ticket(buf);
	req(w2, "lock leave\r\n", buf, sizeof buf);
	uint64_t t2 = queued_ticket(buf);
	assert_int_equal(ls_waiters(h, "leave"), 2);
	close(w1);
	int64_t deadline = th_now_ms() + 5000;
	while (ls_waiters(h, "leave") != 1 && th_now_ms() < deadline)
		usleep(2000);
	assert_int_equal(ls_waiters(h, "leave"), 1);
	req(h, "unlock leave\r\n", buf, sizeof buf);
	assert_true(th_recv_until(w2, buf, sizeof buf, "\r\n", 5000) > 0);
	assert_true(ok_token(buf) == t2);
	close(w2);
	close(h);
}

/* A holder whose connection is reset loses the lock at once, not at the
 * end of its (long) lease. */
static void reset_frees_at_once(void **state)
{
	(void)state;
	char buf[512];
	int h = cs_conn(0), w = cs_conn(0);
	req(h, "lock reset 600000\r\n", buf, sizeof buf);
	ok_token(buf);
	req(w, "lock reset\r\n", buf, sizeof buf);
	uint64_t tw = queued_ticket(buf);
	struct linger lg = {1, 0};
	setsockopt(h, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	int64_t t0 = th_now_ms();
	close(h); /* RST */
	assert_true(th_recv_until(w, buf, sizeof buf, "\r\n", 5000) > 0);
	assert_true(ok_token(buf) == tw);
	int64_t took = th_now_ms() - t0;
	printf("handoff after reset: %" PRId64 " ms\n", took);
	assert_true(took < 2000);
	close(w);
}

/* A bounded wait ends with ETIMEDOUT and leaves the line. */
static void bounded_wait_times_out(void **state)
{
	(void)state;
	char buf[512];
	int h = cs_conn(1), w = cs_conn(1);
	req(h, "lock tmo\r\n", buf, sizeof buf);
	ok_token(buf);
	int64_t t0 = th_now_ms();
	req(w, "lock tmo 1000 150\r\n", buf, sizeof buf);
	queued_ticket(buf);
	assert_true(th_recv_until(w, buf, sizeof buf, "\r\n", 5000) > 0);
	assert_non_null(strstr(buf, "ERR ETIMEDOUT"));
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 140 && took < 3000);
	assert_int_equal(ls_waiters(h, "tmo"), 0);
	/* the connection serves again after the timeout */
	req(w, "ping\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "PONG"));
	close(w);
	close(h);
}

/* ---- exclusion: 16 clients, 500 increments each ------------------------ */

#define EX_THREADS 16
#define EX_ROUNDS 500

struct hold {
	int64_t from_ns, to_ns;
	uint64_t token;
};

static virgo_vuid_t counter;
static struct hold holds[EX_THREADS * EX_ROUNDS];
static _Atomic int nholds;
static _Atomic int ex_errors;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *ex_worker(void *arg)
{
	(void)arg;
	struct virgo_lock_opts o = {.ttl_ms = 10000, .wait_ms = 30000};
	for (int i = 0; i < EX_ROUNDS; i++) {
		virgo_lock_t *l;
		int rc = virgo_lock("counter", &o, &l);
		if (rc) {
			fprintf(stderr, "lock: %s (%s)\n", virgo_strerror(rc), virgo_last_error());
			ex_errors++;
			continue;
		}
		int64_t from = mono_ns();
		void *data = NULL;
		size_t len = 0;
		uint64_t v = 0;
		rc = virgo_get(counter, &data, &len);
		if (rc == 0 && len == sizeof v)
			memcpy(&v, data, sizeof v);
		else
			ex_errors++;
		free(data);
		v++;
		rc = virgo_set_fenced(counter, &v, sizeof v, "counter", virgo_lock_token(l));
		if (rc) {
			fprintf(stderr, "set: %s (%s)\n", virgo_strerror(rc), virgo_last_error());
			ex_errors++;
		}
		int64_t to = mono_ns();
		int k = nholds++;
		holds[k] = (struct hold){from, to, virgo_lock_token(l)};
		if (virgo_unlock(l) != 0)
			ex_errors++;
	}
	return NULL;
}

static int by_from(const void *a, const void *b)
{
	const struct hold *x = a, *y = b;
	return x->from_ns < y->from_ns ? -1 : x->from_ns > y->from_ns;
}

static void exclusion_16_clients(void **state)
{
	(void)state;
	uint64_t zero = 0;
	assert_int_equal(virgo_malloc(sizeof zero, &counter), 0);
	assert_int_equal(virgo_set(counter, &zero, sizeof zero), 0);
	pthread_t th[EX_THREADS];
	int64_t t0 = th_now_ms();
	for (int i = 0; i < EX_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, ex_worker, NULL), 0);
	for (int i = 0; i < EX_THREADS; i++)
		pthread_join(th[i], NULL);
	int64_t took = th_now_ms() - t0;
	printf("%d locked increments in %" PRId64 " ms\n", EX_THREADS * EX_ROUNDS, took);
	assert_int_equal(ex_errors, 0);
	void *data = NULL;
	size_t len = 0;
	assert_int_equal(virgo_get(counter, &data, &len), 0);
	uint64_t v = 0;
	assert_int_equal(len, sizeof v);
	memcpy(&v, data, sizeof v);
	free(data);
	assert_int_equal(v, EX_THREADS * EX_ROUNDS);
	/* the hold intervals, in time order, never overlap, and their
	 * tokens grow in the same order */
	int n = nholds;
	assert_int_equal(n, EX_THREADS * EX_ROUNDS);
	qsort(holds, (size_t)n, sizeof holds[0], by_from);
	for (int i = 1; i < n; i++) {
		if (holds[i].from_ns < holds[i - 1].to_ns)
			fail_msg("holds %d and %d overlap", i - 1, i);
		assert_true(holds[i].token > holds[i - 1].token);
	}
}

/* ---- the paused client ------------------------------------------------- */

static void paused_holder_loses_lease(void **state)
{
	(void)state;
	virgo_vuid_t v;
	uint64_t val = 41;
	assert_int_equal(virgo_malloc(sizeof val, &v), 0);
	assert_int_equal(virgo_set(v, &val, sizeof val), 0);
	char hex[17];
	virgo_vuid_format(v, hex);
	int p[2];
	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		/* the lock's home node: the same one libvirgo uses */
		th_paused_lock_child(p[1], th_port(&cl, virgo_lock_home("paused"), CS_BASE),
				     th_port(&cl, (int)virgo_vuid_node(v) - 1, MP_BASE), "paused",
				     hex, 5000);
	}
	close(p[1]);
	uint64_t t1 = 0;
	assert_int_equal(read(p[0], &t1, sizeof t1), (ssize_t)sizeof t1);
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	assert_true(WIFSTOPPED(st));
	/* the lease (300 ms) ends while the holder is stopped: we get it */
	struct virgo_lock_opts o = {.ttl_ms = 5000, .wait_ms = 5000};
	virgo_lock_t *l;
	int64_t t0 = th_now_ms();
	assert_int_equal(virgo_lock("paused", &o, &l), 0);
	printf("lock passed on after %" PRId64 " ms\n", th_now_ms() - t0);
	uint64_t t2 = virgo_lock_token(l);
	assert_true(t2 > t1);
	val++;
	assert_int_equal(virgo_set_fenced(v, &val, sizeof val, "paused", t2), 0);
	/* the paused process wakes up and tries to write */
	kill(pid, SIGCONT);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	/* from libvirgo too: an old token is refused */
	uint64_t bad = 7;
	assert_int_equal(virgo_set_fenced(v, &bad, sizeof bad, "paused", t1), -ESTALE);
	void *data = NULL;
	size_t len = 0;
	assert_int_equal(virgo_get(v, &data, &len), 0);
	assert_int_equal(len, sizeof val);
	assert_memory_equal(data, &val, sizeof val); /* 42: only the holder's write */
	free(data);
	assert_int_equal(virgo_unlock(l), 0);
	assert_int_equal(virgo_free(v), 0);
}

/* The libvirgo calls: trylock, renew, left_ms, unlock, bad arguments. */
static void libvirgo_calls(void **state)
{
	(void)state;
	virgo_lock_t *a, *b;
	struct virgo_lock_opts o = {.ttl_ms = 2000};
	assert_int_equal(virgo_trylock("lib", &o, &a), 0);
	assert_true(virgo_lock_token(a) > 0);
	assert_string_equal(virgo_lock_name(a), "lib");
	assert_true(virgo_lock_left_ms(a) > 1000);
	assert_int_equal(virgo_trylock("lib", &o, &b), -EBUSY);
	struct virgo_lock_opts w = {.ttl_ms = 2000, .wait_ms = 100};
	assert_int_equal(virgo_lock("lib", &w, &b), -ETIMEDOUT);
	assert_int_equal(virgo_lock_renew(a), 0);
	assert_int_equal(virgo_lock("bad name", NULL, &b), -EINVAL);
	assert_int_equal(virgo_unlock(a), 0);
	assert_int_equal(virgo_trylock("lib", NULL, &b), 0);
	char *text = NULL;
	int home = virgo_lock_home("lib");
	assert_true(home >= 0 && home < 3);
	assert_int_equal(virgo_lock_ls(home, NULL, &text), 0);
	assert_non_null(strstr(text, "lock lib "));
	free(text);
	assert_int_equal(virgo_unlock(b), 0);
}

/* ---- virgo lock ------------------------------------------------------- */

/* flock(1)-like: the command runs with the token, its status comes back;
 * --wait 0 on a held lock does not run it and exits 1. */
static void cli_runs_command_under_lock(void **state)
{
	(void)state;
	char out[4096];
	const char *const run[] = {th_virgo_cli(), "-c", cl.client_conf, "lock", "--ttl", "2s", "clitest",
				   "--", "sh", "-c", "echo tok=$VIRGO_LOCK_TOKEN name=$VIRGO_LOCK_NAME; exit 7",
				   NULL};
	assert_int_equal(th_run(run, out, sizeof out, 20000), 7);
	uint64_t tok = 0;
	char *p = strstr(out, "tok=");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "tok=%" SCNu64, &tok), 1);
	assert_true(tok > 0);
	assert_non_null(strstr(out, "name=clitest"));
	virgo_lock_t *l;
	assert_int_equal(virgo_lock("clitest", NULL, &l), 0); /* released on exit */
	assert_true(virgo_lock_token(l) > tok);
	const char *const busy[] = {th_virgo_cli(), "-c", cl.client_conf, "lock", "--wait", "0",
				    "clitest", "--", "sh", "-c", "echo ran", NULL};
	assert_int_equal(th_run(busy, out, sizeof out, 20000), 1);
	assert_null(strstr(out, "ran"));
	const char *const ls[] = {th_virgo_cli(), "-c", cl.client_conf, "lock", "ls", NULL};
	assert_int_equal(th_run(ls, out, sizeof out, 20000), 0);
	assert_non_null(strstr(out, "clitest"));
	assert_int_equal(virgo_unlock(l), 0);
}

struct cli_bg {
	pthread_t th;
	int rc;
	char out[4096];
};

static void *cli_bg_main(void *arg)
{
	struct cli_bg *b = arg;
	const char *const run[] = {th_virgo_cli(), "-c", cl.client_conf, "lock", "--ttl", "900ms", "lostlock",
				   "--", "sleep", "30", NULL};
	b->rc = th_run(run, b->out, sizeof b->out, 25000);
	return NULL;
}

/* The home node goes away under `virgo lock -- sleep 30`: the renewal
 * fails, the command is stopped with SIGTERM, and we are told why. */
static void cli_stops_command_when_lock_lost(void **state)
{
	(void)state;
	int home = virgo_lock_home("lostlock");
	assert_true(home >= 0);
	static struct cli_bg b;
	assert_int_equal(pthread_create(&b.th, NULL, cli_bg_main, &b), 0);
	int fd = cs_conn(home);
	char buf[4096];
	int64_t deadline = th_now_ms() + 10000;
	for (;;) {
		req_until(fd, "ls lostlock\r\n", buf, sizeof buf, "END\r\n");
		if (strstr(buf, "STAT lock lostlock ") || th_now_ms() > deadline)
			break;
		usleep(5000);
	}
	assert_non_null(strstr(buf, "STAT lock lostlock "));
	close(fd);
	int64_t t0 = th_now_ms();
	th_node_signal(&cl, home, SIGKILL);
	pthread_join(b.th, NULL);
	int64_t took = th_now_ms() - t0;
	printf("command stopped %" PRId64 " ms after the home node died: %s", took, b.out);
	assert_int_equal(b.rc, 128 + SIGTERM);
	assert_non_null(strstr(b.out, "lost the lock 'lostlock'"));
	assert_true(took < 5000);
	assert_int_equal(th_node_start(&cl, home), 0);
}

/* Tokens keep growing when the lock's home node restarts. */
static void home_restart_keeps_tokens_growing(void **state)
{
	(void)state;
	virgo_lock_t *l;
	assert_int_equal(virgo_lock("restart", NULL, &l), 0);
	uint64_t t1 = virgo_lock_token(l);
	assert_int_equal(virgo_unlock(l), 0);
	int home = virgo_lock_home("restart");
	assert_true(home >= 0);
	th_node_signal(&cl, home, SIGTERM);
	assert_int_equal(th_node_start(&cl, home), 0);
	assert_int_equal(virgo_lock("restart", NULL, &l), 0);
	uint64_t t2 = virgo_lock_token(l);
	printf("token before restart %" PRIu64 ", after %" PRIu64 "\n", t1, t2);
	assert_true(t2 > t1);
	assert_int_equal(virgo_unlock(l), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(protocol_basics),
		cmocka_unit_test(fifo_order),
		cmocka_unit_test(waiter_disconnect_leaves_queue),
		cmocka_unit_test(reset_frees_at_once),
		cmocka_unit_test(bounded_wait_times_out),
		cmocka_unit_test(libvirgo_calls),
		cmocka_unit_test(exclusion_16_clients),
		cmocka_unit_test(paused_holder_loses_lease),
		cmocka_unit_test(cli_runs_command_under_lock),
		cmocka_unit_test(cli_stops_command_when_lock_lost),
		cmocka_unit_test(home_restart_keeps_tokens_growing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
