/*
 * cloudsync_proto.h - the cloudsync (cluster lock) wire protocol parser,
 * port 40000 + port_offset.
 *
 * Pure: bytes in, one request (or one error) out, no I/O and no
 * allocation.  One request per line: lock, trylock, renew, unlock, ls,
 * ping, help, quit (docs/PROTOCOL.md "cloudsync").  Also the lock-name and
 * "fence=<lock>:<token>" syntax the mempool's fenced set shares, so both
 * services accept exactly the same names.
 */
#ifndef VIRGO_CLOUDSYNC_PROTO_H
#define VIRGO_CLOUDSYNC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/frame.h"

#define CS_NAME_MAX 128 /* bytes of a lock name */
#define CS_LINE_MAX 512 /* longest request line */
#define CS_TTL_DEFAULT 30000 /* ms of lease when a request names none */
#define CS_TTL_MAX 86400000 /* one day */
#define CS_WAIT_MAX 86400000 /* longest bounded wait; no wait: for ever */
#define CS_WAIT_FOREVER UINT64_MAX

enum cs_op {
	CS_OP_LOCK = 1, /* lock <name> [<ttl_ms> [<wait_ms>]] */
	CS_OP_TRYLOCK, /* trylock <name> [<ttl_ms>] */
	CS_OP_RENEW, /* renew <name> [<ttl_ms>] */
	CS_OP_UNLOCK, /* unlock <name> */
	CS_OP_LS, /* ls [<name>] */
	CS_OP_STATS,
	CS_OP_PING,
	CS_OP_HELP,
	CS_OP_QUIT,
};

struct cs_req {
	enum cs_op op;
	const char *name; /* points into the parsed buffer; not NUL-terminated */
	size_t name_len; /* 0: none given (ls) */
	uint64_t ttl_ms; /* lock/trylock/renew: lease length (CS_TTL_DEFAULT if absent) */
	uint64_t wait_ms; /* lock: how long to wait (CS_WAIT_FOREVER if absent) */
};

enum cs_parse_result {
	CS_MORE = 0, /* need more bytes */
	CS_REQ, /* *req holds a request */
	CS_ERROR, /* *err_code (positive errno) and *err_msg describe it */
};

/* Lock names: 1..CS_NAME_MAX bytes of [A-Za-z0-9._:@/-] (pure). */
bool cs_name_valid(const char *name, size_t len);

/* "<name>:<token>" (the value of a fence= word): the name is everything
 * before the last ':', the token a decimal >= 1.  0 or -1. */
int cs_fence_parse(const uint8_t *s, size_t n, const char **name, size_t *name_len,
		   uint64_t *token);

/* Parses at most one request from buf[0..len).  *consumed is always set:
 * the caller drops that many bytes (also on CS_MORE).  req->name points
 * into buf, valid until the caller drops the bytes. */
enum cs_parse_result cs_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      struct cs_req *req, size_t *consumed, int *err_code,
			      const char **err_msg);

#endif
