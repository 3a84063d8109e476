/*
 * analytics.c - libvirgo's kernel analytics calls (virgo.h, "kernel
 * analytics"): get, set, ls, history and watch against a node's analytics
 * port (64000 + port_offset).
 *
 * A watch is a stream, not a request/reply, so these calls use their own
 * short-lived connection (vc_stream_open, conn.c: TLS and the AUTH token;
 * connect_timeout_ms and timeout_ms of the client config) rather than the
 * pooled ones.  Replies are read line by
 * line (at most AN_LIB_LINE bytes: a name, a revision and a 1024-byte
 * value fit).  A watch remembers the last revision it delivered and, when
 * its connection breaks, reconnects with back-off (backoff_ms doubling to
 * backoff_max_ms) and asks for "watch from <that revision>", so no change
 * is missed or delivered twice.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/errcode.h"
#include "client.h"
#include "transport.h"
#include "virgo.h"

#define AN_LIB_LINE 2048

struct an_link {
	struct vc_conn *k; /* NULL when closed */
};

static void an_close(struct an_link *l)
{
	vc_conn_free(l->k);
	l->k = NULL;
}

/* The next line (no CR/LF) into line; 0, -ETIMEDOUT (timeout_ms < 0:
 * none), -ECONNRESET (closed), -EBADMSG (too long). */
static int an_line(struct an_link *l, char *line, size_t cap, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? INT64_MAX / 2 : vc_now_ms() + timeout_ms;
	return vc_stream_line(l->k, line, cap, deadline);
}

/* "ERR <CODE> <sentence>": the negative errno, the detail recorded. */
static int an_err(struct vc_client *c, int idx, const char *op, const char *line)
{
	const char *code = line + 4, *sp = strchr(code, ' ');
	size_t cl = sp ? (size_t)(sp - code) : strlen(code);
	char t[600];
	snprintf(t, sizeof t, "node %u: analytics %s: %s", c->cfg.nodes[idx].id, op,
		 sp ? sp + 1 : code);
	vc_err_set(t);
	return -ec_from_name(code, cl);
}

/* Connects, sends req; 0 or a negative error (detail recorded: a
 * refused TLS handshake or token says why). */
static int an_open(int idx, const char *op, const char *req, struct vc_client **cp,
		   struct an_link *l)
{
	l->k = NULL;
	int err = vc_get_node(idx, cp);
	if (err)
		return vc_err_done("analytics", err);
	vc_tls_why[0] = '\0';
	err = vc_stream_open(*cp, idx, VC_SVC_ANALYTICS, &l->k);
	if (err)
		l->k = NULL;
	else if ((err = vc_stream_send(l->k, req, strlen(req), NULL, 0,
				       vc_now_ms() + (*cp)->cfg.timeout_ms)) != 0)
		an_close(l);
	if (err) {
		char t[500];
		snprintf(t, sizeof t, "node %u: analytics %s: %s%s%s", (*cp)->cfg.nodes[idx].id, op,
			 strerror(-err), vc_tls_why[0] ? ": " : "", vc_tls_why);
		vc_err_set(t);
	}
	return err;
}

/* A request answered by one line: connects, sends req, reads the line
 * into line and closes.  0 (line is not an ERR), the ERR line's error
 * (detail recorded), or a transport error ("analytics <op>" recorded). */
static int an_call(int idx, const char *op, const char *req, char *line, size_t cap)
{
	struct vc_client *c;
	struct an_link l;
	int rc = an_open(idx, op, req, &c, &l);
	if (rc)
		return rc;
	rc = an_line(&l, line, cap, c->cfg.timeout_ms);
	an_close(&l);
	if (rc) {
		char what[40];
		snprintf(what, sizeof what, "analytics %s", op);
		return vc_err_done(what, rc);
	}
	if (strncmp(line, "ERR ", 4) == 0)
		return an_err(c, idx, op, line);
	return 0;
}

static bool key_ok(const char *k)
{
	size_t n = k ? strlen(k) : 0;
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-",
			    k[i]))
			return false;
	return true;
}

/* "<word> <key> <rev> <value>" (word VALUE/VAR) or "HIST <rev> <value>". */
static int parse_entry(const char *line, bool with_key, uint64_t *rev, char *key, size_t kcap,
		       const char **value)
{
	const char *p = strchr(line, ' ');
	if (!p)
		return -1;
	p++;
	if (with_key) {
		const char *e = strchr(p, ' ');
		if (!e || (size_t)(e - p) >= kcap)
			return -1;
		memcpy(key, p, (size_t)(e - p));
		key[e - p] = '\0';
		p = e + 1;
	}
	char *end;
	*rev = strtoull(p, &end, 10);
	if (end == p)
		return -1;
	*value = *end == ' ' ? end + 1 : end;
	if (strncmp(*value, "(learnt) ", 9) == 0)
		*value += 9;
	return 0;
}

int virgo_analytics_get(int idx, const char *key, char *value, size_t cap, uint64_t *rev)
{
	if (!key_ok(key))
		return vc_err_done("analytics get", -EINVAL);
	char req[160], line[AN_LIB_LINE];
	snprintf(req, sizeof req, "get %s\r\n", key);
	int rc = an_call(idx, "get", req, line, sizeof line);
	if (rc)
		return rc;
	uint64_t r;
	char k[136];
	const char *v;
	if (strncmp(line, "VALUE ", 6) != 0 || parse_entry(line, true, &r, k, sizeof k, &v) != 0)
		return vc_err_done("analytics get", -VIRGO_EBADREPLY);
	if (cap)
		snprintf(value, cap, "%s", v);
	if (rev)
		*rev = r;
	return vc_err_done("analytics get", 0);
}

static int set_one(int idx, const char *key, const char *value, uint64_t *rev)
{
	char req[1300], line[AN_LIB_LINE];
	snprintf(req, sizeof req, "set %s=%s\r\n", key, value);
	int rc = an_call(idx, "set", req, line, sizeof line);
	if (rc)
		return rc;
	if (strncmp(line, "OK ", 3) != 0)
		return vc_err_done("analytics set", -VIRGO_EBADREPLY);
	if (rev)
		*rev = strtoull(line + 3, NULL, 10);
	return vc_err_done("analytics set", 0);
}

int virgo_analytics_set(int idx, const char *key, const char *value, uint64_t *rev)
{
	/* one pair: a value may hold commas only inside brackets */
	if (!key_ok(key) || !value || strlen(value) > 1024 || strpbrk(value, "\r\n"))
		return vc_err_done("analytics set", -EINVAL);
	if (idx >= 0)
		return set_one(idx, key, value, rev);
	int n = virgo_node_count();
	if (n < 0)
		return n;
	int first = 0;
	char detail[600] = "";
	for (int i = 0; i < n; i++) {
		int rc = set_one(i, key, value, rev);
		if (rc && !first) {
			first = rc;
			snprintf(detail, sizeof detail, "%s", virgo_last_error());
		}
	}
	if (first)
		vc_err_set(detail);
	return first;
}

/* ls / history: lines up to END, each to fn.  Lines carry their key,
 * or (key given: history's HIST lines) fn is handed that key. */
static int walk(int idx, const char *op, const char *req, const char *key, virgo_analytics_fn fn,
		void *arg)
{
	struct vc_client *c;
	struct an_link l;
	int rc = an_open(idx, op, req, &c, &l);
	if (rc)
		return rc;
	char line[AN_LIB_LINE];
	bool stopped = false;
	while ((rc = an_line(&l, line, sizeof line, c->cfg.timeout_ms)) == 0) {
		if (strcmp(line, "END") == 0)
			break;
		if (strncmp(line, "ERR ", 4) == 0) {
			an_close(&l);
			return an_err(c, idx, op, line);
		}
		uint64_t r;
		char k[136] = "";
		const char *v;
		if (parse_entry(line, !key, &r, k, sizeof k, &v) != 0) {
			rc = -VIRGO_EBADREPLY;
			break;
		}
		if (!stopped && fn(arg, r, key ? key : k, v) != 0)
			stopped = true; /* read the rest: the connection closes anyway */
	}
	an_close(&l);
	char what[40];
	snprintf(what, sizeof what, "analytics %s", op);
	return vc_err_done(what, rc);
}

int virgo_analytics_ls(int idx, const char *prefix, virgo_analytics_fn fn, void *arg)
{
	if (prefix && *prefix && !key_ok(prefix))
		return vc_err_done("analytics ls", -EINVAL);
	char req[160];
	snprintf(req, sizeof req, "ls%s%s\r\n", prefix && *prefix ? " " : "",
		 prefix ? prefix : "");
	return walk(idx, "ls", req, NULL, fn, arg);
}

int virgo_analytics_history(int idx, const char *key, virgo_analytics_fn fn, void *arg)
{
	if (!key_ok(key))
		return vc_err_done("analytics history", -EINVAL);
	char req[160];
	snprintf(req, sizeof req, "history %s\r\n", key);
	/* HIST lines carry no key: fn gets the one asked for */
	return walk(idx, "history", req, key, fn, arg);
}

int virgo_analytics_watch(int idx, uint64_t after_rev, int timeout_ms, virgo_analytics_fn fn,
			  void *arg)
{
	struct vc_client *c;
	int err = vc_get_node(idx, &c);
	if (err)
		return vc_err_done("analytics watch", err);
	uint64_t last = after_rev; /* the last revision delivered */
	int backoff = c->cfg.backoff_ms > 0 ? c->cfg.backoff_ms : 100;
	int64_t quiet_since = vc_now_ms();
	for (;;) {
		char req[64];
		if (last == VIRGO_ANALYTICS_NOW)
			snprintf(req, sizeof req, "watch\r\n");
		else
			snprintf(req, sizeof req, "watch from %" PRIu64 "\r\n", last);
		struct an_link l;
		int rc = an_open(idx, "watch", req, &c, &l);
		/* refused credentials (a wrong token, a certificate the node
		 * does not accept) will not heal by retrying */
		if (rc == -EACCES || rc == -EPROTO || (rc == -ECONNREFUSED && vc_tls_why[0]))
			return rc;
		char line[AN_LIB_LINE];
		if (rc == 0)
			rc = an_line(&l, line, sizeof line, c->cfg.timeout_ms);
		if (rc == 0 && strncmp(line, "ERR ", 4) == 0) {
			an_close(&l);
			return an_err(c, idx, "watch", line);
		}
		if (rc == 0 && strncmp(line, "WATCHING ", 9) == 0) {
			if (last == VIRGO_ANALYTICS_NOW)
				last = strtoull(line + 9, NULL, 10);
			backoff = c->cfg.backoff_ms > 0 ? c->cfg.backoff_ms : 100;
			for (;;) {
				int wait = -1;
				if (timeout_ms >= 0) {
					int64_t left = quiet_since + timeout_ms - vc_now_ms();
					wait = left > 0 ? (int)left : 0;
				}
				rc = an_line(&l, line, sizeof line, wait);
				if (rc == -ETIMEDOUT && timeout_ms >= 0) {
					an_close(&l);
					return vc_err_done("analytics watch", -ETIMEDOUT);
				}
				if (rc)
					break; /* reconnect and resume */
				if (strncmp(line, "ERR ", 4) == 0) {
					an_close(&l);
					return an_err(c, idx, "watch", line);
				}
				uint64_t r;
				char k[136];
				const char *v;
				if (strncmp(line, "CHANGE ", 7) != 0 ||
				    parse_entry(line, false, &r, k, sizeof k, &v) != 0)
					continue;
				/* "CHANGE <rev> <key> <value>" */
				const char *ks = strchr(line + 7, ' ');
				if (!ks)
					continue;
				ks++;
				const char *ke = strchr(ks, ' ');
				size_t kl = ke ? (size_t)(ke - ks) : strlen(ks);
				if (kl >= sizeof k)
					continue;
				memcpy(k, ks, kl);
				k[kl] = '\0';
				if (r <= last && last != VIRGO_ANALYTICS_NOW)
					continue; /* never twice */
				last = r;
				quiet_since = vc_now_ms();
				if (fn(arg, r, k, ke ? ke + 1 : "") != 0) {
					an_close(&l);
					return vc_err_done("analytics watch", 0);
				}
			}
		}
		an_close(&l);
		if (timeout_ms >= 0 && vc_now_ms() - quiet_since >= timeout_ms)
			return vc_err_done("analytics watch", -ETIMEDOUT);
		struct timespec ts = {backoff / 1000, (long)(backoff % 1000) * 1000000};
		nanosleep(&ts, NULL);
		int mx = c->cfg.backoff_max_ms > 0 ? c->cfg.backoff_max_ms : 5000;
		backoff = backoff * 2 > mx ? mx : backoff * 2;
	}
}
