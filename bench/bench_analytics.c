/*
 * bench_analytics.c - change-to-watcher latency: one publisher, W
 * watchers, M messages one after the other; for each message and each
 * watcher, the time from just before the publisher sends it to the
 * moment that watcher's read returns it.  Prints "p50_us p99_us max_us
 * samples".  Two targets speaking their own protocol:
 *   virgo <port>  the analytics port: watchers send `watch`, the
 *                 publisher `set bench=<token>` (and reads its OK);
 *   redis <port>  redis-server pub/sub: watchers SUBSCRIBE bench, the
 *                 publisher PUBLISH bench <token>.
 * usage: bench_analytics virgo|redis <port> <watchers> <messages>
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct sub {
	int fd;
	char tail[32]; /* the end of what was read, for tokens split across reads */
	size_t tl;
	bool seen;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void send_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		if (w <= 0) {
			perror("send");
			exit(1);
		}
		s += w;
		n -= (size_t)w;
	}
}

/* Reads from fd until needle was seen (blocking). */
static void read_until(int fd, const char *needle)
{
	char buf[4096];
	size_t used = 0;
	for (;;) {
		ssize_t r = recv(fd, buf + used, sizeof buf - 1 - used, 0);
		if (r <= 0) {
			fprintf(stderr, "bench_analytics: connection closed while waiting for %s\n",
				needle);
			exit(1);
		}
		used += (size_t)r;
		buf[used] = '\0';
		if (strstr(buf, needle))
			return;
		if (used > 2048) {
			memmove(buf, buf + used - 64, 64);
			used = 64;
		}
	}
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: bench_analytics virgo|redis <port> <watchers> <messages>\n");
		return 2;
	}
	bool redis = strcmp(argv[1], "redis") == 0;
	int port = atoi(argv[2]), W = atoi(argv[3]), M = atoi(argv[4]);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < (rlim_t)W + 64) {
		rl.rlim_cur = rl.rlim_max < (rlim_t)W + 64 ? rl.rlim_max : (rlim_t)W + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct sub *s = calloc((size_t)W, sizeof *s);
	int64_t *lat = malloc(sizeof *lat * (size_t)W * (size_t)M);
	int ep = epoll_create1(0);
	for (int i = 0; i < W; i++) {
		s[i].fd = dial(port);
		if (redis)
			send_all(s[i].fd, "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nbench\r\n", 30);
		else
			send_all(s[i].fd, "watch\r\n", 7);
	}
	for (int i = 0; i < W; i++) {
		read_until(s[i].fd, redis ? ":1\r\n" : "WATCHING");
		struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(ep, EPOLL_CTL_ADD, s[i].fd, &e);
	}
	int pub = dial(port);
	size_t n = 0;
	char buf[65536];
	struct epoll_event ev[256];
	for (int m = 0; m < M; m++) {
		char tok[16], req[128];
		snprintf(tok, sizeof tok, "tk%07d", m);
		int rl2 = redis ? snprintf(req, sizeof req,
					   "*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$%zu\r\n%s\r\n",
					   strlen(tok), tok)
				: snprintf(req, sizeof req, "set bench=%s\r\n", tok);
		for (int i = 0; i < W; i++)
			s[i].seen = false;
		int left = W;
		int64_t t0 = now_us();
		send_all(pub, req, (size_t)rl2);
		while (left > 0) {
			int k = epoll_wait(ep, ev, 256, 5000);
			if (k <= 0) {
				fprintf(stderr, "bench_analytics: message %d not delivered to %d watchers "
						"within 5 s\n",
					m, left);
				return 1;
			}
			int64_t t = now_us();
			for (int j = 0; j < k; j++) {
				struct sub *x = &s[ev[j].data.u32];
				ssize_t r = recv(x->fd, buf + sizeof x->tail,
						 sizeof buf - sizeof x->tail - 1, 0);
				if (r <= 0) {
					fprintf(stderr, "bench_analytics: a watcher was closed\n");
					return 1;
				}
				/* search tail + new bytes */
				char *start = buf + sizeof x->tail - x->tl;
				memcpy(start, x->tail, x->tl);
				size_t tot = x->tl + (size_t)r;
				start[tot] = '\0';
				if (!x->seen && memmem(start, tot, tok, strlen(tok))) {
					x->seen = true;
					lat[n++] = t - t0;
					left--;
				}
				size_t keep = tot < sizeof x->tail ? tot : sizeof x->tail;
				memcpy(x->tail, start + tot - keep, keep);
				x->tl = keep;
			}
		}
		/* the publisher's own reply */
		read_until(pub, redis ? "\r\n" : "OK");
	}
	qsort(lat, n, sizeof *lat, cmp);
	printf("%lld %lld %lld %zu\n", (long long)lat[n / 2], (long long)lat[(n * 99) / 100],
	       (long long)lat[n - 1], n);
	return 0;
}
