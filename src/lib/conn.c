/*
 * conn.c - libvirgo transport: connect, send and receive with deadlines,
 * the per-node connection pool, and vc_call (client.h).
 *
 * Blocking sockets driven by poll() against one deadline per call, so a
 * node that stops answering (killed, stopped, partitioned) costs the caller
 * at most timeout_ms, never a hang.  A pooled connection the node has
 * closed meanwhile (idle timeout, restart) is detected by the first read
 * returning EOF before any byte; such a call is retried once on a fresh
 * connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "reply.h"

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
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

const int vc_svc_base_port[VC_SVC_COUNT] = {
	[VC_SVC_MEMPOOL] = 30000, [VC_SVC_CPUPOOL] = 10000, [VC_SVC_EVENTNET] = 20000,
	[VC_SVC_CLOUDFS] = 50000, [VC_SVC_QUEUE] = 60000,   [VC_SVC_MEMCACHE] = 11211,
};

static int conn_open(struct vc_client *c, struct vc_node *n, enum vc_svc svc, struct vc_conn **out)
{
	char port[16];
	snprintf(port, sizeof port, "%d", vc_svc_base_port[svc] + n->port_offset);
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
	k->fd = fd;
	k->off = k->len = 0;
	k->next = NULL;
	*out = k;
	return 0;
}

static void conn_close(struct vc_conn *k)
{
	close(k->fd);
	free(k);
}

/* Takes an idle pooled connection (*reused = 1) or opens a new one. */
/* An idle connection with anything to read has been closed (or reset) by
 * the node: it would fail the call after the request was sent. */
static bool idle_conn_stale(struct vc_conn *k)
{
	struct pollfd p = {.fd = k->fd, .events = POLLIN};
	return poll(&p, 1, 0) != 0;
}

static int pool_get(struct vc_client *c, struct vc_node *n, enum vc_svc svc, struct vc_conn **out,
		    int *reused)
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
		/* only cpupool needs the check: its jobs are never re-sent,
		 * other calls retry once on a fresh connection instead */
		if (svc == VC_SVC_CPUPOOL && idle_conn_stale(k)) {
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

static int send_all(struct vc_conn *k, struct iovec *iov, int iovcnt, int64_t deadline)
{
	while (iovcnt > 0) {
		struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
		ssize_t w = sendmsg(k->fd, &m, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				int rc = wait_fd(k->fd, POLLOUT, deadline);
				if (rc)
					return rc;
				continue;
			}
			if (errno == EINTR)
				continue;
			return -errno;
		}
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
		ssize_t r = recv(k->fd, k->buf + k->len, sizeof k->buf - k->len, 0);
		if (r > 0) {
			k->len += (size_t)r;
			return 0;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int rc = wait_fd(k->fd, POLLIN, deadline);
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
			if (n >= sizeof k->buf) { /* large value: read straight in */
				ssize_t r = recv(k->fd, dst, n, 0);
				if (r > 0) {
					dst += r;
					n -= (size_t)r;
					continue;
				}
				if (r == 0)
					return -ECONNRESET;
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					int rc = wait_fd(k->fd, POLLIN, deadline);
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

/* Reads one reply; returns 0, -errno for ERR replies, or a transport error
 * (*transport = 1). */
static int read_reply(struct vc_conn *k, struct vc_reply *rep, int64_t deadline, int *transport)
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
		if (n > SIZE_MAX - 2)
			return -EBADMSG;
		rep->data = malloc(n + 1);
		if (!rep->data)
			return -ENOMEM;
		rep->data_len = (size_t)n;
		rc = read_bytes(k, rep->data, (size_t)n, deadline);
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

int vc_call(struct vc_client *c, int idx, const char *hdr, size_t hdr_len, const void *payload,
	    size_t plen, struct vc_reply *rep)
{
	return vc_call_svc(c, idx, VC_SVC_MEMPOOL, hdr, hdr_len, payload, plen, rep);
}

int vc_call_svc(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, size_t hdr_len,
		const void *payload, size_t plen, struct vc_reply *rep)
{
	return vc_call_svc_t(c, idx, svc, hdr, hdr_len, payload, plen, c->cfg.timeout_ms, rep);
}

int vc_call_svc_t(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, size_t hdr_len,
		  const void *payload, size_t plen, int timeout_ms, struct vc_reply *rep)
{
	struct vc_node *n = &c->cfg.nodes[idx];
	int64_t deadline = vc_now_ms() + timeout_ms;
	memset(rep, 0, sizeof *rep);
	for (int attempt = 0;; attempt++) {
		struct vc_conn *k = NULL;
		int reused;
		int rc = pool_get(c, n, svc, &k, &reused);
		if (rc) {
			vc_node_failed(c, idx, svc);
			return rc;
		}
		struct iovec iov[3] = {
			{(void *)hdr, hdr_len}, {(void *)payload, plen}, {(void *)"\r\n", 2}};
		rc = send_all(k, iov, payload ? 3 : 1, deadline);
		int transport = 1;
		if (rc == 0)
			rc = read_reply(k, rep, deadline, &transport);
		if (!transport) {
			pool_put(c, n, svc, k);
			vc_node_ok(c, idx, svc);
			return rc;
		}
		conn_close(k);
		free(rep->data);
		memset(rep, 0, sizeof *rep);
		/* a pooled connection the node closed while idle (restart,
		 * idle timeout): its siblings are stale too; retry fresh */
		/* (not for cpupool jobs: the node may have died mid-job, and
		 * a job must never silently run twice) */
		if (reused && attempt == 0 && svc != VC_SVC_CPUPOOL &&
		    (rc == -ECONNRESET || rc == -EPIPE)) {
			vc_pool_flush(n, svc);
			continue;
		}
		if (rc != -EBADMSG && rc != -ENOMEM)
			vc_node_failed(c, idx, svc);
		return rc;
	}
}
