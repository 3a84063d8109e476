/*
 * eventnet_io.c - a plain blocking connection to a node's eventnet port
 * with socket timeouts and a line reader, and the EVENT line parser
 * (eventnet_int.h).  Separate from the pooled request/reply connections
 * of conn.c because EventNet streams (pipelined batches, why/dump pages,
 * the tail feed) carry many lines per request and long lines.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "../common/errcode.h"
#include "client.h"
#include "eventnet_int.h"

int ven_open(int idx, int timeout_ms, struct ven_conn *k)
{
	struct virgo_node_info ni;
	int rc = virgo_node_info(idx, &ni);
	if (rc)
		return rc;
	char port[16];
	snprintf(port, sizeof port, "%d", VEN_BASE_PORT + ni.port_offset);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
	if (getaddrinfo(ni.host, port, &hints, &res) != 0)
		return -EHOSTUNREACH;
	rc = -ECONNREFUSED;
	k->fd = -1;
	k->off = k->len = 0;
	for (struct addrinfo *a = res; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			k->fd = fd;
			rc = 0;
			break;
		}
		rc = errno == EINPROGRESS ? -ETIMEDOUT : -errno;
		close(fd);
	}
	freeaddrinfo(res);
	return rc;
}

void ven_close(struct ven_conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

int ven_send(struct ven_conn *k, const char *buf, size_t n)
{
	while (n) {
		ssize_t w = send(k->fd, buf, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

int ven_readline(struct ven_conn *k, char **line, size_t *len)
{
	for (;;) {
		char *nl = memchr(k->buf + k->off, '\n', k->len - k->off);
		if (nl) {
			char *s = k->buf + k->off;
			size_t n = (size_t)(nl - s);
			k->off += n + 1;
			if (n && s[n - 1] == '\r')
				n--;
			s[n] = '\0';
			*line = s;
			*len = n;
			return 0;
		}
		if (k->off) { /* keep the partial line at the front */
			memmove(k->buf, k->buf + k->off, k->len - k->off);
			k->len -= k->off;
			k->off = 0;
		}
		if (k->len == sizeof k->buf)
			return -EMSGSIZE;
		ssize_t r = recv(k->fd, k->buf + k->len, sizeof k->buf - k->len, 0);
		if (r == 0)
			return -EPIPE;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		k->len += (size_t)r;
	}
}

int ven_err(const char *line, const char *op, unsigned node)
{
	if (strncmp(line, "ERR ", 4) != 0)
		return 0;
	const char *code = line + 4, *sp = strchr(code, ' ');
	size_t cl = sp ? (size_t)(sp - code) : strlen(code);
	int e = ec_from_name(code, cl);
	char detail[512];
	snprintf(detail, sizeof detail, "node %u: eventnet %s: %s", node, op, sp ? sp + 1 : code);
	for (char *p = detail; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	vc_err_set(detail);
	return -e;
}

/* Splits the next space-separated field off *s. */
static const char *field(const char **s, const char *end, size_t *n)
{
	const char *p = *s;
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	if (!sp)
		sp = end;
	*n = (size_t)(sp - p);
	*s = sp < end ? sp + 1 : end;
	return p;
}

int ven_parse_event(const char *line, size_t len, struct virgo_event *ev)
{
	memset(ev, 0, sizeof *ev);
	const char *end = line + len, *s = line;
	size_t n[8];
	const char *f[8];
	for (int i = 0; i < 8; i++)
		f[i] = field(&s, end, &n[i]);
	if (n[0] != 5 || memcmp(f[0], "EVENT", 5) != 0 || n[1] == 0 || n[1] >= sizeof ev->id ||
	    n[5] == 0 || n[6] == 0 || n[7] == 0)
		return -EBADMSG;
	memcpy(ev->id, f[1], n[1]);
	ev->id[n[1]] = '\0';
	char num[24];
	unsigned long long v[3];
	for (int i = 0; i < 3; i++) {
		if (n[2 + i] == 0 || n[2 + i] >= sizeof num)
			return -EBADMSG;
		memcpy(num, f[2 + i], n[2 + i]);
		num[n[2 + i]] = '\0';
		char *e;
		errno = 0;
		v[i] = strtoull(num, &e, 10);
		if (*e || errno)
			return -EBADMSG;
	}
	ev->node = (unsigned)v[0];
	ev->seq = v[1];
	ev->lamport = v[2];
	size_t pl = n[6] == 1 && f[6][0] == '-' ? 0 : n[6];
	size_t cl = n[7] == 1 && f[7][0] == '-' ? 0 : n[7];
	size_t vl = (size_t)(end - s);
	char *blk = malloc(n[5] + pl + cl + vl + 4);
	if (!blk)
		return -ENOMEM;
	ev->clock = blk;
	memcpy(blk, f[5], n[5]);
	blk[n[5]] = '\0';
	ev->partakers = blk + n[5] + 1;
	memcpy(ev->partakers, f[6], pl);
	ev->partakers[pl] = '\0';
	ev->causes = ev->partakers + pl + 1;
	memcpy(ev->causes, f[7], cl);
	ev->causes[cl] = '\0';
	ev->conv = ev->causes + cl + 1;
	memcpy(ev->conv, s, vl);
	ev->conv[vl] = '\0';
	return 0;
}

void ven_event_clear(struct virgo_event *ev)
{
	free(ev->clock); /* the block holding every string */
	ev->clock = ev->partakers = ev->causes = ev->conv = NULL;
}
