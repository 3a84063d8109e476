/*
 * mcload.c - a small closed-loop load generator for the benchmark suites
 * (bench/suite_mempool.sh): measures per-request latency percentiles,
 * which memcslap/memcaslap do not report.
 *
 * T threads, each with C connections on epoll, one request outstanding per
 * connection.  Memcached text protocol (get/set mix over a prefilled key
 * space, fixed value size), or with -M the VIRGO mempool protocol (get of
 * one allocation per connection; used as background load).  Prints one
 * line: ops_per_s=N p50_us=N p99_us=N p999_us=N errors=N.
 *
 *   mcload -p PORT [-h 127.0.0.1] [-T 2] [-c 8] [-d 3] [-g 0.9] [-s 32]
 *          [-k 10000] [-M] [-P (prefill only)] [-N (no prefill)]
 *          [-R ops/s (open-loop pacing, e.g. a fixed background load)]
 *          [-S CERTDIR (TLS 1.3 with CERTDIR/ca.pem, client.pem, client.key,
 *           as `virgo certs init` writes them; bench/suite_tls.sh)]
 *
 * With -S every connection is a TLS connection doing exactly what the
 * plain one does (one request in flight, the same requests), so the two
 * runs differ only in the transport.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct opts {
	const char *host;
	int port, threads, conns, duration_s, value_size, keys;
	double get_ratio, rate;
	int mempool, prefill_only, no_prefill;
	const char *certdir; /* -S: TLS */
};

struct lconn {
	int fd;
	SSL *ssl; /* -S: the connection's TLS state (blocking socket) */
	char *req; /* request being sent */
	size_t req_len, req_off;
	char *buf; /* response */
	size_t len, cap;
	int is_get;
	uint64_t t0;
	uint64_t due; /* -R: when the next request may go */
	int waiting; /* -R: reply done, next request not yet due */
	char vuid[32];
};

struct worker {
	pthread_t th;
	const struct opts *o;
	unsigned seed;
	uint64_t *lat; /* ns per request */
	size_t nlat, caplat;
	uint64_t errors;
	int id;
};

static char *value; /* value_size bytes of 'x' */
static volatile int stop_flag;
/* every worker's connections are open (TLS: handshakes done) before the
 * measured window starts, so set-up cost is not counted as load */
static pthread_barrier_t ready;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static SSL_CTX *tls_ctx; /* -S */

static void tls_die(const char *what)
{
	fprintf(stderr, "mcload: TLS %s: ", what);
	ERR_print_errors_fp(stderr);
	fputc('\n', stderr);
	exit(2);
}

static void tls_setup(const char *dir)
{
	char ca[512], cert[512], key[512];
	snprintf(ca, sizeof ca, "%s/ca.pem", dir);
	snprintf(cert, sizeof cert, "%s/client.pem", dir);
	snprintf(key, sizeof key, "%s/client.key", dir);
	tls_ctx = SSL_CTX_new(TLS_client_method());
	if (!tls_ctx || SSL_CTX_set_min_proto_version(tls_ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(tls_ctx, ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(tls_ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(tls_ctx, key, SSL_FILETYPE_PEM) != 1)
		tls_die("set-up");
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
	/* one recv per reply, not a header then a body (as the node and
	 * libvirgo do without kTLS) */
	SSL_CTX_set_read_ahead(tls_ctx, 1);
}

/* A TLS client end on fd (blocking), handshake done; NULL without -S. */
static SSL *tls_open(int fd)
{
	if (!tls_ctx)
		return NULL;
	SSL *ssl = SSL_new(tls_ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1)
		tls_die("handshake");
	return ssl;
}

static ssize_t io_send(int fd, SSL *ssl, const char *p, size_t n)
{
	if (!ssl)
		return send(fd, p, n, MSG_NOSIGNAL);
	size_t w = 0;
	return SSL_write_ex(ssl, p, n, &w) == 1 ? (ssize_t)w : -1;
}

static ssize_t io_recv(int fd, SSL *ssl, char *p, size_t n)
{
	if (!ssl)
		return recv(fd, p, n, 0);
	size_t r = 0;
	return SSL_read_ex(ssl, p, n, &r) == 1 ? (ssize_t)r : -1;
}

static int dial(const struct opts *o)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
	inet_pton(AF_INET, o->host, &a.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("mcload: connect");
		exit(2);
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static void send_all(int fd, SSL *ssl, const char *p, size_t n)
{
	while (n) {
		ssize_t w = io_send(fd, ssl, p, n);
		if (w <= 0) {
			perror("mcload: send");
			exit(2);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Blocking read of one reply line into buf (for set-up steps). */
static void read_line(int fd, SSL *ssl, char *buf, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		ssize_t r = io_recv(fd, ssl, buf + n, 1);
		if (r <= 0) {
			fprintf(stderr, "mcload: connection closed during set-up\n");
			exit(2);
		}
		n++;
		if (buf[n - 1] == '\n')
			break;
	}
	buf[n] = '\0';
}

static size_t build_set(char *out, int key, const struct opts *o)
{
	int n = sprintf(out, "set k:%d 0 0 %d\r\n", key, o->value_size);
	memcpy(out + n, value, (size_t)o->value_size);
	memcpy(out + n + o->value_size, "\r\n", 2);
	return (size_t)n + (size_t)o->value_size + 2;
}

static void prefill(const struct opts *o)
{
	int fd = dial(o);
	SSL *ssl = tls_open(fd);
	char *req = malloc((size_t)o->value_size + 64), line[256];
	for (int k = 0; k < o->keys; k++) {
		size_t n = build_set(req, k, o);
		send_all(fd, ssl, req, n);
		read_line(fd, ssl, line, sizeof line);
		if (strcmp(line, "STORED\r\n") != 0) {
			fprintf(stderr, "mcload: prefill: %s", line);
			exit(2);
		}
	}
	free(req);
	SSL_free(ssl);
	close(fd);
}

static void next_request(struct worker *w, struct lconn *c)
{
	const struct opts *o = w->o;
	if (o->mempool) {
		c->req_len = (size_t)sprintf(c->req, "get %s\r\n", c->vuid);
		c->is_get = 1;
	} else {
		int key = (int)(rand_r(&w->seed) % (unsigned)o->keys);
		c->is_get = (double)rand_r(&w->seed) < o->get_ratio * RAND_MAX;
		c->req_len = c->is_get ? (size_t)sprintf(c->req, "get k:%d\r\n", key)
				       : build_set(c->req, key, o);
	}
	c->req_off = 0;
	c->len = 0;
	c->t0 = now_ns();
}

/* 1: the reply in c->buf is complete; 0: need more; -1: error reply. */
static int reply_done(const struct worker *w, const struct lconn *c)
{
	const char *b = c->buf;
	size_t n = c->len;
	if (w->o->mempool) {
		const char *nl = memchr(b, '\n', n);
		if (!nl)
			return 0;
		unsigned long v;
		if (sscanf(b, "VALUE %lu", &v) != 1)
			return -1;
		return n >= (size_t)(nl - b) + 1 + v + 2;
	}
	if (!c->is_get)
		return memchr(b, '\n', n) ? (strncmp(b, "STORED", 6) == 0 ? 1 : -1) : 0;
	if (n >= 5 && memcmp(b + n - 5, "END\r\n", 5) == 0)
		return strncmp(b, "VALUE", 5) == 0 || n == 5 ? 1 : -1;
	if (n >= 5 && strncmp(b, "VALUE", 5) != 0 && memchr(b, '\n', n))
		return -1;
	return 0;
}

static void record(struct worker *w, uint64_t ns)
{
	if (w->nlat == w->caplat) {
		w->caplat = w->caplat ? w->caplat * 2 : 65536;
		w->lat = realloc(w->lat, w->caplat * sizeof *w->lat);
	}
	w->lat[w->nlat++] = ns;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	const struct opts *o = w->o;
	int ep = epoll_create1(0);
	struct lconn *cs = calloc((size_t)o->conns, sizeof *cs);
	for (int i = 0; i < o->conns; i++) {
		struct lconn *c = &cs[i];
		c->fd = dial(o);
		c->ssl = tls_open(c->fd);
		c->cap = (size_t)o->value_size + 4096;
		c->buf = malloc(c->cap);
		c->req = malloc((size_t)o->value_size + 128);
		if (o->mempool) {
			char line[256];
			char hdr[64];
			snprintf(hdr, sizeof hdr, "malloc %d\r\n", o->value_size);
			send_all(c->fd, c->ssl, hdr, strlen(hdr));
			read_line(c->fd, c->ssl, line, sizeof line);
			if (sscanf(line, "OK %31s", c->vuid) != 1) {
				fprintf(stderr, "mcload: malloc: %s", line);
				exit(2);
			}
			int n = snprintf(c->req, 64, "set %s %d\r\n", c->vuid, o->value_size);
			memcpy(c->req + n, value, (size_t)o->value_size);
			memcpy(c->req + n + o->value_size, "\r\n", 2);
			send_all(c->fd, c->ssl, c->req, (size_t)n + (size_t)o->value_size + 2);
			read_line(c->fd, c->ssl, line, sizeof line);
		}
		struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}
	pthread_barrier_wait(&ready);
	for (int i = 0; i < o->conns; i++) {
		next_request(w, &cs[i]);
		send_all(cs[i].fd, cs[i].ssl, cs[i].req, cs[i].req_len);
	}
	struct epoll_event evs[64];
	uint64_t period = o->rate > 0 ? (uint64_t)(1e9 * o->threads * o->conns / o->rate) : 0;
	while (!stop_flag) {
		int nwait = 0;
		if (period) {
			uint64_t t = now_ns();
			for (int i = 0; i < o->conns; i++) {
				struct lconn *c = &cs[i];
				if (c->waiting && c->due <= t) {
					c->waiting = 0;
					next_request(w, c);
					send_all(c->fd, c->ssl, c->req, c->req_len);
				}
				nwait += c->waiting;
			}
		}
		int n = epoll_wait(ep, evs, 64, nwait ? 1 : 100);
		for (int i = 0; i < n; i++) {
			struct lconn *c = evs[i].data.ptr;
			int d;
			do { /* TLS: a reply over several records, some already read */
				ssize_t r = io_recv(c->fd, c->ssl, c->buf + c->len, c->cap - c->len);
				if (r <= 0) {
					fprintf(stderr, "mcload: server closed a connection\n");
					exit(2);
				}
				c->len += (size_t)r;
				d = reply_done(w, c);
			} while (d == 0 && c->len < c->cap && c->ssl && SSL_has_pending(c->ssl));
			if (d == 0 && c->len < c->cap)
				continue;
			if (d != 1)
				w->errors++;
			record(w, now_ns() - c->t0);
			if (period) {
				c->due += period;
				if (c->due < now_ns() - 10 * period)
					c->due = now_ns(); /* fell behind: do not burst */
				c->waiting = 1;
				continue;
			}
			next_request(w, c);
			send_all(c->fd, c->ssl, c->req, c->req_len);
		}
	}
	for (int i = 0; i < o->conns; i++) {
		SSL_free(cs[i].ssl);
		close(cs[i].fd);
		free(cs[i].buf);
		free(cs[i].req);
	}
	free(cs);
	close(ep);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	struct opts o = {"127.0.0.1", 0, 2, 8, 3, 32, 10000, 0.9, 0, 0, 0, 0, NULL};
	int ch;
	while ((ch = getopt(argc, argv, "h:p:T:c:d:g:s:k:R:S:MPN")) != -1) {
		switch (ch) {
		case 'h': o.host = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'T': o.threads = atoi(optarg); break;
		case 'c': o.conns = atoi(optarg); break;
		case 'd': o.duration_s = atoi(optarg); break;
		case 'g': o.get_ratio = atof(optarg); break;
		case 's': o.value_size = atoi(optarg); break;
		case 'k': o.keys = atoi(optarg); break;
		case 'M': o.mempool = 1; break;
		case 'P': o.prefill_only = 1; break;
		case 'N': o.no_prefill = 1; break;
		case 'R': o.rate = atof(optarg); break;
		case 'S': o.certdir = optarg; break;
		default: fprintf(stderr, "usage: see the comment at the top of mcload.c\n"); return 2;
		}
	}
	if (o.port <= 0 || o.threads < 1 || o.conns < 1 || o.value_size < 1 || o.keys < 1)
		return fprintf(stderr, "mcload: bad arguments\n"), 2;
	if (o.certdir)
		tls_setup(o.certdir);
	value = malloc((size_t)o.value_size);
	memset(value, 'x', (size_t)o.value_size);
	if (!o.mempool && !o.no_prefill)
		prefill(&o);
	if (o.prefill_only)
		return 0;
	struct worker *ws = calloc((size_t)o.threads, sizeof *ws);
	pthread_barrier_init(&ready, NULL, (unsigned)o.threads + 1);
	for (int i = 0; i < o.threads; i++) {
		ws[i].o = &o;
		ws[i].id = i;
		ws[i].seed = (unsigned)(i * 7919 + 17);
		pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
	}
	pthread_barrier_wait(&ready);
	uint64_t t0 = now_ns();
	struct timespec d = {o.duration_s, 0};
	nanosleep(&d, NULL); /* the measurement window itself */
	stop_flag = 1;
	size_t total = 0;
	uint64_t errors = 0;
	for (int i = 0; i < o.threads; i++) {
		pthread_join(ws[i].th, NULL);
		total += ws[i].nlat;
		errors += ws[i].errors;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	uint64_t *all = malloc((total ? total : 1) * sizeof *all);
	size_t k = 0;
	for (int i = 0; i < o.threads; i++) {
		memcpy(all + k, ws[i].lat, ws[i].nlat * sizeof *all);
		k += ws[i].nlat;
		free(ws[i].lat);
	}
	qsort(all, total, sizeof *all, cmp_u64);
#define PCT(p) (total ? (double)all[(size_t)((double)(total - 1) * (p))] / 1000.0 : 0.0)
	printf("ops_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f errors=%llu\n",
	       (double)total / secs, PCT(0.50), PCT(0.99), PCT(0.999), (unsigned long long)errors);
	free(all);
	free(ws);
	free(value);
	return errors ? 1 : 0;
}
