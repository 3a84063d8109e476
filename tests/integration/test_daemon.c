/*
 * test_daemon.c - virgod as a process: help, config errors, busy ports,
 * loopback-only default, connection cap, idle timeout (also of a client
 * that stopped reading its replies), a service whose data directory is
 * unusable, SIGTERM drain.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
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
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

static char out[16384];

static void help_and_version(void **state)
{
	(void)state;
	const char *h[] = {th_virgod(), "--help", NULL};
	assert_int_equal(th_run(h, out, sizeof out, 5000), 0);
	assert_non_null(strstr(out, "--port-offset"));
	assert_non_null(strstr(out, "mempool"));
	const char *v[] = {th_virgod(), "--version", NULL};
	assert_int_equal(th_run(v, out, sizeof out, 5000), 0);
	assert_non_null(strstr(out, "virgod "));
	const char *bad[] = {th_virgod(), "--node-id", "0", NULL};
	assert_int_equal(th_run(bad, out, sizeof out, 5000), 2);
	assert_non_null(strstr(out, "bad value '0'"));
	const char *extra[] = {th_virgod(), "stray", NULL};
	assert_int_equal(th_run(extra, out, sizeof out, 5000), 2);
}

static void unknown_config_key_names_key_and_line(void **state)
{
	(void)state;
	char path[256];
	snprintf(path, sizeof path, "%s/bad.conf", th_tmpdir());
	FILE *f = fopen(path, "w");
	fprintf(f, "# comment\nnode_id = 4\nmemory_limit = 1G\n");
	fclose(f);
	const char *a[] = {th_virgod(), "--config", path, NULL};
	assert_int_equal(th_run(a, out, sizeof out, 5000), 2);
	assert_non_null(strstr(out, ":3: unknown key 'memory_limit'"));
	const char *m[] = {th_virgod(), "--config", "/nonexistent/x.conf", NULL};
	assert_int_equal(th_run(m, out, sizeof out, 5000), 2);
	assert_non_null(strstr(out, "No such file"));
}

static void non_loopback_listen_refused(void **state)
{
	(void)state;
	char off[16];
	snprintf(off, sizeof off, "%d", th_offset_base(1));
	const char *a[] = {th_virgod(), "--listen", "0.0.0.0", "--port-offset", off, NULL};
	assert_int_equal(th_run(a, out, sizeof out, 5000), 1);
	assert_non_null(strstr(out, "refusing to listen on 0.0.0.0"));
}

static void busy_port_second_instance_fails_clearly(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, NULL, NULL), 0);
	const char *a[] = {th_virgod(), "--config", c.nodes[0].conf, NULL};
	assert_int_equal(th_run(a, out, sizeof out, 5000), 1);
	assert_non_null(strstr(out, "Address already in use"));
	assert_non_null(strstr(out, "another virgod"));
	/* the first node is unaffected and its pidfile still there */
	assert_int_equal(access(c.nodes[0].pidfile, F_OK), 0);
	int fd = th_connect(th_port(&c, 0, 30000));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "ping\r\n", 6), 0);
	assert_true(th_recv_until(fd, out, sizeof out, "PONG 1\r\n", 3000) > 0);
	close(fd);
	assert_int_equal(th_cluster_stop(&c), 0);
	/* SIGTERM: exit 0 (checked by stop) and the pidfile is removed */
	assert_int_equal(access(c.nodes[0].pidfile, F_OK), -1);
}

static void connection_cap(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "max_connections = 2", NULL), 0);
	int port = th_port(&c, 0, 30000);
	int a = th_connect(port), b = th_connect(port);
	assert_int_equal(th_send(a, "ping\r\n", 6), 0);
	assert_true(th_recv_until(a, out, sizeof out, "PONG", 3000) > 0);
	assert_int_equal(th_send(b, "ping\r\n", 6), 0);
	assert_true(th_recv_until(b, out, sizeof out, "PONG", 3000) > 0);
	int x = th_connect(port);
	assert_true(th_recv_until(x, out, sizeof out, NULL, 3000) >= 0);
	assert_string_equal(out, "ERR EBUSY too many connections\r\n");
	close(x);
	close(a);
	/* a slot frees up once a client leaves (poll until it does) */
	int64_t deadline = th_now_ms() + 3000;
	int ok = 0;
	while (!ok && th_now_ms() < deadline) {
		int y = th_connect(port);
		th_send(y, "ping\r\n", 6);
		ok = th_recv_until(y, out, sizeof out, "PONG", 1000) > 0 && strstr(out, "PONG");
		close(y);
	}
	assert_true(ok);
	close(b);
	assert_int_equal(th_cluster_stop(&c), 0);
}

static void idle_connection_closed(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "idle_timeout = 1", NULL), 0);
	int fd = th_connect(th_port(&c, 0, 30000));
	int64_t t0 = th_now_ms();
	/* recv_until(NULL) returns at EOF: the server closed us */
	assert_true(th_recv_until(fd, out, sizeof out, NULL, 5000) == 0);
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 900 && took < 4000);
	close(fd);
	assert_int_equal(th_cluster_stop(&c), 0);
}

/* A client that asks for replies and stops reading them is closed after
 * idle_timeout of no progress, like an idle one: the replies it left
 * (50 MB asked for here) are not held for ever.  The client's unread
 * requests make the close a reset, which poll() sees without reading. */
static void stalled_reader_closed(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "idle_timeout = 1", NULL), 0);
	int port = th_port(&c, 0, 11211);
	int fd = th_connect(port);
	assert_true(fd >= 0);
	static char big[(256 << 10) + 64], gets[200 * 9];
	int h = snprintf(big, sizeof big, "set big 0 0 %d\r\n", 256 << 10);
	memset(big + h, 'b', 256 << 10);
	memcpy(big + h + (256 << 10), "\r\n", 2);
	assert_int_equal(th_send(fd, big, (size_t)h + (256 << 10) + 2), 0);
	assert_true(th_recv_until(fd, out, sizeof out, "STORED\r\n", 3000) > 0);
	for (int i = 0; i < 200; i++)
		memcpy(gets + i * 9, "get big\r\n", 9);
	assert_int_equal(th_send(fd, gets, sizeof gets), 0);
	/* more requests, left unread in the server's socket once it pauses */
	for (int i = 0; i < 8; i++)
		send(fd, gets, sizeof gets, MSG_DONTWAIT);
	int64_t t0 = th_now_ms();
	struct pollfd pf = {.fd = fd, .events = 0};
	assert_int_equal(poll(&pf, 1, 6000), 1);
	assert_true(pf.revents & (POLLHUP | POLLERR));
	int64_t took = th_now_ms() - t0;
	assert_true(took >= 900 && took < 5000);
	close(fd);
	/* the node serves others as before */
	int other = th_connect(port);
	assert_int_equal(th_send(other, "version\r\n", 9), 0);
	assert_true(th_recv_until(other, out, sizeof out, "\r\n", 3000) > 0);
	assert_string_equal(out, "VERSION 1.6.0-virgo\r\n");
	close(other);
	assert_int_equal(th_cluster_stop(&c), 0);
}

/* Threads of process pid whose name starts with prefix. */
static int count_threads(pid_t pid, const char *prefix)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/proc/%d/task", (int)pid);
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char path[320], name[32] = "";
		snprintf(path, sizeof path, "%s/%s/comm", dir, e->d_name);
		FILE *f = fopen(path, "r");
		if (f) {
			if (fgets(name, sizeof name, f) && strncmp(name, prefix, strlen(prefix)) == 0)
				n++;
			fclose(f);
		}
	}
	closedir(d);
	return n;
}

/* Every service has its own worker threads (threads each, or
 * <service>_threads), and both ports work. */
static void worker_threads_per_service(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "threads = 2\nmemcache_threads = 3", NULL), 0);
	pid_t pid = c.nodes[0].pid;
	assert_int_equal(count_threads(pid, "memcache/"), 3);
	assert_int_equal(count_threads(pid, "mempool/"), 2);
	assert_int_equal(count_threads(pid, "cpupool/"), 2);
	int m = th_connect(th_port(&c, 0, 11211));
	assert_int_equal(th_send(m, "version\r\n", 9), 0);
	assert_true(th_recv_until(m, out, sizeof out, "\r\n", 3000) > 0);
	assert_non_null(strstr(out, "VERSION"));
	int p = th_connect(th_port(&c, 0, 30000));
	assert_int_equal(th_send(p, "ping\r\n", 6), 0);
	assert_true(th_recv_until(p, out, sizeof out, "PONG", 3000) > 0);
	close(m);
	close(p);
	assert_int_equal(th_cluster_stop(&c), 0);
}

/* A data directory the node cannot make (here: under /proc) turns its
 * service off, saying why on its port and in the log; the node and its
 * other services run. */
static void unusable_data_dir_turns_only_its_service_off(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, "eventnet_dir = /proc/virgo-none/ev", NULL), 0);
	int e = th_connect(th_port(&c, 0, 20000));
	assert_int_equal(th_send(e, "get 1.1\r\n", 9), 0);
	assert_true(th_recv_until(e, out, sizeof out, "\r\n", 3000) > 0);
	assert_non_null(strstr(out, "ERR EIO eventnet_dir /proc/virgo-none/ev: "));
	close(e);
	assert_true(th_log_has(&c.nodes[0], "the eventnet port answers ERR EIO"));
	int p = th_connect(th_port(&c, 0, 30000));
	assert_int_equal(th_send(p, "ping\r\n", 6), 0);
	assert_true(th_recv_until(p, out, sizeof out, "PONG", 3000) > 0);
	close(p);
	assert_int_equal(th_cluster_stop(&c), 0);
}

static void sigterm_drains_with_open_clients(void **state)
{
	(void)state;
	struct th_cluster c;
	assert_int_equal(th_cluster_start(&c, 1, NULL, NULL), 0);
	int port = th_port(&c, 0, 30000);
	int idle = th_connect(port);
	int busy = th_connect(port);
	/* a pipelined burst whose replies are in flight when SIGTERM lands */
	static char burst[200 * 6];
	for (int i = 0; i < 200; i++)
		memcpy(burst + i * 6, "ping\r\n", 6);
	assert_int_equal(th_send(busy, burst, sizeof burst), 0);
	assert_true(th_recv_until(busy, out, sizeof out, "PONG", 3000) > 0);
	/* SIGHUP does not kill it */
	th_node_signal(&c, 0, SIGHUP);
	int fd = th_connect(port);
	assert_int_equal(th_send(fd, "ping\r\n", 6), 0);
	assert_true(th_recv_until(fd, out, sizeof out, "PONG", 3000) > 0);
	close(fd);
	int64_t t0 = th_now_ms();
	assert_int_equal(th_cluster_stop(&c), 0); /* exit status 0 */
	assert_true(th_now_ms() - t0 < 4000);
	/* clients see an orderly close */
	assert_true(th_recv_until(idle, out, sizeof out, NULL, 3000) == 0);
	close(idle);
	close(busy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(help_and_version),
		cmocka_unit_test(unknown_config_key_names_key_and_line),
		cmocka_unit_test(non_loopback_listen_refused),
		cmocka_unit_test(busy_port_second_instance_fails_clearly),
		cmocka_unit_test(connection_cap),
		cmocka_unit_test(idle_connection_closed),
		cmocka_unit_test(stalled_reader_closed),
		cmocka_unit_test(worker_threads_per_service),
		cmocka_unit_test(unusable_data_dir_turns_only_its_service_off),
		cmocka_unit_test(sigterm_drains_with_open_clients),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
