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

#define VC_BUCKETS 16384
#define VC_MAX 65536 /* entries; emptied when full */

struct entry {
	struct entry *next;
	struct virgo_stat st;
	double answer_until; /* getattr answered from st until then */
	unsigned gen; /* ... and while gen is still this */
	char path[];
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry *tab[VC_BUCKETS];
static size_t count;
static double timeout_s = 1.0;
static unsigned gen; /* bumped when paths under a directory moved */

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

static struct entry **slot(const char *path, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)path[i]) * 16777619u;
	struct entry **e = &tab[h % VC_BUCKETS];
	while (*e && (strncmp((*e)->path, path, n) != 0 || (*e)->path[n] != '\0'))
		e = &(*e)->next;
	return e;
}

static void clear_locked(void)
{
	for (size_t i = 0; i < VC_BUCKETS; i++)
		while (tab[i]) {
			struct entry *n = tab[i]->next;
			free(tab[i]);
			tab[i] = n;
		}
	count = 0;
}

/* lock held: path's entry, made if missing; NULL without memory. */
static struct entry *get_locked(const char *path)
{
	size_t n = strlen(path);
	struct entry **e = slot(path, n);
	if (*e)
		return *e;
	if (count >= VC_MAX) {
		clear_locked();
		e = slot(path, n);
	}
	struct entry *d = calloc(1, sizeof *d + n + 1);
	if (!d)
		return NULL;
	memcpy(d->path, path, n + 1);
	*e = d;
	count++;
	return d;
}

void vfs_cache_put(const char *path, const struct virgo_stat *v, bool answer)
{
	pthread_mutex_lock(&lock);
	struct entry *e = get_locked(path);
	if (e) {
		e->st = *v;
		e->answer_until = answer ? now_s() + timeout_s : 0;
		e->gen = gen;
	}
	pthread_mutex_unlock(&lock);
}

void vfs_cache_stale(const char *path)
{
	pthread_mutex_lock(&lock);
	struct entry *e = *slot(path, strlen(path));
	if (e)
		e->answer_until = 0;
	pthread_mutex_unlock(&lock);
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
