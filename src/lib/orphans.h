/*
 * orphans.h - allocations libvirgo owes a free it could not deliver.
 *
 * When virgo_malloc rolls back a span that failed half way and a chunk's
 * node cannot be reached (stopped, partitioned, restarting), the chunk
 * would otherwise stay allocated for ever with nobody knowing its VUID.
 * Such VUIDs go on this bounded list; later memory calls free them once
 * their node answers again (mem.c, orphans_retry).  Thread-safe.  The
 * list lives as long as the client: what is left at virgo_fini (a node
 * that never came back) is forgotten, as the process's memory would be.
 */
#ifndef VIRGO_ORPHANS_H
#define VIRGO_ORPHANS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Beyond this many, further orphans are counted as lost, not kept. */
#define VC_ORPHANS_MAX 65536

struct vc_orphans {
	pthread_mutex_t lock;
	uint64_t *v; /* malloc'd, cap entries */
	size_t n, cap;
	_Atomic size_t count; /* n, readable without the lock */
	_Atomic uint64_t lost; /* dropped over VC_ORPHANS_MAX or on ENOMEM */
};

void orphans_init(struct vc_orphans *o);
void orphans_destroy(struct vc_orphans *o);
/* Remembers vuid for a later free. */
void orphans_add(struct vc_orphans *o, uint64_t vuid);
/* Moves up to max remembered VUIDs into out; returns how many. */
size_t orphans_take(struct vc_orphans *o, uint64_t *out, size_t max);

#endif
