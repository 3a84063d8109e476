/*
 * cloudsync_table.h - the node's lock table: named locks, each with its
 * holder and a FIFO queue of waiters, leases, and the timer that ends
 * leases and bounded waits.
 *
 * The Bakery's promise across the cluster: a request takes a ticket when
 * it arrives (the node-wide token counter, so tickets only grow), and a
 * lock is granted in ticket order; the granted ticket is the holder's
 * fencing token.  One mutex guards the whole table; a grant to a waiting
 * connection (which may live on another worker thread) is handed to that
 * connection's loop with the vconn_ticket it took when it started waiting,
 * so whoever frees a lock -- an unlock on another thread, a closed
 * connection, the timer thread ending a lease -- passes it on at once.
 */
#ifndef VIRGO_CLOUDSYNC_TABLE_H
#define VIRGO_CLOUDSYNC_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudsync_proto.h"

struct vconn;
struct vconn_ticket;
struct evbuffer;
struct cs_table;
struct cs_entry;

/* One connection's part in the table (embedded in its state, zeroed at
 * accept); the table's mutex guards its fields. */
struct cs_owner {
	struct cs_entry *held; /* the locks it holds */
	struct cs_entry *waiting; /* the one lock request it waits on, or NULL */
	unsigned nheld;
	uint64_t ident; /* its connection's identity (vconn_identity_id) */
};

/* What a waiting connection receives on its loop (cs_deliver_fn's arg,
 * malloc'd by the table; the function frees it). */
struct cs_delivery {
	int err; /* 0: granted; else a positive errno (ETIMEDOUT) */
	const char *msg; /* err's sentence (static), or NULL for the default */
	uint64_t token, ttl_ms;
};

/* Runs on the waiting connection's loop, or with c == NULL if it closed. */
typedef void (*cs_deliver_fn)(struct vconn *c, void *arg);

#define CS_OWNER_MAX_HELD 1024 /* locks one connection may hold */

struct cs_stats {
	uint64_t epoch, locks, holders, waiters;
	uint64_t grants, handoffs, expired, timeouts, releases_on_close;
};

/* A table handing out tokens of epoch (cloudsync_epoch.h), with at most
 * max_entries holders + waiters.  Starts the timer thread.  NULL on failure.
 * Free with cs_table_free (after every connection is gone). */
struct cs_table *cs_table_new(uint64_t epoch, unsigned max_entries, cs_deliver_fn deliver);
void cs_table_free(struct cs_table *t);

enum cs_lock_result {
	CS_LOCK_GRANTED, /* *token, now */
	CS_LOCK_QUEUED, /* *token is the ticket; the grant comes via deliver */
	CS_LOCK_FAILED, /* *err (positive errno), *msg a sentence */
};

/* lock/trylock (r->op) on c's loop thread; ow is c's owner.  try: refuse
 * with EBUSY rather than wait (also when r->wait_ms is 0).  *pos: the
 * queue position when queued (1 = next). */
enum cs_lock_result cs_table_lock(struct cs_table *t, struct cs_owner *ow, struct vconn *c,
				  const struct cs_req *r, bool try, uint64_t *token, unsigned *pos,
				  int *err, const char **msg);
/* Extends ow's lease on name to ttl_ms from now: 0 and *token, -ENOLCK
 * (not held: never taken, released, or the lease already ended), or
 * -EACCES (held by a connection of another identity). */
int cs_table_renew(struct cs_table *t, struct cs_owner *ow, const char *name, size_t len,
		   uint64_t ttl_ms, uint64_t *token);
/* Releases ow's hold on name (the next waiter gets it): 0, -ENOLCK or
 * -EACCES (as renew). */
int cs_table_unlock(struct cs_table *t, struct cs_owner *ow, const char *name, size_t len);
/* The connection is closing: leave any queue, release every lock held
 * (each passes to its next waiter at once). */
void cs_table_owner_gone(struct cs_table *t, struct cs_owner *ow);
/* "STAT lock <name> <token> <holder> <lease_ms_left> <waiters>" lines for
 * every lock (name NULL) or one lock and its "STAT waiter <ticket> <peer>
 * <wait_ms_left|->" lines, at most max lines then "STAT more <n>". */
void cs_table_ls(struct cs_table *t, const char *name, size_t len, size_t max,
		 struct evbuffer *out);
void cs_table_stats(struct cs_table *t, struct cs_stats *st);

#endif
