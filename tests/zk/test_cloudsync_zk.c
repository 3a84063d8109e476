/*
 * test_cloudsync_zk.c - cloudsync's zookeeper backend against a real
 * ZooKeeper (Debian's zookeeper: a standalone server this test starts on
 * a free loopback port, with its own data directory) and 3 virgods with
 * lock_backend = zookeeper.  Every node serves every lock, so the clients
 * here spread over the nodes: exclusion (16 clients on 3 nodes increment
 * a mempool counter under the lock: exact count, hold intervals never
 * overlap, tokens grow), FIFO-ish handoff through ZooKeeper's queue, the
 * paused (SIGSTOPped) holder whose lease ends and whose late fenced write
 * is refused, and a holder's connection reset freeing the lock at once.
 * Run by `make test-cloudsync-zk` (not part of `make test`: it needs Java
 * and takes a few seconds to start ZooKeeper).
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <netinet/in.h>
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
static pid_t zk_pid;
static int zk_port;
static char zk_dir[300];

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t l = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &l) != 0)
		return -1;
	close(fd);
	return ntohs(a.sin_port);
}

static int zk_start(void)
{
	if (access("/usr/share/java/zookeeper.jar", R_OK) != 0 || access("/usr/bin/java", X_OK) != 0) {
		fprintf(stderr, "zookeeper (Debian's zookeeper package) or java missing\n");
		return -1;
	}
	zk_port = free_port();
	snprintf(zk_dir, sizeof zk_dir, "%s/zk", th_tmpdir());
	char port[16], log[400];
	snprintf(port, sizeof port, "%d", zk_port);
	snprintf(log, sizeof log, "%s.log", zk_dir);
	zk_pid = fork();
	if (zk_pid == 0) {
		FILE *f = freopen(log, "w", stdout);
		(void)f;
		dup2(1, 2);
		execl("/usr/bin/java", "java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
		      "-cp", "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar",
		      "org.apache.zookeeper.server.ZooKeeperServerMain", port, zk_dir, (char *)NULL);
		_exit(127);
	}
	int64_t deadline = th_now_ms() + 30000;
	while (th_now_ms() < deadline) {
		int fd = th_connect(zk_port);
		if (fd >= 0) {
			char buf[64];
			th_send(fd, "srvr", 4); /* the one four-letter word allowed by default */
			ssize_t n = th_recv_until(fd, buf, sizeof buf, "version", 2000);
			close(fd);
			if (n > 0 && strstr(buf, "version"))
				return 0;
		}
		usleep(50000);
	}
	fprintf(stderr, "zookeeper did not start within 30 s (log: %s)\n", log);
	return -1;
}

static int setup(void **state)
{
	(void)state;
	if (zk_start() != 0)
		return -1;
	char extra[256];
	snprintf(extra, sizeof extra, "lock_backend = zookeeper\nzookeeper = 127.0.0.1:%d\n", zk_port);
	if (th_cluster_start(&cl, 3, extra, NULL) != 0)
		return -1;
	/* each node opens its session once it listens: until then locks
	 * answer ERR EIO */
	for (int i = 0; i < 3; i++) {
		int64_t deadline = th_now_ms() + 20000;
		bool up = false;
		while (!up && th_now_ms() < deadline) {
			int fd = th_connect(th_port(&cl, i, 40000));
			char buf[256];
			if (fd >= 0 && th_send(fd, "trylock zkready\r\n", 17) == 0 &&
			    th_recv_until(fd, buf, sizeof buf, "\r\n", 5000) > 0)
				up = strncmp(buf, "OK ", 3) == 0;
			if (fd >= 0)
				close(fd);
			if (!up)
				usleep(50000);
		}
		if (!up) {
			fprintf(stderr, "node %d: cloudsync never reached zookeeper\n", i + 1);
			return -1;
		}
	}
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	int rc = th_cluster_teardown(&cl);
	if (zk_pid > 0) {
		kill(zk_pid, SIGTERM);
		waitpid(zk_pid, NULL, 0);
	}
	return rc;
}

static int cs_conn(int node)
{
	int fd = th_connect(th_port(&cl, node, CS_BASE));
	assert_true(fd >= 0);
	return fd;
}

static void req(int fd, const char *line, char *buf, size_t cap)
{
	assert_int_equal(th_send(fd, line, strlen(line)), 0);
	if (th_recv_until(fd, buf, cap, "\r\n", 10000) <= 0)
		fail_msg("no reply to %s", line);
}

static uint64_t ok_token(const char *reply)
{
	uint64_t t = 0;
	if (sscanf(reply, "OK %" SCNu64, &t) != 1)
		fail_msg("expected OK <token>, got: %s", reply);
	return t;
}

/* Nodes 0 and 1 serve the same lock: one holds, the other waits. */
static void nodes_share_locks(void **state)
{
	(void)state;
	char buf[512];
	int a = cs_conn(0), b = cs_conn(1), c = cs_conn(2);
	req(a, "lock shared 10000\r\n", buf, sizeof buf);
	uint64_t t1 = ok_token(buf);
	req(b, "trylock shared\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR EBUSY"));
	req(b, "lock shared 10000 100\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "ERR ETIMEDOUT"));
	/* c waits on node 2; unlocking on node 0 hands it over */
	assert_int_equal(th_send(c, "lock shared 10000\r\n", 19), 0);
	usleep(100000); /* c is in line (its znode exists) before a leaves; not needed for correctness */
	req(a, "unlock shared\r\n", buf, sizeof buf);
	assert_string_equal(buf, "OK\r\n");
	assert_true(th_recv_until(c, buf, sizeof buf, "\r\n", 10000) > 0);
	assert_true(ok_token(buf) > t1);
	/* a reset holder frees the lock at once */
	req(b, "lock other 600000\r\n", buf, sizeof buf);
	ok_token(buf);
	int w = cs_conn(0);
	assert_int_equal(th_send(w, "lock other\r\n", 12), 0);
	usleep(100000);
	struct linger lg = {1, 0};
	setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	int64_t t0 = th_now_ms();
	close(b);
	assert_true(th_recv_until(w, buf, sizeof buf, "\r\n", 10000) > 0);
	ok_token(buf);
	printf("handoff after reset via zookeeper: %" PRId64 " ms\n", th_now_ms() - t0);
	assert_true(th_now_ms() - t0 < 3000);
	close(a);
	close(c);
	close(w);
}

#define EX_THREADS 16
#define EX_ROUNDS_MAX 500
/* rounds per client: 100 by default (each handoff is a few ZooKeeper
 * writes: 16 x 100 take ~10 s here); VIRGO_ZK_ROUNDS=500 for the issue's
 * full 8000 */
static int ex_rounds = 100;

struct hold {
	int64_t from_ns, to_ns;
	uint64_t token;
};

static virgo_vuid_t counter;
static struct hold holds[EX_THREADS * EX_ROUNDS_MAX];
static _Atomic int nholds, ex_errors;

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *ex_worker(void *arg)
{
	int id = (int)(intptr_t)arg;
	int fd = th_connect(th_port(&cl, id % 3, CS_BASE)); /* spread over the nodes */
	char buf[256];
	for (int i = 0; i < ex_rounds && fd >= 0; i++) {
		uint64_t tok = 0;
		if (th_send(fd, "lock zcounter 10000\r\n", 21) != 0 ||
		    th_recv_until(fd, buf, sizeof buf, "\r\n", 30000) <= 0 ||
		    sscanf(buf, "OK %" SCNu64, &tok) != 1) {
			ex_errors++;
			break;
		}
		int64_t from = mono_ns();
		void *data = NULL;
		size_t len = 0;
		uint64_t v = 0;
		if (virgo_get(counter, &data, &len) == 0 && len == sizeof v)
			memcpy(&v, data, sizeof v);
		else
			ex_errors++;
		free(data);
		v++;
		if (virgo_set_fenced(counter, &v, sizeof v, "zcounter", tok) != 0)
			ex_errors++;
		int k = nholds++;
		holds[k] = (struct hold){from, mono_ns(), tok};
		if (th_send(fd, "unlock zcounter\r\n", 17) != 0 ||
		    th_recv_until(fd, buf, sizeof buf, "\r\n", 10000) <= 0 || strcmp(buf, "OK\r\n") != 0)
			ex_errors++;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int by_from(const void *a, const void *b)
{
	const struct hold *x = a, *y = b;
	return x->from_ns < y->from_ns ? -1 : x->from_ns > y->from_ns;
}

static void exclusion_16_clients_3_nodes(void **state)
{
	(void)state;
	const char *r = getenv("VIRGO_ZK_ROUNDS");
	if (r && atoi(r) > 0)
		ex_rounds = atoi(r) < EX_ROUNDS_MAX ? atoi(r) : EX_ROUNDS_MAX;
	uint64_t zero = 0;
	assert_int_equal(virgo_malloc(sizeof zero, &counter), 0);
	assert_int_equal(virgo_set(counter, &zero, sizeof zero), 0);
	pthread_t th[EX_THREADS];
	int64_t t0 = th_now_ms();
	for (int i = 0; i < EX_THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, ex_worker, (void *)(intptr_t)i), 0);
	for (int i = 0; i < EX_THREADS; i++)
		pthread_join(th[i], NULL);
	printf("%d locked increments through zookeeper in %" PRId64 " ms\n", EX_THREADS * ex_rounds,
	       th_now_ms() - t0);
	assert_int_equal(ex_errors, 0);
	void *data = NULL;
	size_t len = 0;
	uint64_t v = 0;
	assert_int_equal(virgo_get(counter, &data, &len), 0);
	memcpy(&v, data, sizeof v);
	free(data);
	assert_int_equal(v, EX_THREADS * ex_rounds);
	int n = nholds;
	qsort(holds, (size_t)n, sizeof holds[0], by_from);
	for (int i = 1; i < n; i++) {
		if (holds[i].from_ns < holds[i - 1].to_ns)
			fail_msg("holds %d and %d overlap", i - 1, i);
		assert_true(holds[i].token > holds[i - 1].token);
	}
}

/* The classic paused client, with the queue in ZooKeeper: the holder on
 * node 1 is stopped past its lease, node 2 grants the lock to another
 * client, whose fenced write wins; the woken holder is refused. */
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
	if (pid == 0) {
		close(p[0]);
		th_paused_lock_child(p[1], th_port(&cl, 0, CS_BASE),
				     th_port(&cl, (int)virgo_vuid_node(v) - 1, MP_BASE), "zpaused",
				     hex, 10000);
	}
	close(p[1]);
	uint64_t t1 = 0;
	assert_int_equal(read(p[0], &t1, sizeof t1), (ssize_t)sizeof t1);
	close(p[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	char buf[256];
	int fd = cs_conn(1);
	req(fd, "lock zpaused 5000 5000\r\n", buf, sizeof buf);
	uint64_t t2 = ok_token(buf);
	assert_true(t2 > t1);
	val++;
	assert_int_equal(virgo_set_fenced(v, &val, sizeof val, "zpaused", t2), 0);
	kill(pid, SIGCONT);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	void *data = NULL;
	size_t len = 0;
	assert_int_equal(virgo_get(v, &data, &len), 0);
	assert_memory_equal(data, &val, sizeof val);
	free(data);
	req(fd, "unlock zpaused\r\n", buf, sizeof buf);
	assert_string_equal(buf, "OK\r\n");
	close(fd);
	assert_int_equal(virgo_free(v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(nodes_share_locks),
		cmocka_unit_test(exclusion_16_clients_3_nodes),
		cmocka_unit_test(paused_holder_loses_lease),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
