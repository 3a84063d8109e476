/*
 * hostile.c - a hostile-clients attack mix and a well-behaved client's
 * latency under it, against a memcached-protocol port
 * (bench/suite_hostile.sh runs it against memcached and virgod).
 *
 * One process, two threads.  The attacker thread (one epoll loop) holds
 * N idle connections, M slowloris clients (a never-finished "get " line,
 * one more key byte every few seconds each), K garbage pourers (random
 * bytes written as fast as the server reads them, its error replies
 * read and dropped) and a connect/close flood at a bounded rate (closed
 * with RST so no TIME_WAIT piles up).  A connection the server closes is
 * reopened a second later.  The good-client thread sends one request at
 * a time (alternating set and get of 32-byte values over 100 keys),
 * paced to at most one per -i microseconds, and times each.  Prints one
 * line: p50_us p99_us count errors, the server's VmRSS before the attack,
 * at its peak and at the end (-P pid), its CPU time during the window,
 * and how many attack connections the server closed.
 *
 *   hostile -p PORT [-h 127.0.0.1] [-P server-pid] [-d secs] [-N idle]
 *           [-M slowloris] [-K pourers] [-F flood conns/s] [-i interval_us]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum kind { K_IDLE, K_SLOW, K_POUR };

struct aconn {
	int fd; /* -1: waiting to reopen at `due` */
	enum kind kind;
	uint64_t due; /* slowloris: next byte; closed: reopen time */
	int sent; /* slowloris: key bytes sent */
	size_t off; /* pourer: offset in the garbage buffer */
};

struct opts {
	const char *host;
	int port, pid, secs, idle, slow, pour, flood, interval_us;
};

static struct opts o = {"127.0.0.1", 0, 0, 8, 2000, 200, 4, 500, 500};
static struct sockaddr_in addr;
static _Atomic int stop;
static uint64_t closed_by_server, flood_done, flood_failed, poured;
static char garbage[1 << 16];

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kb(int pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* utime + stime of the whole process, in clock ticks */
static long cpu_ticks(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	unsigned long ut, st;
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (long)(ut + st);
}

/* A nonblocking connect; -1 on immediate failure. */
static int open_conn(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void close_rst(int fd)
{
	struct linger l = {1, 0};
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	close(fd);
}

static void arm(int ep, struct aconn *a)
{
	struct epoll_event ev = {.events = EPOLLIN | (a->kind == K_POUR ? EPOLLOUT : 0),
				 .data.ptr = a};
	epoll_ctl(ep, EPOLL_CTL_ADD, a->fd, &ev);
}

static void reopen(int ep, struct aconn *a, uint64_t now)
{
	a->fd = open_conn();
	if (a->fd < 0) {
		a->due = now + 1000000000u;
		return;
	}
	a->sent = 0;
	a->due = now + 1000000000u + (uint64_t)(rand() % 3000) * 1000000u;
	arm(ep, a);
}

static void lost(int ep, struct aconn *a, uint64_t now)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, a->fd, NULL);
	close_rst(a->fd);
	a->fd = -1;
	a->due = now + 1000000000u;
	closed_by_server++;
}

/* The slowloris's next byte: "get " then key letters, never a newline
 * (up to 200 bytes, then it starts a new key with a space). */
static void slow_step(int ep, struct aconn *a, uint64_t now)
{
	char b = a->sent < 4 ? "get "[a->sent] : (a->sent % 200 == 0 ? ' ' : 'a' + a->sent % 26);
	if (send(a->fd, &b, 1, MSG_NOSIGNAL) != 1 && errno != EAGAIN) {
		lost(ep, a, now);
		return;
	}
	a->sent++;
	a->due = now + 2000000000u + (uint64_t)(rand() % 2000) * 1000000u;
}

static void pour(int ep, struct aconn *a, uint64_t now)
{
	for (int i = 0; i < 4; i++) {
		size_t n = sizeof garbage - a->off;
		ssize_t w = send(a->fd, garbage + a->off, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno != EAGAIN)
				lost(ep, a, now);
			return;
		}
		poured += (uint64_t)w;
		a->off = (a->off + (size_t)w) % sizeof garbage;
	}
}

static void *attacker(void *arg)
{
	(void)arg;
	int total = o.idle + o.slow + o.pour;
	struct aconn *conns = calloc((size_t)total, sizeof *conns);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (!conns || ep < 0) {
		perror("hostile: attacker");
		exit(1);
	}
	for (int i = 0; i < 1 << 16; i++)
		garbage[i] = (char)rand();
	uint64_t t = now_ns();
	for (int i = 0; i < total; i++) {
		struct aconn *a = &conns[i];
		a->kind = i < o.idle ? K_IDLE : i < o.idle + o.slow ? K_SLOW : K_POUR;
		reopen(ep, a, t);
	}
	uint64_t flood_next = t, flood_step = o.flood > 0 ? 1000000000u / (uint64_t)o.flood : 0;
	struct epoll_event evs[256];
	char sink[65536];
	while (!atomic_load(&stop)) {
		int n = epoll_wait(ep, evs, 256, 5);
		uint64_t now = now_ns();
		for (int i = 0; i < n; i++) {
			struct aconn *a = evs[i].data.ptr;
			if (a->fd < 0)
				continue;
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
				ssize_t r = recv(a->fd, sink, sizeof sink, 0);
				if (r == 0 || (r < 0 && errno != EAGAIN)) {
					lost(ep, a, now);
					continue;
				}
			}
			if (a->kind == K_POUR && (evs[i].events & EPOLLOUT))
				pour(ep, a, now);
		}
		/* timers: slowloris bytes, reopenings (a linear pass every
		 * few ms over a few thousand entries is cheap) */
		static uint64_t last_scan;
		if (now - last_scan > 50000000u) {
			last_scan = now;
			for (int i = 0; i < total; i++) {
				struct aconn *a = &conns[i];
				if (a->fd < 0 && now >= a->due)
					reopen(ep, a, now);
				else if (a->fd >= 0 && a->kind == K_SLOW && now >= a->due)
					slow_step(ep, a, now);
			}
		}
		/* the flood: connect, close with RST at once (loopback
		 * connects complete in the SYN's round trip; whether the
		 * server got to accept it or not, it had to handle it) */
		while (flood_step && flood_next <= now) {
			flood_next += flood_step;
			if (flood_next + 100000000u < now)
				flood_next = now; /* fell behind: don't burst */
			int fd = open_conn();
			if (fd < 0) {
				flood_failed++;
				continue;
			}
			close_rst(fd);
			flood_done++;
		}
	}
	for (int i = 0; i < total; i++)
		if (conns[i].fd >= 0)
			close_rst(conns[i].fd);
	free(conns);
	close(ep);
	return NULL;
}

/* blocking request-response on one connection */
static int good_fd = -1;

static int good_connect(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct timeval tv = {2, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends req, reads until the reply ends with `end`; 0 or -1. */
static int good_rr(const char *req, size_t len, const char *end)
{
	if (good_fd < 0 && (good_fd = good_connect()) < 0)
		return -1;
	if (send(good_fd, req, len, MSG_NOSIGNAL) != (ssize_t)len)
		goto fail;
	char buf[512];
	size_t have = 0, el = strlen(end);
	for (;;) {
		ssize_t r = recv(good_fd, buf + have, sizeof buf - 1 - have, 0);
		if (r <= 0)
			goto fail;
		have += (size_t)r;
		buf[have] = 0;
		if (have >= el && memcmp(buf + have - el, end, el) == 0)
			return 0;
		if (strstr(buf, "ERROR") && have >= 2 && memcmp(buf + have - 2, "\r\n", 2) == 0)
			goto fail;
		if (have == sizeof buf - 1)
			goto fail;
	}
fail:
	close(good_fd);
	good_fd = -1;
	return -1;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "h:p:P:d:N:M:K:F:i:")) != -1) {
		switch (opt) {
		case 'h': o.host = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'P': o.pid = atoi(optarg); break;
		case 'd': o.secs = atoi(optarg); break;
		case 'N': o.idle = atoi(optarg); break;
		case 'M': o.slow = atoi(optarg); break;
		case 'K': o.pour = atoi(optarg); break;
		case 'F': o.flood = atoi(optarg); break;
		case 'i': o.interval_us = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: hostile -p PORT [-h HOST] [-P PID] [-d SECS] [-N idle] "
					"[-M slowloris] [-K pourers] [-F flood/s] [-i interval_us]\n");
			return 2;
		}
	}
	if (o.port <= 0 || o.secs <= 0) {
		fprintf(stderr, "hostile: -p PORT is required\n");
		return 2;
	}
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)o.port);
	if (inet_pton(AF_INET, o.host, &addr.sin_addr) != 1) {
		fprintf(stderr, "hostile: bad host %s\n", o.host);
		return 2;
	}
	srand(12345);
	/* the good client's keys exist before the attack */
	char req[256];
	const char *val = "0123456789abcdef0123456789abcdef";
	for (int k = 0; k < 100; k++) {
		int n = snprintf(req, sizeof req, "set good:%d 0 0 32\r\n%s\r\n", k, val);
		if (good_rr(req, (size_t)n, "STORED\r\n") != 0) {
			fprintf(stderr, "hostile: prefill failed\n");
			return 1;
		}
	}
	long rss0 = o.pid ? rss_kb(o.pid) : -1;
	pthread_t th;
	pthread_create(&th, NULL, attacker, NULL);
	/* let the idle and slowloris connections arrive */
	struct timespec settle = {1, 0};
	nanosleep(&settle, NULL);
	long cpu0 = o.pid ? cpu_ticks(o.pid) : -1, rss_peak = rss0;
	size_t cap = (size_t)o.secs * 1000000u / (size_t)(o.interval_us > 0 ? o.interval_us : 1) + 16;
	uint64_t *lat = malloc(cap * sizeof *lat);
	size_t nlat = 0;
	uint64_t errors = 0, t0 = now_ns(), end = t0 + (uint64_t)o.secs * 1000000000u;
	uint64_t next = t0, next_rss = t0;
	for (uint64_t i = 0; nlat < cap; i++) {
		uint64_t t = now_ns();
		if (t >= end)
			break;
		if (o.pid && t >= next_rss) {
			long r = rss_kb(o.pid);
			if (r > rss_peak)
				rss_peak = r;
			next_rss = t + 200000000u;
		}
		if (t < next) {
			uint64_t d = next - t;
			struct timespec ts = {(time_t)(d / 1000000000u), (long)(d % 1000000000u)};
			nanosleep(&ts, NULL);
		}
		next += (uint64_t)o.interval_us * 1000u;
		int k = (int)(i / 2 % 100), n;
		const char *want;
		if (i % 2) {
			n = snprintf(req, sizeof req, "get good:%d\r\n", k);
			want = "END\r\n";
		} else {
			n = snprintf(req, sizeof req, "set good:%d 0 0 32\r\n%s\r\n", k, val);
			want = "STORED\r\n";
		}
		uint64_t s = now_ns();
		if (good_rr(req, (size_t)n, want) != 0) {
			errors++;
			continue;
		}
		lat[nlat++] = now_ns() - s;
	}
	long cpu1 = o.pid ? cpu_ticks(o.pid) : -1;
	long rss1 = o.pid ? rss_kb(o.pid) : -1;
	if (rss1 > rss_peak)
		rss_peak = rss1;
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	qsort(lat, nlat, sizeof *lat, cmp_u64);
	double p50 = nlat ? lat[nlat / 2] / 1000.0 : 0, p99 = nlat ? lat[nlat * 99 / 100] / 1000.0 : 0;
	double cpu_ms = cpu0 >= 0 && cpu1 >= 0 ? (cpu1 - cpu0) * 1000.0 / (double)sysconf(_SC_CLK_TCK) : -1;
	printf("p50_us=%.1f p99_us=%.1f count=%zu errors=%llu rss_before_kb=%ld rss_peak_kb=%ld "
	       "rss_after_kb=%ld server_cpu_ms=%.0f attack_closed=%llu flood=%llu flood_failed=%llu "
	       "poured_mb=%.1f\n",
	       p50, p99, nlat, (unsigned long long)errors, rss0, rss_peak, rss1, cpu_ms,
	       (unsigned long long)closed_by_server, (unsigned long long)flood_done,
	       (unsigned long long)flood_failed, poured / 1048576.0);
	free(lat);
	return 0;
}
