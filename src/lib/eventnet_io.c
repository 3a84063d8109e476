/*
 * eventnet_io.c - a blocking-style connection to a node's eventnet port
 * with per-operation timeouts and a reader of long lines, and the EVENT
 * line parser (eventnet_int.h).  The connection is libvirgo's own
 * (vc_stream_open, conn.c), so it carries TLS and the AUTH token; it is
 * kept outside the request pool because EventNet streams (pipelined
 * batches, why/dump pages, the tail feed) carry many lines per request
 * and lines longer than conn.c's read-ahead.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/errcode.h"
#include "client.h"
#include "eventnet_int.h"
#include "transport.h"

int ven_open(int idx, int timeout_ms, struct ven_conn *k)
{
	k->fd = -1;
	k->k = NULL;
	k->off = k->len = 0;
	k->timeout_ms = timeout_ms;
	struct vc_client *c;
	int rc = vc_get_node(idx, &c);
	if (rc)
		return rc;
	vc_tls_why[0] = '\0';
	rc = vc_stream_open(c, idx, VC_SVC_EVENTNET, &k->k);
	if (rc) {
		k->k = NULL;
		vc_err_node(c, idx, VC_SVC_EVENTNET, "connect", rc,
			    vc_tls_why[0] ? vc_tls_why : NULL);
		return rc;
	}
	k->fd = k->k->fd;
	return 0;
}

void ven_close(struct ven_conn *k)
{
	if (k->fd >= 0)
		vc_conn_free(k->k);
	k->k = NULL;
	k->fd = -1;
}

static int64_t ven_deadline(const struct ven_conn *k)
{
	return k->timeout_ms > 0 ? vc_now_ms() + k->timeout_ms : INT64_MAX / 2;
}

int ven_send(struct ven_conn *k, const char *buf, size_t n)
{
	if (k->fd < 0)
		return -EPIPE;
	return vc_stream_send(k->k, buf, n, NULL, 0, ven_deadline(k));
}

bool ven_pending(struct ven_conn *k)
{
	return k->fd >= 0 && (memchr(k->buf + k->off, '\n', k->len - k->off) ||
			      vc_stream_buffered(k->k));
}

int ven_readline(struct ven_conn *k, char **line, size_t *len)
{
	if (k->fd < 0)
		return -EPIPE;
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
		ssize_t r = vc_stream_some(k->k, k->buf + k->len, sizeof k->buf - k->len,
					   ven_deadline(k));
		if (r == -ECONNRESET)
			return -EPIPE; /* EOF */
		if (r < 0)
			return (int)r;
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
