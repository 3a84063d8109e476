/*
 * mem.c - virgo_malloc/set/get/free: memory pooling across the cluster.
 *
 * A request for at most chunk_size bytes becomes one allocation on a node
 * the policy picks.  A larger one becomes ceil(size/chunk_size) chunks, each
 * placed by the policy, plus a span descriptor (span.h) whose span-flagged
 * VUID is what the caller gets; set/get/free on it fan out to the chunks.
 * Placement retries another node when one is unreachable or full, so one
 * dead node does not fail an allocation the rest of the cluster can hold.
 */
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "../common/vuid.h"
#include "client.h"
#include "mem_find.h"
#include "span.h"

static int node_of(struct vc_client *c, uint64_t vuid)
{
	return vc_node_index(c, vuid_node(vuid));
}

/* A request id for one malloc: unique per process and call (a random
 * start, then a counter through an odd multiplier), so that a node that
 * sees it twice knows it is the same request (docs/PROTOCOL.md). */
static uint64_t next_rid(void)
{
	static _Atomic uint64_t seed, ctr;
	uint64_t s = atomic_load(&seed);
	if (s == 0) {
		uint64_t r = 0;
		if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
			r = (uint64_t)vc_now_ms() ^ ((uint64_t)getpid() << 32);
		r |= 1;
		uint64_t zero = 0;
		atomic_compare_exchange_strong(&seed, &zero, r);
		s = atomic_load(&seed);
	}
	uint64_t n = atomic_fetch_add(&ctr, 1) + 1;
	return s + n * UINT64_C(0x9e3779b97f4a7c15);
}

/* One allocation of size bytes on some node; tries each node at most once.
 * Each attempt carries a fresh request id, so the node runs it once even
 * when a dead pooled connection makes vc_call send it again. */
static int alloc_one(struct vc_client *c, uint64_t size, bool span,
		     const struct virgo_malloc_opts *o, uint64_t *vuid)
{
	uint64_t tried[VC_MAX_NODES / 64] = {0};
	char opt[128] = "";
	if (o && o->ttl_ms)
		snprintf(opt, sizeof opt, " ttl=%" PRIu64, o->ttl_ms);
	if (o && o->owner)
		snprintf(opt + strlen(opt), sizeof opt - strlen(opt), " owner=%s", o->owner);
	int last = -VIRGO_ENONODE;
	for (;;) {
		int idx = lb_pick(c, tried);
		if (idx < 0)
			return last;
		tried[idx / 64] |= UINT64_C(1) << (idx % 64);
		char hdr[256];
		int hl = snprintf(hdr, sizeof hdr, "malloc %" PRIu64 "%s%s rid=%" PRIx64 "\r\n", size,
				  span ? " span" : "", opt, next_rid());
		int rc = vc_node_check_id(c, idx, VC_SVC_MEMPOOL, hdr);
		if (rc) { /* another node than configured, or unreachable */
			last = rc;
			continue;
		}
		struct vc_reply rep;
		int64_t sent_at = vc_now_ms();
		rc = vc_call(c, idx, hdr, (size_t)hl, NULL, 0, VC_IDEMPOTENT, &rep);
		free(rep.data);
		/* no reply: the node may have allocated; reconcile later */
		if (rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE || rc == -EBADMSG)
			vc_pending_add(c, idx, hdr, (size_t)hl, sent_at);
		if (rc == 0) {
			if (strncmp(rep.line, "OK ", 3) != 0 ||
			    vuid_parse(rep.line + 3, strlen(rep.line + 3), vuid) != 0)
				return -VIRGO_EBADREPLY;
			return 0;
		}
		/* EINVAL (size above the node's max_alloc) and the like are
		 * the caller's problem; full or unreachable nodes are not */
		if (rc == -EINVAL || rc == -E2BIG)
			return rc;
		last = rc;
	}
}

static int call_vuid(struct vc_client *c, uint64_t vuid, const char *hdr, size_t hl,
		     const void *payload, size_t plen, int flags, struct vc_reply *rep)
{
	int idx = node_of(c, vuid);
	if (idx < 0) {
		memset(rep, 0, sizeof *rep);
		return -VIRGO_ENONODE;
	}
	return vc_call(c, idx, hdr, hl, payload, plen, flags, rep);
}

static int free_one(struct vc_client *c, uint64_t vuid)
{
	char hdr[64], hex[VUID_HEX_MAX + 1];
	vuid_format(vuid, hex);
	int hl = snprintf(hdr, sizeof hdr, "free %s\r\n", hex);
	struct vc_reply rep;
	/* not re-sent: a second free of a freed VUID says ENOENT */
	int rc = call_vuid(c, vuid, hdr, (size_t)hl, NULL, 0, 0, &rep);
	free(rep.data);
	return rc;
}

static bool gone(int rc) { return rc == 0 || rc == -ENOENT; }

/* Frees the n chunks v[]; a node that failed once in this call is not
 * tried again (one timeout per dead node, not one per chunk).  Returns 0
 * when every chunk is gone, else the first error.  orphan (a rollback):
 * remember the chunks not freed, to free them later (orphans_retry), and
 * do not even try a node in back-off: it just failed, and a free it might
 * run late could make room for a malloc of ours it still has queued. */
static int free_chunks(struct vc_client *c, const uint64_t *v, uint32_t n, bool orphan)
{
	uint64_t failed[VC_MAX_NODES / 64] = {0};
	int err[VC_MAX_NODES] = {0};
	int rc = 0;
	int64_t now = vc_now_ms();
	for (uint32_t i = 0; i < n; i++) {
		int idx = node_of(c, v[i]);
		int r;
		if (idx >= 0 && (failed[idx / 64] >> (idx % 64) & 1))
			r = err[idx];
		else if (orphan && idx >= 0 && !vc_node_up(&c->cfg.nodes[idx], VC_SVC_MEMPOOL, now))
			r = -ETIMEDOUT;
		else
			r = free_one(c, v[i]);
		if (gone(r))
			continue;
		if (idx >= 0) {
			failed[idx / 64] |= UINT64_C(1) << (idx % 64);
			err[idx] = r;
		}
		if (!rc)
			rc = r;
		if (orphan && idx >= 0)
			orphans_add(&c->orphans, v[i]);
	}
	return rc;
}

/* Mallocs that got no reply (mem_find.h): sends each again to its node,
 * once that node is out of back-off, and frees what it answers. */
static void pending_retry(struct vc_client *c)
{
	struct vc_pending p[16];
	int64_t now = vc_now_ms();
	size_t n = vc_pending_take(c, p, 16, now);
	uint64_t skip[VC_MAX_NODES / 64] = {0};
	for (size_t i = 0; i < n; i++) {
		int idx = p[i].idx;
		if (idx >= c->cfg.nnodes)
			continue;
		bool skipped = skip[idx / 64] >> (idx % 64) & 1;
		if (skipped || !vc_node_up(&c->cfg.nodes[idx], VC_SVC_MEMPOOL, now)) {
			skip[idx / 64] |= UINT64_C(1) << (idx % 64);
			vc_pending_add(c, idx, p[i].line, strlen(p[i].line), p[i].at_ms);
			continue;
		}
		struct vc_reply rep;
		int rc = vc_call(c, idx, p[i].line, strlen(p[i].line), NULL, 0, VC_IDEMPOTENT, &rep);
		free(rep.data);
		uint64_t v;
		if (rc == 0 && strncmp(rep.line, "OK ", 3) == 0 &&
		    vuid_parse(rep.line + 3, strlen(rep.line + 3), &v) == 0) {
			if (!gone(free_one(c, v)))
				orphans_add(&c->orphans, v);
		} else if (rc == -ETIMEDOUT || rc == -ECONNRESET || rc == -EPIPE || rc == -EBADMSG) {
			skip[idx / 64] |= UINT64_C(1) << (idx % 64);
			vc_pending_add(c, idx, p[i].line, strlen(p[i].line), p[i].at_ms);
		} /* else the node refused it (full): nothing was allocated */
	}
}

/* Frees what earlier rollbacks could not, for nodes that are out of
 * back-off; a little at a time, at the start of malloc and free calls. */
static void orphans_retry(struct vc_client *c)
{
	pending_retry(c);
	uint64_t batch[64];
	size_t n = orphans_take(&c->orphans, batch, 64);
	if (n == 0)
		return;
	uint64_t skip[VC_MAX_NODES / 64] = {0};
	int64_t now = vc_now_ms();
	for (size_t i = 0; i < n; i++) {
		int idx = node_of(c, batch[i]);
		if (idx < 0)
			continue; /* no longer configured: nothing to ask */
		bool skipped = skip[idx / 64] >> (idx % 64) & 1;
		if (!skipped && vc_node_up(&c->cfg.nodes[idx], VC_SVC_MEMPOOL, now) &&
		    gone(free_one(c, batch[i])))
			continue;
		skip[idx / 64] |= UINT64_C(1) << (idx % 64);
		orphans_add(&c->orphans, batch[i]);
	}
}

/* set on one allocation: whole-value (offset < 0) or a patch at offset. */
static int set_one(struct vc_client *c, uint64_t vuid, int64_t offset, const void *data, size_t len)
{
	char hdr[96], hex[VUID_HEX_MAX + 1];
	vuid_format(vuid, hex);
	int hl = offset < 0 ? snprintf(hdr, sizeof hdr, "set %s %zu\r\n", hex, len)
			    : snprintf(hdr, sizeof hdr, "set %s %zu %" PRId64 "\r\n", hex, len, offset);
	struct vc_reply rep;
	/* the same bytes at the same place: safe to re-send */
	int rc = call_vuid(c, vuid, hdr, (size_t)hl, data ? data : "", len, VC_IDEMPOTENT, &rep);
	free(rep.data);
	return rc;
}

/* get on one allocation: whole value (len_or_whole < 0) or a range. */
static int get_one(struct vc_client *c, uint64_t vuid, uint64_t off, int64_t len,
		   struct vc_reply *rep)
{
	char hdr[96], hex[VUID_HEX_MAX + 1];
	vuid_format(vuid, hex);
	int hl = len < 0 ? snprintf(hdr, sizeof hdr, "get %s\r\n", hex)
			 : snprintf(hdr, sizeof hdr, "get %s %" PRIu64 " %" PRId64 "\r\n", hex, off,
				    len);
	int rc = call_vuid(c, vuid, hdr, (size_t)hl, NULL, 0, VC_IDEMPOTENT, rep);
	if (rc == 0 && strncmp(rep->line, "VALUE ", 6) != 0) {
		free(rep->data);
		rep->data = NULL;
		return -VIRGO_EBADREPLY;
	}
	return rc;
}

static int load_span(struct vc_client *c, uint64_t vuid, struct span *s)
{
	if (span_cache_get(&c->spans, vuid, s) == 0)
		return 0;
	struct vc_reply rep;
	int rc = get_one(c, vuid, 0, -1, &rep);
	if (rc == 0)
		rc = span_parse(rep.data, rep.data_len, s);
	free(rep.data);
	if (rc == 0)
		span_cache_put(&c->spans, vuid, s);
	return rc;
}

/* Does chunk i of s overlap the byte range [offset, offset+len)?  If so,
 * [*a, *b) is the overlap in span coordinates and *cstart the chunk's
 * first byte. */
static bool chunk_overlap(const struct span *s, uint32_t i, uint64_t offset, uint64_t len,
			  uint64_t *cstart, uint64_t *a, uint64_t *b)
{
	*cstart = (uint64_t)i * s->chunk;
	uint64_t cend = *cstart + s->chunk;
	*a = offset > *cstart ? offset : *cstart;
	*b = offset + len < cend ? offset + len : cend;
	return *a < *b;
}

/* Ends a span operation: a chunk that is gone means the span was freed
 * (by anyone), so forget the cached descriptor. */
static int span_done(struct vc_client *c, uint64_t vuid, struct span *s, int rc)
{
	if (rc == -ENOENT)
		span_cache_drop(&c->spans, vuid);
	span_clear(s);
	return rc;
}

int virgo_malloc(size_t size, virgo_vuid_t *vuid) { return virgo_malloc_ex(size, NULL, vuid); }

int virgo_malloc_ex(size_t size, const struct virgo_malloc_opts *o, virgo_vuid_t *vuid)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (size == 0 || !vuid || (o && o->owner && *o->owner && !vc_owner_ok(o->owner)))
		return -EINVAL;
	/* no tag given: the process's default (host:pid); "" asks for none */
	struct virgo_malloc_opts eff = {0};
	if (o)
		eff = *o;
	if (!eff.owner)
		eff.owner = virgo_owner_default();
	else if (!*eff.owner)
		eff.owner = NULL;
	o = &eff;
	orphans_retry(c);
	uint64_t cs = c->cfg.chunk_size;
	if (size <= cs)
		return alloc_one(c, size, false, o, vuid);
	/* ceil(size / cs) without the size + cs - 1 that wraps for sizes
	 * near SIZE_MAX (it made virgo_malloc(SIZE_MAX) a 0-chunk span) */
	uint64_t n = (uint64_t)size / cs + ((uint64_t)size % cs != 0);
	if (n > SPAN_MAX_CHUNKS)
		return -ENOMEM; /* more than one span can ever hold */
	struct span s = {.total = size, .chunk = cs, .n = (uint32_t)n};
	s.vuids = calloc(n, sizeof *s.vuids);
	if (!s.vuids)
		return -ENOMEM;
	int rc = 0;
	uint32_t got = 0;
	for (; got < s.n && rc == 0; got++) {
		uint64_t part = got + 1 < s.n ? cs : size - cs * (s.n - 1);
		rc = alloc_one(c, part, false, o, &s.vuids[got]);
	}
	if (rc == 0) {
		size_t dl;
		char *desc = span_format(&s, &dl);
		rc = desc ? alloc_one(c, dl, true, o, vuid) : -ENOMEM;
		if (rc == 0) {
			rc = set_one(c, *vuid, -1, desc, dl);
			if (rc && !gone(free_one(c, *vuid)))
				orphans_add(&c->orphans, *vuid);
		}
		free(desc);
	} else {
		got--; /* the failed one holds nothing */
	}
	/* roll back; what an unreachable node holds is freed later */
	if (rc)
		free_chunks(c, s.vuids, got, true);
	span_clear(&s);
	return rc;
}

int virgo_set(virgo_vuid_t vuid, const void *data, size_t len)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (!vuid_is_span(vuid))
		return set_one(c, vuid, -1, data, len);
	struct span s;
	int rc = load_span(c, vuid, &s);
	if (rc)
		return rc;
	if (len > s.total)
		rc = -ERANGE;
	/* every chunk gets its piece, chunks past the end an empty value,
	 * so a shorter set really replaces a longer one */
	for (uint32_t i = 0; i < s.n && rc == 0; i++) {
		uint64_t start = (uint64_t)i * s.chunk;
		size_t piece = start >= len ? 0 : (len - start < s.chunk ? len - start : s.chunk);
		rc = set_one(c, s.vuids[i], -1, piece ? (const void *)((const uint8_t *)data + start) : (const void *)"", piece);
	}
	return span_done(c, vuid, &s, rc);
}

int virgo_set_at(virgo_vuid_t vuid, size_t offset, const void *data, size_t len)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (offset > INT64_MAX)
		return -ERANGE;
	if (!vuid_is_span(vuid))
		return set_one(c, vuid, (int64_t)offset, data, len);
	struct span s;
	int rc = load_span(c, vuid, &s);
	if (rc)
		return rc;
	if (offset > s.total || len > s.total - offset)
		rc = -ERANGE;
	for (uint32_t i = 0; i < s.n && rc == 0; i++) {
		uint64_t cstart, a, b;
		if (!chunk_overlap(&s, i, offset, len, &cstart, &a, &b))
			continue;
		rc = set_one(c, s.vuids[i], (int64_t)(a - cstart), (const uint8_t *)data + (a - offset),
			     (size_t)(b - a));
	}
	return span_done(c, vuid, &s, rc);
}

int virgo_get(virgo_vuid_t vuid, void **data, size_t *len)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	*data = NULL;
	*len = 0;
	struct vc_reply rep;
	if (!vuid_is_span(vuid)) {
		int rc = get_one(c, vuid, 0, -1, &rep);
		if (rc) {
			free(rep.data);
			return rc;
		}
		*len = rep.data_len;
		*data = rep.data_len ? rep.data : NULL;
		if (!rep.data_len)
			free(rep.data);
		return 0;
	}
	struct span s;
	int rc = load_span(c, vuid, &s);
	if (rc)
		return rc;
	uint8_t **parts = calloc(s.n, sizeof *parts);
	size_t *plen = calloc(s.n, sizeof *plen);
	uint64_t total = 0;
	if (!parts || !plen)
		rc = -ENOMEM;
	for (uint32_t i = 0; i < s.n && rc == 0; i++) {
		rc = get_one(c, s.vuids[i], 0, -1, &rep);
		parts[i] = rep.data;
		plen[i] = rep.data_len;
		if (rc == 0 && plen[i] && (uint64_t)i * s.chunk + plen[i] > total)
			total = (uint64_t)i * s.chunk + plen[i];
	}
	uint8_t *out = NULL;
	if (rc == 0 && total) {
		out = calloc(1, (size_t)total); /* gaps inside the value read as zero */
		if (!out)
			rc = -ENOMEM;
		for (uint32_t i = 0; i < s.n && rc == 0; i++)
			if (plen[i])
				memcpy(out + (size_t)i * s.chunk, parts[i], plen[i]);
	}
	for (uint32_t i = 0; parts && i < s.n; i++)
		free(parts[i]);
	free(parts);
	free(plen);
	span_done(c, vuid, &s, rc);
	if (rc == 0) {
		*data = out;
		*len = (size_t)total;
	}
	return rc;
}

int virgo_get_at(virgo_vuid_t vuid, size_t offset, void *buf, size_t len)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (offset > INT64_MAX || len > INT64_MAX)
		return -ERANGE;
	struct vc_reply rep;
	if (!vuid_is_span(vuid)) {
		int rc = get_one(c, vuid, offset, (int64_t)len, &rep);
		if (rc == 0 && rep.data_len != len)
			rc = -VIRGO_EBADREPLY;
		if (rc == 0)
			memcpy(buf, rep.data, len);
		free(rep.data);
		return rc;
	}
	struct span s;
	int rc = load_span(c, vuid, &s);
	if (rc)
		return rc;
	if (offset > s.total || len > s.total - offset)
		rc = -ERANGE;
	for (uint32_t i = 0; i < s.n && rc == 0; i++) {
		uint64_t cstart, a, b;
		if (!chunk_overlap(&s, i, offset, len, &cstart, &a, &b))
			continue;
		rc = get_one(c, s.vuids[i], a - cstart, (int64_t)(b - a), &rep);
		if (rc == 0 && rep.data_len != b - a)
			rc = -VIRGO_EBADREPLY;
		if (rc == 0)
			memcpy((uint8_t *)buf + (a - offset), rep.data, (size_t)(b - a));
		free(rep.data);
	}
	return span_done(c, vuid, &s, rc);
}

int virgo_free(virgo_vuid_t vuid)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	orphans_retry(c);
	if (!vuid_is_span(vuid))
		return free_one(c, vuid);
	struct span s;
	int rc = load_span(c, vuid, &s);
	if (rc)
		return rc;
	/* Free every chunk we can.  If one could not be freed (its node
	 * unreachable), keep the descriptor: it is the only record of that
	 * chunk, and a later virgo_free frees the rest (chunks already
	 * gone answer ENOENT, which counts as freed). */
	rc = free_chunks(c, s.vuids, s.n, false);
	span_clear(&s);
	if (rc)
		return rc;
	span_cache_drop(&c->spans, vuid);
	return free_one(c, vuid);
}

static int renew_one(struct vc_client *c, uint64_t vuid, uint64_t ttl_ms)
{
	char hdr[96], hex[VUID_HEX_MAX + 1];
	vuid_format(vuid, hex);
	int hl = snprintf(hdr, sizeof hdr, "renew %s %" PRIu64 "\r\n", hex, ttl_ms);
	struct vc_reply rep;
	/* setting the same lease again only moves its end a little */
	int rc = call_vuid(c, vuid, hdr, (size_t)hl, NULL, 0, VC_IDEMPOTENT, &rep);
	free(rep.data);
	return rc;
}

int virgo_renew(virgo_vuid_t vuid, uint64_t ttl_ms)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	if (!vuid_is_span(vuid))
		return renew_one(c, vuid, ttl_ms);
	struct span s;
	int rc = load_span(c, vuid, &s);
	if (rc)
		return rc;
	/* the descriptor first: while it lives, the span can be freed */
	rc = renew_one(c, vuid, ttl_ms);
	for (uint32_t i = 0; i < s.n && rc == 0; i++)
		rc = renew_one(c, s.vuids[i], ttl_ms);
	return span_done(c, vuid, &s, rc);
}

void virgo_vuid_format(virgo_vuid_t vuid, char buf[17]) { vuid_format(vuid, buf); }

int virgo_vuid_parse(const char *s, virgo_vuid_t *vuid)
{
	return vuid_parse(s, strlen(s), vuid);
}

unsigned virgo_vuid_node(virgo_vuid_t vuid) { return vuid_node(vuid); }
