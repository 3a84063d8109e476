/*
 * eventnet_graph.h - one node's causal event graph in memory, with its
 * logical clocks (no locking, no I/O: the service locks, the journal
 * persists; unit-tested directly).
 *
 * The node is one process in Lamport's sense: the events it records are
 * ordered, and each gets the node's next sequence number, a Lamport time
 * (greater than the node's previous one, the client's carried time and
 * every cause's) and a vector clock (the node's clock merged with the
 * client's carried clock and every cause's, with the node's own entry
 * set to the sequence number).  So a -> b implies L(a) < L(b) and
 * V(a) < V(b), and two events with incomparable clocks are concurrent.
 * Causes ("parents") are the logged edges: local ones by index, remote
 * ones (recorded on another node, known here only by id) by name.
 */
#ifndef VIRGO_EVENTNET_GRAPH_H
#define VIRGO_EVENTNET_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/evclock.h"

#define EVG_CONV_MAX (64 * 1024) /* bytes of one vertex's conversations */

/* What only some events have: a second local cause, a remote cause, an
 * appended conversation (evg_event.more). */
struct evg_more {
	uint32_t *parents; /* the local causes after the first (malloc'd) */
	uint32_t nparents, capparents;
	char *rparents; /* remote causes, csv (malloc'd) or NULL */
	char *eparents; /* local causes evicted from memory, csv (malloc'd) or NULL */
	char *conv; /* the conversations once one was appended (malloc'd), or NULL */
	size_t conv_len;
};

/* One event: 56 bytes of fixed fields, then in the same block its vector
 * clock (vcn entries; with self, without the entry of its own node, which
 * is its seq: so a one-node cluster's events store none), its id
 * (NUL-terminated) and its conversation as first logged (NUL-terminated,
 * conv_len bytes).  Read the variable parts through the evg_ev_*
 * accessors below. */
struct evg_event {
	uint64_t seq, lamport;
	struct evg_more *more; /* NULL for most events */
	const char *partakers; /* interned (the graph's memory), NUL-terminated; NULL: none */
	uint32_t hash; /* of the id */
	uint32_t parent; /* the first local cause: its index + 1; 0: none */
	uint32_t conv_len; /* of the inline conversation */
	uint16_t id_len;
	uint16_t node;
	uint8_t vcn; /* clock entries stored */
	bool self; /* the clock also has node:seq (not stored) */
};

/* The entries stored in the block (see evg_ev_clock). */
static inline const struct evc_ent *evg_ev_vc(const struct evg_event *e)
{
	return (const struct evc_ent *)(e + 1);
}
/* The event's whole vector clock into out (room for EVC_MAX entries),
 * sorted by node; returns the number of entries. */
static inline unsigned evg_ev_clock(const struct evg_event *e, struct evc_ent *out)
{
	const struct evc_ent *v = evg_ev_vc(e);
	unsigned n = 0, i = 0;
	if (e->self) {
		for (; i < e->vcn && v[i].node < e->node; i++)
			out[n++] = v[i];
		out[n].node = e->node;
		out[n++].c = e->seq;
	}
	for (; i < e->vcn; i++)
		out[n++] = v[i];
	return n;
}
/* How a's clock compares with b's (EVC_BEFORE: a happened before b). */
enum evc_order evg_order(const struct evg_event *a, const struct evg_event *b);

static inline const char *evg_ev_id(const struct evg_event *e)
{
	return (const char *)(evg_ev_vc(e) + e->vcn);
}
static inline const char *evg_ev_partakers(const struct evg_event *e)
{
	return e->partakers ? e->partakers : "";
}
/* The conversations (NUL-terminated; *len bytes), "" when none.  An
 * append replaces them: read only under the service's lock. */
static inline const char *evg_ev_conv(const struct evg_event *e, size_t *len)
{
	if (e->more && e->more->conv) {
		*len = e->more->conv_len;
		return e->more->conv;
	}
	*len = e->conv_len;
	return evg_ev_id(e) + e->id_len + 1;
}
static inline uint32_t evg_ev_nparents(const struct evg_event *e)
{
	return (e->parent ? 1 : 0) + (e->more ? e->more->nparents : 0);
}
/* The k-th local cause's index (k < evg_ev_nparents(e)). */
static inline uint32_t evg_ev_parent(const struct evg_event *e, uint32_t k)
{
	return k == 0 && e->parent ? e->parent - 1 : e->more->parents[k - (e->parent ? 1 : 0)];
}
static inline const char *evg_ev_rparents(const struct evg_event *e)
{
	return e->more ? e->more->rparents : NULL;
}
/* Causes recorded here whose events were evicted from memory (csv). */
static inline const char *evg_ev_eparents(const struct evg_event *e)
{
	return e->more ? e->more->eparents : NULL;
}

/* Memory the events are carved from (eventnet_graph.c). */
struct evg_chunk {
	struct evg_chunk *next; /* the older one */
	uint64_t first; /* ordinal of the first event carved from it */
	uint32_t left; /* bytes free at the end of data */
	uint32_t size; /* bytes of the mapping (a 2 MiB chunk) */
	char data[]; /* 24 bytes in: 8-byte aligned */
};

/* An evicted event whose conversation had been appended to (its vertex
 * line in EventNetVertices.txt may not have it yet): ord is its ordinal,
 * text "<id>\0<partakers>\0<conversations>" (malloc'd). */
struct evg_gone {
	uint64_t ord;
	char *text;
	size_t id_n, part_n, conv_n;
};

/* The graph holds the newest events: when a new one would pass
 * max_events / max_bytes, the oldest leave memory in a batch (evg_evict)
 * and their whole chunks go back.  An event's ordinal (its place among
 * every event this node ever recorded, the line of EventNetVertices.txt)
 * is base + its index. */
struct evg {
	struct evg_event **ev; /* by index: the order of recording */
	uint64_t base; /* events evicted: ordinal of ev[0] */
	struct evg_gone *gone; /* evicted events that had appended conversations */
	size_t ngone, capgone;
	/* evicted chunks, kept until no round of requests can still read
	 * their events (formatting after the lock): each tagged with the
	 * service's tag at eviction, freed by evg_reclaim */
	struct evg_chunk *dead;
	uint64_t tag;
	struct evg_chunk *chunks; /* the head is the one being carved */
	struct evg_chunk *spare; /* the next one, faulted in outside the lock, or NULL */
	uint32_t n, cap;
	uint64_t *slot; /* open addressing over ids: hash << 32 | (index + 1), 0 empty */
	uint32_t nslot; /* power of two */
	/* the index grows incrementally: while old is set, lookups also probe
	 * it (read-only) and every new event copies a few of its slots into
	 * slot; freed once all are copied.  No whole-table rehash at once. */
	uint64_t *old;
	uint32_t nold, moved; /* old's slots [0, moved) are copied */
	/* the index's next table (twice nslot), faulted in outside the lock
	 * before it is due, or NULL (evg_index_spare_wanted) */
	uint64_t *spare_slot;
	uint32_t nspare_slot;
	/* partakers strings, interned: one copy in the graph's memory each */
	const char **names; /* open addressing, nnames slots (power of two) */
	uint32_t nnames, unames;
	uint32_t *mark; /* why's visited marks (epoch-stamped), nmark entries */
	uint32_t nmark;
	uint32_t epoch;
	uint16_t node_id;
	struct evc clock; /* the node's clock: every event recorded here */
	uint64_t seq, lamport;
	uint64_t nedges; /* causes recorded (local + remote) */
	uint64_t bytes; /* memory held by events and their extras (see evg_bytes) */
	uint64_t max_events, max_bytes;
};

/* 0 or -ENOMEM.  max_events / max_bytes bound what the graph holds: at
 * the bound the oldest events are evicted (evg_evict). */
int evg_init(struct evg *g, uint16_t node_id, uint64_t max_events, uint64_t max_bytes);
void evg_free(struct evg *g);

/* The memory the graph holds: its events (their blocks and extras), the
 * id index (both tables while it grows) and the arrays by index.  What
 * eventnet_max_bytes bounds. */
uint64_t evg_bytes(const struct evg *g);

/* Evicts at least the oldest k events (k <= n), rounded up so that whole
 * chunks go back to the system: causes naming them move to eparents (by
 * id), appended conversations to gone.  Indices shift down by the number
 * evicted, which is returned. */
uint32_t evg_evict(struct evg *g, uint32_t k);
/* Frees the evicted chunks tagged before done (the service's tag
 * of the oldest round that may still read events). */
void evg_reclaim(struct evg *g, uint64_t done);
/* Takes the gone list (*out malloc'd, caller frees each text and the
 * array; *n entries). */
void evg_take_gone(struct evg *g, struct evg_gone **out, size_t *n);

/* Index of the event named id[0..n), or -1. */
int64_t evg_find(const struct evg *g, const char *id, size_t n);

/* The hash of an id, as the index uses it: computed before taking the
 * service's lock (evg_log_in.hash). */
uint32_t evg_hash(const char *id, size_t n);
/* Starts loading the index slot of hash into the cache: the slot table
 * of a large graph does not fit in it, and a round of requests issues
 * its loads ahead instead of waiting for one miss after another. */
void evg_prefetch(const struct evg *g, uint32_t hash);

/* The event memory is carved from 2 MiB chunks.  evg_spare_wanted: true when the graph has no
 * spare chunk; evg_chunk_new (no graph, no lock: it faults the memory
 * in) makes one, evg_give_spare hands it to the graph (or frees it when
 * one arrived meanwhile).  Without a spare the graph maps one itself. */
bool evg_spare_wanted(const struct evg *g);
struct evg_chunk *evg_chunk_new(void);
void evg_give_spare(struct evg *g, struct evg_chunk *c);

/* The id index doubles when half full; a table of hundreds of MiB has
 * its pages zeroed on first touch, which under the service's lock stalls
 * every other worker.  So the next table is made ahead: once the index
 * is seven sixteenths full, evg_index_spare_wanted returns the slots it
 * should have (0: none wanted: one is there, the table is small, or the
 * bounds will never let the index grow or hold it), evg_index_table_new
 * (no graph, no lock: it faults every page in; NULL when out of memory)
 * makes it, and evg_give_index_spare hands it to the graph, which owns
 * it from then on (or frees it when it is no longer wanted).  Without a
 * spare the index allocates its next table itself. */
uint32_t evg_index_spare_wanted(const struct evg *g);
uint64_t *evg_index_table_new(uint32_t nslot);
void evg_give_index_spare(struct evg *g, uint64_t *table, uint32_t nslot);

struct evg_str {
	const char *p;
	size_t n;
};

struct evg_log_in {
	struct evg_str id, partakers, conv;
	const struct evg_str *after; /* causes: local or remote ids */
	unsigned nafter;
	const struct evc *clock; /* the client's carried clock, or NULL */
	uint64_t lamport; /* the client's carried Lamport time (0: none) */
	uint32_t hash; /* evg_hash(id), or 0: computed by evg_log */
};

/* What a change did, for the journal and the text files: the event,
 * whether it is new, and which causes were added. */
struct evg_change {
	uint32_t idx;
	bool created;
	bool conv_appended;
	unsigned nadded; /* causes newly recorded for idx, ids in added[] */
	struct evg_str added[16 + 1];
};

/* Logs an event: a new one, or (an id already recorded) appends the
 * conversation (joined with '#') and adds the causes.  0, or a negative
 * errno with *why set: -ELOOP (a local cause recorded after it: a
 * cycle), -EINVAL (a clock naming events this node never recorded),
 * -ENOSPC (max_bytes too small to hold one chunk more), -E2BIG
 * (conversations too long), -ENOMEM.  A new event at the bound evicts
 * the oldest ones first (indices known before shift down by what
 * g->base grew); an id that was evicted is a new event again. */
int evg_log(struct evg *g, const struct evg_log_in *in, struct evg_change *out, const char **why);

/* Records the edge from -> to (both on this node): to is created when
 * unknown (and from before it, when unknown too).  ch[0..*nch) get the
 * changes in order (at most 2).  0, or -ELOOP when to is recorded
 * already and from is not (or happened after it, or is to), -ENOSPC,
 * -ENOMEM, with *why set. */
int evg_edge(struct evg *g, struct evg_str from, struct evg_str to, struct evg_change ch[2],
	     int *nch, const char **why);

/* Replays one event exactly as journaled (start-up), evicting as a new
 * event does; an id still in memory is a later event of the same id
 * (the first was evicted when it was logged): evicted up to it first.
 * 0 or -1. */
int evg_replay_event(struct evg *g, struct evg_str id, struct evg_str partakers,
		     struct evg_str conv, uint16_t node, uint64_t seq, uint64_t lamport,
		     const struct evc *vc);
/* Replays an appended conversation or an added cause.  0, 1 (the event
 * is not in memory: evicted, skipped) or -1. */
int evg_replay_conv(struct evg *g, struct evg_str id, struct evg_str conv);
int evg_replay_cause(struct evg *g, struct evg_str id, struct evg_str cause);

/* The ancestors of idx through the recorded causes, sorted causally (by
 * Lamport time, then node and sequence).  *out (malloc'd, caller frees)
 * gets their indices; *remote (malloc'd csv, caller frees; NULL when
 * none) the remote causes met on the way, *evicted (the same) the causes
 * evicted from memory (where the history known here is truncated).
 * 0 or -ENOMEM. */
int evg_why(struct evg *g, uint32_t idx, uint32_t **out, size_t *n, char **remote,
	    char **evicted);

/* Writes the causes of e as a csv into buf (cap bytes); returns its
 * length, or 0 when none ("-" is not written). */
size_t evg_parents_csv(const struct evg *g, const struct evg_event *e, char *buf, size_t cap);
/* Bytes evg_parents_csv needs (without the NUL). */
size_t evg_parents_len(const struct evg *g, const struct evg_event *e);

#endif
