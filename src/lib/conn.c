/*
 * conn.c - libvirgo connections: connect, send and receive with
 * deadlines, the per-node connection pool, and vc_call (client.h).
 *
 * Non-blocking sockets driven by poll() against one deadline per call, so
 * a node that stops answering (killed, stopped, partitioned) costs the
 * caller at most timeout_ms, never a hang.  Every byte goes through the
 * connection's transport ops (transport.h; plain TCP today).  A pooled
 * connection the node has closed meanwhile (idle timeout, restart) is
 * caught before a non-idempotent request is sent on it (an EOF waiting to
 * be read); if one dies after the request went out, only an idempotent
 * request (VC_IDEMPOTENT) is re-sent, once, on a fresh connection, and a
 * request whose first write failed with nothing sent is always re-sent.
 * A malloc is idempotent because it carries a request id the node
 * remembers (rid=, mem.c); a free or a clone is not.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "reply.h"
#include "transport.h"

#define VC_MAX_STAT (1 << 20)

int64_t vc_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - vc_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = ev};
		/* a minute at most per poll: a far deadline (a stream with
		 * none, INT64_MAX / 2) must not wrap to a bogus timeout */
		int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

const int vc_svc_base_port[VC_SVC_COUNT] = {
	[VC_SVC_MEMPOOL] = 30000, [VC_SVC_CPUPOOL] = 10000, [VC_SVC_EVENTNET] = 20000,
	[VC_SVC_CLOUDFS] = 50000, [VC_SVC_QUEUE] = 60000,   [VC_SVC_MEMCACHE] = 11211,
	[VC_SVC_CLOUDSYNC] = 40000, [VC_SVC_ANALYTICS] = 64000,
};

static int send_all(struct vc_conn *k, struct iovec *iov, int iovcnt, int64_t deadline,
		    size_t *sent);
static int read_line(struct vc_conn *k, char *line, size_t cap, size_t *len, int64_t deadline);

/* auth_token: "AUTH <token>" first, the node answers OK or refuses. */
static int conn_auth(struct vc_client *c, struct vc_conn *k)
{
	char line[300];
	int64_t deadline = vc_now_ms() + c->cfg.connect_timeout_ms;
	int n = snprintf(line, sizeof line, "AUTH %s\r\n", c->cfg.auth_token);
	struct iovec iov = {line, (size_t)n};
	int rc = send_all(k, &iov, 1, deadline, NULL);
	size_t len;
	if (rc == 0)
		rc = read_line(k, line, sizeof line, &len, deadline);
	if (rc == 0 && strcmp(line, "OK") != 0) {
		snprintf(vc_tls_why, sizeof vc_tls_why, "%s", line);
		rc = strncmp(line, "ERR EACCES", 10) == 0 ? -EACCES : -EPROTO;
	}
	return rc;
}

static int conn_open(struct vc_client *c, struct vc_node *n, enum vc_svc svc, struct vc_conn **out)
{
	char port[16];
	int base = svc == VC_SVC_QUEUE ? c->cfg.queue_port_base : vc_svc_base_port[svc];
	snprintf(port, sizeof port, "%d", base + n->port_offset);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai;
	int g = getaddrinfo(n->host, port, &hints, &ai);
	if (g != 0)
		return -EHOSTUNREACH;
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return -errno;
	}
	int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (rc != 0 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (rc != 0) {
		rc = wait_fd(fd, POLLOUT, vc_now_ms() + c->cfg.connect_timeout_ms);
		int soerr = 0;
		socklen_t sl = sizeof soerr;
		if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr)
			rc = -soerr;
		if (rc != 0) {
			close(fd);
			return rc;
		}
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	struct vc_conn *k = malloc(sizeof *k);
	if (!k) {
		close(fd);
		return -ENOMEM;
	}
	k->tp = &vc_tcp_transport;
	k->tstate = NULL;
	k->fd = fd;
	k->want = 0;
	k->off = k->len = 0;
	k->skip = 0;
	k->next = NULL;
	vc_tls_why[0] = '\0';
	if (c->tls_ctx && (svc != VC_SVC_MEMCACHE || c->cfg.memcache_tls) &&
	    (rc = vc_tls_attach(k, c->tls_ctx, n->host, &n->lock, &n->tls_sess[svc])) != 0) {
		k->tp->close(k);
		free(k);
		return rc;
	}
	if ((k->tp->start && (rc = k->tp->start(k, vc_now_ms() + c->cfg.connect_timeout_ms)) != 0) ||
	    (c->cfg.auth_token[0] && svc != VC_SVC_MEMCACHE && (rc = conn_auth(c, k)) != 0)) {
		k->tp->close(k);
		free(k);
		return rc;
	}
	*out = k;
	return 0;
}

static void conn_close(struct vc_conn *k)
{
	k->tp->close(k);
	free(k);
}

/* An idle connection with anything to read has been closed (or reset) by
 * the node: it would fail the call after the request was sent. */
static bool idle_conn_stale(struct vc_conn *k)
{
	if (k->tp->pending && k->tp->pending(k))
		return true;
	struct pollfd p = {.fd = k->fd, .events = POLLIN};
	return poll(&p, 1, 0) != 0;
}

/* Takes an idle pooled connection (*reused = 1) or opens a new one.
 * check_stale: skip pooled connections the node has closed (costs a
 * poll; for requests that must not be re-sent). */
static int pool_get(struct vc_client *c, struct vc_node *n, enum vc_svc svc, bool check_stale,
		    struct vc_conn **out, int *reused)
{
	for (;;) {
		pthread_mutex_lock(&n->lock);
		struct vc_conn *k = n->idle[svc];
		if (k) {
			n->idle[svc] = k->next;
			n->nidle[svc]--;
		}
		pthread_mutex_unlock(&n->lock);
		if (!k)
			break;
		/* idempotent calls skip the check: they are re-sent on a
		 * fresh connection instead */
		if (check_stale && idle_conn_stale(k)) {
			conn_close(k);
			continue;
		}
		*out = k;
		*reused = 1;
		return 0;
	}
	*reused = 0;
	return conn_open(c, n, svc, out);
}

static void pool_put(struct vc_client *c, struct vc_node *n, enum vc_svc svc, struct vc_conn *k)
{
	pthread_mutex_lock(&n->lock);
	if (n->nidle[svc] < c->cfg.pool_size && k->off == k->len) {
		k->next = n->idle[svc];
		n->idle[svc] = k;
		n->nidle[svc]++;
		k = NULL;
	}
	pthread_mutex_unlock(&n->lock);
	if (k)
		conn_close(k);
}

void vc_pool_flush(struct vc_node *n, enum vc_svc svc)
{
	pthread_mutex_lock(&n->lock);
	struct vc_conn *k = n->idle[svc];
	n->idle[svc] = NULL;
	n->nidle[svc] = 0;
	pthread_mutex_unlock(&n->lock);
	while (k) {
		struct vc_conn *next = k->next;
		conn_close(k);
		k = next;
	}
}

/* Writes the iovecs whole; *sent (may be NULL) counts the bytes the
 * transport took, so a caller knows whether a failed request left at all. */
static int send_all(struct vc_conn *k, struct iovec *iov, int iovcnt, int64_t deadline,
		    size_t *sent)
{
	while (iovcnt > 0) {
		ssize_t w = k->tp->write(k, iov, iovcnt);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				int rc = wait_fd(k->fd, k->want, deadline);
				if (rc)
					return rc;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (sent)
			*sent += (size_t)w;
		size_t left = (size_t)w;
		while (iovcnt > 0 && left >= iov->iov_len) {
			left -= iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + left;
			iov->iov_len -= left;
		}
	}
	return 0;
}

/* Reads more bytes into k->buf (compacting first); 0, -ECONNRESET on EOF. */
static int fill(struct vc_conn *k, int64_t deadline)
{
	if (k->off > 0) {
		memmove(k->buf, k->buf + k->off, k->len - k->off);
		k->len -= k->off;
		k->off = 0;
	}
	for (;;) {
		ssize_t r = k->tp->read(k, k->buf + k->len, sizeof k->buf - k->len);
		if (r > 0) {
			k->len += (size_t)r;
			return 0;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rc = wait_fd(k->fd, k->want, deadline);
			if (rc)
				return rc;
			continue;
		}
		if (errno != EINTR)
			return -errno;
	}
}

static int read_line(struct vc_conn *k, char *line, size_t cap, size_t *len, int64_t deadline)
{
	for (;;) {
		uint8_t *s = k->buf + k->off;
		uint8_t *nl = memchr(s, '\n', k->len - k->off);
		if (nl) {
			size_t n = (size_t)(nl - s);
			size_t l = n > 0 && s[n - 1] == '\r' ? n - 1 : n;
			if (l >= cap)
				return -EBADMSG;
			memcpy(line, s, l);
			line[l] = '\0';
			*len = l;
			k->off += n + 1;
			return 0;
		}
		if (k->len - k->off >= cap)
			return -EBADMSG;
		int rc = fill(k, deadline);
		if (rc)
			return rc;
	}
}

static int read_bytes(struct vc_conn *k, uint8_t *dst, size_t n, int64_t deadline)
{
	while (n > 0) {
		size_t have = k->len - k->off;
		if (have == 0) {
			if (n >= sizeof k->buf) {
				/* large value: straight into dst, and what
				 * follows it (its CRLF) into the read-ahead,
				 * in one call */
				k->off = k->len = 0;
				struct iovec iov[2] = {{dst, n}, {k->buf, sizeof k->buf}};
				ssize_t r = k->tp->readv(k, iov, 2);
				if (r > 0) {
					size_t got = (size_t)r < n ? (size_t)r : n;
					k->len = (size_t)r - got;
					dst += got;
					n -= got;
					continue;
				}
				if (r == 0)
					return -ECONNRESET;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					int rc = wait_fd(k->fd, k->want, deadline);
					if (rc)
						return rc;
				} else if (errno != EINTR) {
					return -errno;
				}
				continue;
			}
			int rc = fill(k, deadline);
			if (rc)
				return rc;
			continue;
		}
		size_t take = have < n ? have : n;
		memcpy(dst, k->buf + k->off, take);
		k->off += take;
		dst += take;
		n -= take;
	}
	return 0;
}

/* true if the pipe pfd (its write end) has no free slot: a socket's
 * data lands in a pipe as one slot per piece of a packet, so a pipe can
 * fill up before it holds its size in bytes. */
static bool pipe_full(int pfd)
{
	struct pollfd p = {.fd = pfd, .events = POLLOUT};
	return poll(&p, 1, 0) == 0;
}

/* Reads a VALUE payload of n bytes into the pipe pp (pp[0] its read
 * end, pp[1] its write end; empty, non-blocking): what the read-ahead
 * already holds is written (a copy of at most sizeof k->buf), the rest
 * moved from the socket by splice(2), exactly n bytes, as page
 * references with no copy through user space.  Should the pipe fill up
 * first, its bytes and the rest go to rep->data instead (malloc'd; the
 * pipe is then empty).  Plain TCP only. */
static int read_bytes_pipe(struct vc_conn *k, const int pp[2], size_t n, struct vc_reply *rep,
			   int64_t deadline)
{
	int pfd = pp[1];
	size_t in = 0; /* bytes in the pipe */
	size_t have = k->len - k->off;
	while (in < n && have > 0) {
		ssize_t w = write(pfd, k->buf + k->off, have < n - in ? have : n - in);
		if (w <= 0)
			break; /* full (EAGAIN): spill below */
		k->off += (size_t)w;
		have -= (size_t)w;
		in += (size_t)w;
	}
	while (in < n && k->off == k->len) {
		ssize_t r = splice(k->fd, NULL, pfd, NULL, n - in, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (r > 0) {
			in += (size_t)r;
			continue;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		if (pipe_full(pfd))
			break;
		int rc = wait_fd(k->fd, POLLIN, deadline);
		if (rc)
			return rc;
	}
	if (in == n)
		return 0;
	uint8_t *d = rep->data = malloc(n + 1);
	if (!d)
		return -ENOMEM;
	for (size_t got = 0; got < in;) { /* the pipe holds them: no wait */
		ssize_t r = read(pp[0], d + got, in - got);
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return read_bytes(k, d + in, n - in, deadline);
}

/* Reads one reply; returns 0, -errno for ERR replies, or a transport error
 * (*transport = 1).  pp (may be NULL): a VALUE payload goes to that pipe
 * (read_bytes_pipe), at most into_cap bytes. */
static int read_reply_to(struct vc_conn *k, struct vc_reply *rep, void *into, size_t into_cap,
			 const int *pp, int64_t deadline, int *transport)
{
	size_t len;
	*transport = 1;
	int rc = read_line(k, rep->line, sizeof rep->line, &len, deadline);
	if (rc)
		return rc;
	*transport = 0;
	uint64_t n = 0;
	int err = 0;
	switch (vc_reply_classify(rep->line, len, &n, &err)) {
	case VC_R_OK:
	case VC_R_PONG:
		return 0;
	case VC_R_ERR:
		return -err;
	case VC_R_VALUE: {
		*transport = 1;
		if (n > SIZE_MAX - 2 || ((into || pp) && n > into_cap))
			return -EBADMSG;
		rep->data_len = (size_t)n;
		if (pp) {
			rc = read_bytes_pipe(k, pp, (size_t)n, rep, deadline);
		} else {
			uint8_t *dst = into;
			if (!dst && !(dst = rep->data = malloc(n + 1)))
				return -ENOMEM;
			rc = read_bytes(k, dst, (size_t)n, deadline);
		}
		uint8_t crlf[2];
		if (rc == 0)
			rc = read_bytes(k, crlf, 2, deadline);
		if (rc == 0 && (crlf[0] != '\r' || crlf[1] != '\n'))
			rc = -EBADMSG;
		if (rc == 0)
			*transport = 0;
		return rc;
	}
	case VC_R_STAT: {
		*transport = 1;
		size_t cap = 4096, used = 0;
		char *text = malloc(cap);
		if (!text)
			return -ENOMEM;
		rep->data = (uint8_t *)text;
		while (strcmp(rep->line, "END") != 0) {
			if (used + len + 2 > cap) {
				if (cap >= VC_MAX_STAT)
					return -EBADMSG;
				cap *= 2;
				char *t = realloc(text, cap);
				if (!t)
					return -ENOMEM;
				rep->data = (uint8_t *)(text = t);
			}
			const char *l = strncmp(rep->line, "STAT ", 5) == 0 ? rep->line + 5 : rep->line;
			size_t ll = strlen(l);
			memcpy(text + used, l, ll);
			used += ll;
			text[used++] = '\n';
			rc = read_line(k, rep->line, sizeof rep->line, &len, deadline);
			if (rc)
				return rc;
		}
		text[used] = '\0';
		rep->data_len = used;
		*transport = 0;
		return 0;
	}
	default:
		return -EBADMSG;
	}
}

static int read_reply(struct vc_conn *k, struct vc_reply *rep, void *into, size_t into_cap,
		      int64_t deadline, int *transport)
{
	return read_reply_to(k, rep, into, into_cap, NULL, deadline, transport);
}

/* The sentence of an "ERR <CODE> <sentence>" line, or NULL. */
static const char *err_sentence(const char *line)
{
	if (strncmp(line, "ERR ", 4) != 0)
		return NULL;
	const char *sp = strchr(line + 4, ' ');
	return sp && sp[1] ? sp + 1 : NULL;
}

int vc_call(struct vc_client *c, int idx, const char *hdr, size_t hdr_len, const void *payload,
	    size_t plen, int flags, struct vc_reply *rep)
{
	return vc_call_svc(c, idx, VC_SVC_MEMPOOL, hdr, hdr_len, payload, plen, flags, rep);
}

int vc_call_svc(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, size_t hdr_len,
		const void *payload, size_t plen, int flags, struct vc_reply *rep)
{
	return vc_call_svc_t(c, idx, svc, hdr, hdr_len, payload, plen, c->cfg.timeout_ms, flags,
			     rep);
}

int vc_call_svc_t(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, size_t hdr_len,
		  const void *payload, size_t plen, int timeout_ms, int flags,
		  struct vc_reply *rep)
{
	struct vc_node *n = &c->cfg.nodes[idx];
	int64_t deadline = vc_now_ms() + timeout_ms;
	bool idempotent = flags & VC_IDEMPOTENT;
	memset(rep, 0, sizeof *rep);
	for (int attempt = 0;; attempt++) {
		struct vc_conn *k = NULL;
		int reused;
		vc_tls_why[0] = '\0';
		int rc = pool_get(c, n, svc, !idempotent, &k, &reused);
		if (rc) {
			vc_node_failed(c, idx, svc);
			if (rc == -ETIMEDOUT) /* no answer to the SYN: as costly */
				vc_health_hung(c, idx, svc);
			vc_err_node(c, idx, svc, hdr, rc, vc_tls_why[0] ? vc_tls_why : NULL);
			return rc;
		}
		struct iovec iov[3] = {
			{(void *)hdr, hdr_len}, {(void *)payload, plen}, {(void *)"\r\n", 2}};
		size_t sent = 0;
		rc = send_all(k, iov, payload ? 3 : 1, deadline, &sent);
		int transport = 1;
		if (rc == 0)
			rc = read_reply(k, rep, NULL, 0, deadline, &transport);
		if (!transport) {
			pool_put(c, n, svc, k);
			vc_node_ok(c, idx, svc);
			if (rc)
				vc_err_node(c, idx, svc, hdr, rc, err_sentence(rep->line));
			return rc;
		}
		const struct vc_transport *ktp = k->tp;
		conn_close(k);
		free(rep->data);
		memset(rep, 0, sizeof *rep);
		/* A pooled connection the node closed while idle (restart,
		 * idle timeout): its siblings are stale too; retry once on a
		 * fresh one -- if the request cannot have run (nothing of it
		 * was sent) or running it twice does no harm.  Otherwise the
		 * node may have run it: report the failure, never run a
		 * malloc, free or job twice. */
		if (reused && attempt == 0 && (rc == -ECONNRESET || rc == -EPIPE) &&
		    (idempotent || sent == 0)) {
			vc_pool_flush(n, svc);
			continue;
		}
		if (reused && (rc == -ECONNRESET || rc == -EPIPE))
			vc_pool_flush(n, svc);
		if (rc != -EBADMSG && rc != -ENOMEM)
			vc_node_failed(c, idx, svc);
		if (rc == -ETIMEDOUT)
			vc_health_hung(c, idx, svc);
		vc_err_node(c, idx, svc, hdr, rc,
			    ktp == &vc_tls_transport && vc_tls_why[0] ? vc_tls_why : NULL);
		return rc;
	}
}

/* ---- dedicated connections (client.h): queue subscriptions, replays ---- */
int vc_stream_open(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn **out)
{
	return conn_open(c, &c->cfg.nodes[idx], svc, out);
}

int vc_stream_send(struct vc_conn *k, const void *a, size_t alen, const void *b, size_t blen,
		   int64_t deadline)
{
	struct iovec iov[3] = {{(void *)a, alen}, {(void *)b, blen}, {(void *)"\r\n", 2}};
	return send_all(k, iov, b ? 3 : 1, deadline, NULL);
}

int vc_stream_line(struct vc_conn *k, char *line, size_t cap, int64_t deadline)
{
	size_t len;
	return read_line(k, line, cap, &len, deadline);
}

int vc_stream_bytes(struct vc_conn *k, void *dst, size_t n, int64_t deadline)
{
	return read_bytes(k, dst, n, deadline);
}

/* ---- held connections (state that lives on one connection) ------------- */

int vc_conn_open_held(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn **out)
{
	int rc = vc_stream_open(c, idx, svc, out);
	if (rc) {
		vc_node_failed(c, idx, svc);
		vc_err_node(c, idx, svc, "connect", rc, NULL);
	}
	return rc;
}

int vc_conn_take(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn **out,
		 bool *reused)
{
	int r = 0;
	int rc = pool_get(c, &c->cfg.nodes[idx], svc, true, out, &r);
	*reused = r != 0;
	return rc;
}

void vc_conn_give(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k)
{
	pool_put(c, &c->cfg.nodes[idx], svc, k);
}

ssize_t vc_stream_some(struct vc_conn *k, void *dst, size_t cap, int64_t deadline)
{
	if (k->off == k->len) {
		int rc = fill(k, deadline);
		if (rc)
			return rc;
	}
	size_t take = k->len - k->off < cap ? k->len - k->off : cap;
	memcpy(dst, k->buf + k->off, take);
	k->off += take;
	return (ssize_t)take;
}

bool vc_stream_buffered(struct vc_conn *k)
{
	return k->off < k->len || (k->tp->pending && k->tp->pending(k));
}

void vc_conn_free(struct vc_conn *k)
{
	if (k)
		conn_close(k);
}

int vc_conn_send(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		 const char *hdr, size_t hdr_len, const void *payload, size_t plen, bool *broken)
{
	int64_t deadline = vc_now_ms() + c->cfg.timeout_ms;
	struct iovec iov[3] = {{(void *)hdr, hdr_len}, {(void *)payload, plen}, {(void *)"\r\n", 2}};
	int rc = send_all(k, iov, payload ? 3 : 1, deadline, NULL);
	*broken = rc != 0;
	if (rc) {
		vc_node_failed(c, idx, svc);
		vc_err_node(c, idx, svc, hdr, rc, NULL);
	}
	return rc;
}

/* Moves n bytes from the pipe pfd to k's socket by splice(2): page
 * references, no copy through user space.  Plain TCP only. */
static int splice_all(struct vc_conn *k, int pfd, size_t n, int64_t deadline)
{
	while (n > 0) {
		ssize_t w = splice(pfd, NULL, k->fd, NULL, n,
				   SPLICE_F_MOVE | SPLICE_F_MORE | SPLICE_F_NONBLOCK);
		if (w > 0) {
			n -= (size_t)w;
			continue;
		}
		if (w == 0)
			return -EIO; /* the pipe holds less than promised */
		if (errno == EAGAIN) { /* the pipe is full, so the socket is */
			int rc = wait_fd(k->fd, POLLOUT, deadline);
			if (rc)
				return rc;
			continue;
		}
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int vc_conn_send_pipe(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		      const char *hdr, size_t hdr_len, int pfd, size_t plen, bool *broken)
{
	if (k->tp != &vc_tcp_transport) {
		*broken = false;
		return -EOPNOTSUPP;
	}
	int64_t deadline = vc_now_ms() + c->cfg.timeout_ms;
	int rc = 0;
	size_t off = 0;
	while (off < hdr_len && !rc) { /* the header goes out with the payload */
		ssize_t w = send(k->fd, hdr + off, hdr_len - off, MSG_NOSIGNAL | MSG_MORE);
		if (w >= 0)
			off += (size_t)w;
		else if (errno == EAGAIN)
			rc = wait_fd(k->fd, POLLOUT, deadline);
		else if (errno != EINTR)
			rc = -errno;
	}
	if (!rc)
		rc = splice_all(k, pfd, plen, deadline);
	if (!rc) {
		struct iovec iov = {(void *)"\r\n", 2};
		rc = send_all(k, &iov, 1, deadline, NULL);
	}
	*broken = rc != 0;
	if (rc) {
		vc_node_failed(c, idx, svc);
		vc_err_node(c, idx, svc, hdr, rc, NULL);
	}
	return rc;
}

static int conn_recv(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		     const char *hdr, void *into, size_t cap, const int *pp, struct vc_reply *rep,
		     bool *broken)
{
	int64_t deadline = vc_now_ms() + c->cfg.timeout_ms;
	memset(rep, 0, sizeof *rep);
	int transport = 0;
	int rc = 0;
	while (k->skip > 0 && !transport) { /* whatever they say: nobody asks */
		rc = read_reply_to(k, rep, NULL, 0, NULL, deadline, &transport);
		free(rep->data);
		memset(rep, 0, sizeof *rep);
		k->skip--;
	}
	if (!transport)
		rc = read_reply_to(k, rep, into, cap, pp, deadline, &transport);
	*broken = transport != 0;
	if (transport) {
		free(rep->data);
		memset(rep, 0, sizeof *rep);
		if (rc != -EBADMSG && rc != -ENOMEM)
			vc_node_failed(c, idx, svc);
		vc_err_node(c, idx, svc, hdr, rc, NULL);
		return rc;
	}
	vc_node_ok(c, idx, svc);
	if (rc)
		vc_err_node(c, idx, svc, hdr, rc, err_sentence(rep->line));
	return rc;
}

int vc_conn_recv(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		 const char *hdr, void *into, size_t cap, struct vc_reply *rep, bool *broken)
{
	return conn_recv(c, idx, svc, k, hdr, into, cap, NULL, rep, broken);
}

int vc_conn_recv_pipe(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		      const char *hdr, const int pp[2], size_t cap, struct vc_reply *rep,
		      bool *broken)
{
	if (k->tp != &vc_tcp_transport)
		return conn_recv(c, idx, svc, k, hdr, NULL, cap, NULL, rep, broken);
	return conn_recv(c, idx, svc, k, hdr, NULL, cap, pp, rep, broken);
}

int vc_conn_call(struct vc_client *c, int idx, enum vc_svc svc, struct vc_conn *k,
		 const char *hdr, size_t hdr_len, const void *payload, size_t plen,
		 struct vc_reply *rep, bool *broken)
{
	memset(rep, 0, sizeof *rep);
	int rc = vc_conn_send(c, idx, svc, k, hdr, hdr_len, payload, plen, broken);
	return rc ? rc : vc_conn_recv(c, idx, svc, k, hdr, NULL, 0, rep, broken);
}
