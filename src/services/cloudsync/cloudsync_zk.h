/*
 * cloudsync_zk.h - the ZooKeeper lock backend (lock_backend = zookeeper).
 *
 * A lock on one home node is unavailable while that node is down; with
 * this backend every virgod serves every lock and the queue lives in
 * ZooKeeper, using its lock recipe: a request creates an ephemeral
 * sequential znode under /virgo/locks/l-<name> (take a number), holds the
 * lock when its znode is the lowest, and otherwise watches the znode just
 * before it (first come, first served, no herd).  The fencing token is the
 * znode's creation zxid, which grows across the whole ensemble and its
 * restarts.  The client protocol does not change, except that a waiting
 * lock answers no QUEUED line (the grant or the error is the one reply).
 * Leases, the connection tie and the fence table work as with the local
 * table; if the node's ZooKeeper session expires, every hold it served is
 * lost (ZooKeeper deleted the znodes).
 */
#ifndef VIRGO_CLOUDSYNC_ZK_H
#define VIRGO_CLOUDSYNC_ZK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloudsync_proto.h"
#include "cloudsync_table.h"

struct vconn;
struct evbuffer;
struct cs_zk;
struct zk_req;

/* One connection's requests (embedded in its state; zeroed = none). */
struct cs_zk_owner {
	struct zk_req *reqs; /* waiting and held, guarded by the backend's mutex */
};

/* A backend for hosts ("h:p,h:p"); its session starts at cs_zk_start
 * (waiting at most wait_ms for it, then retrying every second), and lock
 * requests answer ERR EIO until it is up.  NULL with a sentence in err. */
struct cs_zk *cs_zk_new(const char *hosts, int wait_ms, unsigned max_entries,
			cs_deliver_fn deliver, char *err, size_t errlen);
/* Once the node listens (the service's first tick): connect. */
void cs_zk_start(struct cs_zk *z);
void cs_zk_free(struct cs_zk *z);

/* lock/trylock on c's loop thread: 0 (the reply comes via deliver: the
 * caller returns VSVC_WAIT) or a positive errno with *msg. */
int cs_zk_lock(struct cs_zk *z, struct cs_zk_owner *ow, struct vconn *c, const struct cs_req *r,
	       bool try, const char **msg);
int cs_zk_renew(struct cs_zk *z, struct cs_zk_owner *ow, const char *name, size_t len,
		uint64_t ttl_ms, uint64_t *token);
int cs_zk_unlock(struct cs_zk *z, struct cs_zk_owner *ow, const char *name, size_t len);
void cs_zk_owner_gone(struct cs_zk *z, struct cs_zk_owner *ow);
/* This node's holds and waiters (not the whole ensemble's), as cs_table_ls. */
void cs_zk_ls(struct cs_zk *z, const char *name, size_t len, size_t max, struct evbuffer *out);
void cs_zk_stats(struct cs_zk *z, struct cs_stats *st);

#endif
