/*
 * harness.c - integration-test harness (harness.h).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "virgo.h"

#define TH_READY_MS 10000
#define TH_STOP_MS 10000

int64_t th_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* $<env> if set, else $BUILD/<name>, into path (static, set once). */
static const char *th_bin(char *path, size_t cap, const char *env, const char *name)
{
	if (path[0])
		return path;
	const char *e = getenv(env);
	if (e && *e)
		snprintf(path, cap, "%s", e);
	else
		snprintf(path, cap, "%s/../%s", th_build_dir(), name);
	return path;
}

const char *th_virgod(void)
{
	static char path[600];
	return th_bin(path, sizeof path, "VIRGOD", "virgod");
}

const char *th_virgo_cli(void)
{
	static char path[600];
	return th_bin(path, sizeof path, "VIRGO_CLI", "virgo");
}

/* Scratch directories this process made, removed when it exits with
 * status 0 (a failed run keeps them, with the nodes' logs, for a look;
 * VIRGO_TEST_KEEP=1 keeps them always).  Only the process that made them
 * removes them: a forked child that calls exit() must not. */
#define TH_MAX_TMPDIRS 64
static char tmp_dirs[TH_MAX_TMPDIRS][256];
static int tmp_ndirs;
static pid_t tmp_owner;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path); /* a mount point still in use stays (EBUSY) */
	else
		unlink(path);
	return 0;
}

static void tmp_cleanup(int status, void *arg)
{
	(void)arg;
	const char *keep = getenv("VIRGO_TEST_KEEP");
	if (status != 0 || getpid() != tmp_owner || (keep && *keep && strcmp(keep, "0") != 0))
		return;
	for (int i = 0; i < tmp_ndirs; i++)
		nftw(tmp_dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

const char *th_tmpdir(void)
{
	static char dir[256];
	const char *t = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/virgo-test-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	if (tmp_owner != getpid()) {
		tmp_owner = getpid();
		tmp_ndirs = 0;
		on_exit(tmp_cleanup, NULL);
	}
	if (tmp_ndirs < TH_MAX_TMPDIRS)
		snprintf(tmp_dirs[tmp_ndirs++], sizeof tmp_dirs[0], "%s", dir);
	return dir;
}

int th_offset_base(int count)
{
	static int next = -1;
	if (next < 0)
		next = 100 + (int)(getpid() % 100) * 12;
	int b = next;
	next += count;
	if (next > 1400)
		next = 100;
	return b;
}

/* The queue's notes port (60000) lies in Linux's ephemeral port range
 * (32768-60999): on a busy machine a client connection's TIME_WAIT often
 * holds 60000+offset and the node cannot listen there.  Test nodes put
 * their queue at TH_QUEUE_PORT + offset instead (outside the range). */
#define TH_QUEUE_BASE 60000
#define TH_QUEUE_PORT 61000

int th_port(const struct th_cluster *c, int i, int base)
{
	if (base == TH_QUEUE_BASE)
		return TH_QUEUE_PORT + c->nodes[i].offset;
	return base + c->nodes[i].offset;
}

static void dump_log(const struct th_node *n)
{
	FILE *f = fopen(n->log, "r");
	if (!f)
		return;
	char line[1024];
	fprintf(stderr, "---- log of node %u (%s)\n", n->id, n->log);
	while (fgets(line, sizeof line, f))
		fputs(line, stderr);
	fclose(f);
}

int th_node_start(struct th_cluster *c, int i)
{
	struct th_node *n = &c->nodes[i];
	unlink(n->pidfile);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* a test that fails half way (cmocka jumps out of it) must not
		 * leave its nodes running: they die with the test process */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execl(th_virgod(), "virgod", "--config", n->conf, (char *)NULL);
		_exit(127);
	}
	n->pid = pid;
	int64_t deadline = th_now_ms() + TH_READY_MS;
	while (th_now_ms() < deadline) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			n->pid = 0;
			fprintf(stderr, "virgod node %u exited during start-up\n", n->id);
			dump_log(n);
			return -1;
		}
		if (access(n->pidfile, F_OK) == 0)
			return 0;
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL); /* polling interval, not a wait-and-hope */
	}
	fprintf(stderr, "virgod node %u not ready within %d ms\n", n->id, TH_READY_MS);
	dump_log(n);
	return -1;
}

int th_cluster_start(struct th_cluster *c, int n, const char *node_conf_extra,
		     const char *client_extra)
{
	return th_cluster_start_nodes(c, n, node_conf_extra, NULL, client_extra);
}

const char *th_build_dir(void)
{
	static char dir[600];
	if (dir[0])
		return dir;
	ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
	if (n < 0)
		n = 0;
	dir[n] = '\0';
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	return dir;
}

long th_proc_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	size_t fl = strlen(field);
	while (f && fgets(line, sizeof line, f))
		if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
			kb = strtol(line + fl + 1, NULL, 10);
			break;
		}
	if (f)
		fclose(f);
	return kb;
}

int th_peak_growth_ok(pid_t pid, long before_kb, long max_kb)
{
	long grew = th_proc_kb(pid, "VmHWM") - before_kb;
#if defined(__SANITIZE_ADDRESS__)
	(void)max_kb;
	printf("ASan build: its quarantine keeps freed buffers; peak grew %ld kB, not checked\n",
	       grew);
	return 0;
#else
	printf("node's peak memory grew by %ld kB%s\n", grew, grew > max_kb ? " (too much)" : "");
	return grew > max_kb ? -1 : 0;
#endif
}

int th_children(pid_t pid)
{
	DIR *d = opendir("/proc");
	if (!d)
		return -1;
	int count = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t r = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[r] = '\0';
		/* pid (comm) state ppid ...; comm may hold spaces: skip to ')' */
		char *p = strrchr(buf, ')');
		char st;
		int ppid;
		if (p && sscanf(p + 1, " %c %d", &st, &ppid) == 2 && ppid == pid)
			count++;
	}
	closedir(d);
	return count;
}

static int cluster_start_at(struct th_cluster *c, int n, int base, const char *node_conf_extra,
			    const char *const node_extra[], const char *client_extra)
{
	memset(c, 0, sizeof *c);
	c->n = n;
	snprintf(c->dir, sizeof c->dir, "%s", th_tmpdir());
	snprintf(c->client_conf, sizeof c->client_conf, "%s/virgo_client.conf", c->dir);
	FILE *cf = fopen(c->client_conf, "w");
	if (!cf)
		return -1;
	fprintf(cf, "# written by the test harness\n");
	for (int i = 0; i < n; i++) {
		struct th_node *nd = &c->nodes[i];
		nd->id = (unsigned)i + 1;
		nd->offset = base + i;
		snprintf(nd->conf, sizeof nd->conf, "%s/node%d.conf", c->dir, i + 1);
		snprintf(nd->pidfile, sizeof nd->pidfile, "%s/node%d.pid", c->dir, i + 1);
		snprintf(nd->log, sizeof nd->log, "%s/node%d.log", c->dir, i + 1);
		FILE *f = fopen(nd->conf, "w");
		if (!f) {
			fclose(cf);
			return -1;
		}
		/* lock_state_dir: cloudsync's durable token epoch, per cluster;
		 * analytics_dir: the analytics revisions' reservation, likewise;
		 * eventnet_dir, queue_dir, cloudfs_export_root: the defaults
		 * under /var/lib/virgo are per node id, shared by every run and
		 * every test binary running at the same time (a test's own
		 * setting, later in the file, wins) */
		fprintf(f, "node_id = %u\nport_offset = %d\npidfile = %s\nthreads = 2\nqueue_port = %d\n"
			"lock_state_dir = %s/state\nanalytics_dir = %s/state\neventnet_dir = %s/ev%u\n"
			"queue_dir = %s/q%u\ncloudfs_export_root = %s/fs%u\n%s\n%s\n",
			nd->id, nd->offset, nd->pidfile, TH_QUEUE_PORT + nd->offset, c->dir, c->dir, c->dir,
			nd->id, c->dir, nd->id, c->dir, nd->id,
			node_conf_extra ? node_conf_extra : "",
			node_extra && node_extra[i] ? node_extra[i] : "");
		fclose(f);
		fprintf(cf, "node = %u 127.0.0.1 %d\n", nd->id, nd->offset);
	}
	fprintf(cf, "queue_port_base = %d\n%s\n", TH_QUEUE_PORT, client_extra ? client_extra : "");
	fclose(cf);
	setenv("VIRGO_CLIENT_CONF", c->client_conf, 1);
	for (int i = 0; i < n; i++) {
		if (th_node_start(c, i) != 0) {
			th_cluster_stop(c);
			return -1;
		}
	}
	return 0;
}

/* Test binaries of other checkouts may run at the same time and hold an
 * offset block we picked: then a node cannot bind, and we retry the whole
 * cluster on another block. */
/* Can virgod bind base port + off (as it does: SO_REUSEADDR on loopback)?
 * Ports in the ephemeral range (cloudsync's 40000+, cloudfs's 50000+) are also the local
 * ports of client connections, and one in TIME-WAIT blocks the bind for
 * a minute: such a block is skipped before any node is started. */
static bool port_bindable(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return true;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

static bool block_bindable(int base, int n)
{
	static const int svc_base[] = {40000, 50000};
	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < sizeof svc_base / sizeof svc_base[0]; k++)
			if (!port_bindable(svc_base[k] + base + i))
				return false;
	return true;
}

int th_cluster_start_nodes(struct th_cluster *c, int n, const char *node_conf_extra,
			   const char *const node_extra[], const char *client_extra)
{
	for (int attempt = 0;; attempt++) {
		int base = th_offset_base(n);
		for (int skip = 0; skip < 100 && !block_bindable(base, n); skip++)
			base = th_offset_base(n);
		if (cluster_start_at(c, n, base, node_conf_extra, node_extra, client_extra) == 0)
			return 0;
		if (attempt == 24)
			return -1;
		fprintf(stderr, "harness: offset block %d busy? retrying on another\n", base);
		th_offset_base(37 + (int)(getpid() % 50)); /* jump away from the busy block */
	}
}

static int reap(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	for (;;) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0)
			return -1;
		if (th_now_ms() > deadline)
			return -1;
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

void th_node_signal(struct th_cluster *c, int i, int sig)
{
	struct th_node *n = &c->nodes[i];
	if (n->pid <= 0)
		return;
	kill(n->pid, sig);
	if (sig == SIGSTOP) { /* return only once it really is stopped */
		int st;
		waitpid(n->pid, &st, WUNTRACED);
	}
	if (sig == SIGKILL || sig == SIGTERM) {
		int st;
		if (reap(n->pid, TH_STOP_MS, &st) != 0) {
			kill(n->pid, SIGKILL);
			waitpid(n->pid, &st, 0);
		}
		n->pid = 0;
	}
}

int th_cluster_stop(struct th_cluster *c)
{
	int bad = 0;
	for (int i = 0; i < c->n; i++) {
		struct th_node *n = &c->nodes[i];
		if (n->pid <= 0)
			continue;
		kill(n->pid, SIGCONT);
		kill(n->pid, SIGTERM);
	}
	for (int i = 0; i < c->n; i++) {
		struct th_node *n = &c->nodes[i];
		if (n->pid <= 0)
			continue;
		int st = 0;
		if (reap(n->pid, TH_STOP_MS, &st) != 0) {
			fprintf(stderr, "node %u did not stop on SIGTERM\n", n->id);
			kill(n->pid, SIGKILL);
			waitpid(n->pid, &st, 0);
			bad++;
		} else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "node %u exited with status %d\n", n->id, st);
			dump_log(n);
			bad++;
		}
		n->pid = 0;
	}
	return bad;
}

int th_cliv(const char *virgo, const char *conf, char *out, size_t cap, int timeout_ms,
	    const char *a0, va_list ap)
{
	const char *av[64];
	int n = 0;
	av[n++] = virgo;
	av[n++] = "-c";
	av[n++] = conf;
	for (const char *a = a0; a && n < 63; a = va_arg(ap, const char *))
		av[n++] = a;
	av[n] = NULL;
	return th_run(av, out, cap, timeout_ms);
}

/* Waits for pid until the deadline (killed then): its exit status, or -1. */
static int child_status(pid_t pid, int64_t deadline)
{
	int st;
	if (reap(pid, (int)(deadline - th_now_ms() > 0 ? deadline - th_now_ms() : 0), &st) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return -1;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int th_run(const char *const argv[], char *out, size_t cap, int timeout_ms)
{
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t used = 0;
	int64_t deadline = th_now_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - th_now_ms();
		if (left <= 0)
			break;
		struct pollfd pf = {.fd = p[0], .events = POLLIN};
		if (poll(&pf, 1, (int)left) <= 0)
			break;
		char tmp[4096];
		ssize_t r = read(p[0], tmp, sizeof tmp);
		if (r <= 0)
			break;
		size_t take = (size_t)r < cap - 1 - used ? (size_t)r : cap - 1 - used;
		memcpy(out + used, tmp, take);
		used += take;
	}
	out[used] = '\0';
	close(p[0]);
	return child_status(pid, deadline);
}

int th_run_tty(const char *const argv[], char *out, size_t cap, int timeout_ms)
{
	int master;
	pid_t pid = forkpty(&master, NULL, NULL, NULL);
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	size_t used = 0;
	int64_t deadline = th_now_ms() + timeout_ms;
	while (th_now_ms() < deadline && used < cap - 1) {
		struct pollfd pf = {.fd = master, .events = POLLIN};
		if (poll(&pf, 1, 200) <= 0)
			continue;
		ssize_t r = read(master, out + used, cap - 1 - used);
		if (r <= 0)
			break; /* EIO once the child closed the tty */
		used += (size_t)r;
	}
	out[used] = '\0';
	close(master);
	return child_status(pid, deadline);
}

int th_connect(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int th_send(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

ssize_t th_recv_until(int fd, char *buf, size_t cap, const char *needle, int timeout_ms)
{
	size_t used = 0;
	int64_t deadline = th_now_ms() + timeout_ms;
	buf[0] = '\0';
	while (used < cap - 1) {
		if (needle && memmem(buf, used, needle, strlen(needle)))
			break;
		int64_t left = deadline - th_now_ms();
		if (left <= 0)
			return -1;
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		if (poll(&pf, 1, (int)left) <= 0)
			return -1;
		ssize_t r = recv(fd, buf + used, cap - 1 - used, 0);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		used += (size_t)r;
		buf[used] = '\0';
	}
	return (ssize_t)used;
}

int th_cluster_client(const struct th_cluster *c)
{
	virgo_fini();
	return virgo_init(c->client_conf);
}

int th_cluster_teardown(struct th_cluster *c)
{
	virgo_fini();
	return th_cluster_stop(c) == 0 ? 0 : -1;
}

int th_connect_rcvbuf(int port, int rcvbuf)
{
	struct sockaddr_in to = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (rcvbuf > 0) /* before connect: the window is agreed at the SYN */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	if (connect(fd, (struct sockaddr *)&to, sizeof to) == 0)
		return fd;
	close(fd);
	return -1;
}

bool th_log_has(const struct th_node *n, const char *needle)
{
	FILE *f = fopen(n->log, "r");
	if (!f)
		return false;
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

void th_paused_lock_child(int wfd, int lock_port, int mp_port, const char *name,
			  const char *vuid_hex, int lock_ms)
{
	char buf[512], line[256];
	int fd = th_connect(lock_port);
	int ll = snprintf(line, sizeof line, "lock %s 300\r\n", name);
	if (fd < 0 || th_send(fd, line, (size_t)ll) != 0 ||
	    th_recv_until(fd, buf, sizeof buf, "\r\n", lock_ms) <= 0)
		_exit(11);
	uint64_t token = 0;
	if (sscanf(buf, "OK %" SCNu64, &token) != 1)
		_exit(12);
	if (write(wfd, &token, sizeof token) != sizeof token)
		_exit(13);
	raise(SIGSTOP); /* the parent continues us once the lock moved on */
	int ok = 0;
	ll = snprintf(line, sizeof line, "renew %s\r\n", name);
	if (th_send(fd, line, (size_t)ll) == 0 &&
	    th_recv_until(fd, buf, sizeof buf, "\r\n", 5000) > 0 && strstr(buf, "ERR ENOLCK"))
		ok++;
	int mp = th_connect(mp_port);
	uint64_t stale = 999999;
	ll = snprintf(line, sizeof line, "set %s 8 fence=%s:%" PRIu64 "\r\n", vuid_hex, name, token);
	if (mp >= 0 && th_send(mp, line, (size_t)ll) == 0 && th_send(mp, &stale, 8) == 0 &&
	    th_send(mp, "\r\n", 2) == 0 && th_recv_until(mp, buf, sizeof buf, "\r\n", 5000) > 0 &&
	    strstr(buf, "ERR ESTALE"))
		ok++;
	_exit(ok == 2 ? 0 : 20 + ok);
}

int th_json_eval(const char *json, const char *prog, char *res, size_t cap)
{
	const char *t = getenv("TMPDIR");
	char path[300];
	snprintf(path, sizeof path, "%s/virgo-json-XXXXXX", t && *t ? t : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		return -2;
	size_t n = strlen(json);
	bool ok = write(fd, json, n) == (ssize_t)n;
	close(fd);
	if (!ok) {
		unlink(path);
		return -2;
	}
	char code[2048];
	snprintf(code, sizeof code, "import json,sys; o=json.load(open('%s')); print(%s)", path,
		 prog);
	const char *av[] = {"/usr/bin/python3", "-c", code, NULL};
	int rc = th_run(av, res, cap, 20000);
	unlink(path);
	return rc;
}
