/*
 * bench_queue.c - durable push load for bench/suite_queue.sh: N producer
 * threads, each on its own connection, push payloads of S bytes one at a
 * time (wait for the acknowledgement, then the next) for T seconds, to a
 * VIRGO queue node ("push") or to Redis ("XADD key * f <payload>",
 * appendfsync always acknowledges after fsync).  Prints
 * "<pushes/s> <p50 us> <p99 us>".  A third mode measures this machine's
 * own limit: one thread appending S-byte records to a file and
 * fdatasync()ing every B records, printing "<records/s>".
 *
 *   bench_queue virgo|redis <port> <producers> <size> <secs>
 *   bench_queue fsync <dir> <batch> <size> <secs>
 *   bench_queue fanout <port> <subscribers> <size> <secs>
 *   bench_queue stat <port>
 * stat: the bench topic's "<records> <syncs>" (STAT lines of the node's
 * stat), so the suite can give the records per sync of a run.
 * fanout: one producer pushes (closed loop) to a topic that every
 * subscriber follows; each payload carries its send time, so each
 * subscriber measures end-to-end latency; prints "<pushes/s> <p50 us>
 * <p99 us>" over all deliveries.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES (1 << 20)

static int mode_redis, port, size;
static double secs;
static char *payload;

struct worker {
	pthread_t th;
	int id;
	uint32_t *lat; /* us */
	size_t n;
	bool failed;
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int dial(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
		return -1;
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static int send_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads until `lines` CRLF-ended lines are in; buf keeps any excess. */
static int read_lines(int fd, char *buf, size_t *have, size_t cap, int lines, char *first,
		      size_t fcap)
{
	int got = 0;
	for (;;) {
		char *p = buf;
		size_t left = *have;
		got = 0;
		char *end = NULL;
		while (got < lines && (end = memchr(p, '\n', left))) {
			if (got == 0) {
				size_t l = (size_t)(end - buf);
				if (l >= fcap)
					l = fcap - 1;
				memcpy(first, buf, l);
				first[l] = '\0';
			}
			got++;
			left -= (size_t)(end + 1 - p);
			p = end + 1;
		}
		if (got == lines) {
			size_t used = (size_t)(p - buf);
			memmove(buf, p, *have - used);
			*have -= used;
			return 0;
		}
		ssize_t r = recv(fd, buf + *have, cap - *have, 0);
		if (r <= 0)
			return -1;
		*have += (size_t)r;
	}
}

/* The push request (XADD for Redis) of `size` payload bytes; malloc'd. */
static char *build_req(size_t *len)
{
	char hdr[256];
	int hl;
	if (mode_redis)
		hl = snprintf(hdr, sizeof hdr,
			      "*5\r\n$4\r\nXADD\r\n$5\r\nbench\r\n$1\r\n*\r\n$1\r\nf\r\n$%d\r\n", size);
	else
		hl = snprintf(hdr, sizeof hdr, "push bench %d\r\n", size);
	char *req = malloc((size_t)hl + (size_t)size + 2);
	memcpy(req, hdr, (size_t)hl);
	memcpy(req + hl, payload, (size_t)size);
	memcpy(req + hl + size, "\r\n", 2);
	*len = (size_t)hl + (size_t)size + 2;
	return req;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	int fd = dial();
	if (fd < 0) {
		w->failed = true;
		return NULL;
	}
	char first[256], buf[4096];
	size_t have = 0, rl;
	char *req = build_req(&rl);
	int64_t end = now_us() + (int64_t)(secs * 1e6);
	while (now_us() < end && w->n < MAX_SAMPLES) {
		int64_t t0 = now_us();
		if (send_all(fd, req, rl) != 0 ||
		    read_lines(fd, buf, &have, sizeof buf, 1, first, sizeof first) != 0) {
			w->failed = true;
			break;
		}
		/* redis: a bulk string "$<n>" then the id line */
		if (mode_redis && first[0] == '$' &&
		    read_lines(fd, buf, &have, sizeof buf, 1, first, sizeof first) != 0) {
			w->failed = true;
			break;
		}
		if ((!mode_redis && strncmp(first, "OK ", 3) != 0) || first[0] == '-') {
			fprintf(stderr, "bench_queue: reply %s\n", first);
			w->failed = true;
			break;
		}
		w->lat[w->n++] = (uint32_t)(now_us() - t0);
	}
	free(req);
	close(fd);
	return NULL;
}

/* ---- the producers on one event loop -------------------------------------
 * The same closed loop (each connection has one push outstanding) driven
 * by one thread with epoll instead of a blocking thread per connection:
 * on a 2-core machine 16 client threads each woken per reply cost the
 * client 16 us of CPU per push (as much as the server) and their
 * wake-ups compete with the server's threads; one loop is woken once for
 * every reply that arrived together.  Used for both servers alike. */
struct lconn {
	int fd;
	char buf[4096];
	size_t have;
	int64_t t0;
};

/* Takes one complete reply off c->buf: 1, or 0 when incomplete, -1 bad. */
static int take_reply(struct lconn *c)
{
	char *nl = memchr(c->buf, '\n', c->have);
	if (!nl)
		return 0;
	size_t used = (size_t)(nl - c->buf) + 1;
	if (mode_redis && c->buf[0] == '$') { /* "$<n>" then the id line */
		char *nl2 = memchr(nl + 1, '\n', c->have - used);
		if (!nl2)
			return 0;
		used = (size_t)(nl2 - c->buf) + 1;
	} else if ((!mode_redis && strncmp(c->buf, "OK ", 3) != 0) || c->buf[0] == '-') {
		fprintf(stderr, "bench_queue: reply %.*s\n", (int)(nl - c->buf), c->buf);
		return -1;
	}
	memmove(c->buf, c->buf + used, c->have - used);
	c->have -= used;
	return 1;
}

static int loop_producers(int np, const char *req, size_t rl, uint32_t *lat, size_t *nlat)
{
	int ep = epoll_create1(0);
	struct lconn *cs = calloc((size_t)np, sizeof *cs);
	if (ep < 0 || !cs)
		return -1;
	int64_t end = now_us() + (int64_t)(secs * 1e6);
	for (int i = 0; i < np; i++) {
		cs[i].fd = dial();
		struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		if (cs[i].fd < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
			return -1;
	}
	for (int i = 0; i < np; i++) {
		cs[i].t0 = now_us();
		if (send_all(cs[i].fd, req, rl) != 0)
			return -1;
	}
	size_t n = 0;
	int open = np;
	struct epoll_event evs[256];
	while (open > 0) {
		int k = epoll_wait(ep, evs, 256, 5000);
		if (k <= 0)
			return -1;
		int64_t now = now_us();
		for (int e = 0; e < k; e++) {
			struct lconn *c = &cs[evs[e].data.u32];
			ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
			if (r <= 0)
				return -1;
			c->have += (size_t)r;
			int got = take_reply(c);
			if (got < 0)
				return -1;
			if (got == 0)
				continue;
			if (n < MAX_SAMPLES)
				lat[n++] = (uint32_t)(now - c->t0);
			if (now >= end || n >= MAX_SAMPLES) {
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				close(c->fd);
				open--;
				continue;
			}
			c->t0 = now_us();
			if (send_all(c->fd, req, rl) != 0)
				return -1;
		}
	}
	close(ep);
	free(cs);
	*nlat = n;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int fsync_limit(const char *dir, int batch)
{
	char path[512];
	snprintf(path, sizeof path, "%s/fsync-limit.dat", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (fd < 0) {
		perror(path);
		return 1;
	}
	char *rec = malloc((size_t)size * (size_t)batch);
	memset(rec, 'f', (size_t)size * (size_t)batch);
	uint64_t n = 0;
	int64_t t0 = now_us(), end = t0 + (int64_t)(secs * 1e6);
	while (now_us() < end) {
		if (write(fd, rec, (size_t)size * (size_t)batch) < 0 || fdatasync(fd) != 0) {
			perror("write/fdatasync");
			return 1;
		}
		n += (uint64_t)batch;
	}
	double el = (double)(now_us() - t0) / 1e6;
	printf("%.0f\n", (double)n / el);
	close(fd);
	unlink(path);
	free(rec);
	return 0;
}

struct fsub {
	pthread_t th;
	int fd;
	uint32_t *lat;
	size_t n;
	volatile int stop;
};

static void *fsub_main(void *arg)
{
	struct fsub *f = arg;
	static __thread char buf[1 << 16];
	size_t have = 0;
	while (!f->stop && f->n < MAX_SAMPLES) {
		/* MSG line, then size bytes + CRLF */
		char *nl;
		while (!(nl = memchr(buf, '\n', have)) ||
		       have < (size_t)(nl - buf) + 1 + (size_t)size + 2) {
			ssize_t r = recv(f->fd, buf + have, sizeof buf - have, 0);
			if (r <= 0)
				return NULL;
			have += (size_t)r;
		}
		size_t hl = (size_t)(nl - buf) + 1;
		if (strncmp(buf, "MSG ", 4) == 0) {
			long long t;
			if (sscanf(buf + hl, "%lld", &t) == 1)
				f->lat[f->n++] = (uint32_t)(now_us() - t);
		}
		size_t used = hl + (size_t)size + 2;
		memmove(buf, buf + used, have - used);
		have -= used;
	}
	return NULL;
}

static int fanout(int nsub)
{
	struct fsub *fs = calloc((size_t)nsub, sizeof *fs);
	char line[256];
	for (int i = 0; i < nsub; i++) {
		fs[i].fd = dial();
		fs[i].lat = malloc(MAX_SAMPLES * sizeof(uint32_t));
		if (fs[i].fd < 0 || send_all(fs[i].fd, "sub fan end\r\n", 13) != 0)
			return 1;
		/* the OK line */
		size_t k = 0;
		while (k < sizeof line - 1 && recv(fs[i].fd, line + k, 1, 0) == 1 && line[k] != '\n')
			k++;
		pthread_create(&fs[i].th, NULL, fsub_main, &fs[i]);
	}
	int fd = dial();
	if (fd < 0)
		return 1;
	char hdr[64], first[256], buf[4096];
	size_t have = 0;
	int hl = snprintf(hdr, sizeof hdr, "push fan %d\r\n", size);
	uint64_t n = 0;
	int64_t t0 = now_us(), end = t0 + (int64_t)(secs * 1e6);
	while (now_us() < end) {
		memset(payload, ' ', (size_t)size);
		char ts[32];
		int tl = snprintf(ts, sizeof ts, "%lld", (long long)now_us());
		memcpy(payload, ts, (size_t)(tl < size ? tl : size));
		if (send_all(fd, hdr, (size_t)hl) || send_all(fd, payload, (size_t)size) ||
		    send_all(fd, "\r\n", 2) || read_lines(fd, buf, &have, sizeof buf, 1, first, sizeof first))
			return 1;
		n++;
	}
	double el = (double)(now_us() - t0) / 1e6;
	/* let the last deliveries arrive */
	usleep(200000);
	size_t total = 0;
	for (int i = 0; i < nsub; i++) {
		fs[i].stop = 1;
		shutdown(fs[i].fd, SHUT_RDWR);
		pthread_join(fs[i].th, NULL);
		total += fs[i].n;
	}
	uint32_t *all = malloc((total ? total : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < nsub; i++) {
		memcpy(all + k, fs[i].lat, fs[i].n * sizeof *all);
		k += fs[i].n;
	}
	qsort(all, total, sizeof *all, cmp_u32);
	printf("%.0f %u %u\n", (double)n / el, total ? all[total / 2] : 0,
	       total ? all[(size_t)((double)total * 0.99)] : 0);
	return 0;
}

/* The bench topic's records and syncs so far: "<records> <syncs>". */
static int topic_stat(void)
{
	int fd = dial();
	if (fd < 0 || send_all(fd, "stat bench\r\n", 12) != 0)
		return 1;
	char buf[8192];
	size_t have = 0;
	while (have < sizeof buf - 1) {
		buf[have] = '\0';
		if (strstr(buf, "END\r\n") || strstr(buf, "ERR"))
			break;
		ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
		if (r <= 0)
			break;
		have += (size_t)r;
	}
	buf[have] = '\0';
	close(fd);
	unsigned long long rec = 0, syncs = 0;
	const char *p = strstr(buf, "STAT records ");
	if (p)
		rec = strtoull(p + 13, NULL, 10);
	p = strstr(buf, "STAT syncs ");
	if (p)
		syncs = strtoull(p + 11, NULL, 10);
	printf("%llu %llu\n", rec, syncs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "stat") == 0) {
		port = atoi(argv[2]);
		return topic_stat();
	}
	if (argc != 6) {
		fprintf(stderr, "usage: bench_queue virgo|redis <port> <producers> <size> <secs>\n"
				"       bench_queue fsync <dir> <batch> <size> <secs>\n");
		return 2;
	}
	size = atoi(argv[4]);
	secs = atof(argv[5]);
	if (strcmp(argv[1], "fsync") == 0)
		return fsync_limit(argv[2], atoi(argv[3]));
	mode_redis = strcmp(argv[1], "redis") == 0;
	port = atoi(argv[2]);
	int np = atoi(argv[3]);
	if (strcmp(argv[1], "fanout") == 0) {
		if (size < 24 || np < 1 || np > 64)
			return 2;
		payload = malloc((size_t)size);
		return fanout(np);
	}
	if (np < 1 || np > 256 || size < 1 || secs <= 0)
		return 2;
	payload = malloc((size_t)size);
	for (int i = 0; i < size; i++)
		payload[i] = (char)('a' + i % 26);
	const char *model = getenv("BENCH_QUEUE_CLIENT");
	if (np > 1 && (!model || strcmp(model, "threads") != 0)) {
		size_t rl, n = 0;
		char *req = build_req(&rl);
		uint32_t *lat = malloc(MAX_SAMPLES * sizeof *lat);
		int64_t t0 = now_us();
		if (loop_producers(np, req, rl, lat, &n) != 0) {
			fprintf(stderr, "bench_queue: producer loop failed\n");
			return 1;
		}
		double el = (double)(now_us() - t0) / 1e6;
		qsort(lat, n, sizeof *lat, cmp_u32);
		printf("%.0f %u %u\n", (double)n / el, n ? lat[n / 2] : 0,
		       n ? lat[(size_t)((double)n * 0.99)] : 0);
		return 0;
	}
	struct worker *ws = calloc((size_t)np, sizeof *ws);
	for (int i = 0; i < np; i++) {
		ws[i].id = i;
		ws[i].lat = malloc(MAX_SAMPLES * sizeof(uint32_t));
	}
	int64_t t0 = now_us();
	for (int i = 0; i < np; i++)
		pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
	size_t total = 0;
	for (int i = 0; i < np; i++) {
		pthread_join(ws[i].th, NULL);
		if (ws[i].failed)
			return 1;
		total += ws[i].n;
	}
	double el = (double)(now_us() - t0) / 1e6;
	uint32_t *all = malloc((total ? total : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < np; i++) {
		memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
		k += ws[i].n;
	}
	qsort(all, total, sizeof *all, cmp_u32);
	printf("%.0f %u %u\n", (double)total / el, total ? all[total / 2] : 0,
	       total ? all[(size_t)((double)total * 0.99)] : 0);
	return 0;
}
