/*
 * cloudfs_fdtab.c - the node's VIRGO descriptor table (cloudfs_fdtab.h).
 *
 * A flat array of slots under one mutex: every operation is a few
 * instructions, and the slot count is bounded by cloudfs_max_fds, so the
 * linear scans (a free slot, a closing connection's entries, the idle
 * sweep) stay in the microseconds.
 */
#include "cloudfs_fdtab.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOT_BITS 24
#define GEN_MASK ((UINT64_C(1) << 24) - 1)

struct cfs_entry {
	int osfd;
	bool used; /* registered (also while closing with refs left) */
	bool closing; /* closed by its owner: refused, closed at refs 0 */
	bool writable;
	uint32_t gen;
	int refs;
	uint64_t owner;
	uint64_t ident; /* the identity that opened it (vconn_identity_id) */
	uint64_t dev, ino; /* the file it is open on (writers: cfs_fdtab_writer_other) */
	int64_t last_ms;
};

struct cfs_fdtab {
	pthread_mutex_t lock;
	unsigned node_id;
	int max, max_call;
	int open, call;
	int hint; /* where to look for a free slot first */
	struct cfs_entry *e;
};

struct cfs_fdtab *cfs_fdtab_new(unsigned node_id, int max_fds, int max_call, uint64_t seed)
{
	if (max_fds < 1 || max_fds > (1 << SLOT_BITS))
		return NULL;
	struct cfs_fdtab *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->e = calloc((size_t)max_fds, sizeof *t->e);
	if (!t->e) {
		free(t);
		return NULL;
	}
	pthread_mutex_init(&t->lock, NULL);
	t->node_id = node_id;
	t->max = max_fds;
	t->max_call = max_call;
	for (int i = 0; i < max_fds; i++) {
		t->e[i].osfd = -1;
		t->e[i].gen = (uint32_t)((seed + (uint64_t)i * 7919) & GEN_MASK);
	}
	return t;
}

void cfs_fdtab_free(struct cfs_fdtab *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->max; i++)
		if (t->e[i].used && t->e[i].osfd >= 0)
			close(t->e[i].osfd);
	pthread_mutex_destroy(&t->lock);
	free(t->e);
	free(t);
}

static uint64_t make_vfd(const struct cfs_fdtab *t, int slot)
{
	return (uint64_t)(t->node_id & 0xffff) << 48 | ((uint64_t)t->e[slot].gen & GEN_MASK) << SLOT_BITS |
	       (uint64_t)slot;
}

/* The slot of a live entry vfd names, or -1. */
static int find(struct cfs_fdtab *t, uint64_t vfd)
{
	if (cfs_fd_node(vfd) != (t->node_id & 0xffff))
		return -1;
	uint64_t slot = vfd & ((UINT64_C(1) << SLOT_BITS) - 1);
	if (slot >= (uint64_t)t->max)
		return -1;
	struct cfs_entry *e = &t->e[slot];
	if (!e->used || e->closing || e->gen != ((vfd >> SLOT_BITS) & GEN_MASK))
		return -1;
	return (int)slot;
}

/* Lock held: the entry is done for; close now or at its last put. */
static int release(struct cfs_fdtab *t, int slot)
{
	struct cfs_entry *e = &t->e[slot];
	int fd = -1;
	if (!e->closing) {
		e->closing = true;
		t->open--;
		if (e->owner == 0)
			t->call--;
	}
	if (e->refs == 0) {
		fd = e->osfd;
		e->osfd = -1;
		e->used = false;
		e->closing = false;
		e->gen = (e->gen + 1) & GEN_MASK;
	}
	return fd;
}

/* Lock held: the entries owner holds, counted up to limit: a table
 * holding fewer than limit in all is not scanned (every open small file
 * would pay a walk of max_fds slots). */
static int owned_locked(const struct cfs_fdtab *t, uint64_t owner, int limit)
{
	if (t->open < limit)
		return 0; /* fewer than limit, whatever owner holds */
	int mine = 0;
	for (int i = 0; i < t->max && mine < limit; i++)
		if (t->e[i].used && !t->e[i].closing && t->e[i].owner == owner)
			mine++;
	return mine;
}

int cfs_fdtab_add(struct cfs_fdtab *t, int osfd, uint64_t owner, uint64_t ident, int per_owner_max,
		  const struct stat *written, int64_t now_ms, uint64_t *vfd)
{
	pthread_mutex_lock(&t->lock);
	int rc = -EMFILE;
	if (t->open >= t->max || (owner == 0 && t->call >= t->max_call))
		goto out;
	if (owner != 0 && owned_locked(t, owner, per_owner_max) >= per_owner_max)
		goto out;
	for (int k = 0; k < t->max; k++) {
		int i = (t->hint + k) % t->max;
		struct cfs_entry *e = &t->e[i];
		if (e->used)
			continue;
		e->used = true;
		e->closing = false;
		e->osfd = osfd;
		e->owner = owner;
		e->ident = ident;
		e->writable = written != NULL;
		e->dev = written ? (uint64_t)written->st_dev : 0;
		e->ino = written ? (uint64_t)written->st_ino : 0;
		e->refs = 0;
		e->last_ms = now_ms;
		t->open++;
		if (owner == 0)
			t->call++;
		t->hint = (i + 1) % t->max;
		*vfd = make_vfd(t, i);
		rc = 0;
		break;
	}
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Lock held: may (owner, ident) use slot?  0, -EACCES (another
 * identity's), -EBADF (none, or another connection's of the same one). */
static int may_use(const struct cfs_fdtab *t, int slot, uint64_t owner, uint64_t ident)
{
	if (slot < 0)
		return -EBADF;
	const struct cfs_entry *e = &t->e[slot];
	if (e->ident != ident)
		return -EACCES;
	return e->owner == 0 || e->owner == owner ? 0 : -EBADF;
}

int cfs_fdtab_get(struct cfs_fdtab *t, uint64_t vfd, uint64_t owner, uint64_t ident, int64_t now_ms,
		  int *osfd, bool *writable)
{
	pthread_mutex_lock(&t->lock);
	int slot = find(t, vfd);
	int rc = may_use(t, slot, owner, ident);
	if (rc == 0) {
		struct cfs_entry *e = &t->e[slot];
		e->refs++;
		e->last_ms = now_ms;
		*osfd = e->osfd;
		if (writable)
			*writable = e->writable;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void cfs_fdtab_put(struct cfs_fdtab *t, uint64_t vfd)
{
	uint64_t slot = vfd & ((UINT64_C(1) << SLOT_BITS) - 1);
	int fd = -1;
	pthread_mutex_lock(&t->lock);
	if (slot < (uint64_t)t->max) {
		struct cfs_entry *e = &t->e[slot];
		if (e->used && e->refs > 0 && e->gen == ((vfd >> SLOT_BITS) & GEN_MASK)) {
			e->refs--;
			if (e->closing)
				fd = release(t, (int)slot);
		}
	}
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
}

int cfs_fdtab_close(struct cfs_fdtab *t, uint64_t vfd, uint64_t owner, uint64_t ident)
{
	int fd = -1;
	pthread_mutex_lock(&t->lock);
	int slot = find(t, vfd);
	int rc = may_use(t, slot, owner, ident);
	if (rc == 0)
		fd = release(t, slot);
	pthread_mutex_unlock(&t->lock);
	if (fd >= 0)
		close(fd);
	return rc;
}

void cfs_fdtab_close_owner(struct cfs_fdtab *t, uint64_t owner)
{
	if (owner == 0)
		return;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->max; i++) {
		struct cfs_entry *e = &t->e[i];
		if (e->used && !e->closing && e->owner == owner) {
			int fd = release(t, i);
			if (fd >= 0)
				close(fd);
		}
	}
	pthread_mutex_unlock(&t->lock);
}

int cfs_fdtab_expire(struct cfs_fdtab *t, int64_t now_ms, int64_t idle_ms)
{
	int n = 0;
	pthread_mutex_lock(&t->lock);
	if (t->call > 0) {
		for (int i = 0; i < t->max; i++) {
			struct cfs_entry *e = &t->e[i];
			if (e->used && !e->closing && e->owner == 0 && e->refs == 0 &&
			    now_ms - e->last_ms >= idle_ms) {
				int fd = release(t, i);
				if (fd >= 0)
					close(fd);
				n++;
			}
		}
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}

bool cfs_fdtab_writer_other(struct cfs_fdtab *t, uint64_t dev, uint64_t ino, uint64_t ident)
{
	bool hit = false;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->max && !hit; i++) {
		const struct cfs_entry *e = &t->e[i];
		hit = e->used && !e->closing && e->writable && e->ino == ino && e->dev == dev &&
		      e->ino != 0 && e->ident != ident;
	}
	pthread_mutex_unlock(&t->lock);
	return hit;
}

bool cfs_fdtab_owner_full(struct cfs_fdtab *t, uint64_t owner, int max)
{
	pthread_mutex_lock(&t->lock);
	bool full = owned_locked(t, owner, max) >= max;
	pthread_mutex_unlock(&t->lock);
	return full;
}

int cfs_fdtab_owned(struct cfs_fdtab *t, uint64_t owner)
{
	int mine = 0;
	pthread_mutex_lock(&t->lock);
	for (int i = 0; i < t->max; i++)
		if (t->e[i].used && !t->e[i].closing && t->e[i].owner == owner)
			mine++;
	pthread_mutex_unlock(&t->lock);
	return mine;
}

void cfs_fdtab_counts(struct cfs_fdtab *t, struct cfs_fdtab_counts *out)
{
	pthread_mutex_lock(&t->lock);
	out->open = t->open;
	out->call = t->call;
	pthread_mutex_unlock(&t->lock);
}
