/*
 * bench_cpupool.c - measurements for the cpupool bench suite
 * (bench/suite_cpupool.sh), against the cluster in $VIRGO_CLIENT_CONF.
 *
 *   bench_cpupool place <policy> <k> <threads> <seed> [<fn>]
 *       k virgo_sleep jobs of skewed lengths (the same list for every
 *       policy: seeded), <threads> client threads; prints makespan_ms and
 *       per node: work (ms of job length), job count, cpupool workers.
 *       With <fn>: k calls of that function instead (work = call time).
 *   bench_cpupool prg <k> <trials>
 *       k virgo_cloud_test calls with the random policy, <trials> times;
 *       prints per-node request counts per trial (for the §890 check).
 *   bench_cpupool rtt <n> <fn>
 *       n round trips of virgo_clone(fn, 1 byte) on node 1, interleaved
 *       with n round trips of 1 byte through a bare TCP echo server in this
 *       process; prints median/p99 of both.
 *   bench_cpupool exec <n> <path> [args...]
 *       n virgo_run of the program on node 1, and n local
 *       fork+exec+waitpid of the same program; prints both medians.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "virgo.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	int i = (int)(p * (n - 1) + 0.5);
	return v[i];
}

/* ---- placement ------------------------------------------------------------ */

#define MAXN 64
static int place_k, place_policy;
static const char *place_fn;
static int *place_len; /* job lengths, ms */
static _Atomic int place_next, place_fail;
static _Atomic long node_work[MAXN + 1], node_jobs[MAXN + 1];

static void *place_worker(void *arg)
{
	(void)arg;
	for (;;) {
		int i = atomic_fetch_add(&place_next, 1);
		if (i >= place_k)
			return NULL;
		char a[16];
		int n = place_fn ? 0 : snprintf(a, sizeof a, "%d", place_len[i]);
		struct virgo_call_opts o = {.policy = place_policy};
		void *out = NULL;
		size_t len;
		unsigned on = 0;
		double t0 = now_ms();
		if (virgo_clone_ex(place_fn ? place_fn : "virgo_sleep", a, (size_t)n, &o, &out, &len,
				   &on) != 0 ||
		    on > MAXN) {
			place_fail++;
			continue;
		}
		free(out);
		node_work[on] += place_fn ? (long)(now_ms() - t0 + 0.5) : place_len[i];
		node_jobs[on]++;
	}
}

static int cmd_place(int argc, char **argv)
{
	if (argc != 6 && argc != 7)
		return 2;
	place_fn = argc == 7 ? argv[6] : NULL;
	place_policy = virgo_policy_parse(argv[2]);
	place_k = atoi(argv[3]);
	int threads = atoi(argv[4]);
	unsigned seed = (unsigned)atoi(argv[5]);
	if (place_policy < 0 || place_k <= 0 || threads <= 0)
		return 2;
	/* skewed lengths: 80% short (5 ms), 15% medium (40 ms), 5% long (200 ms) */
	place_len = malloc(sizeof(int) * (size_t)place_k);
	for (int i = 0; i < place_k; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned r = (seed >> 16) % 100;
		place_len[i] = r < 80 ? 5 : r < 95 ? 40 : 200;
	}
	pthread_t th[256];
	if (threads > 256)
		threads = 256;
	double t0 = now_ms();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, place_worker, NULL);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double ms = now_ms() - t0;
	printf("makespan_ms %.1f\nfailed %d\n", ms, (int)place_fail);
	int nn = virgo_node_count();
	for (int i = 0; i < nn; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		struct virgo_load l = {0};
		virgo_load(i, &l);
		printf("node %u work_ms %ld jobs %ld workers %d\n", ni.id, (long)node_work[ni.id],
		       (long)node_jobs[ni.id], l.workers);
	}
	return place_fail ? 1 : 0;
}

/* ---- §890: requests per node under the PRG balancer ---------------------- */

static int cmd_prg(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int k = atoi(argv[2]), trials = atoi(argv[3]);
	int nn = virgo_node_count();
	struct virgo_call_opts o = {.policy = VIRGO_POLICY_RANDOM};
	for (int t = 0; t < trials; t++) {
		long count[MAXN + 1] = {0};
		for (int i = 0; i < k; i++) {
			void *out = NULL;
			size_t len;
			unsigned on = 0;
			if (virgo_clone_ex("virgo_cloud_test", "x", 1, &o, &out, &len, &on) != 0 || on > MAXN)
				return 1;
			free(out);
			count[on]++;
		}
		printf("trial");
		for (int i = 0; i < nn; i++) {
			struct virgo_node_info ni;
			virgo_node_info(i, &ni);
			printf(" %ld", count[ni.id]);
		}
		printf("\n");
	}
	return 0;
}

/* ---- round trips ----------------------------------------------------------- */

static void *echo_server(void *arg)
{
	int ls = *(int *)arg;
	int fd = accept(ls, NULL, NULL);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char buf[4096];
	for (;;) {
		ssize_t r = read(fd, buf, sizeof buf);
		if (r <= 0)
			break;
		if (write(fd, buf, (size_t)r) != r)
			break;
	}
	close(fd);
	return NULL;
}

/* One-byte round trips through a bare TCP echo thread in this process,
 * interleaved with virgo_clone(fn, 1 byte) on node 1, so both see the
 * same machine (the other half of a 2-core box may be busy). */
static int cmd_rtt(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int n = atoi(argv[2]);
	const char *fn = argv[3];
	struct virgo_call_opts o = {.node_id = 1};
	for (int i = 0; i < 200; i++) { /* warm the connection pool */
		void *out;
		size_t len;
		if (virgo_clone_ex(fn, "x", 1, &o, &out, &len, NULL) != 0)
			return 1;
		free(out);
	}
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	if (bind(ls, (struct sockaddr *)&a, sizeof a) || listen(ls, 1) ||
	    getsockname(ls, (struct sockaddr *)&a, &al))
		return 1;
	pthread_t th;
	pthread_create(&th, NULL, echo_server, &ls);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&a, sizeof a))
		return 1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	double *cl = malloc(sizeof(double) * (size_t)n), *ec = malloc(sizeof(double) * (size_t)n);
	char c = 'x';
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		if (write(fd, &c, 1) != 1 || read(fd, &c, 1) != 1)
			return 1;
		ec[i] = (now_ms() - t0) * 1000;
		void *out;
		size_t len;
		t0 = now_ms();
		if (virgo_clone_ex(fn, "x", 1, &o, &out, &len, NULL) != 0 || len != 1)
			return 1;
		cl[i] = (now_ms() - t0) * 1000;
		free(out);
	}
	close(fd);
	pthread_join(th, NULL);
	close(ls);
	printf("clone_median_us %.1f\nclone_p99_us %.1f\necho_median_us %.1f\necho_p99_us %.1f\n",
	       pct(cl, n, 0.5), pct(cl, n, 0.99), pct(ec, n, 0.5), pct(ec, n, 0.99));
	free(cl);
	free(ec);
	return 0;
}

/* ---- executables ----------------------------------------------------------- */

static int cmd_exec(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int n = atoi(argv[2]);
	char **prog = argv + 3;
	double *loc = malloc(sizeof(double) * (size_t)n), *rem = malloc(sizeof(double) * (size_t)n);
	struct virgo_call_opts o = {.node_id = 1};
	struct virgo_run_result r;
	for (int i = 0; i < 20; i++) {
		if (virgo_run_ex((const char *const *)prog, &o, &r) != 0)
			return 1;
		virgo_run_result_free(&r);
	}
	/* alternate local and remote so drift affects both alike */
	for (int i = 0; i < n; i++) {
		double t0 = now_ms();
		pid_t pid = fork();
		if (pid == 0) {
			execv(prog[0], prog);
			_exit(127);
		}
		int st;
		waitpid(pid, &st, 0);
		loc[i] = (now_ms() - t0) * 1000;
		if (!WIFEXITED(st) || WEXITSTATUS(st) == 127) {
			fprintf(stderr, "bench_cpupool: cannot execute %s locally\n", prog[0]);
			return 1;
		}
		t0 = now_ms();
		if (virgo_run_ex((const char *const *)prog, &o, &r) != 0)
			return 1;
		rem[i] = (now_ms() - t0) * 1000;
		virgo_run_result_free(&r);
	}
	printf("run_median_us %.1f\nlocal_median_us %.1f\nrun_p99_us %.1f\nlocal_p99_us %.1f\n",
	       pct(rem, n, 0.5), pct(loc, n, 0.5), pct(rem, n, 0.99), pct(loc, n, 0.99));
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 2;
	if (argc >= 2 && strcmp(argv[1], "place") == 0)
		rc = cmd_place(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "prg") == 0)
		rc = cmd_prg(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "rtt") == 0)
		rc = cmd_rtt(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "exec") == 0)
		rc = cmd_exec(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: see the comment at the top of bench/bench_cpupool.c\n");
	return rc;
}
