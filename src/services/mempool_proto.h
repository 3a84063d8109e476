/*
 * mempool_proto.h - the mempool wire protocol parser (port 30000).
 *
 * Pure: bytes in, one request (or one error) out, no I/O and no allocation.
 * Two syntaxes share the port: the native commands (malloc/set/get/free/
 * stats/ping/help/quit, length-prefixed binary-safe payloads, pipelining)
 * and the notes' call syntax, virgo_cloud_malloc(1000) and friends, whose
 * replies keep the original's shape.  docs/PROTOCOL.md is the reference.
 */
#ifndef VIRGO_MEMPOOL_PROTO_H
#define VIRGO_MEMPOOL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/frame.h"

enum mp_op {
	MP_OP_MALLOC = 1,
	MP_OP_SET,
	MP_OP_GET,
	MP_OP_FREE,
	MP_OP_STATS,
	MP_OP_PING,
	MP_OP_HELP,
	MP_OP_QUIT,
	MP_OP_LS, /* ls [<cursor> [<count>]] */
	MP_OP_RENEW, /* renew <vuid> <ttl_ms> */
	MP_OP_FREE_OWNER, /* free owner=<tag> */
};

#define MP_OWNER_MAX 64 /* bytes of an owner tag */
#define MP_LS_DEFAULT 100 /* entries per ls page when no count is given */
#define MP_LS_MAX 1000 /* most entries a client may ask one ls page for */

/* Owner tags: 1..MP_OWNER_MAX bytes of [A-Za-z0-9._:@/-] (pure). */
bool mp_owner_valid(const char *owner, size_t len);

struct mp_req {
	enum mp_op op;
	bool legacy; /* notes' call syntax: answer in the original's shape */
	bool span; /* malloc ... span: mint a span-flagged VUID */
	bool shared; /* malloc ... shared: any identity may use it */
	bool has_offset; /* set: patch at offset; get: explicit range */
	uint64_t vuid;
	uint64_t size; /* malloc */
	uint64_t offset; /* set/get */
	uint64_t length; /* get range length */
	const uint8_t *data; /* set payload; points into the parsed buffer */
	size_t data_len;
	uint64_t ttl_ms; /* malloc ttl=, renew: lease length; 0 none */
	const char *owner; /* malloc/free owner=: points into the buffer */
	size_t owner_len;
	bool has_rid; /* malloc rid=<hex>: the client's request id */
	uint64_t rid;
	uint64_t cursor; /* ls: where the page starts (0: the beginning) */
	uint64_t count; /* ls: entries asked for (1..MP_LS_MAX) */
	/* set ... fence=<lock>:<token>: a fenced write (cloudsync_fence.h);
	 * fence_name points into the buffer, NULL when not fenced */
	const char *fence_name;
	size_t fence_len;
	uint64_t fence_token;
};

struct mp_limits {
	size_t max_line; /* longest request line */
	uint64_t max_value; /* largest payload or get range */
};

enum mp_parse_result {
	MP_MORE = 0, /* need more bytes (at least *need in total, if set) */
	MP_REQ, /* *req holds a request */
	MP_ERROR, /* *err_code (positive errno) and *err_msg describe it */
};

/* Parses at most one request from buf[0..len).  *consumed is always set:
 * the caller drops that many bytes (also on MP_MORE, when skipping).  On
 * MP_MORE, *need (if non-zero) is the buffered length worth waiting for.
 * req->data points into buf, valid until the caller drops the bytes. */
enum mp_parse_result mp_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      const struct mp_limits *lim, struct mp_req *req, size_t *consumed,
			      uint64_t *need, int *err_code, const char **err_msg);

#endif
