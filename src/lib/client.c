/*
 * client.c - the process-wide libvirgo client: initialisation, node
 * health (back-off), error strings and the cluster-view calls.  Placement
 * lives in balancer.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/cfgfile.h"
#include "client.h"
#include "transport.h"
#include "eventnet_int.h"

static pthread_mutex_t vc_init_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vc_client *_Atomic vc_global;
static int vc_init_err;

static uint64_t seed_random(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
			s = 0;
		close(fd);
	}
	if (!s)
		s = (uint64_t)vc_now_ms() ^ ((uint64_t)getpid() << 32);
	return s | 1;
}

static int client_create(const char *path, struct vc_client **out)
{
	struct vc_client *c = calloc(1, sizeof *c);
	if (!c)
		return -ENOMEM;
	vc_config_defaults(&c->cfg);
	char file[512], err[600];
	if (cfgfile_find(path, "VIRGO_CLIENT_CONF", "virgo_client.conf", file, sizeof file)) {
		/* a file named but unusable is an error, never the built-in
		 * cluster (a directory or an empty file read as no lines) */
		struct stat st;
		int bad = 0;
		if (stat(file, &st) == 0 && S_ISDIR(st.st_mode))
			bad = snprintf(err, sizeof err, "%s: is a directory, not a virgo_client.conf", file);
		else if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0)
			bad = snprintf(err, sizeof err,
				       "%s: is empty (list the nodes: node = <id> <host> [<port_offset>])",
				       file);
		if (bad || vc_config_load(&c->cfg, file, err, sizeof err) != 0) {
			fprintf(stderr, "libvirgo: %s\n", err);
			vc_err_set(err);
			free(c);
			return -VIRGO_ECONF;
		}
	}
	if (c->cfg.tls_ca[0]) {
		c->tls_ctx = vc_tls_ctx_new(c->cfg.tls_ca, c->cfg.tls_cert, c->cfg.tls_key, err,
					    sizeof err);
		if (!c->tls_ctx) {
			fprintf(stderr, "libvirgo: %s: %s\n", c->cfg.source, err);
			vc_err_set(err);
			free(c);
			return -VIRGO_ECONF;
		}
	} else if (c->cfg.tls_cert[0]) {
		snprintf(err, sizeof err, "%s: tls_cert is set but tls_ca is not (TLS needs the "
					  "cluster CA to check the nodes)", c->cfg.source);
		fprintf(stderr, "libvirgo: %s\n", err);
		vc_err_set(err);
		free(c);
		return -VIRGO_ECONF;
	}
	for (int i = 0; i < c->cfg.nnodes; i++)
		pthread_mutex_init(&c->cfg.nodes[i].lock, NULL);
	pthread_mutex_init(&c->rng_lock, NULL);
	pthread_mutex_init(&c->lb_lock, NULL);
	span_cache_init(&c->spans);
	orphans_init(&c->orphans);
	c->rng = c->cfg.seeded ? (c->cfg.seed * 2 + 1) : seed_random();
	*out = c;
	return 0;
}

int virgo_init(const char *path)
{
	vc_err_clear();
	pthread_mutex_lock(&vc_init_lock);
	int rc = 0;
	if (!vc_global) {
		struct vc_client *c = NULL;
		rc = client_create(path, &c);
		vc_init_err = rc;
		if (rc == 0)
			vc_global = c;
	}
	pthread_mutex_unlock(&vc_init_lock);
	return vc_err_done("init", rc);
}

void virgo_fini(void)
{
	ven_shutdown(5000); /* the EventNet logger sends what is queued */
	vj_wait_running(); /* the library's own threads still use the client */
	vfs_files_drop(); /* open remote files end with the client */
	pthread_mutex_lock(&vc_init_lock);
	struct vc_client *c = vc_global;
	vc_global = NULL;
	pthread_mutex_unlock(&vc_init_lock);
	if (!c)
		return;
	vc_health_save(c);
	for (int i = 0; i < c->cfg.nnodes; i++) {
		for (int s = 0; s < VC_SVC_COUNT; s++) {
			vc_pool_flush(&c->cfg.nodes[i], (enum vc_svc)s);
			vc_tls_session_free(c->cfg.nodes[i].tls_sess[s]);
		}
		pthread_mutex_destroy(&c->cfg.nodes[i].lock);
	}
	pthread_mutex_destroy(&c->rng_lock);
	pthread_mutex_destroy(&c->lb_lock);
	free(c->learned);
	vc_tls_ctx_free(c->tls_ctx);
	span_cache_destroy(&c->spans);
	orphans_destroy(&c->orphans);
	free(c);
}

struct vc_client *vc_get(int *err)
{
	vc_err_clear(); /* every public call starts here: a fresh detail */
	struct vc_client *c = vc_global;
	if (c)
		return c;
	int rc = virgo_init(NULL);
	c = vc_global;
	if (!c)
		*err = rc ? rc : vc_init_err;
	return c;
}

int vc_get_node(int idx, struct vc_client **out)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (idx < 0 || idx >= c->cfg.nnodes)
		return -VIRGO_ENONODE;
	*out = c;
	return 0;
}

int vc_node_index(struct vc_client *c, unsigned id)
{
	for (int i = 0; i < c->cfg.nnodes; i++)
		if (c->cfg.nodes[i].id == id)
			return i;
	return -1;
}

void vc_node_failed(struct vc_client *c, int idx, enum vc_svc svc)
{
	struct vc_node *n = &c->cfg.nodes[idx];
	int64_t now = vc_now_ms();
	atomic_store_explicit(&n->id_ok[svc], 0, memory_order_relaxed);
	pthread_mutex_lock(&n->lock);
	/* Only a failure after the back-off ran out (a failed probe) doubles
	 * it; the burst of failures from calls already in flight when the
	 * node died must not push its return into the far future. */
	if (n->down_until_ms[svc] <= now) {
		int b = n->backoff_ms[svc] ? n->backoff_ms[svc] * 2 : c->cfg.backoff_ms;
		n->backoff_ms[svc] = b > c->cfg.backoff_max_ms ? c->cfg.backoff_max_ms : b;
		n->down_until_ms[svc] = now + n->backoff_ms[svc];
	}
	pthread_mutex_unlock(&n->lock);
}

void vc_node_ok(struct vc_client *c, int idx, enum vc_svc svc)
{
	struct vc_node *n = &c->cfg.nodes[idx];
	if (n->backoff_ms[svc] == 0)
		return; /* fast path: healthy nodes stay lock-free here */
	pthread_mutex_lock(&n->lock);
	n->backoff_ms[svc] = 0;
	n->down_until_ms[svc] = 0;
	pthread_mutex_unlock(&n->lock);
	atomic_store_explicit(&n->hung_at_ms[svc], 0, memory_order_relaxed);
}

bool vc_node_up(struct vc_node *n, enum vc_svc svc, int64_t now)
{
	pthread_mutex_lock(&n->lock);
	bool up = n->down_until_ms[svc] <= now;
	pthread_mutex_unlock(&n->lock);
	return up;
}

/* virgo_last_error's text: one per thread, never freed (static TLS) */
static _Thread_local char vc_err_text[512];

void vc_err_clear(void) { vc_err_text[0] = '\0'; }

void vc_err_set(const char *text) { snprintf(vc_err_text, sizeof vc_err_text, "%s", text); }

int vc_err_done(const char *op, int rc)
{
	if (rc >= 0)
		vc_err_text[0] = '\0';
	else if (!vc_err_text[0])
		snprintf(vc_err_text, sizeof vc_err_text, "%s: %s", op, virgo_strerror(rc));
	return rc;
}

void vc_err_node(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr, int rc,
		 const char *sentence)
{
	const struct vc_node *n = &c->cfg.nodes[idx];
	/* the operation: the request's verb, and for clone the function */
	size_t vl = strcspn(hdr, " \r\n");
	char op[300];
	if (vl == 5 && memcmp(hdr, "clone", 5) == 0 && hdr[5] == ' ')
		snprintf(op, sizeof op, "clone '%.*s'", (int)strcspn(hdr + 6, " \r\n"), hdr + 6);
	else
		snprintf(op, sizeof op, "%.*s", (int)(vl < 64 ? vl : 64), hdr);
	snprintf(vc_err_text, sizeof vc_err_text, "node %u (%s:%d): %s: %s", n->id, n->host,
		 vc_svc_base_port[svc] + n->port_offset, op,
		 sentence && *sentence ? sentence : virgo_strerror(rc));
	/* the sentence came from the network: no control bytes reach a
	 * terminal through it */
	for (char *p = vc_err_text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
}

const char *virgo_last_error(void) { return vc_err_text; }

const char *virgo_strerror(int err)
{
	if (err >= 0)
		return "success";
	switch (-err) {
	case VIRGO_ENONODE: return "no such node in virgo_client.conf (or none reachable)";
	case VIRGO_EBADREPLY: return "node sent a reply that could not be parsed";
	case VIRGO_ECONF: return "invalid client configuration (see the message on stderr)";
	case ENOENT: return "no such allocation (unknown or already freed VUID)";
	case ENOMEM: return "out of memory (node memory limit reached)";
	case ERANGE: return "offset or length outside the allocation";
	case EBADMSG: return "malformed reply from node";
	case EPROTO:
		return "node answers with another node id than virgo_client.conf gives it "
		       "(wrong host or port_offset?); not used for placement";
	case ETIMEDOUT: return "node did not answer within the timeout (or the job passed its deadline)";
	case EACCES: return "not allowed on the node (program not in its allow_exec, or a path with ..)";
	case EBUSY: return "node busy (connection limit, or every cpupool worker busy and its queue full)";
	case ECANCELED: return "job cancelled";
	}
	const char *s = strerrordesc_np(-err);
	return s ? s : "unknown error";
}

int virgo_node_count(void)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	return c ? c->cfg.nnodes : err;
}

int virgo_node_info(int idx, struct virgo_node_info *info)
{
	struct vc_client *c;
	int err = vc_get_node(idx, &c);
	if (err)
		return err;
	struct vc_node *n = &c->cfg.nodes[idx];
	info->id = n->id;
	snprintf(info->host, sizeof info->host, "%s", n->host);
	info->port_offset = n->port_offset;
	info->up = vc_node_up(n, VC_SVC_MEMPOOL, vc_now_ms());
	return 0;
}

/* Pings the idx-th node's service svc: 0 and *id, or an error; a node
 * answering as another node gets -EPROTO (and back-off) with *id set. */
static int ping_svc(struct vc_client *c, int idx, enum vc_svc svc, unsigned *id)
{
	struct vc_reply rep;
	int rc = vc_call_svc(c, idx, svc, "ping\r\n", 6, NULL, 0, VC_IDEMPOTENT, &rep);
	free(rep.data);
	if (rc)
		return rc;
	if (sscanf(rep.line, "PONG %u", id) != 1)
		return -VIRGO_EBADREPLY;
	struct vc_node *n = &c->cfg.nodes[idx];
	if (*id != n->id) {
		vc_node_failed(c, idx, svc);
		return -EPROTO;
	}
	atomic_store_explicit(&n->id_ok[svc], 1, memory_order_relaxed);
	return 0;
}

int vc_node_check_id(struct vc_client *c, int idx, enum vc_svc svc, const char *hdr)
{
	if (atomic_load_explicit(&c->cfg.nodes[idx].id_ok[svc], memory_order_relaxed))
		return 0;
	unsigned id;
	int rc = ping_svc(c, idx, svc, &id);
	if (rc) /* the detail names the caller's operation, not the check's ping */
		vc_err_node(c, idx, svc, hdr, rc, vc_tls_why[0] ? vc_tls_why : NULL);
	return rc;
}

static int do_ping(int idx, unsigned *node_id, double *rtt_us)
{
	struct vc_client *c;
	int err = vc_get_node(idx, &c);
	if (err)
		return err;
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	unsigned id = 0;
	int rc = ping_svc(c, idx, VC_SVC_MEMPOOL, &id);
	clock_gettime(CLOCK_MONOTONIC, &b);
	if (node_id && (rc == 0 || rc == -EPROTO))
		*node_id = id;
	if (rc)
		return rc;
	if (rtt_us)
		*rtt_us = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
	return 0;
}

int virgo_ping(int idx, unsigned *node_id, double *rtt_us)
{
	vc_err_clear();
	return vc_err_done("ping", do_ping(idx, node_id, rtt_us));
}

static int do_mempool_stats(int idx, char **text)
{
	struct vc_client *c;
	int err = vc_get_node(idx, &c);
	if (err)
		return err;
	struct vc_reply rep;
	int rc = vc_call(c, idx, "stats\r\n", 7, NULL, 0, VC_IDEMPOTENT, &rep);
	if (rc) {
		free(rep.data);
		return rc;
	}
	*text = (char *)rep.data;
	return 0;
}

int virgo_mempool_stats(int idx, char **text)
{
	vc_err_clear();
	return vc_err_done("stats", do_mempool_stats(idx, text));
}

static int do_memcache_stats(int idx, char **text)
{
	struct vc_client *c;
	int err = vc_get_node(idx, &c);
	if (err)
		return err;
	struct vc_reply rep;
	int rc = vc_call_svc(c, idx, VC_SVC_MEMCACHE, "stats\r\n", 7, NULL, 0, VC_IDEMPOTENT,
			     &rep);
	if (rc == 0 && !rep.data)
		rc = -VIRGO_EBADREPLY;
	if (rc) {
		free(rep.data);
		return rc;
	}
	*text = (char *)rep.data;
	return 0;
}

int virgo_memcache_stats(int idx, char **text)
{
	vc_err_clear();
	return vc_err_done("memcache stats", do_memcache_stats(idx, text));
}
