/*
 * lock.c - virgo_lock/trylock/renew/unlock, virgo_set_fenced and
 * virgo_lock_ls: cluster locks on the cloudsync service (virgo.h).
 *
 * A hold belongs to the connection that took it (the node releases it
 * when the connection drops), so each handle owns one connection to the
 * lock's home node for as long as it holds the lock, taken from the
 * node's cloudsync pool (conn.c: TLS and the AUTH token like every other
 * connection); after a clean unlock the connection goes back to the pool
 * and the next lock on that node reuses it (an acquire is then one round
 * trip, no connect).  The home node is ketama of the name over the
 * configured nodes; the ring is built once per client configuration.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/errcode.h"
#include "../common/vuid.h"
#include "client.h"
#include "ketama.h"
#include "transport.h"

#define LK_NAME_MAX 128
#define LK_TTL_DEFAULT 30000
#define LK_TTL_MAX 86400000

struct virgo_lock {
	pthread_mutex_t mu; /* renew from another thread than the holder */
	struct vc_conn *k; /* NULL once the hold is known lost */
	int idx; /* the home node's index */
	char host[64];
	int port;
	char name[LK_NAME_MAX + 1];
	uint64_t token, ttl_ms;
	int64_t lease_end; /* vc_now_ms() clock */
};

/* ---- home node ------------------------------------------------------ */

static pthread_mutex_t ring_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t fp; /* fingerprint of the node list the ring was built from */
	int n;
	struct kt_point *ring;
} ring_cache;

static uint64_t nodes_fingerprint(const struct vc_config *cfg)
{
	uint64_t h = 1469598103934665603u ^ (uint64_t)cfg->nnodes;
	for (int i = 0; i < cfg->nnodes; i++) {
		const struct vc_node *n = &cfg->nodes[i];
		h = (h ^ n->id) * 1099511628211u;
		h = (h ^ (uint64_t)(unsigned)n->port_offset) * 1099511628211u;
		for (const char *p = n->host; *p; p++)
			h = (h ^ (uint8_t)*p) * 1099511628211u;
	}
	return h;
}

/* The home node's index for name, or a negative error. */
static int lock_home(struct vc_client *c, const char *name, size_t len)
{
	int n = c->cfg.nnodes;
	if (n <= 0)
		return -VIRGO_ENONODE;
	if (n == 1)
		return 0;
	uint64_t fp = nodes_fingerprint(&c->cfg);
	pthread_mutex_lock(&ring_mu);
	if (!ring_cache.ring || ring_cache.fp != fp || ring_cache.n != n) {
		struct kt_point *ring = malloc((size_t)n * KT_POINTS_PER_NODE * sizeof *ring);
		const char **hosts = malloc((size_t)n * sizeof *hosts);
		int *ports = malloc((size_t)n * sizeof *ports);
		if (!ring || !hosts || !ports) {
			free(ring);
			free(hosts);
			free(ports);
			pthread_mutex_unlock(&ring_mu);
			return -ENOMEM;
		}
		for (int i = 0; i < n; i++) {
			hosts[i] = c->cfg.nodes[i].host;
			ports[i] = vc_svc_base_port[VC_SVC_CLOUDSYNC] + c->cfg.nodes[i].port_offset;
		}
		kt_build(ring, hosts, ports, n);
		free(hosts);
		free(ports);
		free(ring_cache.ring);
		ring_cache.ring = ring;
		ring_cache.fp = fp;
		ring_cache.n = n;
	}
	int idx = kt_lookup(ring_cache.ring, n, name, len);
	pthread_mutex_unlock(&ring_mu);
	return idx;
}

static bool name_ok(const char *name, size_t *len)
{
	if (!name)
		return false;
	size_t n = strnlen(name, LK_NAME_MAX + 1);
	if (n == 0 || n > LK_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-' || ch == ':' || ch == '@' || ch == '/'))
			return false;
	}
	*len = n;
	return true;
}

int virgo_lock_home(const char *name)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	size_t len;
	if (!name_ok(name, &len))
		return -EINVAL;
	return lock_home(c, name, len);
}

/* ---- connections ------------------------------------------------------ */

/* A request line on the hold's connection. */
static int send_line(struct virgo_lock *l, const char *s, size_t n, int64_t deadline)
{
	return vc_stream_send(l->k, s, n, NULL, 0, deadline);
}

/* One reply line (CRLF stripped) into line; deadline INT64_MAX / 2: none. */
static int read_line(struct virgo_lock *l, char *line, size_t cap, int64_t deadline)
{
	return vc_stream_line(l->k, line, cap, deadline);
}

/* "ERR <CODE> <sentence>": -errno, with the sentence as the error detail. */
static int err_reply(const struct virgo_lock *l, const char *op, const char *line)
{
	if (strncmp(line, "ERR ", 4) != 0) {
		vc_err_set("lock: the node answered something unexpected");
		return -VIRGO_EBADREPLY;
	}
	const char *code = line + 4;
	const char *sp = strchr(code, ' ');
	size_t cl = sp ? (size_t)(sp - code) : strlen(code);
	char text[400];
	snprintf(text, sizeof text, "%s:%d: %s '%s': %s", l->host, l->port, op, l->name,
		 sp ? sp + 1 : code);
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = '?';
	vc_err_set(text);
	return -ec_from_name(code, cl);
}

/* "OK <token> <ttl_ms>" */
static int parse_ok(const char *line, uint64_t *token)
{
	char *end;
	if (strncmp(line, "OK ", 3) != 0)
		return -1;
	*token = strtoull(line + 3, &end, 10);
	return (*token == 0 || *end != ' ') ? -1 : 0;
}

static void lk_drop_conn(struct virgo_lock *l)
{
	vc_conn_free(l->k);
	l->k = NULL;
}

static void lk_free(struct virgo_lock *l)
{
	lk_drop_conn(l);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static int lock_take(const char *name, const struct virgo_lock_opts *o, bool try,
		     virgo_lock_t **out)
{
	int err = 0;
	*out = NULL;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	size_t len;
	uint64_t ttl = o && o->ttl_ms ? o->ttl_ms : LK_TTL_DEFAULT;
	int64_t wait = o ? o->wait_ms : 0;
	if (!name_ok(name, &len) || ttl > LK_TTL_MAX || wait < 0 || wait > LK_TTL_MAX)
		return vc_err_done("lock", -EINVAL);
	int idx = lock_home(c, name, len);
	if (idx < 0)
		return vc_err_done("lock", idx);
	struct virgo_lock *l = calloc(1, sizeof *l);
	if (!l)
		return -ENOMEM;
	pthread_mutex_init(&l->mu, NULL);
	memcpy(l->name, name, len);
	l->ttl_ms = ttl;
	l->idx = idx;
	snprintf(l->host, sizeof l->host, "%s", c->cfg.nodes[idx].host);
	l->port = vc_svc_base_port[VC_SVC_CLOUDSYNC] + c->cfg.nodes[idx].port_offset;
	char hdr[256];
	int hl;
	if (try)
		hl = snprintf(hdr, sizeof hdr, "trylock %s %" PRIu64 "\r\n", l->name, ttl);
	else if (wait > 0)
		hl = snprintf(hdr, sizeof hdr, "lock %s %" PRIu64 " %" PRId64 "\r\n", l->name, ttl,
			      wait);
	else
		hl = snprintf(hdr, sizeof hdr, "lock %s %" PRIu64 "\r\n", l->name, ttl);
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool reused = false;
		vc_tls_why[0] = '\0';
		rc = vc_conn_take(c, idx, VC_SVC_CLOUDSYNC, &l->k, &reused);
		if (rc)
			break;
		int64_t sent = vc_now_ms();
		int64_t deadline = sent + c->cfg.timeout_ms;
		rc = send_line(l, hdr, (size_t)hl, deadline);
		char line[256];
		if (rc == 0)
			rc = read_line(l, line, sizeof line, deadline);
		if (rc == 0 && strncmp(line, "QUEUED ", 7) == 0) {
			/* in line: the grant comes when the lock is ours (the
			 * node ends a bounded wait itself; allow it the
			 * round trip) */
			int64_t now = vc_now_ms(), rtt = now - sent;
			int64_t d = wait > 0 ? now + wait + c->cfg.timeout_ms : INT64_MAX / 2;
			rc = read_line(l, line, sizeof line, d);
			/* the node started the lease when it sent the grant: count
			 * from its arrival less a round trip, never later */
			sent = vc_now_ms() - rtt;
		}
		if (rc == 0) {
			if (parse_ok(line, &l->token) == 0) {
				l->lease_end = sent + (int64_t)ttl;
				*out = l;
				vc_err_clear();
				return 0;
			}
			rc = err_reply(l, try ? "trylock" : "lock", line);
			/* a refusal leaves the connection usable */
			if (rc != -VIRGO_EBADREPLY) {
				vc_conn_give(c, idx, VC_SVC_CLOUDSYNC, l->k);
				l->k = NULL;
			}
			lk_free(l);
			return rc;
		}
		lk_drop_conn(l);
		/* a reused idle connection the node closed before reading the
		 * request: nothing was queued, try once on a fresh one */
		if (!(attempt == 0 && reused && (rc == -ECONNRESET || rc == -EPIPE)))
			break;
	}
	/* a refused TLS handshake or token says why (vc_tls_why) */
	char text[500];
	snprintf(text, sizeof text, "%s:%d: lock '%s': %s", l->host, l->port, l->name,
		 vc_tls_why[0] ? vc_tls_why : virgo_strerror(rc));
	vc_err_set(text);
	lk_free(l);
	return rc;
}

int virgo_lock(const char *name, const struct virgo_lock_opts *opts, virgo_lock_t **lock)
{
	return lock_take(name, opts, false, lock);
}

int virgo_trylock(const char *name, const struct virgo_lock_opts *opts, virgo_lock_t **lock)
{
	return lock_take(name, opts, true, lock);
}

uint64_t virgo_lock_token(const virgo_lock_t *lock) { return lock ? lock->token : 0; }

const char *virgo_lock_name(const virgo_lock_t *lock) { return lock ? lock->name : ""; }

int64_t virgo_lock_left_ms(const virgo_lock_t *lock)
{
	if (!lock)
		return 0;
	struct virgo_lock *l = (struct virgo_lock *)lock;
	pthread_mutex_lock(&l->mu);
	int64_t left = !l->k ? 0 : l->lease_end - vc_now_ms();
	pthread_mutex_unlock(&l->mu);
	return left;
}

/* One request on the hold's connection; *line gets the reply. */
static int hold_call(struct virgo_lock *l, const char *hdr, size_t hl, char *line, size_t cap,
		     int64_t *sent)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (!l->k)
		return -ENOLCK;
	*sent = vc_now_ms();
	int64_t deadline = *sent + c->cfg.timeout_ms;
	int rc = send_line(l, hdr, hl, deadline);
	if (rc == 0)
		rc = read_line(l, line, cap, deadline);
	if (rc) {
		char text[300];
		snprintf(text, sizeof text, "%s:%d: lock '%s': %s (the hold is lost)", l->host,
			 l->port, l->name, virgo_strerror(rc));
		lk_drop_conn(l);
		vc_err_set(text);
	}
	return rc;
}

int virgo_lock_renew(virgo_lock_t *l)
{
	if (!l)
		return -EINVAL;
	char hdr[256], line[256];
	int hl = snprintf(hdr, sizeof hdr, "renew %s %" PRIu64 "\r\n", l->name, l->ttl_ms);
	int64_t sent;
	pthread_mutex_lock(&l->mu);
	int rc = hold_call(l, hdr, (size_t)hl, line, sizeof line, &sent);
	uint64_t token;
	if (rc == 0 && parse_ok(line, &token) == 0 && token == l->token) {
		l->lease_end = sent + (int64_t)l->ttl_ms;
	} else if (rc == 0) {
		rc = err_reply(l, "renew", line);
		lk_drop_conn(l); /* the hold is over either way */
	}
	pthread_mutex_unlock(&l->mu);
	return rc;
}

int virgo_unlock(virgo_lock_t *l)
{
	if (!l)
		return -EINVAL;
	char hdr[256], line[256];
	int hl = snprintf(hdr, sizeof hdr, "unlock %s\r\n", l->name);
	int64_t sent;
	pthread_mutex_lock(&l->mu);
	int rc = hold_call(l, hdr, (size_t)hl, line, sizeof line, &sent);
	if (rc == 0 && strcmp(line, "OK") == 0) {
		/* back to the pool (closed there if a stray reply follows),
		 * unless the client was re-initialised meanwhile */
		int e = 0;
		struct vc_client *c = vc_get(&e);
		if (c && l->idx < c->cfg.nnodes && strcmp(c->cfg.nodes[l->idx].host, l->host) == 0 &&
		    vc_svc_base_port[VC_SVC_CLOUDSYNC] + c->cfg.nodes[l->idx].port_offset == l->port) {
			vc_conn_give(c, l->idx, VC_SVC_CLOUDSYNC, l->k);
			l->k = NULL;
		}
	} else if (rc == 0) {
		rc = err_reply(l, "unlock", line);
	}
	pthread_mutex_unlock(&l->mu);
	lk_free(l);
	return rc;
}

int virgo_set_fenced(virgo_vuid_t vuid, const void *data, size_t len, const char *lock_name,
		     uint64_t token)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	size_t nl;
	if (!name_ok(lock_name, &nl) || token == 0 || vuid_is_span(vuid) || (len && !data))
		return vc_err_done("set", -EINVAL);
	int idx = vc_node_index(c, vuid_node(vuid));
	if (idx < 0)
		return vc_err_done("set", -VIRGO_ENONODE);
	char hdr[256], hex[VUID_HEX_MAX + 1];
	vuid_format(vuid, hex);
	int hl = snprintf(hdr, sizeof hdr, "set %s %zu fence=%s:%" PRIu64 "\r\n", hex, len,
			  lock_name, token);
	struct vc_reply rep;
	/* re-sending the same bytes with the same token is harmless */
	int rc = vc_call(c, idx, hdr, (size_t)hl, data ? data : "", len, VC_IDEMPOTENT, &rep);
	free(rep.data);
	return vc_err_done("set", rc);
}

int virgo_lock_ls(int idx, const char *name, char **text)
{
	struct vc_client *c;
	*text = NULL;
	int rc = vc_get_node(idx, &c);
	if (rc)
		return rc;
	size_t nl = 0;
	if (name && !name_ok(name, &nl))
		return vc_err_done("ls", -EINVAL);
	char hdr[256];
	int hl = name ? snprintf(hdr, sizeof hdr, "ls %s\r\n", name)
		      : snprintf(hdr, sizeof hdr, "ls\r\n");
	struct vc_reply rep;
	rc = vc_call_svc(c, idx, VC_SVC_CLOUDSYNC, hdr, (size_t)hl, NULL, 0, VC_IDEMPOTENT, &rep);
	if (rc == 0 && !rep.data)
		rep.data = (uint8_t *)strdup("");
	if (rc == 0 && !rep.data)
		rc = -ENOMEM;
	if (rc) {
		free(rep.data);
		return vc_err_done("ls", rc);
	}
	*text = (char *)rep.data;
	return vc_err_done("ls", 0);
}
