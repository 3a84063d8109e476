/*
 * mempool.c - the memory pooling service (port 30000, notes §887/§894).
 *
 * Glue between the pure parser (mempool_proto.c), the allocation table
 * (mempool_store.c) and the connection: parse a request, run it against the
 * store, write the reply.  Replies to the notes' call syntax keep the
 * original's shape (bare hex id, bare data) so old scripts work; native
 * commands answer with a status word.  Errors are "ERR <CODE> <sentence>".
 * With mempool_use_as_kingcobra_service the requests are not served but
 * enqueued for KingCobra (queue_route.h).
 */
#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>

#include "../common/errcode.h"
#include "../common/vuid.h"
#include "../daemon/config.h"
#include "../daemon/service.h"
#include "../daemon/transport.h"
#include "cloudsync/cloudsync_fence.h"
#include "mempool_proto.h"
#include "mempool_settings.h"
#include "mempool_store.h"
#include "eventnet/eventnet_trace.h"
#include "memacct.h"
#include "queue/queue_route.h"

struct mempool {
	struct ma_acct *acct; /* the node-wide accountant (shared with memcache) */
	struct mp_store *store;
	struct mp_limits lim;
	uint64_t max_alloc;
	unsigned node_id;
	bool kingcobra; /* mempool_use_as_kingcobra_service: requests go to the queue */
};

struct mempool_conn {
	struct frame_state fs;
	uint64_t need; /* wait for this much input before parsing again */
	bool legacy_close; /* last request used the call syntax */
	bool in_body; /* a set's payload is arriving under vconn_body_begin */
	bool routed; /* mempool_use_as_kingcobra_service: waiting for the queue */
};

static int mempool_init(const struct vd_node *node, void **out)
{
	const struct vd_config *cfg = node->cfg;
	struct mempool *mp = calloc(1, sizeof *mp);
	if (!mp)
		return -ENOMEM;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	uint64_t now_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
	mp->acct = ma_node_acquire(cfg->mem_limit);
	mp->store = mp->acct ? mp_store_new_acct(cfg->node_id, mp->acct, cfg->max_alloc, now_ms)
			     : NULL;
	if (!mp->store) {
		ma_node_release(mp->acct);
		free(mp);
		return -ENOMEM;
	}
	mp->lim.max_line = cfg->max_line;
	mp->lim.max_value = cfg->max_value;
	mp->max_alloc = cfg->max_alloc;
	mp->node_id = cfg->node_id;
	const struct mp_settings *st = node->settings;
	mp->kingcobra = st && st->use_as_kingcobra_service;
	*out = mp;
	return 0;
}

static void mempool_fini(void *svc)
{
	struct mempool *mp = svc;
	struct mp_stats st;
	mp_store_stats(mp->store, &st);
	if (st.allocations)
		log_warn("mem_dropped_at_shutdown allocations=%llu bytes=%llu",
			 (unsigned long long)st.allocations, (unsigned long long)st.bytes);
	mp_store_free_all(mp->store);
	ma_node_release(mp->acct);
	free(mp);
}

static void reply_err(struct mempool *mp, struct evbuffer *out, int code, const char *msg)
{
	mp_store_count_error(mp->store);
	evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(code), msg);
}

static const char *store_msg(int err)
{
	switch (err) {
	case ENOENT: return "no such allocation (unknown or already freed VUID)";
	case ENOMEM: return "node memory limit reached";
	case ERANGE: return "outside the allocation's size";
	case EINVAL: return "size must be between 1 and max_alloc";
	case EACCES: return "owned by another identity (malloc ... shared makes one anyone may use)";
	default: return "failed";
	}
}

struct emit_ctx {
	struct evbuffer *out;
	bool legacy;
	uint64_t max; /* max_value: no single reply is larger */
	bool too_big; /* set instead of emitting */
};

static void emit_value(void *arg, const uint8_t *bytes, size_t n)
{
	struct emit_ctx *e = arg;
	/* a whole-value get of an allocation built up by patches may exceed
	 * max_value; one reply must stay within the output's hard bound */
	if (n > e->max) {
		e->too_big = true;
		return;
	}
	if (!e->legacy)
		evbuffer_add_printf(e->out, "VALUE %zu\r\n", n);
	evbuffer_add(e->out, bytes, n);
	evbuffer_add(e->out, "\r\n", 2);
}

static void reply_stats(struct mempool *mp, struct evbuffer *out)
{
	struct mp_stats s;
	struct ma_usage u;
	mp_store_stats(mp->store, &s);
	ma_get_usage(mp->acct, &u);
	/* live: what the accountant holds for both ports (allocations with
	 * their overhead + cached items); resident: what the process holds */
	evbuffer_add_printf(out,
			    "STAT node_id %u\r\nSTAT allocations %" PRIu64 "\r\n"
			    "STAT bytes %" PRIu64 "\r\nSTAT accounted_bytes %" PRIu64 "\r\n"
			    "STAT limit %" PRIu64 "\r\n"
			    "STAT cache_bytes %" PRIu64 "\r\n"
			    "STAT live_bytes %" PRIu64 "\r\nSTAT resident_bytes %" PRIu64 "\r\n"
			    "STAT trims %" PRIu64 "\r\n"
			    "STAT max_alloc %" PRIu64 "\r\nSTAT max_value %" PRIu64 "\r\n"
			    "STAT ops_malloc %" PRIu64 "\r\nSTAT ops_set %" PRIu64 "\r\n"
			    "STAT ops_get %" PRIu64 "\r\nSTAT ops_free %" PRIu64 "\r\n"
			    "STAT errors %" PRIu64 "\r\nSTAT leased %" PRIu64 "\r\n"
			    "STAT expired %" PRIu64 "\r\nSTAT malloc_replayed %" PRIu64 "\r\n",
			    mp->node_id, s.allocations, s.bytes, s.accounted, s.limit, s.cache_bytes,
			    u.pinned + u.cache, ma_resident_bytes(), u.trims, mp->max_alloc,
			    mp->lim.max_value, s.ops_malloc, s.ops_set, s.ops_get, s.ops_free,
			    s.ops_error, s.leased, s.expired, s.replayed);
	vd_tls_stats_add(out); /* the node's TLS/kTLS state, for virgo status */
	evbuffer_add(out, "END\r\n", 5);
}

struct ls_ctx {
	struct vconn *c;
	struct evbuffer *out;
};

static bool ls_line(void *arg, const struct mp_info *in)
{
	struct ls_ctx *l = arg;
	char hex[VUID_HEX_MAX + 1], ttl[24];
	vuid_format(in->vuid, hex);
	if (in->ttl_s < 0)
		snprintf(ttl, sizeof ttl, "-");
	else
		snprintf(ttl, sizeof ttl, "%" PRId64, in->ttl_s);
	evbuffer_add_printf(l->out,
			    "STAT alloc %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %s %s\r\n",
			    hex, in->size, in->len, in->age_s, in->idle_s, ttl,
			    in->owner[0] ? in->owner : "-");
	/* the page ends early (at the bucket's end) when replies pile up */
	return !vconn_out_full(l->c);
}

/* One page of the allocation table: its entries, then where the next
 * page starts.  A page is about count lines (whole hash buckets), so a
 * reply is bounded whatever the table's size. */
static void reply_ls(struct vconn *c, struct mempool *mp, const struct mp_req *r,
		     struct evbuffer *out)
{
	struct ls_ctx l = {c, out};
	/* another identity's allocations are not listed (not even their VUIDs) */
	uint64_t next = mp_store_list_as(mp->store, r->cursor, (size_t)r->count,
					 vconn_identity_id(c), ls_line, &l);
	evbuffer_add_printf(out, "STAT next %" PRIx64 "\r\nEND\r\n", next);
}

/* Leases end on the node's clock: a bounded part of the table per tick,
 * so a huge table costs each tick the same, and a full pass over n
 * entries takes about n / MEMPOOL_SWEEP_PER_TICK seconds. */
#define MEMPOOL_SWEEP_PER_TICK 65536

static void mempool_tick(void *svc)
{
	struct mempool *mp = svc;
	mp_store_expire(mp->store, mp_store_now_ms(), MEMPOOL_SWEEP_PER_TICK);
}

static const char mempool_help[] =
	"HELP malloc <size> [span] [ttl=<ms>] [owner=<tag>] [rid=<hex>] -> OK <vuid>\r\n"
	"HELP set <vuid> <nbytes> [<offset>] [fence=<lock>:<token>] + <nbytes> bytes + CRLF "
	"-> OK (ERR ESTALE: a newer token wrote)\r\n"
	"HELP get <vuid> [<offset> <length>]     -> VALUE <n> + bytes + CRLF\r\n"
	"HELP free <vuid>                        -> OK\r\n"
	"HELP free owner=<tag>                   -> OK <allocations freed>\r\n"
	"HELP renew <vuid> <ttl_ms>              -> OK (0: no lease)\r\n"
	"HELP ls [<cursor> [<count>]]            -> STAT alloc <vuid> <size> <len> <age_s> "
	"<idle_s> <ttl_s|-> <owner|-> lines, STAT next <cursor>, END\r\n"
	"HELP stats | ping | help | quit\r\n"
	"HELP virgo_cloud_malloc(<size>) virgo_cloud_set(<vuid>,<data>) "
	"virgo_cloud_get(<vuid>) virgo_cloud_free(<vuid>)\r\n"
	"END\r\n";

struct fenced_set {
	struct mempool *mp;
	const struct mp_req *r;
};

static int fenced_set_write(void *arg)
{
	struct fenced_set *f = arg;
	return mp_store_write(f->mp->store, f->r->vuid, f->r->offset, f->r->data, f->r->data_len,
			      !f->r->has_offset);
}

/* set ... fence=<lock>:<token>: the write runs only if no newer token of
 * that lock was seen on this node (cloudsync_fence.h); the check, the
 * write and raising the newest token are one step under the fence lock. */
static int mempool_fenced_set(struct mempool *mp, const struct mp_req *r, struct evbuffer *out)
{
	struct fenced_set f = {mp, r};
	uint64_t newest = 0;
	int rc = cs_fence_write(r->fence_name, r->fence_len, r->fence_token, fenced_set_write, &f,
				&newest);
	if (rc == -ESTALE) {
		char msg[256];
		snprintf(msg, sizeof msg, "token %" PRIu64 " of lock %.*s is older than %" PRIu64
			 " (the lock has passed on: your hold ended)",
			 r->fence_token, (int)r->fence_len, r->fence_name, newest);
		reply_err(mp, out, ESTALE, msg);
	} else if (rc == -ENOSPC) {
		reply_err(mp, out, ENOSPC, "fence table full (too many fenced lock names)");
	} else if (rc < 0) {
		reply_err(mp, out, -rc, store_msg(-rc));
	} else {
		evbuffer_add(out, "OK\r\n", 4);
	}
	return VSVC_KEEP;
}

/* ---- mempool_use_as_kingcobra_service (notes §976, §977) -----------------
 * A request (malloc, set, get, free, renew) is not served: the request as
 * it arrived (its line and, for set, its payload; without the last line
 * end) is appended to the queue's default topic, stamped with the caller's
 * address, and the caller gets "QUEUED <topic> <offset>" once it is
 * durable; a KingCobra worker publishes the result on its reply topic.
 * ls, stats, ping, help and quit are still answered here. */
static bool routable(enum mp_op op)
{
	return op == MP_OP_MALLOC || op == MP_OP_SET || op == MP_OP_GET || op == MP_OP_FREE ||
	       op == MP_OP_FREE_OWNER || op == MP_OP_RENEW;
}

static void routed_done(struct vconn *c, void *arg, int err, const char *topic, uint64_t off)
{
	struct mempool *mp = arg;
	if (!c)
		return;
	struct mempool_conn *mc = vconn_state(c);
	mc->routed = false;
	struct evbuffer *out = vconn_out(c);
	if (err)
		reply_err(mp, out, err, "mempool_use_as_kingcobra_service: the request could not be queued");
	else
		evbuffer_add_printf(out, "QUEUED %s %" PRIu64 "\r\n", topic, off);
	vconn_resume(c);
}

/* VSVC_WAIT (routed_done resumes c) or VSVC_KEEP (refused: answered). */
static int route_request(struct vconn *c, struct mempool *mp, const uint8_t *req, size_t n)
{
	if (n && req[n - 1] == '\n')
		n--;
	if (n && req[n - 1] == '\r')
		n--;
	int rc = queue_route(c, req, n, routed_done, mp);
	if (rc == 0) {
		((struct mempool_conn *)vconn_state(c))->routed = true;
		return VSVC_WAIT;
	}
	reply_err(mp, vconn_out(c), -rc,
		  rc == -ENOSYS ? "mempool_use_as_kingcobra_service: this node runs no queue service"
		  : rc == -E2BIG ? "mempool_use_as_kingcobra_service: request larger than queue_max_record"
				 : "mempool_use_as_kingcobra_service: the request could not be queued");
	return VSVC_KEEP;
}

/* Runs one parsed request; returns VSVC_CLOSE for quit. */
static int mempool_exec(struct vconn *c, struct mempool *mp, const struct mp_req *r,
			struct evbuffer *out)
{
	char hex[VUID_HEX_MAX + 1];
	int rc;
	switch (r->op) {
	case MP_OP_MALLOC: {
		uint64_t v;
		struct mp_alloc_opts o = {.ttl_ms = r->ttl_ms, .owner = r->owner,
					  .owner_len = r->owner_len, .has_rid = r->has_rid,
					  .rid = r->rid, .ident = vconn_identity_id(c),
					  .shared = r->shared};
		rc = mp_store_alloc_ex(mp->store, r->size, r->span, &o, &v);
		if (rc == -ENOMEM) { /* a client at the node's mem_limit */
			struct ma_usage u;
			ma_get_usage(mp->acct, &u);
			log_warn_every("mem_refused peer=%s size=%" PRIu64 " pinned=%" PRIu64
				       " cache=%" PRIu64 " limit=%" PRIu64,
				       vconn_peer(c), r->size, u.pinned, u.cache, u.limit);
		}
		if (rc < 0)
			break;
		vuid_format(v, hex);
		evn_trace_note("mempool", "malloc", hex); /* eventnet_trace = yes */
		evbuffer_add_printf(out, r->legacy ? "%s\r\n" : "OK %s\r\n", hex);
		return VSVC_KEEP;
	}
	case MP_OP_SET:
		if ((rc = mp_store_check(mp->store, r->vuid, vconn_identity_id(c))) < 0)
			break;
		if (r->fence_name)
			return mempool_fenced_set(mp, r, out);
		rc = mp_store_write(mp->store, r->vuid, r->offset, r->data, r->data_len,
				    !r->has_offset);
		if (rc < 0)
			break;
		if (r->legacy) {
			vuid_format(r->vuid, hex);
			evbuffer_add_printf(out, "%s\r\n", hex);
		} else {
			evbuffer_add(out, "OK\r\n", 4);
		}
		return VSVC_KEEP;
	case MP_OP_GET: {
		struct emit_ctx e = {out, r->legacy, mp->lim.max_value, false};
		if ((rc = mp_store_check(mp->store, r->vuid, vconn_identity_id(c))) < 0)
			break;
		rc = mp_store_read(mp->store, r->vuid, !r->has_offset, r->offset, r->length,
				   emit_value, &e);
		if (rc < 0)
			break;
		if (e.too_big) {
			reply_err(mp, out, E2BIG,
				  "value larger than max_value (read it in ranges)");
			return VSVC_KEEP;
		}
		return VSVC_KEEP;
	}
	case MP_OP_FREE:
		if ((rc = mp_store_check(mp->store, r->vuid, vconn_identity_id(c))) < 0)
			break;
		rc = mp_store_release(mp->store, r->vuid);
		if (rc < 0)
			break;
		evn_trace_note("mempool", "free", NULL); /* eventnet_trace = yes */
		evbuffer_add(out, "OK\r\n", 4);
		return VSVC_KEEP;
	case MP_OP_FREE_OWNER:
		evbuffer_add_printf(out, "OK %" PRIu64 "\r\n",
				    mp_store_free_owner_as(mp->store, r->owner, r->owner_len,
							   vconn_identity_id(c)));
		return VSVC_KEEP;
	case MP_OP_RENEW:
		if ((rc = mp_store_check(mp->store, r->vuid, vconn_identity_id(c))) < 0)
			break;
		rc = mp_store_renew(mp->store, r->vuid, r->ttl_ms);
		if (rc < 0)
			break;
		evbuffer_add(out, "OK\r\n", 4);
		return VSVC_KEEP;
	case MP_OP_LS:
		reply_ls(c, mp, r, out);
		return VSVC_KEEP;
	case MP_OP_STATS:
		reply_stats(mp, out);
		return VSVC_KEEP;
	case MP_OP_PING:
		evbuffer_add_printf(out, "PONG %u\r\n", mp->node_id);
		return VSVC_KEEP;
	case MP_OP_HELP:
		evbuffer_add(out, mempool_help, sizeof mempool_help - 1);
		return VSVC_KEEP;
	case MP_OP_QUIT:
	default:
		return VSVC_CLOSE;
	}
	reply_err(mp, out, -rc, store_msg(-rc));
	return VSVC_KEEP;
}

static int mempool_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	struct mempool *mp = vconn_svc(c);
	struct mempool_conn *mc = vconn_state(c);
	struct evbuffer *out = vconn_out(c);
	for (;;) {
		if (mc->routed)
			return VSVC_WAIT; /* routed_done resumes */
		size_t len = evbuffer_get_length(in);
		if (len == 0 || (!eof && mc->need && len < mc->need))
			break;
		/* Replies are piling up (a client pipelining large gets
		 * without reading): stop here and answer the rest once the
		 * output has drained, so queued replies stay bounded by the
		 * server's budget plus one reply. */
		if (vconn_out_full(c))
			return VSVC_MORE;
		const uint8_t *buf = evbuffer_pullup(in, -1);
		struct mp_req req;
		size_t used;
		int code;
		const char *msg;
		enum mp_parse_result pr =
			mp_parse(&mc->fs, buf, len, eof, &mp->lim, &req, &used, &mc->need, &code, &msg);
		int rc = VSVC_KEEP;
		/* A set whose payload is still arriving: the node bounds the
		 * bytes of such bodies (body_budget) and how long one may
		 * take (body_timeout), so stalled uploads cannot pin its
		 * memory.  Over the budget: refuse and close (its payload
		 * would otherwise be read as commands).  A body larger than
		 * the whole budget (max_value may exceed it) asks for the
		 * whole budget: it is received alone, never refused for
		 * ever (server.c). */
		if (pr == MP_MORE && mc->need > 0 && !mc->in_body && !eof) {
			if (!vconn_body_begin(c, mc->need)) {
				reply_err(mp, out, EBUSY,
					  "node busy receiving other uploads (body_budget); retry");
				return VSVC_CLOSE;
			}
			mc->in_body = true;
		}
		if (pr != MP_MORE && mc->in_body) {
			vconn_body_end(c);
			mc->in_body = false;
		}
		if (pr == MP_REQ && mp->kingcobra && routable(req.op)) {
			mc->legacy_close = req.legacy;
			rc = route_request(c, mp, buf, used);
			evbuffer_drain(in, used);
			if (rc == VSVC_WAIT)
				return VSVC_WAIT;
			continue;
		}
		if (pr == MP_REQ) {
			rc = mempool_exec(c, mp, &req, out);
			mc->legacy_close = req.legacy;
		}
		else if (pr == MP_ERROR)
			reply_err(mp, out, code, msg);
		evbuffer_drain(in, used);
		if (rc == VSVC_CLOSE)
			return VSVC_CLOSE;
		if (pr == MP_MORE && (eof || used == 0))
			break;
	}
	/* The original served one call per connection and closed, and
	 * `printf 'virgo_cloud_malloc(1000)\n' | nc host 30000` relies on
	 * that close to return; so once every call-syntax request that
	 * arrived is answered, close.  Native commands keep it open. */
	if (mc->legacy_close && evbuffer_get_length(in) == 0)
		return VSVC_CLOSE;
	return VSVC_KEEP;
}

const struct vsvc mempool_service = {
	.name = "mempool",
	.base_port = 30000,
	.conn_size = sizeof(struct mempool_conn),
	.movable = true,
	.keys = mp_settings_keys,
	.settings_size = sizeof(struct mp_settings),
	.settings_defaults = mp_settings_defaults,
	.init = mempool_init,
	.fini = mempool_fini,
	.on_input = mempool_on_input,
	.tick = mempool_tick,
};
