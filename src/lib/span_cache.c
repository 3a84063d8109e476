/*
 * span_cache.c - direct-mapped span descriptor cache (span_cache.h).
 */
#include "span_cache.h"

#include <stdlib.h>
#include <string.h>

static unsigned slot_of(uint64_t vuid)
{
	return (unsigned)((vuid * UINT64_C(0x9e3779b97f4a7c15)) >> 58) % SPAN_CACHE_SLOTS;
}

static int copy_span(const struct span *from, struct span *to)
{
	*to = *from;
	to->vuids = malloc(sizeof(uint64_t) * from->n);
	if (!to->vuids)
		return -1;
	memcpy(to->vuids, from->vuids, sizeof(uint64_t) * from->n);
	return 0;
}

void span_cache_init(struct span_cache *sc)
{
	memset(sc, 0, sizeof *sc);
	pthread_mutex_init(&sc->lock, NULL);
}

void span_cache_destroy(struct span_cache *sc)
{
	for (int i = 0; i < SPAN_CACHE_SLOTS; i++)
		span_clear(&sc->slot[i].s);
	pthread_mutex_destroy(&sc->lock);
}

int span_cache_get(struct span_cache *sc, uint64_t vuid, struct span *out)
{
	unsigned k = slot_of(vuid);
	int rc = -1;
	pthread_mutex_lock(&sc->lock);
	if (sc->slot[k].vuid == vuid && vuid)
		rc = copy_span(&sc->slot[k].s, out);
	pthread_mutex_unlock(&sc->lock);
	return rc;
}

void span_cache_put(struct span_cache *sc, uint64_t vuid, const struct span *s)
{
	struct span copy;
	if (copy_span(s, &copy) != 0)
		return;
	unsigned k = slot_of(vuid);
	pthread_mutex_lock(&sc->lock);
	struct span old = sc->slot[k].s;
	sc->slot[k].vuid = vuid;
	sc->slot[k].s = copy;
	pthread_mutex_unlock(&sc->lock);
	span_clear(&old);
}

void span_cache_drop(struct span_cache *sc, uint64_t vuid)
{
	unsigned k = slot_of(vuid);
	struct span old = {0};
	pthread_mutex_lock(&sc->lock);
	if (sc->slot[k].vuid == vuid) {
		old = sc->slot[k].s;
		memset(&sc->slot[k].s, 0, sizeof old);
		sc->slot[k].vuid = 0;
	}
	pthread_mutex_unlock(&sc->lock);
	span_clear(&old);
}
