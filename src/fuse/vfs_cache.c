/*
 * vfs_cache.c - virgofs's memory of paths between round trips
 * (vfs_cache.h): one hash table of entries by mount path, each a path
 * this mount saw exist, with the attributes last given to the kernel and
 * how long a getattr may be answered from them.
 */
#include "vfs_cache.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define VC_BUCKETS 65536 /* as many as entries at most: short chains */
#define VC_MAX 65536 /* entries; swept when full (sweep_locked) */
/* A directory listed names-only: its entries' attributes are fetched all
 * at once at this many getattrs of them the cache could not answer
 * (one alone is asked for on its own: a program that opens one file
 * after a listing does not pay for them all). */
#define VFS_FILL_AFTER 2

struct entry {
	struct entry *next;
	struct virgo_stat st;
	double answer_until; /* getattr answered from st until then */
	unsigned gen; /* ... and while gen is still this */
	/* a directory known completely (vfs_cache.h): every name in it has
	 * an entry, until complete_until and while gen is still cgen;
	 * dctime is its ctime as last seen */
	bool complete;
	unsigned cgen;
	int64_t dctime;
	double complete_until;
	/* a directory whose last listing gave names only from names_cursor
	 * on (vfs_cache_names_listed), until names_until; names_misses:
	 * getattrs of its entries not answered since */
	uint64_t names_cursor;
	double names_until;
	unsigned names_misses;
	bool want_attrs; /* its listings give every entry's attributes */
	uint32_t hash; /* of path: compared before it, as chains grow long */
	char path[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *tab[VC_BUCKETS];
static size_t count;
static double timeout_s = 1.0;
static double negative_timeout_s = 1.0;
static unsigned gen; /* bumped when paths under a directory moved */
static unsigned sweeps; /* bumped when the table was swept (sweep_locked) */

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

void vfs_cache_set_timeout(double seconds)
{
	pthread_mutex_lock(&lock);
	timeout_s = seconds;
	pthread_mutex_unlock(&lock);
}

void vfs_cache_set_negative_timeout(double seconds)
{
	pthread_mutex_lock(&lock);
	negative_timeout_s = seconds;
	pthread_mutex_unlock(&lock);
}

/* FNV-1a of n more bytes after h (2166136261u: none yet) */
static uint32_t hash_more(uint32_t h, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 16777619u;
	return h;
}

static uint32_t hash_of(const char *path, size_t n)
{
	return hash_more(2166136261u, path, n);
}

/* path's place in its chain (*slot NULL: not there); h its hash_of */
static struct entry **slot_h(const char *path, size_t n, uint32_t h)
{
	struct entry **e = &tab[h % VC_BUCKETS];
	while (*e && ((*e)->hash != h || strncmp((*e)->path, path, n) != 0 ||
		      (*e)->path[n] != '\0'))
		e = &(*e)->next;
	return e;
}

static struct entry **slot(const char *path, size_t n)
{
	return slot_h(path, n, hash_of(path, n));
}

/* lock held: makes room, the table being full.  First the entries
 * worth nothing any more go: answers expired, no directory knowledge
 * (known completely, listed names-only) pending; if that frees less
 * than a quarter, all go.  Either way only round trips are lost.
 * Bumps sweeps: entry pointers held across it are stale. */
static void sweep_locked(void)
{
	double now = now_s();
	sweeps++;
	for (size_t i = 0; i < VC_BUCKETS; i++)
		for (struct entry **e = &tab[i]; *e;) {
			struct entry *d = *e;
			if (d->answer_until <= now && !d->complete && d->names_until <= now) {
				*e = d->next;
				free(d);
				count--;
			} else {
				e = &d->next;
			}
		}
	if (count <= VC_MAX - VC_MAX / 4)
		return;
	for (size_t i = 0; i < VC_BUCKETS; i++)
		while (tab[i]) {
			struct entry *n = tab[i]->next;
			free(tab[i]);
			tab[i] = n;
		}
	count = 0;
}

/* lock held: path's entry (n bytes, hash h), made if missing; NULL
 * without memory.  Making one may empty the table first (full). */
static struct entry *get_locked_h(const char *path, size_t n, uint32_t h)
{
	struct entry **e = slot_h(path, n, h);
	if (*e)
		return *e;
	if (count >= VC_MAX) {
		sweep_locked();
		e = slot_h(path, n, h);
	}
	struct entry *d = calloc(1, sizeof *d + n + 1);
	if (!d)
		return NULL;
	d->hash = h;
	memcpy(d->path, path, n + 1);
	*e = d;
	count++;
	return d;
}

static struct entry *get_locked(const char *path)
{
	size_t n = strlen(path);
	return get_locked_h(path, n, hash_of(path, n));
}

/* The length of path's directory part ("/node1/d/f" -> 8), 0 for "/x". */
static size_t parent_len(const char *path)
{
	const char *slash = strrchr(path, '/');
	return slash ? (size_t)(slash - path) : 0;
}

/* lock held: path's directory's entry, or NULL. */
static struct entry *parent_locked(const char *path)
{
	size_t n = parent_len(path);
	return n ? *slot(path, n) : NULL;
}

/* lock held: e (may be NULL) has attributes v now. */
static void put_locked(struct entry *e, const struct virgo_stat *v, double answer_until)
{
	if (e) {
		if (v->type != 'd' || e->st.type != 'd' || e->st.ino != v->ino ||
		    v->ctime_ns != e->dctime)
			e->complete = false; /* another directory now, or changed elsewhere */
		e->st = *v;
		e->answer_until = answer_until;
		e->gen = gen;
	}
}

void vfs_cache_put(const char *path, const struct virgo_stat *v, bool answer)
{
	double until = answer ? now_s() + timeout_s : 0;
	pthread_mutex_lock(&lock);
	put_locked(get_locked(path), v, until);
	pthread_mutex_unlock(&lock);
}

/* A listing page of dir showed d[0..n): a name without an entry here
 * ends dir's being known completely (vfs_cache_listed); attrs: each is
 * put too (vfs_cache_put, answer true), under one lock and with the hash
 * of "dir/" computed once. */
static void listing(const char *dir, const struct virgo_direntplus *d, size_t n, bool attrs)
{
	char path[8192];
	size_t dl = strlen(dir);
	if (dl + 2 > sizeof path)
		return;
	memcpy(path, dir, dl);
	path[dl] = '/';
	uint32_t h0 = hash_more(2166136261u, path, dl + 1); /* the names' common start */
	double until = now_s() + timeout_s;
	pthread_mutex_lock(&lock);
	struct entry *de = *slot(dir, dl);
	for (size_t i = 0; i < n && (attrs || (de && de->complete)); i++) {
		size_t nl = strlen(d[i].name);
		if (dl + 1 + nl >= sizeof path)
			continue;
		memcpy(path + dl + 1, d[i].name, nl + 1);
		uint32_t h = hash_more(h0, d[i].name, nl);
		if (de && de->complete && !*slot_h(path, dl + 1 + nl, h))
			de->complete = false; /* a name made elsewhere (vfs_cache_listed) */
		if (!attrs)
			continue;
		unsigned swept = sweeps;
		put_locked(get_locked_h(path, dl + 1 + nl, h), &d[i].st, until);
		if (sweeps != swept)
			de = *slot(dir, dl); /* swept when full: dir's entry may have gone */
	}
	pthread_mutex_unlock(&lock);
}

void vfs_cache_listing(const char *dir, const struct virgo_direntplus *d, size_t n)
{
	listing(dir, d, n, true);
}

void vfs_cache_names(const char *dir, const struct virgo_direntplus *d, size_t n)
{
	listing(dir, d, n, false);
}

void vfs_cache_names_listed(const char *dir, uint64_t cursor)
{
	pthread_mutex_lock(&lock);
	struct entry *e = get_locked(dir);
	if (e) {
		e->names_cursor = cursor;
		e->names_until = now_s() + timeout_s;
		e->names_misses = 0;
	}
	pthread_mutex_unlock(&lock);
}

bool vfs_cache_names_miss(const char *path, char *dir, size_t cap, uint64_t *cursor)
{
	double now = now_s();
	size_t n = parent_len(path);
	if (n == 0 || n >= cap)
		return false;
	pthread_mutex_lock(&lock);
	struct entry *d = *slot(path, n);
	bool fill = d && now < d->names_until && ++d->names_misses >= VFS_FILL_AFTER;
	if (fill) {
		d->names_until = 0; /* filled once; then each miss asks on its own */
		d->want_attrs = true;
		*cursor = d->names_cursor;
	}
	pthread_mutex_unlock(&lock);
	if (fill) {
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	return fill;
}

bool vfs_cache_wants_attrs(const char *dir)
{
	pthread_mutex_lock(&lock);
	struct entry *e = *slot(dir, strlen(dir));
	bool want = e && e->want_attrs;
	pthread_mutex_unlock(&lock);
	return want;
}

void vfs_cache_stale(const char *path)
{
	pthread_mutex_lock(&lock);
	struct entry *e = *slot(path, strlen(path));
	if (e)
		e->answer_until = 0;
	pthread_mutex_unlock(&lock);
}

void vfs_cache_dir_made(const char *dir, int64_t ctime_ns)
{
	pthread_mutex_lock(&lock);
	struct entry *e = *slot(dir, strlen(dir));
	if (e) { /* vfs_cache_put first */
		e->complete = true;
		e->cgen = gen;
		e->dctime = ctime_ns;
		e->complete_until = now_s() + negative_timeout_s;
	}
	pthread_mutex_unlock(&lock);
}

void vfs_cache_created(const char *path, int64_t pre_ns, int64_t post_ns)
{
	pthread_mutex_lock(&lock);
	struct entry *e = parent_locked(path);
	if (e && e->complete) {
		/* confirmed, or renewed after a lapse: nobody else changed
		 * the directory since its ctime was last seen, so every name
		 * in it still has an entry here */
		if (pre_ns >= 0 && post_ns >= 0 && pre_ns == e->dctime && e->cgen == gen) {
			e->dctime = post_ns;
			e->complete_until = now_s() + negative_timeout_s;
		} else {
			e->complete = false; /* changed elsewhere too, or the node did not say */
		}
	}
	pthread_mutex_unlock(&lock);
}

void vfs_cache_parent_unknown(const char *path)
{
	pthread_mutex_lock(&lock);
	struct entry *d = parent_locked(path);
	if (d)
		d->complete = false;
	pthread_mutex_unlock(&lock);
}

void vfs_cache_listed(const char *path)
{
	pthread_mutex_lock(&lock);
	struct entry *d = parent_locked(path);
	if (d && d->complete && !*slot(path, strlen(path)))
		d->complete = false; /* made elsewhere */
	pthread_mutex_unlock(&lock);
}

bool vfs_cache_absent(const char *path)
{
	double now = now_s();
	pthread_mutex_lock(&lock);
	struct entry *d = parent_locked(path);
	bool absent = d && d->complete && d->cgen == gen && now < d->complete_until &&
		      !*slot(path, strlen(path));
	/* past complete_until it has lapsed: lookups go to the node, and
	 * this mount's next create there renews it if its reply shows the
	 * directory unchanged since (vfs_cache_created); a move under it
	 * ends it for good */
	if (d && d->complete && d->cgen != gen)
		d->complete = false;
	pthread_mutex_unlock(&lock);
	return absent;
}

static void drop(const char *path, bool moved)
{
	pthread_mutex_lock(&lock);
	struct entry **e = slot(path, strlen(path)), *d = *e;
	if (moved && (!d || d->st.type != 'f'))
		gen++; /* maybe a directory: what was under it is elsewhere now */
	if (d) {
		*e = d->next;
		free(d);
		count--;
	}
	pthread_mutex_unlock(&lock);
}

void vfs_cache_gone(const char *path)
{
	drop(path, false);
}

void vfs_cache_moved(const char *path)
{
	drop(path, true);
}

int vfs_cache_answer(const char *path, struct virgo_stat *v)
{
	double now = now_s();
	pthread_mutex_lock(&lock);
	struct entry *e = *slot(path, strlen(path));
	int rc = e && now < e->answer_until && e->gen == gen ? (*v = e->st, 0) : -1;
	pthread_mutex_unlock(&lock);
	return rc;
}

bool vfs_cache_changed(const char *path, const struct virgo_stat *v)
{
	pthread_mutex_lock(&lock);
	struct entry *e = *slot(path, strlen(path));
	bool changed = !e || e->st.size != v->size || e->st.mtime_ns != v->mtime_ns;
	pthread_mutex_unlock(&lock);
	return changed;
}
