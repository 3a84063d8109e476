/*
 * cloudfs_fdtab.h - the node's table of VIRGO file descriptors.
 *
 * A VIRGO descriptor is 64 bits: bits 63..48 the owning node's id (as in a
 * VUID, so a client routes it without asking), bits 47..24 a generation
 * (seeded from the start-up clock, bumped at each reuse of a slot, so a
 * stale or a previous life's descriptor is refused, not aliased), bits
 * 23..0 the slot.  An entry is owned by one connection (native open) or by
 * the node (owner 0: the call syntax, whose connections last one request),
 * and belongs to the identity that opened it (vconn_identity_id; 0 on a
 * node that authenticates no one): another identity gets -EACCES for it,
 * whichever connection it comes from (docs/SECURITY.md).
 * Thread-safe: entries are used from pool threads while the loop opens
 * and closes them; a reference keeps the OS descriptor alive while a job
 * uses it, and the last reference of a closed entry closes it.
 */
#ifndef VIRGO_CLOUDFS_FDTAB_H
#define VIRGO_CLOUDFS_FDTAB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

struct cfs_fdtab;

struct cfs_fdtab_counts {
	int open; /* entries in use */
	int call; /* of which owned by the node (call syntax) */
};

/* max_fds entries at most, of which at most max_call owned by the node.
 * NULL on out of memory.  Free with cfs_fdtab_free (closes everything). */
struct cfs_fdtab *cfs_fdtab_new(unsigned node_id, int max_fds, int max_call, uint64_t seed);
void cfs_fdtab_free(struct cfs_fdtab *t);

/* The node a descriptor belongs to. */
static inline unsigned cfs_fd_node(uint64_t vfd) { return (unsigned)(vfd >> 48); }

/* Registers osfd for owner (0: the node), opened by identity ident;
 * written: NULL for a descriptor opened read-only, else the file's
 * attributes (its fstat, taken by the opener: only st_dev and st_ino are
 * kept, no system call is made here).  0 and *vfd, or -EMFILE when the
 * node's, the owner's (per_owner_max) or the call-syntax cap is reached
 * (osfd is then left to the caller). */
int cfs_fdtab_add(struct cfs_fdtab *t, int osfd, uint64_t owner, uint64_t ident, int per_owner_max,
		  const struct stat *written, int64_t now_ms, uint64_t *vfd);
/* Takes a reference for a job: 0 with *osfd (and *writable), -EACCES
 * (another identity's), or -EBADF (unknown, closed, another node's, or
 * owned by another connection). */
int cfs_fdtab_get(struct cfs_fdtab *t, uint64_t vfd, uint64_t owner, uint64_t ident, int64_t now_ms,
		  int *osfd, bool *writable);
/* Drops the reference cfs_fdtab_get took (any thread). */
void cfs_fdtab_put(struct cfs_fdtab *t, uint64_t vfd);
/* Closes vfd for owner and ident: 0, -EACCES or -EBADF (as get).  The OS
 * descriptor closes when the last job using it is done. */
int cfs_fdtab_close(struct cfs_fdtab *t, uint64_t vfd, uint64_t owner, uint64_t ident);
/* Closes every entry of owner (a connection that went away). */
void cfs_fdtab_close_owner(struct cfs_fdtab *t, uint64_t owner);
/* Closes node-owned entries unused for idle_ms; returns how many. */
int cfs_fdtab_expire(struct cfs_fdtab *t, int64_t now_ms, int64_t idle_ms);
/* Is the file (dev, ino) open for writing through a descriptor of an
 * identity other than ident?  (Writable entries remember their file at
 * cfs_fdtab_add.) */
bool cfs_fdtab_writer_other(struct cfs_fdtab *t, uint64_t dev, uint64_t ino, uint64_t ident);
/* Entries owned by owner. */
int cfs_fdtab_owned(struct cfs_fdtab *t, uint64_t owner);
/* Does owner hold max entries or more (the per-connection cap's
 * pre-check)?  No walk of the table while it holds fewer in all. */
bool cfs_fdtab_owner_full(struct cfs_fdtab *t, uint64_t owner, int max);
void cfs_fdtab_counts(struct cfs_fdtab *t, struct cfs_fdtab_counts *out);

#endif
