/*
 * mem_find.h - what mem.c shares with mem_find.c (leases, owner tags,
 * listing): the owner-tag check libvirgo applies before a tag goes into a
 * request line.
 */
#ifndef VIRGO_MEM_FIND_H
#define VIRGO_MEM_FIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vc_client;

/* Mallocs whose reply never came (the node hung or the connection broke
 * after the request went out): the node may have allocated.  Their exact
 * request line (with its rid) is kept so that a later call can send it
 * again: a node that ran it answers the same VUID (which is then freed),
 * one that had not allocates now (freed too).  Kept at most
 * VC_PENDING_KEEP_MS, less than the node remembers request ids. */
#define VC_PENDING_MAX 256
#define VC_PENDING_KEEP_MS 100000
struct vc_pending {
	int idx; /* node index */
	int64_t at_ms; /* when the first attempt was sent */
	char line[240]; /* "malloc ... rid=...\r\n" */
};
/* Remembers one (the oldest is dropped when full). */
void vc_pending_add(struct vc_client *c, int idx, const char *line, size_t len, int64_t at_ms);
/* Moves up to max young entries into out; drops stale ones. */
size_t vc_pending_take(struct vc_client *c, struct vc_pending *out, size_t max, int64_t now);

/* 1..64 characters of A-Z a-z 0-9 . _ - : @ / (the node's rule too). */
bool vc_owner_ok(const char *owner);

#endif
