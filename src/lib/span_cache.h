/*
 * span_cache.h - a client-side cache of span descriptors.
 *
 * A span descriptor never changes between its creation and its free, and
 * VUIDs are never reused, so a cached copy can only be stale by naming a
 * span that was freed; its chunks then answer ENOENT, which is the right
 * answer anyway, and the entry is dropped.  Saves one round trip per
 * set/get on a spanning allocation.  Thread-safe.
 */
#ifndef VIRGO_SPAN_CACHE_H
#define VIRGO_SPAN_CACHE_H

#include <pthread.h>
#include <stdint.h>

#include "span.h"

#define SPAN_CACHE_SLOTS 64

struct span_cache {
	pthread_mutex_t lock;
	struct {
		uint64_t vuid; /* 0: empty */
		struct span s;
	} slot[SPAN_CACHE_SLOTS];
};

void span_cache_init(struct span_cache *sc);
void span_cache_destroy(struct span_cache *sc);
/* 0 and a private copy in *out (span_clear it), or -1 if not cached. */
int span_cache_get(struct span_cache *sc, uint64_t vuid, struct span *out);
/* Stores a copy of *s (replacing whatever shared its slot). */
void span_cache_put(struct span_cache *sc, uint64_t vuid, const struct span *s);
void span_cache_drop(struct span_cache *sc, uint64_t vuid);

#endif
