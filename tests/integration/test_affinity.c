/*
 * test_affinity.c - cpu_affinity: each service's worker k is pinned to the
 * k-th CPU the process may use, and a connection moves to the worker on
 * its client's CPU (server.c conn_move) without losing or reordering a
 * byte: real virgod processes, clients in threads pinned to one CPU each.
 * Skipped on a machine (or CPU set) with a single CPU.
 */
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

/* The CPUs this process may run on (virgod inherits the set). */
static int cpus[2], ncpus;

static void find_cpus(void)
{
	cpu_set_t set;
	ncpus = 0;
	if (sched_getaffinity(0, sizeof set, &set) != 0)
		return;
	for (int i = 0; i < CPU_SETSIZE && ncpus < 2; i++)
		if (CPU_ISSET(i, &set))
			cpus[ncpus++] = i;
}

/* Cpus_allowed_list of the thread of pid named `name` ("" if none). */
static void thread_cpus(pid_t pid, const char *name, char *list, size_t cap)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	assert_non_null(d);
	list[0] = '\0';
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[320], comm[32] = "", line[256];
		snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (!fgets(comm, sizeof comm, f))
			comm[0] = '\0';
		fclose(f);
		comm[strcspn(comm, "\n")] = '\0';
		if (strcmp(comm, name) != 0)
			continue;
		snprintf(path, sizeof path, "%s/%s/status", dir, e->d_name);
		f = fopen(path, "r");
		assert_non_null(f);
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "Cpus_allowed_list:", 18) == 0)
				snprintf(list, cap, "%s", line + 18 + strspn(line + 18, " \t"));
		fclose(f);
		list[strcspn(list, "\n")] = '\0';
	}
	closedir(d);
}

static void workers_pinned_round_robin(void **state)
{
	(void)state;
	if (ncpus < 2)
		skip();
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "threads = 2\nmemcache_threads = 3", NULL), 0);
	pid_t pid = c.nodes[0].pid;
	char list[64], want[16];
	const char *names[] = {"memcache/0", "memcache/1", "memcache/2", "mempool/1"};
	const int cpu_of[] = {cpus[0], cpus[1], cpus[0], cpus[1]};
	for (int i = 0; i < 4; i++) {
		thread_cpus(pid, names[i], list, sizeof list);
		snprintf(want, sizeof want, "%d", cpu_of[i]);
		assert_string_equal(list, want);
	}
	assert_int_equal(th_cluster_stop(&c), 0);

	/* cpu_affinity = no: the workers may run anywhere, as the process */
	assert_int_equal(th_cluster_start(&c, 1, "threads = 2\ncpu_affinity = no", NULL), 0);
	thread_cpus(c.nodes[0].pid, "memcache/0", list, sizeof list);
	char self[64];
	thread_cpus(getpid(), "test_affinity", self, sizeof self);
	assert_true(list[0] != '\0');
	assert_string_equal(list, self);
	assert_int_equal(th_cluster_stop(&c), 0);
}

struct client {
	int port, cpu;
	bool memcache; /* else the mempool port's ping */
	int fds[2];
	int failures;
};

static bool round_trip(int fd, const char *req, const char *want)
{
	char buf[512];
	if (th_send(fd, req, strlen(req)) != 0)
		return false;
	ssize_t n = th_recv_until(fd, buf, sizeof buf, want, 3000);
	if (n == (ssize_t)strlen(want) && strcmp(buf, want) == 0)
		return true;
	fprintf(stderr, "fd %d sent %s wanted %s got (%zd) %s\n", fd, req, want, n, n > 0 ? buf : "");
	return false;
}

/* On its CPU: request/reply pairs on its two connections, each reply
 * checked. */
static void *client_main(void *arg)
{
	struct client *cl = arg;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cl->cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
		cl->failures++;
		return NULL;
	}
	for (int i = 0; i < 200; i++) {
		for (int k = 0; k < 2; k++) {
			char req[128], want[128];
			if (cl->memcache) {
				snprintf(req, sizeof req, "set k%d-%d 0 0 4\r\n%04d\r\nget k%d-%d\r\n",
					 cl->cpu, k, i, cl->cpu, k);
				snprintf(want, sizeof want, "STORED\r\nVALUE k%d-%d 0 4\r\n%04d\r\nEND\r\n",
					 cl->cpu, k, i);
			} else {
				snprintf(req, sizeof req, "ping\r\n");
				snprintf(want, sizeof want, "PONG 1\r\n");
			}
			if (!round_trip(cl->fds[k], req, want))
				cl->failures++;
		}
	}
	return NULL;
}

/* Whether the node's log has a line with all of a, b and c within ms. */
static bool log_has(const struct th_node *n, const char *a, const char *b, int ms)
{
	int64_t deadline = th_now_ms() + ms;
	do {
		FILE *f = fopen(n->log, "r");
		char line[1024];
		bool found = false;
		while (f && !found && fgets(line, sizeof line, f))
			found = strstr(line, a) && strstr(line, b);
		if (f)
			fclose(f);
		if (found)
			return true;
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL); /* polling interval */
	} while (th_now_ms() < deadline);
	return false;
}

static void run_clients(int port, bool memcache)
{
	struct client cl[2];
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		cl[i] = (struct client){.port = port, .cpu = cpus[i], .memcache = memcache};
		/* two in a row: round robin puts one of them on the worker of
		 * the other CPU, which must hand it over */
		for (int k = 0; k < 2; k++)
			cl[i].fds[k] = th_connect(port);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, client_main, &cl[i]), 0);
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(cl[i].failures, 0);
	}
	/* after the moves, a pipelined burst and a large value still come
	 * back whole and in order on every connection */
	static char burst[64 * 24], big[100000 + 64], reply[100000 + 256];
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 2; k++) {
			int fd = cl[i].fds[k];
			if (memcache) {
				size_t n = 0;
				for (int j = 0; j < 64; j++)
					n += (size_t)sprintf(burst + n, "incr nokey%d 1\r\n", j % 10);
				assert_int_equal(th_send(fd, burst, n), 0);
				size_t got = 0;
				while (got < 64 * strlen("NOT_FOUND\r\n")) {
					ssize_t r = th_recv_until(fd, reply + got, sizeof reply - got,
								  "NOT_FOUND\r\n", 3000);
					assert_true(r > 0);
					got += (size_t)r;
				}
				assert_int_equal(got, 64 * strlen("NOT_FOUND\r\n"));
				int h = sprintf(big, "set big 0 0 100000\r\n");
				memset(big + h, 'b', 100000);
				memcpy(big + h + 100000, "\r\nget big\r\n", 11);
				assert_int_equal(th_send(fd, big, (size_t)h + 100011), 0);
				ssize_t r = th_recv_until(fd, reply, sizeof reply, "\r\nEND\r\n", 5000);
				assert_int_equal(r, (ssize_t)(strlen("STORED\r\nVALUE big 0 100000\r\n") +
							      100000 + 7));
			} else {
				assert_true(round_trip(fd, "ping\r\nping\r\n", "PONG 1\r\nPONG 1\r\n"));
			}
			close(fd);
		}
	}
}

static void connection_follows_client_cpu(void **state)
{
	(void)state;
	if (ncpus < 2)
		skip();
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "threads = 2\nlog_level = debug", NULL), 0);
	run_clients(th_port(&c, 0, 11211), true);
	run_clients(th_port(&c, 0, 30000), false);
	char cpu0[64], cpu1[64];
	snprintf(cpu0, sizeof cpu0, "(its client runs on CPU %d)", cpus[0]);
	snprintf(cpu1, sizeof cpu1, "(its client runs on CPU %d)", cpus[1]);
	assert_true(log_has(&c.nodes[0], "moves to memcache/0 ", cpu0, 3000));
	assert_true(log_has(&c.nodes[0], "moves to memcache/1 ", cpu1, 3000));
	assert_true(log_has(&c.nodes[0], "moves to mempool/", "its client runs", 3000));
	/* never to a worker on another CPU than the client's */
	assert_false(log_has(&c.nodes[0], "moves to memcache/0 ", cpu1, 0));
	assert_false(log_has(&c.nodes[0], "moves to memcache/1 ", cpu0, 0));
	assert_int_equal(th_cluster_stop(&c), 0);
}

int main(void)
{
	find_cpus();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(workers_pinned_round_robin),
		cmocka_unit_test(connection_follows_client_cpu),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
