/*
 * memcache.c - the memcached-compatible port (11211 + offset).
 *
 * Glue between the pure parser (memcache_proto.c), the item store
 * (memcache_items.c) and the connection: parse every complete request in
 * the input, run it against the store, append the reply.  Items live under
 * the node's mem_limit beside virgo_malloc memory (memacct.h says how they
 * share it).  The hot path is get: one pass over the input, replies
 * written straight into the output buffer, no allocation per request.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../daemon/config.h"
#include "../daemon/service.h"
#include "memacct.h"
#include "memcache_items.h"
#include "memcache_proto.h"

#define MEMCACHE_VERSION "1.6.0-virgo"
/* Values from this size on are sent straight from the item (a reference
 * in the output buffer, released once written) instead of copied. */
#define MEMCACHE_ZEROCOPY_MIN 4096
/* Data blocks from this size on are copied once from the input's pieces
 * (store_split) when they arrived in several reads. */
#define MEMCACHE_SPLIT_MIN 4096
/* Output back-pressure is the server's budget (vconn_out_full): checked
 * before each request, each key of a multi-key get and each stripe of a
 * metadump, so 64 KiB of "get" keys never turn into gigabytes of output. */

extern const struct vsvc memcache_service; /* defined at the end */

struct memcache {
	struct ma_acct *acct;
	struct mci_store *items;
	struct mc_limits lim;
	int64_t started;
	int threads;
	unsigned node_id;
};

struct memcache_conn {
	struct mc_parse_state ps;
	size_t need; /* wait for this much input before parsing again */
	/* a large store whose data block is being read straight into the
	 * item (vconn_direct); its request's scalar fields (key and data
	 * pointers are stale) */
	struct mci_item *pending;
	struct mc_req preq;
	bool buffered; /* the torn request waits whole in the input buffer */
	bool in_body; /* a large body admitted by vconn_body_begin is arriving */
	bool started; /* the first byte was seen (binary protocol check) */
	/* A get paused by the output budget: its line stays at the head of
	 * the input (so the remaining keys are bounded by max_line), and
	 * get_pos is where in its keys to go on. */
	size_t get_pos;
	bool dumping; /* lru_crawler metadump in progress: next is dump_stripe */
	int dump_stripe;
};

static int64_t memcache_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec;
}

static int memcache_init(const struct vd_node *node, void **out)
{
	const struct vd_config *cfg = node->cfg;
	struct memcache *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->acct = ma_node_acquire(cfg->mem_limit);
	uint64_t max_item = cfg->max_value < UINT32_MAX ? cfg->max_value : UINT32_MAX;
	m->items = m->acct ? mci_new(m->acct, max_item) : NULL;
	if (!m->items) {
		ma_node_release(m->acct);
		free(m);
		return -ENOMEM;
	}
	m->lim.max_line = cfg->max_line;
	m->lim.max_item = max_item;
	m->started = memcache_now();
	m->threads = 1;
	for (int i = 0; vsvc_table[i]; i++)
		if (vsvc_table[i] == &memcache_service)
			m->threads = vd_config_threads(cfg, i); /* this port's own workers */
	m->node_id = cfg->node_id;
	*out = m;
	return 0;
}

static void memcache_fini(void *svc)
{
	struct memcache *m = svc;
	mci_free(m->items);
	ma_node_release(m->acct);
	free(m);
}

static void add_str(struct evbuffer *out, const char *s)
{
	evbuffer_add(out, s, strlen(s));
}

static void add_line(struct evbuffer *out, const char *s)
{
	size_t n = strlen(s);
	char buf[128];
	if (n + 2 > sizeof buf) {
		evbuffer_add(out, s, n);
		evbuffer_add(out, "\r\n", 2);
		return;
	}
	memcpy(buf, s, n);
	buf[n] = '\r';
	buf[n + 1] = '\n';
	evbuffer_add(out, buf, n + 2);
}

struct emit_ctx {
	struct evbuffer *out;
	bool with_cas;
};

static void release_item(const void *data, size_t len, void *it)
{
	(void)data;
	(void)len;
	mci_release(it);
}

/* "VALUE <key> <flags> <bytes> [<cas>]\r\n<data>\r\n", written with one
 * reservation in the output buffer (small values: one copy), or header +
 * a reference to the item's bytes + trailer (large values: no copy). */
static void emit_value(void *arg, struct mci_item *it, const uint8_t *key, size_t nkey,
		       uint32_t flags, uint64_t cas, const uint8_t *val, size_t nval)
{
	struct emit_ctx *e = arg;
	bool zerocopy = nval >= MEMCACHE_ZEROCOPY_MIN;
	size_t cap = 6 + nkey + 1 + 10 + 1 + 20 + 1 + 20 + 2 + (zerocopy ? 0 : nval + 2);
	struct evbuffer_iovec v;
	if (evbuffer_reserve_space(e->out, (ev_ssize_t)cap, &v, 1) < 1)
		return;
	char *p = v.iov_base;
	memcpy(p, "VALUE ", 6);
	p += 6;
	memcpy(p, key, nkey);
	p += nkey;
	*p++ = ' ';
	p += mc_u64_str(flags, p);
	*p++ = ' ';
	p += mc_u64_str(nval, p);
	if (e->with_cas) {
		*p++ = ' ';
		p += mc_u64_str(cas, p);
	}
	*p++ = '\r';
	*p++ = '\n';
	if (!zerocopy) {
		memcpy(p, val, nval);
		p += nval;
		*p++ = '\r';
		*p++ = '\n';
	}
	v.iov_len = (size_t)(p - (char *)v.iov_base);
	evbuffer_commit_space(e->out, &v, 1);
	if (!zerocopy)
		return;
	mci_hold(it);
	if (evbuffer_add_reference(e->out, val, nval, release_item, it) != 0) {
		mci_release(it);
		evbuffer_add(e->out, val, nval);
	}
	evbuffer_add(e->out, "\r\n", 2);
}

static void reply_stats(struct memcache *m, struct evbuffer *out, int64_t now)
{
	struct mci_stats s;
	struct ma_usage u;
	mci_get_stats(m->items, &s);
	ma_get_usage(m->acct, &u);
	evbuffer_add_printf(
		out,
		"STAT pid %ld\r\nSTAT uptime %" PRId64 "\r\nSTAT time %" PRId64 "\r\n"
		"STAT version %s\r\nSTAT pointer_size %zu\r\nSTAT threads %d\r\n"
		"STAT limit_maxbytes %" PRIu64 "\r\nSTAT bytes %" PRIu64 "\r\n"
		"STAT curr_items %" PRIu64 "\r\nSTAT total_items %" PRIu64 "\r\n"
		"STAT evictions %" PRIu64 "\r\nSTAT reclaimed %" PRIu64 "\r\n"
		"STAT cmd_get %" PRIu64 "\r\nSTAT cmd_set %" PRIu64 "\r\n"
		"STAT cmd_flush %" PRIu64 "\r\nSTAT cmd_touch %" PRIu64 "\r\n"
		"STAT get_hits %" PRIu64 "\r\nSTAT get_misses %" PRIu64 "\r\n"
		"STAT get_expired %" PRIu64 "\r\n"
		"STAT delete_misses %" PRIu64 "\r\nSTAT delete_hits %" PRIu64 "\r\n"
		"STAT incr_misses %" PRIu64 "\r\nSTAT incr_hits %" PRIu64 "\r\n"
		"STAT decr_misses %" PRIu64 "\r\nSTAT decr_hits %" PRIu64 "\r\n"
		"STAT cas_misses %" PRIu64 "\r\nSTAT cas_hits %" PRIu64 "\r\n"
		"STAT cas_badval %" PRIu64 "\r\n"
		"STAT touch_hits %" PRIu64 "\r\nSTAT touch_misses %" PRIu64 "\r\n"
		"STAT virgo_node_id %u\r\nSTAT virgo_pinned_bytes %" PRIu64 "\r\n"
		"STAT virgo_cache_bytes %" PRIu64 "\r\nSTAT virgo_live_bytes %" PRIu64 "\r\n"
		"STAT virgo_resident_bytes %" PRIu64 "\r\nSTAT virgo_trims %" PRIu64 "\r\n"
		"END\r\n",
		(long)getpid(), now - m->started, now, MEMCACHE_VERSION, sizeof(void *) * 8,
		m->threads, u.limit, s.bytes, s.curr_items, s.total_items, s.evictions,
		s.reclaimed, s.cmd_get, s.cmd_set, s.cmd_flush, s.cmd_touch, s.get_hits,
		s.get_misses, s.get_expired, s.delete_misses, s.delete_hits, s.incr_misses,
		s.incr_hits, s.decr_misses, s.decr_hits, s.cas_misses, s.cas_hits, s.cas_badval,
		s.touch_hits, s.touch_misses, m->node_id, u.pinned, u.cache, u.pinned + u.cache,
		ma_resident_bytes(), u.trims);
}

/* stats items: the store is one class (1), as memcached shows a slab
 * class; nothing when it is empty, as memcached. */
static void reply_items(struct memcache *m, struct evbuffer *out, int64_t now)
{
	struct mci_stats s;
	mci_get_stats(m->items, &s);
	if (s.curr_items)
		evbuffer_add_printf(out,
				    "STAT items:1:number %" PRIu64 "\r\nSTAT items:1:age %" PRId64
				    "\r\nSTAT items:1:mem_requested %" PRIu64
				    "\r\nSTAT items:1:evicted %" PRIu64
				    "\r\nSTAT items:1:outofmemory 0\r\nSTAT items:1:reclaimed %" PRIu64
				    "\r\nSTAT items:1:expired_unfetched %" PRIu64 "\r\n",
				    s.curr_items, mci_lru_age(m->items, now), s.bytes, s.evictions,
				    s.reclaimed, s.expired_unfetched);
	add_str(out, "END\r\n");
}

/* memcached caps a cachedump reply at 2 MB (the lines that fit). */
#define MC_DUMP_MAX (2u << 20)

struct dump_ctx {
	struct evbuffer *out;
	size_t left;
};

static bool dump_line(void *arg, const struct mci_meta *it)
{
	struct dump_ctx *d = arg;
	char line[MC_KEY_MAX + 64];
	int n = snprintf(line, sizeof line, "ITEM %.*s [%zu b; %" PRId64 " s]\r\n", (int)it->nkey,
			 (const char *)it->key, it->nval, it->exptime);
	if (n < 0 || (size_t)n >= sizeof line || (size_t)n > d->left)
		return false;
	d->left -= (size_t)n;
	evbuffer_add(d->out, line, (size_t)n);
	return true;
}

/* stats cachedump <class> <limit>: "ITEM <key> [<bytes> b; <exptime> s]"
 * per live item of class 1 (exptime absolute, 0 = never), up to limit
 * items (0: all) and 2 MB; other classes are empty.  As memcached. */
static void reply_cachedump(struct memcache *m, const struct mc_req *r, struct evbuffer *out,
			    int64_t now)
{
	struct dump_ctx d = {.out = out, .left = MC_DUMP_MAX - 5};
	if (r->dump_class == 1)
		mci_dump(m->items, 0, MCI_NSTRIPES, r->dump_limit, now, dump_line, &d);
	add_str(out, "END\r\n");
}

/* One lru_crawler metadump line, memcached's format: the key URI-encoded
 * (all but A-Z a-z 0-9 - . _ ~ as %XX), exp -1 for never, la the last LRU
 * bump, size the bytes held under mem_limit; "\n"-terminated (the final
 * END has "\r\n"), as memcached writes them. */
static bool meta_line(void *arg, const struct mci_meta *it)
{
	static const char hex[] = "0123456789ABCDEF";
	char line[3 * MC_KEY_MAX + 160];
	size_t n = 4;
	memcpy(line, "key=", 4);
	for (size_t i = 0; i < it->nkey; i++) {
		uint8_t ch = it->key[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			line[n++] = (char)ch;
		} else {
			line[n++] = '%';
			line[n++] = hex[ch >> 4];
			line[n++] = hex[ch & 15];
		}
	}
	n += (size_t)snprintf(line + n, sizeof line - n,
			      " exp=%" PRId64 " la=%" PRId64 " cas=%" PRIu64 " fetch=%s cls=1 size=%zu\n",
			      it->exptime ? it->exptime : -1, it->atime, it->cas,
			      it->fetched ? "yes" : "no", it->size);
	evbuffer_add(arg, line, n);
	return true;
}

/* Streams a metadump a stripe at a time, pausing (VSVC_MORE) while the
 * replies pile up, so a dump of the whole store never sits in memory. */
static int metadump_step(struct vconn *c, struct memcache *m, struct memcache_conn *mc,
			 struct evbuffer *out, int64_t now)
{
	while (mc->dump_stripe < MCI_NSTRIPES) {
		if (vconn_out_full(c))
			return VSVC_MORE;
		mci_dump(m->items, mc->dump_stripe++, 1, 0, now, meta_line, out);
	}
	mc->dumping = false;
	add_str(out, "END\r\n");
	return VSVC_KEEP;
}

static void exec_stats(struct memcache *m, const struct mc_req *r, struct evbuffer *out,
		       int64_t now)
{
	if (!r->arg) {
		reply_stats(m, out, now);
		return;
	}
	char arg[16] = "";
	if (r->arg_len < sizeof arg)
		memcpy(arg, r->arg, r->arg_len);
	if (strcmp(arg, "reset") == 0) {
		mci_reset_stats(m->items);
		add_str(out, "RESET\r\n");
	} else if (strcmp(arg, "settings") == 0) {
		struct ma_usage u;
		ma_get_usage(m->acct, &u);
		evbuffer_add_printf(out,
				    "STAT maxbytes %" PRIu64 "\r\nSTAT item_size_max %" PRIu64
				    "\r\nSTAT num_threads %d\r\nSTAT evictions on\r\nEND\r\n",
				    u.limit, m->lim.max_item, m->threads);
	} else if (strcmp(arg, "cachedump") == 0) {
		reply_cachedump(m, r, out, now);
	} else if (strcmp(arg, "items") == 0) {
		reply_items(m, out, now);
	} else if (strcmp(arg, "slabs") == 0 || strcmp(arg, "sizes") == 0 ||
		   strcmp(arg, "conns") == 0) {
		add_str(out, "END\r\n");
	} else {
		add_str(out, "ERROR\r\n");
	}
}

static const char *store_reply(enum mci_result rc)
{
	switch (rc) {
	case MCI_STORED: return "STORED\r\n";
	case MCI_NOT_STORED: return "NOT_STORED\r\n";
	case MCI_EXISTS: return "EXISTS\r\n";
	case MCI_NOT_FOUND: return "NOT_FOUND\r\n";
	case MCI_TOOLARGE: return "SERVER_ERROR object too large for cache\r\n";
	case MCI_DELETED: return "DELETED\r\n";
	case MCI_TOUCHED: return "TOUCHED\r\n";
	case MCI_NON_NUMERIC:
		return "CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
	case MCI_NOMEM:
	default: return "SERVER_ERROR out of memory storing object\r\n";
	}
}

/* noreply silences every reply, errors included, as memcached 1.6 does
 * (so a client pipelining noreply commands never loses sync). */
static void reply_result(struct evbuffer *out, const struct mc_req *r, enum mci_result rc)
{
	if (!r->noreply)
		add_str(out, store_reply(rc));
}

/* The item store's mode for each storage command. */
static const enum mci_mode store_modes[] = {
	[MC_OP_SET] = MCI_SET,	       [MC_OP_ADD] = MCI_ADD,
	[MC_OP_REPLACE] = MCI_REPLACE, [MC_OP_APPEND] = MCI_APPEND,
	[MC_OP_PREPEND] = MCI_PREPEND, [MC_OP_CAS] = MCI_CAS,
};

/* Runs one request; returns VSVC_CLOSE for quit, VSVC_MORE for a get
 * paused by the output budget (mc->get_pos says where; its line must stay
 * in the input). */
static int memcache_exec(struct vconn *c, struct memcache *m, struct memcache_conn *mc,
			 const struct mc_req *r, struct evbuffer *out, int64_t now)
{
	switch (r->op) {
	case MC_OP_GET: {
		struct emit_ctx e = {out, r->with_cas};
		int64_t exp = r->touch ? mc_exptime_abs(r->exptime, now) : 0;
		size_t pos = mc->get_pos, at = pos;
		const uint8_t *k;
		size_t kl;
		while (mc_next_key(r, &pos, &k, &kl)) {
			if (vconn_out_full(c)) {
				mc->get_pos = at;
				return VSVC_MORE;
			}
			mci_get(m->items, k, kl, now, r->touch, exp, emit_value, &e);
			at = pos;
		}
		mc->get_pos = 0;
		evbuffer_add(out, "END\r\n", 5);
		return VSVC_KEEP;
	}
	case MC_OP_SET:
	case MC_OP_ADD:
	case MC_OP_REPLACE:
	case MC_OP_APPEND:
	case MC_OP_PREPEND:
	case MC_OP_CAS:
		reply_result(out, r,
			     mci_store(m->items, store_modes[r->op], r->key, r->key_len, r->flags,
				       mc_exptime_abs(r->exptime, now), r->cas, r->data,
				       r->data_len, now));
		return VSVC_KEEP;
	case MC_OP_DELETE:
		reply_result(out, r, mci_delete(m->items, r->key, r->key_len, now));
		return VSVC_KEEP;
	case MC_OP_TOUCH:
		reply_result(out, r,
			     mci_touch(m->items, r->key, r->key_len,
				       mc_exptime_abs(r->exptime, now), now));
		return VSVC_KEEP;
	case MC_OP_INCR:
	case MC_OP_DECR: {
		uint64_t v;
		enum mci_result rc = mci_arith(m->items, r->key, r->key_len, r->op == MC_OP_INCR,
					       r->delta, &v, now);
		if (rc == MCI_NOMEM) {
			if (!r->noreply)
				add_str(out, "SERVER_ERROR out of memory\r\n");
		} else if (rc != MCI_STORED) {
			reply_result(out, r, rc);
		} else if (!r->noreply) {
			char num[24];
			size_t n = mc_u64_str(v, num);
			num[n++] = '\r';
			num[n++] = '\n';
			evbuffer_add(out, num, n);
		}
		return VSVC_KEEP;
	}
	case MC_OP_FLUSH_ALL:
		mci_flush(m->items, r->delay > 0 ? mc_exptime_abs(r->delay, now) : now, now);
		if (!r->noreply)
			add_str(out, "OK\r\n");
		return VSVC_KEEP;
	case MC_OP_STATS:
		exec_stats(m, r, out, now);
		return VSVC_KEEP;
	case MC_OP_VERSION:
		add_str(out, "VERSION " MEMCACHE_VERSION "\r\n");
		return VSVC_KEEP;
	case MC_OP_VERBOSITY:
		if (!r->noreply)
			add_str(out, "OK\r\n");
		return VSVC_KEEP;
	case MC_OP_QUIT:
	default:
		return VSVC_CLOSE;
	}
}

enum store_big { SB_NONE, SB_WAIT, SB_PROGRESS };

/* Whether the input holds "\r\n" at offset off (the end of a data block). */
static bool crlf_at(struct evbuffer *in, size_t off)
{
	struct evbuffer_ptr at;
	char term[2];
	return evbuffer_ptr_set(in, &at, off, EVBUFFER_PTR_SET) == 0 &&
	       evbuffer_copyout_from(in, &at, term, 2) == 2 && term[0] == '\r' &&
	       term[1] == '\n';
}

/* A refused store whose data block is still arriving: answer now and
 * drop the block as it comes (memcached's "swallow"), holding no memory
 * for it. */
static void store_refuse(struct memcache_conn *mc, struct evbuffer *in, struct evbuffer *out,
			 const struct mc_req *r, size_t line, enum mci_result why)
{
	reply_result(out, r, why);
	evbuffer_drain(in, line);
	mc->ps.swallow = (uint64_t)r->data_len + 2;
	mc->need = 0;
}

/* A storage command of a large value at the head of the input, whose
 * data block is still arriving or arrived in several pieces: its block is
 * copied once, never pulled into one piece first.  Still arriving: the
 * body must first be admitted by the node's body budget (vconn_body_begin)
 * so stalled uploads cannot pin the node's memory; over it, or when no
 * item can be made, the store is refused at once and its block swallowed.
 * Admitted, a set/add/replace/cas consumes its header and the rest is read
 * straight from the socket into the new item (vconn_direct; store_finish
 * commits it), as memcached does; an append/prepend waits whole in the
 * input.  Returns SB_NONE when the head is no such request (parse it
 * normally), SB_WAIT when its block must first arrive in the input
 * buffer, SB_PROGRESS when it was answered or is being read into its
 * item. */
static enum store_big store_big(struct vconn *c, struct memcache *m, struct memcache_conn *mc,
				struct evbuffer *in, struct evbuffer *out, size_t len, int64_t now)
{
	struct evbuffer_iovec v;
	if (mc->ps.swallow || mc->ps.discard_line || evbuffer_peek(in, -1, NULL, &v, 1) < 1)
		return SB_NONE;
	struct mc_parse_state ps = mc->ps;
	struct mc_req r;
	size_t line, need;
	const char *err;
	if (mc_parse_head(&ps, v.iov_base, v.iov_len, &m->lim, &r, &line, &need, &err) != MC_REQ ||
	    r.op < MC_OP_SET || r.op > MC_OP_CAS || r.data_len < MEMCACHE_SPLIT_MIN)
		return SB_NONE;
	bool complete = len >= need;
	bool whole = r.op == MC_OP_APPEND || r.op == MC_OP_PREPEND; /* parsed from the input */
	if (whole && complete)
		return SB_NONE;
	if (!complete) {
		if (!mc->in_body && !vconn_body_begin(c, r.data_len)) {
			store_refuse(mc, in, out, &r, line, MCI_NOMEM);
			return SB_PROGRESS;
		}
		mc->in_body = true;
		if (whole) {
			mc->need = need;
			return SB_WAIT;
		}
	}
	if (complete && !crlf_at(in, line + r.data_len)) {
		add_line(out, "CLIENT_ERROR bad data chunk");
		evbuffer_drain(in, need);
		return SB_PROGRESS;
	}
	uint8_t *val;
	enum mci_result why;
	struct mci_item *it = mci_prepare(m->items, store_modes[r.op], r.key, r.key_len,
					  r.data_len, &val, &why, now);
	if (!complete) {
		if (!it) {
			vconn_body_end(c);
			mc->in_body = false;
			store_refuse(mc, in, out, &r, line, why);
			return SB_PROGRESS;
		}
		mc->need = 0; /* the torn request is now the pending item */
		mc->pending = it;
		mc->preq = r; /* its key and data pointers are not used again */
		evbuffer_drain(in, line);
		vconn_direct(c, val, r.data_len);
		return SB_PROGRESS;
	}
	if (it) {
		struct evbuffer_ptr at;
		evbuffer_ptr_set(in, &at, line, EVBUFFER_PTR_SET);
		evbuffer_copyout_from(in, &at, val, r.data_len);
		why = mci_commit(m->items, store_modes[r.op], it, r.flags,
				 mc_exptime_abs(r.exptime, now), r.cas, now);
	}
	reply_result(out, &r, why);
	evbuffer_drain(in, need);
	return SB_PROGRESS;
}

/* The data block of mc->pending is in its item: check the terminator, then
 * commit and answer.  False while the block or the terminator is still to
 * come. */
static bool store_finish(struct vconn *c, struct memcache *m, struct memcache_conn *mc,
			 struct evbuffer *in, struct evbuffer *out, int64_t now)
{
	if (vconn_direct_left(c) > 0 || evbuffer_get_length(in) < 2)
		return false;
	const struct mc_req *r = &mc->preq;
	if (!crlf_at(in, 0)) {
		mci_abandon(mc->pending);
		add_line(out, "CLIENT_ERROR bad data chunk");
	} else {
		enum mci_result why = mci_commit(m->items, store_modes[r->op], mc->pending, r->flags,
						 mc_exptime_abs(r->exptime, now), r->cas, now);
		reply_result(out, r, why);
	}
	mc->pending = NULL;
	vconn_body_end(c);
	mc->in_body = false;
	evbuffer_drain(in, 2);
	return true;
}

static void memcache_conn_close(struct vconn *c)
{
	struct memcache_conn *mc = vconn_state(c);
	if (mc->pending)
		mci_abandon(mc->pending);
	mc->pending = NULL;
}

/* Parses and answers the whole requests in `in` (len bytes), from one
 * contiguous view per batch; a torn last request sets mc->need. */
static int parse_batch(struct vconn *c, struct memcache *m, struct memcache_conn *mc,
		       struct evbuffer *in, struct evbuffer *out, size_t len, int64_t now)
{
	const uint8_t *buf = evbuffer_pullup(in, -1);
	size_t pos = 0;
	int rc = VSVC_KEEP;
	while (pos < len && rc == VSVC_KEEP) {
		if (vconn_out_full(c)) {
			rc = VSVC_MORE; /* the rest once these replies are out */
			break;
		}
		struct mc_req req;
		size_t used, need;
		const char *err;
		enum mc_parse_result pr =
			mc_parse(&mc->ps, buf + pos, len - pos, &m->lim, &req, &used, &need, &err);
		pos += used;
		if (pr == MC_REQ && req.op == MC_OP_METADUMP) {
			if (req.dump_class == 1) { /* on_input streams it */
				mc->dumping = true;
				mc->dump_stripe = 0;
				rc = VSVC_MORE;
			} else {
				add_str(out, "END\r\n");
			}
		} else if (pr == MC_REQ) {
			rc = memcache_exec(c, m, mc, &req, out, now);
			if (rc == VSVC_MORE) /* a paused get: its line stays */
				pos -= used;
		} else if (pr == MC_ERROR) {
			if (!req.noreply)
				add_line(out, err);
		} else if (used == 0) {
			mc->need = need; /* counted from the torn request's start */
			break;
		}
	}
	evbuffer_drain(in, pos);
	return rc;
}

/* memcached's binary protocol (a first byte of 0x80) is not spoken here:
 * once its 24-byte header is in, answer with a binary "not supported"
 * response (status 0x0083, the request's opcode and opaque) and close,
 * so a binary client fails at once instead of waiting for a reply. */
static int binary_refuse(struct evbuffer *in, struct evbuffer *out, bool eof)
{
	static const char msg[] = "Not supported: use the ASCII protocol";
	uint8_t req[24], rsp[24 + sizeof msg - 1];
	if (evbuffer_get_length(in) < sizeof req)
		return eof ? VSVC_CLOSE : VSVC_KEEP;
	evbuffer_copyout(in, req, sizeof req);
	memset(rsp, 0, 24);
	rsp[0] = 0x81; /* response magic */
	rsp[1] = req[1]; /* opcode */
	rsp[7] = 0x83; /* status: not supported */
	rsp[11] = (uint8_t)(sizeof msg - 1); /* total body length (big-endian) */
	memcpy(rsp + 12, req + 12, 4); /* opaque */
	memcpy(rsp + 24, msg, sizeof msg - 1);
	evbuffer_add(out, rsp, sizeof rsp);
	evbuffer_drain(in, evbuffer_get_length(in));
	return VSVC_CLOSE;
}

static int memcache_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	struct memcache *m = vconn_svc(c);
	struct memcache_conn *mc = vconn_state(c);
	struct evbuffer *out = vconn_out(c);
	if (!mc->started) {
		uint8_t first;
		if (evbuffer_copyout(in, &first, 1) < 1)
			return VSVC_KEEP;
		if (first == 0x80)
			return binary_refuse(in, out, eof);
		mc->started = true;
	}
	int64_t now = memcache_now();
	/* on eof the server closes; a torn request is dropped */
	for (;;) {
		if (mc->pending && !store_finish(c, m, mc, in, out, now))
			return VSVC_KEEP;
		if (mc->dumping && metadump_step(c, m, mc, out, now) == VSVC_MORE)
			return VSVC_MORE;
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			return VSVC_KEEP;
		if (mc->need && len < mc->need) {
			/* a torn request: a large store's block can still go
			 * straight into its item (once: store_big leaves need
			 * set when it cannot) */
			if (mc->need < MEMCACHE_SPLIT_MIN || mc->buffered)
				return VSVC_KEEP;
			mc->buffered = true;
			if (store_big(c, m, mc, in, out, len, now) != SB_PROGRESS)
				return VSVC_KEEP;
			continue;
		}
		mc->need = 0;
		mc->buffered = false;
		if (mc->in_body) { /* the admitted body is in: it is parsed now */
			vconn_body_end(c);
			mc->in_body = false;
		}
		struct evbuffer_iovec v;
		enum store_big b = SB_NONE;
		if (evbuffer_peek(in, -1, NULL, &v, 1) == 1 && v.iov_len < len)
			b = store_big(c, m, mc, in, out, len, now); /* in several pieces */
		if (b == SB_WAIT)
			return VSVC_KEEP;
		if (b == SB_PROGRESS)
			continue;
		int rc = parse_batch(c, m, mc, in, out, len, now);
		if (rc != VSVC_KEEP || !mc->need)
			return rc;
	}
}

const struct vsvc memcache_service = {
	.name = "memcache",
	.base_port = 11211,
	.conn_size = sizeof(struct memcache_conn),
	.movable = true,
	.init = memcache_init,
	.fini = memcache_fini,
	.on_input = memcache_on_input,
	.conn_close = memcache_conn_close,
};
