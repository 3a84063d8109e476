/*
 * eventnet_graph.c - the in-memory causal graph and its clocks
 * (eventnet_graph.h): an array of events in recording order, an
 * open-addressing id index, and the clock rules.  Every change checks
 * everything first and then applies, so a refused request changes nothing.
 */
#include "eventnet_graph.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define EVG_HUGE (2u << 20) /* from this size on: a mapping of its own */

/* Memory of size bytes (zeroed): a mapping of its own when large (the
 * slot table, the event chunks), so that it goes back to the system when
 * freed.  With populate every page is allocated here (the caller does
 * it outside the service's lock).  No huge pages for the event chunks: on
 * the shared VM their zeroing cost more than the TLB misses they saved
 * (perf, 16 clients: clear_page 21% of the samples); the index table,
 * probed at random, asks for them (grow: its probes' share of the samples
 * went from 11% to 5%, clear_page from 1% to 3%).  NULL when out of
 * memory.  Freed by big_free(p, size). */
static void *big_alloc(size_t size, bool populate)
{
	if (size < EVG_HUGE)
		return calloc(1, size);
	/* populate: the kernel allocates every page in the one call, not one
	 * page fault (a trap) per 4 KiB page on first touch */
	char *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | (populate ? MAP_POPULATE : 0), -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	return p;
}

static void big_free(void *p, size_t size)
{
	if (!p)
		return;
	if (size < EVG_HUGE)
		free(p);
	else
		munmap(p, size);
}

/* Eight bytes a step (ids are short: one to three steps), then
 * murmur3's 64-bit finaliser, so that ids differing in their last digits
 * do not land in neighbouring slots (long linear-probe runs).  The hash
 * lives only in memory (the index, the interned names). */
uint32_t evg_hash(const char *s, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15u ^ n;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 29;
	}
	if (i < n) {
		uint64_t w = 0;
		memcpy(&w, s + i, n - i);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
	}
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53u;
	h ^= h >> 33;
	return (uint32_t)h;
}

int evg_init(struct evg *g, uint16_t node_id, uint64_t max_events, uint64_t max_bytes)
{
	memset(g, 0, sizeof *g);
	g->node_id = node_id;
	g->max_events = max_events < UINT32_MAX / 2 ? max_events : UINT32_MAX / 2;
	g->max_bytes = max_bytes;
	g->nslot = 1024;
	g->slot = big_alloc(g->nslot * sizeof *g->slot, false);
	return g->slot ? 0 : -ENOMEM;
}

/* Frees what an event holds outside its block; returns the bytes
 * evg_bytes counted for it. */
static uint64_t event_release(struct evg_event *e)
{
	uint64_t b = 0;
	struct evg_more *m = e->more;
	if (m) {
		b += sizeof *m + 16 + m->capparents * sizeof *m->parents;
		if (m->rparents)
			b += strlen(m->rparents) + 1;
		if (m->eparents)
			b += strlen(m->eparents) + 1;
		if (m->conv)
			b += m->conv_len + 1;
		free(m->parents);
		free(m->rparents);
		free(m->eparents);
		free(m->conv);
		free(m);
		e->more = NULL;
	}
	return b;
}

void evg_free(struct evg *g)
{
	evg_reclaim(g, UINT64_MAX);
	for (uint32_t i = 0; i < g->n; i++)
		event_release(g->ev[i]);
	if (g->spare)
		g->spare->next = g->chunks;
	g->chunks = g->spare ? g->spare : g->chunks;
	while (g->chunks) {
		struct evg_chunk *c = g->chunks;
		g->chunks = c->next;
		big_free(c, c->size);
	}
	for (uint32_t i = 0; i < g->nnames; i++)
		free((char *)g->names[i]);
	for (size_t i = 0; i < g->ngone; i++)
		free(g->gone[i].text);
	free(g->gone);
	free(g->ev);
	big_free(g->slot, (size_t)g->nslot * sizeof *g->slot);
	big_free(g->old, (size_t)g->nold * sizeof *g->old);
	big_free(g->spare_slot, (size_t)g->nspare_slot * sizeof *g->spare_slot);
	free(g->names);
	free(g->mark);
	memset(g, 0, sizeof *g);
}

/* Index of id (hash given) in the table slot[0..nslot), or -1 with
 * *empty the slot it would take. */
static int64_t probe(const struct evg *g, const uint64_t *slot, uint32_t nslot, const char *id,
		     size_t n, uint32_t hash, uint32_t *empty)
{
	uint32_t mask = nslot - 1;
	for (uint32_t h = hash & mask;; h = (h + 1) & mask) {
		uint64_t s = slot[h];
		if (s == 0) {
			*empty = h;
			return -1;
		}
		if ((uint32_t)(s >> 32) != hash)
			continue; /* no need to touch the event */
		uint32_t i = (uint32_t)s - 1;
		const struct evg_event *e = g->ev[i];
		if (e->id_len == n && memcmp(evg_ev_id(e), id, n) == 0)
			return i;
	}
}

/* Index of id (hash given), or -1 with *empty the slot of the current
 * table it would take (the old one, while the index grows, is only read). */
static int64_t find_slot(const struct evg *g, const char *id, size_t n, uint32_t hash,
			 uint32_t *empty)
{
	int64_t i = probe(g, g->slot, g->nslot, id, n, hash, empty);
	if (i < 0 && g->old) {
		uint32_t unused;
		i = probe(g, g->old, g->nold, id, n, hash, &unused);
	}
	return i;
}

void evg_prefetch(const struct evg *g, uint32_t hash)
{
	__builtin_prefetch(&g->slot[hash & (g->nslot - 1)]);
	if (g->old) /* a new id is looked up in both while the index grows */
		__builtin_prefetch(&g->old[hash & (g->nold - 1)]);
}

int64_t evg_find(const struct evg *g, const char *id, size_t n)
{
	uint32_t empty;
	return find_slot(g, id, n, evg_hash(id, n), &empty);
}

static void slot_put(uint64_t *slot, uint32_t nslot, uint32_t hash, uint32_t idx)
{
	uint32_t mask = nslot - 1;
	uint32_t h = hash & mask;
	while (slot[h])
		h = (h + 1) & mask;
	slot[h] = (uint64_t)hash << 32 | (idx + 1);
}

/* Old index slots copied per new event while the index grows: the new
 * table (twice the size) takes nold / 2 more events before it must grow
 * in turn, and by then the nold old slots are copied (step >= 2).  The
 * copying costs the same whatever the step; a larger one ends sooner the
 * time during which a new id is looked up in both tables (16: an eighth
 * of the time; at most 16 x 64 slots more in one round of requests). */
#define EVG_MOVE_STEP 16

/* Copies up to k more slots of the old index into the current one; frees
 * the old one when all are.  The slots carry the hashes: no event is
 * touched. */
static void index_move(struct evg *g, uint32_t k)
{
	uint32_t end = g->nold - g->moved > k ? g->moved + k : g->nold;
	for (uint32_t i = g->moved; i < end; i++)
		if (g->old[i])
			slot_put(g->slot, g->nslot, (uint32_t)(g->old[i] >> 32),
				 (uint32_t)g->old[i] - 1);
	g->moved = end;
	if (end == g->nold) {
		big_free(g->old, (size_t)g->nold * sizeof *g->old);
		g->old = NULL;
		g->nold = g->moved = 0;
	}
}

/* An index table of n slots, zeroed (with populate: every page faulted
 * in here).  NULL when out of memory. */
static uint64_t *index_table(uint32_t n, bool populate)
{
	size_t size = (size_t)n * sizeof(uint64_t);
	uint64_t *t = big_alloc(size, false);
	if (!t || size < EVG_HUGE)
		return t;
	madvise(t, size, MADV_HUGEPAGE); /* random probes: TLB misses */
	if (populate && madvise(t, size, MADV_POPULATE_WRITE) != 0)
		for (size_t o = 0; o < size / sizeof *t; o += 4096 / sizeof *t)
			((volatile uint64_t *)t)[o] = 0; /* before Linux 5.14: by hand */
	return t;
}

uint64_t *evg_index_table_new(uint32_t nslot)
{
	return index_table(nslot, true);
}

uint32_t evg_index_spare_wanted(const struct evg *g)
{
	if (g->spare_slot || g->nslot > UINT32_MAX / 2)
		return 0;
	uint64_t ns = (uint64_t)g->nslot * 2;
	/* seven sixteenths full (it grows at half: the spare waits little,
	 * as it doubles the index's memory), and large enough that its
	 * zeroing matters; not when the bounds keep the index from growing
	 * (the spare would only hold memory) */
	if ((uint64_t)g->n * 16 < (uint64_t)g->nslot * 7 || ns * sizeof *g->slot < EVG_HUGE ||
	    g->max_events <= g->nslot / 2 ||
	    evg_bytes(g) + ns * sizeof *g->slot > g->max_bytes - g->max_bytes / 8)
		return 0;
	return (uint32_t)ns;
}

void evg_give_index_spare(struct evg *g, uint64_t *table, uint32_t nslot)
{
	if (!table)
		return;
	if (g->spare_slot || nslot != g->nslot * 2) { /* one came first, or the index grew */
		big_free(table, (size_t)nslot * sizeof *table);
		return;
	}
	g->spare_slot = table;
	g->nspare_slot = nslot;
}

/* Room for one more event: the array and the index. */
static int grow(struct evg *g)
{
	if (g->n == g->cap) {
		uint32_t cap = g->cap ? g->cap * 2 : 1024;
		struct evg_event **ev = realloc(g->ev, cap * sizeof *ev);
		if (!ev)
			return -ENOMEM;
		g->ev = ev;
		g->cap = cap;
	}
	if (g->old)
		index_move(g, EVG_MOVE_STEP);
	if ((uint64_t)(g->n + 1) * 2 > g->nslot) {
		if (g->old) /* not reached with EVG_MOVE_STEP >= 2; for safety */
			index_move(g, g->nold);
		uint32_t ns = g->nslot * 2;
		uint64_t *slot;
		if (g->spare_slot && g->nspare_slot == ns) { /* made ahead, outside the lock */
			slot = g->spare_slot;
			g->spare_slot = NULL;
			g->nspare_slot = 0;
		} else if (!(slot = index_table(ns, false))) {
			return -ENOMEM;
		}
		g->old = g->slot;
		g->nold = g->nslot;
		g->moved = 0;
		g->slot = slot;
		g->nslot = ns;
	}
	return 0;
}

uint64_t evg_bytes(const struct evg *g)
{
	return g->bytes + ((uint64_t)g->nslot + g->nold + g->nspare_slot) * sizeof *g->slot +
	       (uint64_t)g->cap * sizeof *g->ev + (uint64_t)g->nmark * sizeof *g->mark;
}

/* What the next event adds beyond its block: a new chunk when the head
 * is nearly full, a larger index or array when they are due. */
static uint64_t grow_bytes(const struct evg *g)
{
	uint64_t b = 0;
	if ((uint64_t)(g->n + 1) * 2 > g->nslot && g->nspare_slot != g->nslot * 2)
		b += (uint64_t)g->nslot * 2 * sizeof *g->slot; /* (a spare is counted already) */
	if (g->n == g->cap)
		b += (uint64_t)(g->cap ? g->cap : 1024) * sizeof *g->ev;
	if (!g->chunks || g->chunks->left < 4096)
		b += EVG_HUGE;
	return b;
}

/* Events are never freed one by one (eviction frees whole chunks, the
 * oldest; evg_free the rest): they are carved from 2 MiB chunks, no
 * malloc per event.  8-byte aligned. */
#define EVG_CHUNK (EVG_HUGE - sizeof(struct evg_chunk))

struct evg_chunk *evg_chunk_new(void)
{
	struct evg_chunk *c = big_alloc(EVG_HUGE, true);
	if (!c)
		return NULL;
	c->next = NULL;
	c->first = 0;
	c->left = EVG_CHUNK;
	c->size = EVG_HUGE;
	return c;
}

bool evg_spare_wanted(const struct evg *g)
{
	return g->spare == NULL;
}

void evg_give_spare(struct evg *g, struct evg_chunk *c)
{
	if (!c)
		return;
	if (g->spare)
		big_free(c, c->size);
	else
		g->spare = c;
}

static void *chunk_alloc(struct evg *g, size_t sz)
{
	sz = (sz + 7) & ~(size_t)7;
	if (sz > EVG_CHUNK) /* not reached: an event is at most ~130 KiB */
		return NULL;
	if (!g->chunks || g->chunks->left < sz) {
		struct evg_chunk *c = g->spare ? g->spare : evg_chunk_new();
		if (!c)
			return NULL;
		g->spare = NULL;
		g->bytes += EVG_HUGE;
		c->first = g->base + g->n; /* the event being made is the next one */
		c->next = g->chunks;
		g->chunks = c;
	}
	struct evg_chunk *c = g->chunks;
	void *p = c->data + (EVG_CHUNK - c->left);
	c->left -= (uint32_t)sz;
	return p;
}

#define EVG_NAMES_MAX 65536 /* distinct partakers strings interned; more are copied */

static bool name_eq(const char *name, struct evg_str s)
{
	return strncmp(name, s.p, s.n) == 0 && name[s.n] == '\0';
}

/* The partakers string s in the graph's memory: the one copy of it when
 * interned (most events name the same few; malloc'd, not in the chunks:
 * it outlives the event that brought it; kept until evg_free).  NULL
 * when empty, when not interned (*own set: the event's block holds a
 * copy of its own) or out of memory (*oom set). */
static const char *intern(struct evg *g, struct evg_str s, bool *oom, bool *own)
{
	*oom = false;
	*own = false;
	if (s.n == 0)
		return NULL;
	uint32_t h = evg_hash(s.p, s.n);
	uint32_t mask = g->nnames - 1;
	if (g->names)
		for (uint32_t i = h & mask; g->names[i]; i = (i + 1) & mask)
			if (name_eq(g->names[i], s))
				return g->names[i];
	if (g->unames >= EVG_NAMES_MAX) {
		*own = true;
		return NULL;
	}
	char *c = malloc(s.n + 1);
	if (!c) {
		*oom = true;
		return NULL;
	}
	g->bytes += s.n + 1 + 16;
	memcpy(c, s.p, s.n);
	c[s.n] = '\0';
	if ((g->unames + 1) * 2 > g->nnames) { /* small (<= 1 MiB): rebuilt at once */
		uint32_t nn = g->nnames ? g->nnames * 2 : 64;
		const char **t = calloc(nn, sizeof *t);
		if (!t) {
			g->bytes -= s.n + 1 + 16;
			free(c);
			*own = true; /* not interned: still correct */
			return NULL;
		}
		for (uint32_t i = 0; i < g->nnames; i++) {
			if (!g->names[i])
				continue;
			const char *x = g->names[i];
			uint32_t j = evg_hash(x, strlen(x)) & (nn - 1);
			while (t[j])
				j = (j + 1) & (nn - 1);
			t[j] = x;
		}
		g->bytes += (uint64_t)(nn - g->nnames) * sizeof *t;
		free(g->names);
		g->names = t;
		g->nnames = nn;
		mask = nn - 1;
	}
	uint32_t i = h & mask;
	while (g->names[i])
		i = (i + 1) & mask;
	g->names[i] = c;
	g->unames++;
	return c;
}

/* Bytes of an event's block. */
static size_t event_size(size_t id_n, size_t conv_n, unsigned vcn)
{
	return sizeof(struct evg_event) + vcn * sizeof(struct evc_ent) + id_n + 1 + conv_n + 1;
}

/* A new event's block; its clock vc (node:seq, its own entry, is not
 * stored but implied: evg_ev_clock). */
static struct evg_event *event_new(struct evg *g, struct evg_str id, uint32_t hash,
				   struct evg_str partakers, struct evg_str conv, const struct evc *vc,
				   uint16_t node, uint64_t seq)
{
	bool oom, own;
	const char *names = intern(g, partakers, &oom, &own);
	if (oom)
		return NULL;
	unsigned self = 0;
	for (unsigned i = 0; i < vc->n; i++)
		if (vc->e[i].node == node && vc->e[i].c == seq)
			self = 1;
	size_t sz = event_size(id.n, conv.n, vc->n - self);
	struct evg_event *e = chunk_alloc(g, sz + (own ? partakers.n + 1 : 0));
	if (!e)
		return NULL;
	memset(e, 0, sizeof *e);
	e->partakers = names;
	if (own) { /* after the conversation, in the same block */
		char *pc = (char *)e + sz;
		memcpy(pc, partakers.p, partakers.n);
		pc[partakers.n] = '\0';
		e->partakers = pc;
	}
	e->node = node;
	e->seq = seq;
	e->self = self;
	struct evc_ent *v = (struct evc_ent *)(e + 1);
	unsigned k = 0;
	for (unsigned i = 0; i < vc->n; i++)
		if (!self || vc->e[i].node != node)
			v[k++] = vc->e[i];
	e->vcn = (uint8_t)k;
	char *p = (char *)(v + k);
	memcpy(p, id.p, id.n);
	p[id.n] = '\0';
	e->id_len = (uint16_t)id.n;
	e->hash = hash;
	p += id.n + 1;
	if (conv.n)
		memcpy(p, conv.p, conv.n);
	p[conv.n] = '\0';
	e->conv_len = (uint32_t)conv.n;
	return e;
}

static void insert(struct evg *g, struct evg_event *e)
{
	g->ev[g->n] = e;
	slot_put(g->slot, g->nslot, e->hash, g->n);
	g->n++;
}

static struct evg_more *more_of(struct evg *g, struct evg_event *e)
{
	if (!e->more && (e->more = calloc(1, sizeof *e->more)))
		g->bytes += sizeof *e->more + 16;
	return e->more;
}

static bool has_parent(const struct evg_event *e, uint32_t p)
{
	for (uint32_t i = 0, n = evg_ev_nparents(e); i < n; i++)
		if (evg_ev_parent(e, i) == p)
			return true;
	return false;
}

static bool has_rparent(const struct evg_event *e, struct evg_str id)
{
	for (const char *s = evg_ev_rparents(e); s && *s;) {
		const char *c = strchr(s, ',');
		size_t n = c ? (size_t)(c - s) : strlen(s);
		if (n == id.n && memcmp(s, id.p, n) == 0)
			return true;
		s = c ? c + 1 : s + n;
	}
	return false;
}

static int add_parent(struct evg *g, struct evg_event *e, uint32_t p)
{
	if (!e->parent) {
		e->parent = p + 1;
		g->nedges++;
		return 0;
	}
	struct evg_more *m = more_of(g, e);
	if (!m)
		return -ENOMEM;
	if (m->nparents == m->capparents) {
		uint32_t cap = m->capparents ? m->capparents * 2 : 2;
		uint32_t *np = realloc(m->parents, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		g->bytes += (cap - m->capparents) * sizeof *np;
		m->parents = np;
		m->capparents = cap;
	}
	m->parents[m->nparents++] = p;
	g->nedges++;
	return 0;
}

static int add_rparent(struct evg *g, struct evg_event *e, struct evg_str id)
{
	struct evg_more *m = more_of(g, e);
	if (!m)
		return -ENOMEM;
	size_t old = m->rparents ? strlen(m->rparents) : 0;
	char *r = realloc(m->rparents, old + id.n + 2);
	if (!r)
		return -ENOMEM;
	if (old)
		r[old++] = ',';
	memcpy(r + old, id.p, id.n);
	r[old + id.n] = '\0';
	m->rparents = r;
	g->nedges++;
	g->bytes += id.n + 1;
	return 0;
}

/* Appends id to the csv *csv (malloc'd), counted in bytes. */
static int csv_add(struct evg *g, char **csv, const char *id, size_t n)
{
	size_t old = *csv ? strlen(*csv) : 0;
	char *r = realloc(*csv, old + n + 2);
	if (!r)
		return -ENOMEM;
	if (old)
		r[old++] = ',';
	memcpy(r + old, id, n);
	r[old + n] = '\0';
	*csv = r;
	g->bytes += n + 1;
	return 0;
}

/* Keeps the current text of an evicted event whose conversation was
 * appended to (its vertex line may be behind: the service rewrites it). */
static void gone_add(struct evg *g, uint64_t ord, const struct evg_event *e)
{
	size_t cl;
	const char *c = evg_ev_conv(e, &cl);
	const char *p = evg_ev_partakers(e);
	size_t pl = strlen(p);
	if (g->ngone == g->capgone) {
		size_t cap = g->capgone ? g->capgone * 2 : 16;
		struct evg_gone *n = realloc(g->gone, cap * sizeof *n);
		if (!n)
			return; /* the journal still has it */
		g->gone = n;
		g->capgone = cap;
	}
	char *t = malloc(e->id_len + pl + cl + 3);
	if (!t)
		return;
	memcpy(t, evg_ev_id(e), e->id_len + 1u);
	memcpy(t + e->id_len + 1, p, pl + 1);
	memcpy(t + e->id_len + 1 + pl + 1, c, cl + 1);
	g->gone[g->ngone++] = (struct evg_gone){ord, t, e->id_len, pl, cl};
}

void evg_take_gone(struct evg *g, struct evg_gone **out, size_t *n)
{
	*out = g->gone;
	*n = g->ngone;
	g->gone = NULL;
	g->ngone = g->capgone = 0;
}

void evg_reclaim(struct evg *g, uint64_t done)
{
	struct evg_chunk **pp = &g->dead;
	while (*pp) {
		struct evg_chunk *c = *pp;
		if (c->first < done) { /* first: the tag, once dead */
			*pp = c->next;
			big_free(c, c->size);
		} else {
			pp = &c->next;
		}
	}
}

/* The local cause p of e, evicted: by id in eparents. */
static void cause_evicted(struct evg *g, struct evg_event *e, uint32_t p)
{
	const struct evg_event *pe = g->ev[p];
	struct evg_more *m = more_of(g, e);
	if (m)
		csv_add(g, &m->eparents, evg_ev_id(pe), pe->id_len);
}

/* evg_evict, rounding up to at most limit events. */
static uint32_t evict(struct evg *g, uint32_t k, uint32_t limit)
{
	if (limit > g->n)
		limit = g->n;
	if (k > limit)
		k = limit;
	if (k == 0)
		return 0;
	/* up to the end of the chunk of the last one, unless it is the head */
	uint64_t last = g->base + k - 1;
	struct evg_chunk *newer = NULL;
	for (struct evg_chunk *c = g->chunks; c; newer = c, c = c->next)
		if (c->first <= last) {
			if (newer && newer->first > last && newer->first - g->base <= limit)
				k = (uint32_t)(newer->first - g->base);
			break;
		}
	/* the causes of the events that stay: shifted, or by id when evicted */
	for (uint32_t i = k; i < g->n; i++) {
		struct evg_event *e = g->ev[i];
		if (e->parent) {
			if (e->parent - 1 < k) {
				cause_evicted(g, e, e->parent - 1);
				e->parent = 0;
			} else {
				e->parent -= k;
			}
		}
		struct evg_more *m = e->more;
		if (!m || !m->nparents)
			continue;
		uint32_t w = 0;
		for (uint32_t j = 0; j < m->nparents; j++) {
			uint32_t p = m->parents[j];
			if (p < k)
				cause_evicted(g, e, p);
			else
				m->parents[w++] = p - k;
		}
		m->nparents = w;
	}
	for (uint32_t i = 0; i < k; i++) {
		struct evg_event *e = g->ev[i];
		if (e->more && e->more->conv)
			gone_add(g, g->base + i, e);
		g->bytes -= event_release(e);
	}
	memmove(g->ev, g->ev + k, (size_t)(g->n - k) * sizeof *g->ev);
	g->n -= k;
	g->base += k;
	/* the index again, from the events' hashes (the old table, while it
	 * grew, is dropped: every event is put in the current one) */
	if (g->old) {
		big_free(g->old, (size_t)g->nold * sizeof *g->old);
		g->old = NULL;
		g->nold = g->moved = 0;
	}
	memset(g->slot, 0, (size_t)g->nslot * sizeof *g->slot);
	for (uint32_t i = 0; i < g->n; i++)
		slot_put(g->slot, g->nslot, g->ev[i]->hash, i);
	/* the chunks whose events are all evicted (never the head) */
	newer = g->chunks;
	while (newer && newer->next && newer->first > g->base)
		newer = newer->next;
	if (newer && newer->first <= g->base) {
		struct evg_chunk *c = newer->next;
		newer->next = NULL;
		while (c) {
			struct evg_chunk *nx = c->next;
			g->bytes -= EVG_HUGE;
			c->first = g->tag;
			c->next = g->dead;
			g->dead = c;
			c = nx;
		}
	}
	return k;
}

uint32_t evg_evict(struct evg *g, uint32_t k)
{
	return evict(g, k, g->n);
}

/* Whether a new event of in fits within max_events / max_bytes. */
static bool fits(const struct evg *g, const struct evg_log_in *in)
{
	return g->n < g->max_events &&
	       evg_bytes(g) + grow_bytes(g) + in->partakers.n + 1 +
			       event_size(in->id.n, in->conv.n, EVC_MAX / 4) <=
		       g->max_bytes;
}

/* Evicts the oldest events (an eighth at least: the index is rebuilt
 * once per batch, not per event) until a new event of in fits.  0 or
 * -ENOSPC (max_bytes below what the graph needs with one event). */
static int make_room(struct evg *g, const struct evg_log_in *in)
{
	while (!fits(g, in)) {
		if (g->n <= 1)
			return -ENOSPC;
		uint32_t k = g->n / 8;
		if (g->n >= g->max_events && g->n - g->max_events + 1 > k)
			k = (uint32_t)(g->n - g->max_events + 1);
		if (k == 0)
			k = 1;
		/* the newest stays (an edge's cause, just logged) */
		evict(g, k, g->n - 1);
	}
	return 0;
}

enum evc_order evg_order(const struct evg_event *a, const struct evg_event *b)
{
	struct evc_ent x[EVC_MAX], y[EVC_MAX];
	unsigned xn = evg_ev_clock(a, x), yn = evg_ev_clock(b, y);
	return evc_compare_ents(x, xn, y, yn);
}

static bool str_eq(struct evg_str a, struct evg_str b)
{
	return a.n == b.n && memcmp(a.p, b.p, a.n) == 0;
}

/* The causes of an update of the recorded event e: all checked first. */
static int update(struct evg *g, uint32_t idx, const struct evg_log_in *in,
		  struct evg_change *out, const char **why)
{
	struct evg_event *e = g->ev[idx];
	size_t curlen;
	const char *cur = evg_ev_conv(e, &curlen);
	size_t newlen = curlen;
	if (in->conv.n)
		newlen += in->conv.n + (curlen ? 1 : 0);
	if (newlen > EVG_CONV_MAX) {
		*why = "the event's conversations would exceed 64 KiB";
		return -E2BIG;
	}
	if (in->conv.n && evg_bytes(g) + newlen + 1 > g->max_bytes) {
		*why = "the event graph is full (eventnet_max_bytes) up to this event";
		return -ENOSPC;
	}
	for (unsigned k = 0; k < in->nafter; k++) {
		struct evg_str a = in->after[k];
		int64_t p = evg_find(g, a.p, a.n);
		if (p == (int64_t)idx) {
			*why = "an event cannot cause itself";
			return -ELOOP;
		}
		if (p >= 0) {
			if (evg_order(g->ev[p], e) != EVC_BEFORE) {
				*why = "the cause was recorded after the event: the edge would make a cycle";
				return -ELOOP;
			}
		} else if (!has_rparent(e, a)) {
			struct evc_ent ev[EVC_MAX];
			unsigned en = evg_ev_clock(e, ev);
			enum evc_order o = in->clock ? evc_compare_ents(in->clock->e, in->clock->n,
									 ev, en)
						     : EVC_CONCURRENT;
			if (o != EVC_BEFORE && o != EVC_EQUAL) {
				*why = "a cause recorded elsewhere can be added to a recorded event only "
				       "with a clock= that precedes it";
				return -ELOOP;
			}
		}
	}
	/* apply */
	if (in->conv.n) {
		struct evg_more *m = more_of(g, e);
		char *c = m ? realloc(m->conv, newlen + 1) : NULL;
		if (!c)
			return -ENOMEM;
		if (!m->conv && curlen) /* the first append: from the inline copy */
			memcpy(c, cur, curlen);
		size_t n = curlen;
		if (n)
			c[n++] = '#';
		memcpy(c + n, in->conv.p, in->conv.n);
		c[newlen] = '\0';
		g->bytes += newlen - m->conv_len + (m->conv ? 0 : 1);
		m->conv = c;
		m->conv_len = newlen;
		out->conv_appended = true;
	}
	for (unsigned k = 0; k < in->nafter; k++) {
		struct evg_str a = in->after[k];
		int64_t p = evg_find(g, a.p, a.n);
		int rc = 0;
		if (p >= 0 && !has_parent(e, (uint32_t)p))
			rc = add_parent(g, e, (uint32_t)p);
		else if (p < 0 && !has_rparent(e, a))
			rc = add_rparent(g, e, a);
		else
			continue;
		if (rc)
			return rc;
		out->added[out->nadded++] = a;
	}
	return 0;
}

int evg_log(struct evg *g, const struct evg_log_in *in, struct evg_change *out, const char **why)
{
	/* not the whole struct: added[] is read up to nadded */
	out->idx = 0;
	out->created = out->conv_appended = false;
	out->nadded = 0;
	*why = "out of memory";
	if (in->nafter > 16) {
		*why = "too many causes";
		return -EINVAL;
	}
	int rc = grow(g); /* first: the slot found below stays valid */
	if (rc)
		return rc;
	uint32_t empty;
	uint32_t hash = in->hash ? in->hash : evg_hash(in->id.p, in->id.n);
	int64_t have = find_slot(g, in->id.p, in->id.n, hash, &empty);
	int64_t before_have = have;
	if (have >= 0) {
		/* an appended conversation at the bound: the events older than
		 * this one make room (an eighth at most per batch) */
		size_t cl;
		evg_ev_conv(g->ev[have], &cl);
		while (in->conv.n && have > 0 &&
		       evg_bytes(g) + cl + in->conv.n + 2 > g->max_bytes) {
			uint32_t k = g->n / 8 < have ? g->n / 8 : (uint32_t)have;
			have -= evict(g, k ? k : 1, (uint32_t)have);
		}
		if (have != before_have) /* the index was rebuilt */
			find_slot(g, in->id.p, in->id.n, hash, &empty);
		out->idx = (uint32_t)have;
		return update(g, (uint32_t)have, in, out, why);
	}
	if (!fits(g, in)) {
		if (make_room(g, in) != 0) {
			*why = "eventnet_max_bytes is too small to hold an event";
			return -ENOSPC;
		}
		find_slot(g, in->id.p, in->id.n, hash, &empty); /* the index was rebuilt */
	}
	if (in->conv.n > EVG_CONV_MAX) {
		*why = "the event's conversations would exceed 64 KiB";
		return -E2BIG;
	}
	struct evc v;
	v.n = g->clock.n; /* only the entries in use: the struct is 1 KiB */
	memcpy(v.e, g->clock.e, v.n * sizeof v.e[0]);
	uint64_t lam = g->lamport > in->lamport ? g->lamport : in->lamport;
	if (in->clock) {
		if (evc_get(in->clock, g->node_id) > g->seq) {
			*why = "clock= names events of this node that it never recorded";
			return -EINVAL;
		}
		if (evc_merge(&v, in->clock) != 0) {
			*why = "clock= would name more than 64 nodes";
			return -EINVAL;
		}
	}
	for (unsigned k = 0; k < in->nafter; k++) {
		if (str_eq(in->after[k], in->id)) {
			*why = "an event cannot cause itself";
			return -ELOOP;
		}
		int64_t p = evg_find(g, in->after[k].p, in->after[k].n);
		if (p < 0 && !in->clock) {
			*why = "a cause is not recorded on this node: give its clock (clock=) when it "
			       "was recorded on another node";
			return -ENOENT;
		}
		if (p < 0)
			continue;
		const struct evg_event *pe = g->ev[p];
		if (pe->lamport > lam)
			lam = pe->lamport;
		struct evc_ent pv[EVC_MAX];
		unsigned pn = evg_ev_clock(pe, pv);
		if (evc_merge_ents(&v, pv, pn) != 0) {
			*why = "the clock would name more than 64 nodes";
			return -EINVAL;
		}
	}
	if (evc_set(&v, g->node_id, g->seq + 1) != 0) {
		*why = "the clock would name more than 64 nodes";
		return -EINVAL;
	}
	struct evg_event *e =
		event_new(g, in->id, hash, in->partakers, in->conv, &v, g->node_id, g->seq + 1);
	if (!e)
		return -ENOMEM;
	++g->seq;
	e->lamport = g->lamport = lam + 1;
	g->clock.n = v.n;
	memcpy(g->clock.e, v.e, v.n * sizeof v.e[0]);
	g->ev[g->n] = e;
	g->slot[empty] = (uint64_t)e->hash << 32 | (g->n + 1);
	g->n++;
	out->idx = g->n - 1;
	out->created = true;
	for (unsigned k = 0; k < in->nafter; k++) {
		struct evg_str a = in->after[k];
		int64_t p = evg_find(g, a.p, a.n);
		if (p >= 0 ? has_parent(e, (uint32_t)p) : has_rparent(e, a))
			continue; /* named twice */
		rc = p >= 0 ? add_parent(g, e, (uint32_t)p) : add_rparent(g, e, a);
		if (rc)
			return rc;
		out->added[out->nadded++] = a;
	}
	return 0;
}

int evg_edge(struct evg *g, struct evg_str from, struct evg_str to, struct evg_change ch[2],
	     int *nch, const char **why)
{
	*nch = 0;
	if (str_eq(from, to)) {
		*why = "an event cannot cause itself: the edge would make a cycle";
		return -ELOOP;
	}
	int64_t fi = evg_find(g, from.p, from.n), ti = evg_find(g, to.p, to.n);
	if (ti >= 0 && fi < 0) {
		*why = "the effect is recorded and the cause is not: a cause must be logged before "
		       "its effect (the edge would make a cycle)";
		return -ELOOP;
	}
	if (fi < 0) {
		struct evg_log_in in = {.id = from};
		int rc = evg_log(g, &in, &ch[0], why);
		if (rc)
			return rc;
		(*nch)++;
	}
	struct evg_log_in in = {.id = to, .after = &from, .nafter = 1};
	uint64_t base = g->base;
	int rc = evg_log(g, &in, &ch[*nch], why);
	if (*nch) /* from's index, if this log evicted (never from: the newest) */
		ch[0].idx -= (uint32_t)(g->base - base);
	if (rc)
		return rc;
	(*nch)++;
	return 0;
}

int evg_replay_event(struct evg *g, struct evg_str id, struct evg_str partakers,
		     struct evg_str conv, uint16_t node, uint64_t seq, uint64_t lamport,
		     const struct evc *vc)
{
	if (conv.n > EVG_CONV_MAX)
		return -1;
	int64_t have = evg_find(g, id.p, id.n);
	if (have >= 0) /* logged again after it was evicted: so were those before it */
		evg_evict(g, (uint32_t)have + 1);
	struct evg_log_in in = {.id = id, .partakers = partakers, .conv = conv};
	if (!fits(g, &in))
		make_room(g, &in); /* what was accepted once is replayed even so */
	if (grow(g) != 0)
		return -1;
	struct evg_event *e = event_new(g, id, evg_hash(id.p, id.n), partakers, conv, vc, node, seq);
	if (!e)
		return -1;
	e->lamport = lamport;
	insert(g, e);
	if (evc_merge(&g->clock, vc) != 0)
		return -1;
	if (node == g->node_id && seq > g->seq)
		g->seq = seq;
	if (lamport > g->lamport)
		g->lamport = lamport;
	return 0;
}

int evg_replay_conv(struct evg *g, struct evg_str id, struct evg_str conv)
{
	struct evg_log_in in = {.id = id, .conv = conv};
	struct evg_change ch;
	const char *why;
	int64_t i = evg_find(g, id.p, id.n);
	if (i < 0)
		return 1; /* evicted */
	uint64_t max = g->max_bytes;
	g->max_bytes = UINT64_MAX; /* what was accepted once stays */
	int rc = update(g, (uint32_t)i, &in, &ch, &why);
	g->max_bytes = max;
	return rc ? -1 : 0;
}

int evg_replay_cause(struct evg *g, struct evg_str id, struct evg_str cause)
{
	int64_t i = evg_find(g, id.p, id.n);
	if (i < 0)
		return 1; /* evicted */
	struct evg_event *e = g->ev[i];
	int64_t p = evg_find(g, cause.p, cause.n);
	if (p >= 0)
		return has_parent(e, (uint32_t)p) ? 0 : add_parent(g, e, (uint32_t)p);
	return has_rparent(e, cause) ? 0 : add_rparent(g, e, cause);
}

static int cmp_causal(const void *pa, const void *pb, void *arg)
{
	const struct evg *g = arg;
	const struct evg_event *a = g->ev[*(const uint32_t *)pa], *b = g->ev[*(const uint32_t *)pb];
	if (a->lamport != b->lamport)
		return a->lamport < b->lamport ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Appends the csv s to the csv buffer *b (rlen / rcap).  0 or -1. */
static int csv_cat(char **b, size_t *len, size_t *cap, const char *s)
{
	size_t l = strlen(s);
	if (*len + l + 2 > *cap) {
		size_t nc = (*len + l + 2) * 2;
		char *r = realloc(*b, nc);
		if (!r)
			return -1;
		*b = r;
		*cap = nc;
	}
	if (*len)
		(*b)[(*len)++] = ',';
	memcpy(*b + *len, s, l);
	*len += l;
	(*b)[*len] = '\0';
	return 0;
}

int evg_why(struct evg *g, uint32_t idx, uint32_t **out, size_t *n, char **remote,
	    char **evicted)
{
	*out = NULL;
	*n = 0;
	*remote = NULL;
	*evicted = NULL;
	if (g->nmark < g->n) { /* marks are for why only: sized here, not on ingest */
		uint32_t *m = realloc(g->mark, (size_t)g->cap * sizeof *m);
		if (!m)
			return -ENOMEM;
		memset(m + g->nmark, 0, (size_t)(g->cap - g->nmark) * sizeof *m);
		g->mark = m;
		g->nmark = g->cap;
	}
	if (++g->epoch == 0) { /* wrapped: clear the marks once */
		memset(g->mark, 0, (size_t)g->nmark * sizeof *g->mark);
		g->epoch = 1;
	}
	size_t cap = 64, len = 0, rlen = 0, rcap = 0, elen = 0, ecap = 0;
	uint32_t *stack = malloc(cap * sizeof *stack);
	char *rem = NULL, *ev = NULL;
	if (!stack)
		return -ENOMEM;
	stack[len++] = idx;
	g->mark[idx] = g->epoch;
	size_t head = 0; /* stack[0..head) are done, the rest to visit */
	while (head < len) {
		const struct evg_event *e = g->ev[stack[head++]];
		for (uint32_t k = 0, np = evg_ev_nparents(e); k < np; k++) {
			uint32_t p = evg_ev_parent(e, k);
			if (g->mark[p] == g->epoch)
				continue;
			g->mark[p] = g->epoch;
			if (len == cap) {
				uint32_t *s = realloc(stack, cap * 2 * sizeof *s);
				if (!s)
					goto oom;
				stack = s;
				cap *= 2;
			}
			stack[len++] = p;
		}
		const char *rp = evg_ev_rparents(e), *ep = evg_ev_eparents(e);
		if (rp && csv_cat(&rem, &rlen, &rcap, rp) != 0)
			goto oom;
		if (ep && csv_cat(&ev, &elen, &ecap, ep) != 0)
			goto oom;
	}
	/* stack[0] is the event itself; the rest its ancestors */
	memmove(stack, stack + 1, (len - 1) * sizeof *stack);
	len--;
	qsort_r(stack, len, sizeof *stack, cmp_causal, g);
	*out = stack;
	*n = len;
	*remote = rem;
	*evicted = ev;
	return 0;
oom:
	free(stack);
	free(rem);
	free(ev);
	return -ENOMEM;
}

size_t evg_parents_len(const struct evg *g, const struct evg_event *e)
{
	size_t n = 0;
	for (uint32_t k = 0, np = evg_ev_nparents(e); k < np; k++)
		n += g->ev[evg_ev_parent(e, k)]->id_len + 1u;
	const char *rp = evg_ev_rparents(e), *ep = evg_ev_eparents(e);
	if (rp)
		n += strlen(rp) + 1;
	if (ep)
		n += strlen(ep) + 1;
	return n ? n - 1 : 0;
}

size_t evg_parents_csv(const struct evg *g, const struct evg_event *e, char *buf, size_t cap)
{
	size_t n = 0;
	for (uint32_t k = 0, np = evg_ev_nparents(e); k < np; k++) {
		const struct evg_event *p = g->ev[evg_ev_parent(e, k)];
		size_t l = p->id_len;
		if (n + l + 2 > cap)
			break;
		if (n)
			buf[n++] = ',';
		memcpy(buf + n, evg_ev_id(p), l);
		n += l;
	}
	const char *more[2] = {evg_ev_eparents(e), evg_ev_rparents(e)};
	for (int i = 0; i < 2; i++) {
		size_t l = more[i] ? strlen(more[i]) : 0;
		if (l && n + l + 2 <= cap) {
			if (n)
				buf[n++] = ',';
			memcpy(buf + n, more[i], l);
			n += l;
		}
	}
	if (cap)
		buf[n < cap ? n : cap - 1] = '\0';
	return n;
}
