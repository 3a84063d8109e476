/*
 * analytics_store.c - variables, revisions and per-key rings
 * (analytics_store.h).  A chained hash table of variables; each holds a
 * ring of up to AN_RING (revision, value) entries that grows on demand.
 * The bytes of all kept values are counted against max_bytes: past it,
 * the oldest entries are dropped (first of the key being written, then of
 * the others round-robin), and the highest revision ever dropped is
 * remembered, which is what decides whether a resume is complete.
 */
#include "analytics_store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analytics_proto.h"

#define AN_BUCKETS 1024

struct an_slot {
	uint64_t rev;
	char *val; /* malloc'd, NUL-terminated */
	size_t vlen;
};

struct an_var {
	struct an_var *next; /* bucket chain */
	char key[AN_MAX_KEY + 1];
	bool learnt;
	struct an_slot *ring;
	int cap, head, len; /* ring: oldest at head */
};

struct an_store {
	struct an_var *bucket[AN_BUCKETS];
	struct an_var **all; /* every variable, for walks and eviction */
	int nkeys, max_keys, cursor;
	uint64_t rev, dropped, bytes, max_bytes;
};

static uint32_t hash(const char *k, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)k[i]) * 16777619u;
	return h;
}

struct an_store *an_store_new(int max_keys, uint64_t max_bytes)
{
	struct an_store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->max_keys = max_keys > 0 ? max_keys : 1;
	s->max_bytes = max_bytes;
	s->all = calloc((size_t)s->max_keys, sizeof *s->all);
	if (!s->all) {
		free(s);
		return NULL;
	}
	return s;
}

void an_store_free(struct an_store *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nkeys; i++) {
		struct an_var *v = s->all[i];
		for (int j = 0; j < v->len; j++)
			free(v->ring[(v->head + j) % v->cap].val);
		free(v->ring);
		free(v);
	}
	free(s->all);
	free(s);
}

static struct an_var *find(const struct an_store *s, const char *key, size_t klen)
{
	if (klen > AN_MAX_KEY)
		return NULL;
	for (struct an_var *v = s->bucket[hash(key, klen) % AN_BUCKETS]; v; v = v->next)
		if (strlen(v->key) == klen && memcmp(v->key, key, klen) == 0)
			return v;
	return NULL;
}

static struct an_slot *newest(const struct an_var *v)
{
	return &v->ring[(v->head + v->len - 1) % v->cap];
}

static void drop_oldest(struct an_store *s, struct an_var *v)
{
	struct an_slot *o = &v->ring[v->head];
	if (o->rev > s->dropped)
		s->dropped = o->rev;
	s->bytes -= o->vlen + 1;
	free(o->val);
	o->val = NULL;
	v->head = (v->head + 1) % v->cap;
	v->len--;
}

/* Grows v's ring (up to AN_RING) when full; 0 or -ENOMEM. */
static int ring_room(struct an_var *v)
{
	if (v->len < v->cap || v->cap == AN_RING)
		return 0;
	int ncap = v->cap ? v->cap * 2 : 4;
	if (ncap > AN_RING)
		ncap = AN_RING;
	struct an_slot *r = calloc((size_t)ncap, sizeof *r);
	if (!r)
		return -ENOMEM;
	for (int j = 0; j < v->len; j++)
		r[j] = v->ring[(v->head + j) % v->cap];
	free(v->ring);
	v->ring = r;
	v->cap = ncap;
	v->head = 0;
	return 0;
}

int an_store_set(struct an_store *s, const char *key, size_t klen, const char *val, size_t vlen,
		 bool learnt, uint64_t *rev)
{
	if (!an_key_ok(key, klen) || vlen > AN_MAX_VALUE)
		return -EINVAL;
	struct an_var *v = find(s, key, klen);
	if (v && v->learnt && !learnt)
		return -EACCES;
	if (v && v->len > 0) {
		struct an_slot *n = newest(v);
		if (n->vlen == vlen && memcmp(n->val, val, vlen) == 0) {
			*rev = n->rev;
			return 0;
		}
	}
	if (!v) {
		if (s->nkeys >= s->max_keys)
			return -ENOSPC;
		v = calloc(1, sizeof *v);
		if (!v)
			return -ENOMEM;
		memcpy(v->key, key, klen);
		uint32_t b = hash(key, klen) % AN_BUCKETS;
		v->next = s->bucket[b];
		s->bucket[b] = v;
		s->all[s->nkeys++] = v;
	}
	v->learnt = learnt;
	char *copy = malloc(vlen + 1);
	if (!copy || ring_room(v) != 0) {
		free(copy);
		return -ENOMEM;
	}
	memcpy(copy, val, vlen);
	copy[vlen] = '\0';
	if (v->len == v->cap) /* full at AN_RING */
		drop_oldest(s, v);
	struct an_slot *slot = &v->ring[(v->head + v->len) % v->cap];
	slot->rev = ++s->rev;
	slot->val = copy;
	slot->vlen = vlen;
	v->len++;
	s->bytes += vlen + 1;
	/* over the byte budget: this key's history first, then the others' */
	while (s->bytes > s->max_bytes && v->len > 1)
		drop_oldest(s, v);
	for (int tries = 0; s->bytes > s->max_bytes && tries < s->nkeys; tries++) {
		struct an_var *o = s->all[s->cursor++ % s->nkeys];
		while (o->len > 1 && s->bytes > s->max_bytes)
			drop_oldest(s, o);
	}
	*rev = s->rev;
	return 1;
}

static void fill(const struct an_var *v, const struct an_slot *sl, struct an_entry *e)
{
	e->key = v->key;
	e->rev = sl->rev;
	e->val = sl->val;
	e->vlen = sl->vlen;
	e->learnt = v->learnt;
}

int an_store_get(const struct an_store *s, const char *key, size_t klen, struct an_entry *out)
{
	const struct an_var *v = find(s, key, klen);
	if (!v || v->len == 0)
		return -ENOENT;
	fill(v, newest(v), out);
	return 0;
}

void an_store_skip_to(struct an_store *s, uint64_t rev, bool reset)
{
	if (rev > s->rev)
		s->rev = rev;
	if (reset && rev > s->dropped)
		s->dropped = rev;
}

uint64_t an_store_rev(const struct an_store *s) { return s->rev; }
uint64_t an_store_resumable(const struct an_store *s) { return s->dropped; }
int an_store_nkeys(const struct an_store *s) { return s->nkeys; }
uint64_t an_store_bytes(const struct an_store *s) { return s->bytes; }

static int by_key(const void *a, const void *b)
{
	return strcmp((*(struct an_var *const *)a)->key, (*(struct an_var *const *)b)->key);
}

int an_store_list(const struct an_store *s, const char *prefix, size_t plen, an_entry_fn fn,
		  void *arg)
{
	if (s->nkeys == 0)
		return 0;
	struct an_var **v = malloc(sizeof *v * (size_t)s->nkeys);
	if (!v)
		return -ENOMEM;
	memcpy(v, s->all, sizeof *v * (size_t)s->nkeys);
	qsort(v, (size_t)s->nkeys, sizeof *v, by_key);
	int rc = 0;
	for (int i = 0; i < s->nkeys && rc == 0; i++) {
		if (v[i]->len == 0 || (plen && strncmp(v[i]->key, prefix, plen) != 0))
			continue; /* len 0: its first value did not fit in memory */
		struct an_entry e;
		fill(v[i], newest(v[i]), &e);
		rc = fn(arg, &e);
	}
	free(v);
	return rc;
}

int an_store_history(const struct an_store *s, const char *key, size_t klen, an_entry_fn fn,
		     void *arg)
{
	const struct an_var *v = find(s, key, klen);
	if (!v)
		return -ENOENT;
	int rc = 0;
	for (int j = 0; j < v->len && rc == 0; j++) {
		struct an_entry e;
		fill(v, &v->ring[(v->head + j) % v->cap], &e);
		rc = fn(arg, &e);
	}
	return rc;
}

struct since_ref {
	const struct an_var *v;
	const struct an_slot *sl;
};

static int by_rev(const void *a, const void *b)
{
	uint64_t x = ((const struct since_ref *)a)->sl->rev, y = ((const struct since_ref *)b)->sl->rev;
	return x < y ? -1 : x > y;
}

int an_store_since(const struct an_store *s, uint64_t after, an_entry_fn fn, void *arg)
{
	if (after < s->dropped)
		return -ERANGE;
	if (after >= s->rev)
		return 0;
	/* at most s->rev - after entries qualify */
	uint64_t want = s->rev - after;
	size_t n = 0, cap = want < 4096 ? (size_t)want : 4096;
	struct since_ref *r = malloc(cap * sizeof *r);
	if (!r)
		return -ENOMEM;
	for (int i = 0; i < s->nkeys; i++) {
		const struct an_var *v = s->all[i];
		for (int j = v->len - 1; j >= 0; j--) {
			const struct an_slot *sl = &v->ring[(v->head + j) % v->cap];
			if (sl->rev <= after)
				break;
			if (n == cap) {
				struct since_ref *nr = realloc(r, cap * 2 * sizeof *r);
				if (!nr) {
					free(r);
					return -ENOMEM;
				}
				r = nr;
				cap *= 2;
			}
			r[n].v = v;
			r[n++].sl = sl;
		}
	}
	qsort(r, n, sizeof *r, by_rev);
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct an_entry e;
		fill(r[i].v, r[i].sl, &e);
		rc = fn(arg, &e);
	}
	free(r);
	return rc;
}
