/*
 * orphans.c - the list of VUIDs still to free (orphans.h): a growable
 * array under a mutex, with an atomic count so the common empty case
 * costs one load.
 */
#include "orphans.h"

#include <stdlib.h>

void orphans_init(struct vc_orphans *o)
{
	pthread_mutex_init(&o->lock, NULL);
	o->v = NULL;
	o->n = o->cap = 0;
	atomic_init(&o->count, 0);
	atomic_init(&o->lost, 0);
}

void orphans_destroy(struct vc_orphans *o)
{
	free(o->v);
	o->v = NULL;
	o->n = o->cap = 0;
	pthread_mutex_destroy(&o->lock);
}

void orphans_add(struct vc_orphans *o, uint64_t vuid)
{
	pthread_mutex_lock(&o->lock);
	if (o->n == o->cap && o->cap < VC_ORPHANS_MAX) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		uint64_t *v = realloc(o->v, cap * sizeof *v);
		if (v) {
			o->v = v;
			o->cap = cap;
		}
	}
	if (o->n < o->cap) {
		o->v[o->n++] = vuid;
		atomic_store(&o->count, o->n);
	} else {
		atomic_fetch_add(&o->lost, 1);
	}
	pthread_mutex_unlock(&o->lock);
}

size_t orphans_take(struct vc_orphans *o, uint64_t *out, size_t max)
{
	if (atomic_load_explicit(&o->count, memory_order_relaxed) == 0)
		return 0;
	pthread_mutex_lock(&o->lock);
	size_t k = o->n < max ? o->n : max;
	for (size_t i = 0; i < k; i++)
		out[i] = o->v[--o->n];
	atomic_store(&o->count, o->n);
	pthread_mutex_unlock(&o->lock);
	return k;
}
