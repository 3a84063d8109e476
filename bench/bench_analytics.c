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
 * `both` sets up both and sends each message to one then the other
 * (alternating which goes first), so the two are measured under the
 * same load at the same moments (a shared machine's load swings within
 * a second); it prints virgo's four numbers, then redis'.  With
 * BENCH_AN_PIDS="<virgod pid> <redis pid>" in the environment it then
 * prints each server's CPU time per message in µs (all its threads'
 * run time from /proc/<pid>/task/<tid>/schedstat over the message loop,
 * connection set-up excluded): virgod's, then redis'.
 * usage: bench_analytics virgo|redis <port> <watchers> <messages>
 *        bench_analytics both <virgo-port> <redis-port> <watchers> <messages>
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
#include <dirent.h>
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

/* Nanoseconds all threads of pid have run so far (0 when unknown). */
static uint64_t proc_run_ns(long pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%ld/task", pid);
	DIR *d = opendir(path);
	if (!d)
		return 0;
	uint64_t sum = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char p[320];
		snprintf(p, sizeof p, "/proc/%ld/task/%s/schedstat", pid, e->d_name);
		FILE *f = fopen(p, "r");
		unsigned long long ns = 0;
		if (f) {
			if (fscanf(f, "%llu", &ns) != 1)
				ns = 0;
			fclose(f);
		}
		sum += ns;
	}
	closedir(d);
	return sum;
}

static int cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* One server under test: its watchers, their epoll set, its publisher
 * and the latencies measured. */
struct target {
	bool redis;
	int W, ep, pub;
	struct sub *s;
	int64_t *lat;
	size_t n;
};

static void target_open(struct target *t, bool redis, int port, int W, int M)
{
	t->redis = redis;
	t->W = W;
	t->n = 0;
	t->s = calloc((size_t)W, sizeof *t->s);
	t->lat = malloc(sizeof *t->lat * (size_t)W * (size_t)M);
	t->ep = epoll_create1(0);
	for (int i = 0; i < W; i++) {
		t->s[i].fd = dial(port);
		if (redis)
			send_all(t->s[i].fd, "*2\r\n$9\r\nSUBSCRIBE\r\n$5\r\nbench\r\n", 30);
		else
			send_all(t->s[i].fd, "watch\r\n", 7);
	}
	for (int i = 0; i < W; i++) {
		read_until(t->s[i].fd, redis ? ":1\r\n" : "WATCHING");
		struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
		epoll_ctl(t->ep, EPOLL_CTL_ADD, t->s[i].fd, &e);
	}
	t->pub = dial(port);
}

/* Publishes message m and waits until every watcher has it; false when
 * one did not get it within 5 s or was closed. */
static bool target_message(struct target *t, int m)
{
	static char buf[65536];
	struct epoll_event ev[256];
	/* unique per run too: setting the value a variable already has is
	 * no change, and a second run against the same server would wait
	 * for a message no watcher is sent */
	char tok[24], req[128];
	snprintf(tok, sizeof tok, "tk%05d%07d", (int)(getpid() % 100000), m);
	int rl = t->redis ? snprintf(req, sizeof req,
				     "*3\r\n$7\r\nPUBLISH\r\n$5\r\nbench\r\n$%zu\r\n%s\r\n",
				     strlen(tok), tok)
			  : snprintf(req, sizeof req, "set bench=%s\r\n", tok);
	for (int i = 0; i < t->W; i++)
		t->s[i].seen = false;
	int left = t->W;
	int64_t t0 = now_us();
	send_all(t->pub, req, (size_t)rl);
	while (left > 0) {
		int k = epoll_wait(t->ep, ev, 256, 5000);
		if (k <= 0) {
			fprintf(stderr, "bench_analytics: message %d not delivered to %d watchers "
					"within 5 s\n",
				m, left);
			return false;
		}
		int64_t now = now_us();
		for (int j = 0; j < k; j++) {
			struct sub *x = &t->s[ev[j].data.u32];
			ssize_t r = recv(x->fd, buf + sizeof x->tail, sizeof buf - sizeof x->tail - 1,
					 0);
			if (r <= 0) {
				fprintf(stderr, "bench_analytics: a watcher was closed\n");
				return false;
			}
			/* search tail + new bytes */
			char *start = buf + sizeof x->tail - x->tl;
			memcpy(start, x->tail, x->tl);
			size_t tot = x->tl + (size_t)r;
			start[tot] = '\0';
			if (!x->seen && memmem(start, tot, tok, strlen(tok))) {
				x->seen = true;
				t->lat[t->n++] = now - t0;
				left--;
			}
			size_t keep = tot < sizeof x->tail ? tot : sizeof x->tail;
			memcpy(x->tail, start + tot - keep, keep);
			x->tl = keep;
		}
	}
	/* the publisher's own reply */
	read_until(t->pub, t->redis ? "\r\n" : "OK");
	return true;
}

static void target_print(struct target *t, const char *end)
{
	qsort(t->lat, t->n, sizeof *t->lat, cmp);
	size_t n = t->n;
	printf("%lld %lld %lld %zu%s", (long long)t->lat[n / 2], (long long)t->lat[(n * 99) / 100],
	       (long long)t->lat[n - 1], n, end);
}

int main(int argc, char **argv)
{
	bool both = argc == 6 && strcmp(argv[1], "both") == 0;
	if (argc != 5 && !both) {
		fprintf(stderr, "usage: bench_analytics virgo|redis <port> <watchers> <messages>\n"
				"       bench_analytics both <virgo-port> <redis-port> <watchers> "
				"<messages>\n");
		return 2;
	}
	int W = atoi(argv[argc - 2]), M = atoi(argv[argc - 1]);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rlim_t need = (rlim_t)W * (both ? 2 : 1) + 64;
	if (rl.rlim_cur < need) {
		rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct target t[2];
	int nt = both ? 2 : 1;
	if (both) {
		target_open(&t[0], false, atoi(argv[2]), W, M);
		target_open(&t[1], true, atoi(argv[3]), W, M);
	} else {
		target_open(&t[0], strcmp(argv[1], "redis") == 0, atoi(argv[2]), W, M);
	}
	long pids[2] = {0, 0};
	const char *pe = getenv("BENCH_AN_PIDS");
	bool cpu = both && pe && sscanf(pe, "%ld %ld", &pids[0], &pids[1]) == 2;
	uint64_t cpu0[2] = {0, 0};
	for (int k = 0; cpu && k < 2; k++)
		cpu0[k] = proc_run_ns(pids[k]);
	for (int m = 0; m < M; m++)
		for (int k = 0; k < nt; k++)
			if (!target_message(&t[(m + k) % nt], m))
				return 1;
	uint64_t cpu1[2] = {0, 0};
	for (int k = 0; cpu && k < 2; k++)
		cpu1[k] = proc_run_ns(pids[k]);
	for (int k = 0; k < nt; k++)
		target_print(&t[k], k + 1 < nt || cpu ? " " : "\n");
	if (cpu)
		printf("%.1f %.1f\n", (double)(cpu1[0] - cpu0[0]) / 1000.0 / M,
		       (double)(cpu1[1] - cpu0[1]) / 1000.0 / M);
	return 0;
}
