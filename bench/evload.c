/*
 * evload.c - pipelined ingest load for bench/suite_eventnet.sh: C client
 * connections (one thread each), every one sending a window of W requests
 * in one write and reading the W replies, for D seconds.  The same small
 * payload goes to the EventNet port (`log <id> conv=<payload>`, a new
 * event each) or to the memcached port (`set <key> 0 0 <n>` + payload),
 * so the two are compared byte for byte.  Prints one line:
 * ops_per_s=N errors=N.
 *
 *   evload -p PORT -m eventnet|memcache [-c 1] [-w 64] [-d 2] [-s 32] [-x run1]
 *   evload -p PORT -m chain -n 1000000 [-x c]   a chain c0 -> c1 -> ... (for why)
 *   evload -p PORT -m why -i <id> [-r 5]         times `why <id> 0` (count only)
 *                                                 and `why <id> 1000`: why_ms=... list_ms=...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port = 0, clients = 1, window = 64, secs = 2, size = 32, reps = 5;
static long chain_n = 1000000;
static const char *mode = "eventnet", *prefix = "r", *why_id = NULL;
static _Atomic int stop;
static char *payload;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("evload: connect");
		exit(1);
	}
	return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

struct rd {
	char buf[1 << 16];
	size_t off, len;
};

/* Reads n reply lines; counts the ones that are errors. */
static int read_lines(int fd, struct rd *r, long n, long *errors)
{
	while (n > 0) {
		char *nl;
		while (n > 0 && (nl = memchr(r->buf + r->off, '\n', r->len - r->off))) {
			char *l = r->buf + r->off;
			if (strncmp(l, "ERR", 3) == 0 || strncmp(l, "SERVER_ERROR", 12) == 0 ||
			    strncmp(l, "CLIENT_ERROR", 12) == 0)
				(*errors)++;
			r->off = (size_t)(nl - r->buf) + 1;
			n--;
		}
		if (n == 0)
			break;
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
		ssize_t g = read(fd, r->buf + r->len, sizeof r->buf - r->len);
		if (g <= 0)
			return -1;
		r->len += (size_t)g;
	}
	return 0;
}

struct client {
	pthread_t th;
	int id;
	long ops, errors;
};

static void *run_client(void *arg)
{
	struct client *c = arg;
	int fd = dial();
	struct rd *r = calloc(1, sizeof *r);
	size_t cap = (size_t)window * ((size_t)size + 96);
	char *req = malloc(cap);
	long seq = 0;
	while (!stop) {
		size_t n = 0;
		for (int i = 0; i < window; i++, seq++) {
			if (mode[0] == 'e')
				n += (size_t)sprintf(req + n, "log %s-%d-%ld conv=%s\n", prefix, c->id, seq,
						     payload);
			else
				n += (size_t)sprintf(req + n, "set %s-%d-%ld 0 0 %d\r\n%s\r\n", prefix,
						     c->id, seq, size, payload);
		}
		if (send_all(fd, req, n) != 0 || read_lines(fd, r, window, &c->errors) != 0) {
			fprintf(stderr, "evload: connection failed\n");
			break;
		}
		c->ops += window;
	}
	close(fd);
	free(r);
	free(req);
	return NULL;
}

static void load(void)
{
	struct client *cs = calloc((size_t)clients, sizeof *cs);
	for (int i = 0; i < clients; i++) {
		cs[i].id = i;
		pthread_create(&cs[i].th, NULL, run_client, &cs[i]);
	}
	double t0 = now_s();
	struct timespec d = {secs, 0};
	nanosleep(&d, NULL);
	stop = 1;
	long ops = 0, errors = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(cs[i].th, NULL);
		ops += cs[i].ops;
		errors += cs[i].errors;
	}
	double t = now_s() - t0;
	printf("ops_per_s=%.0f errors=%ld\n", (double)ops / t, errors);
	free(cs);
}

static void chain(void)
{
	int fd = dial();
	struct rd *r = calloc(1, sizeof *r);
	char *req = malloc(1 << 20);
	long errors = 0;
	double t0 = now_s();
	for (long i = 0; i < chain_n;) {
		size_t n = 0;
		long k = 0;
		for (; k < 2000 && i < chain_n; k++, i++) {
			if (i == 0)
				n += (size_t)sprintf(req + n, "log %s0\n", prefix);
			else
				n += (size_t)sprintf(req + n, "log %s%ld after=%s%ld\n", prefix, i, prefix,
						     i - 1);
		}
		if (send_all(fd, req, n) != 0 || read_lines(fd, r, k, &errors) != 0) {
			fprintf(stderr, "evload: chain: connection failed\n");
			exit(1);
		}
	}
	printf("events=%ld secs=%.2f errors=%ld\n", chain_n, now_s() - t0, errors);
	close(fd);
	free(r);
	free(req);
}

/* One request; reads to END; returns seconds. */
static double time_why(int fd, struct rd *r, const char *id, int max, long *total)
{
	char req[256];
	int n = snprintf(req, sizeof req, "why %s %d\n", id, max);
	double t0 = now_s();
	if (send_all(fd, req, (size_t)n) != 0)
		exit(1);
	for (;;) {
		long e = 0;
		if (read_lines(fd, r, 1, &e) != 0)
			exit(1);
		/* the last line read ends at r->off */
		char *end = r->buf + r->off - 1, *l = end;
		while (l > r->buf && l[-1] != '\n')
			l--;
		if (strncmp(l, "ANCESTORS ", 10) == 0)
			*total = atol(l + 10);
		if (strncmp(l, "END", 3) == 0 || strncmp(l, "ERR", 3) == 0)
			break;
	}
	return now_s() - t0;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void why(void)
{
	int fd = dial();
	struct rd *r = calloc(1, sizeof *r);
	double *t = calloc((size_t)reps, sizeof *t), *u = calloc((size_t)reps, sizeof *u);
	long total = 0;
	for (int i = 0; i < reps; i++) {
		t[i] = time_why(fd, r, why_id, 0, &total);
		u[i] = time_why(fd, r, why_id, 1000, &total);
	}
	qsort(t, (size_t)reps, sizeof *t, cmpd);
	qsort(u, (size_t)reps, sizeof *u, cmpd);
	printf("ancestors=%ld why_ms=%.1f list_ms=%.1f\n", total, t[reps / 2] * 1e3,
	       u[reps / 2] * 1e3);
	close(fd);
	free(r);
	free(t);
	free(u);
}

int main(int argc, char **argv)
{
	int o;
	while ((o = getopt(argc, argv, "p:m:c:w:d:s:x:n:i:r:")) != -1) {
		switch (o) {
		case 'p': port = atoi(optarg); break;
		case 'm': mode = optarg; break;
		case 'c': clients = atoi(optarg); break;
		case 'w': window = atoi(optarg); break;
		case 'd': secs = atoi(optarg); break;
		case 's': size = atoi(optarg); break;
		case 'x': prefix = optarg; break;
		case 'n': chain_n = atol(optarg); break;
		case 'i': why_id = optarg; break;
		case 'r': reps = atoi(optarg); break;
		default: fprintf(stderr, "usage: see bench/evload.c\n"); return 2;
		}
	}
	if (!port || clients < 1 || window < 1 || size < 1 || size > 4000 || reps < 1) {
		fprintf(stderr, "evload: bad arguments\n");
		return 2;
	}
	payload = malloc((size_t)size + 1);
	for (int i = 0; i < size; i++)
		payload[i] = (char)('a' + i % 26);
	payload[size] = '\0';
	if (strcmp(mode, "chain") == 0)
		chain();
	else if (strcmp(mode, "why") == 0 && why_id)
		why();
	else if (strcmp(mode, "eventnet") == 0 || strcmp(mode, "memcache") == 0)
		load();
	else
		return 2;
	free(payload);
	return 0;
}
