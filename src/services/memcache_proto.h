/*
 * memcache_proto.h - parser for memcached's text protocol (the memcache
 * service, port 11211 + offset).
 *
 * Pure: bytes in, one request (or one error line) out; no I/O, no
 * allocation, no clock.  Commands and error strings follow memcached's
 * protocol.txt: lines end in "\n" (an optional "\r" before it is dropped),
 * tokens are separated by spaces, keys are at most 250 bytes, a storage
 * command's data block is exactly <bytes> bytes followed by "\r\n".
 * docs/PROTOCOL.md ("memcache") is the reference.
 */
#ifndef VIRGO_MEMCACHE_PROTO_H
#define VIRGO_MEMCACHE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MC_KEY_MAX 250
/* memcached's slab class ids are 0..63 (stats cachedump checks this);
 * the store has one class, 1, since items are not kept in slabs */
#define MC_SLAB_CLASSES 64
#define MC_REALTIME_MAXDELTA (60 * 60 * 24 * 30) /* exptimes above are absolute */

enum mc_op {
	MC_OP_GET = 1, /* get/gets/gat/gats: keys in req.keys */
	MC_OP_SET,
	MC_OP_ADD,
	MC_OP_REPLACE,
	MC_OP_APPEND,
	MC_OP_PREPEND,
	MC_OP_CAS,
	MC_OP_DELETE,
	MC_OP_INCR,
	MC_OP_DECR,
	MC_OP_TOUCH,
	MC_OP_FLUSH_ALL,
	MC_OP_STATS,
	MC_OP_VERSION,
	MC_OP_VERBOSITY,
	MC_OP_QUIT,
	MC_OP_METADUMP, /* lru_crawler metadump <all|hash|class[,class...]> */
};

struct mc_req {
	enum mc_op op;
	bool noreply;
	bool with_cas; /* gets/gats: show the CAS value */
	bool touch; /* gat/gats: update exptime first */
	const uint8_t *key; /* single-key commands; points into the buffer */
	size_t key_len;
	const uint8_t *keys; /* get family: space-separated, each validated */
	size_t keys_len;
	uint32_t flags;
	int64_t exptime; /* as sent (relative, absolute, negative); see mc_exptime_abs */
	uint64_t cas; /* cas: the client's unique */
	uint64_t delta; /* incr/decr */
	int64_t delay; /* flush_all [delay]; verbosity level */
	const uint8_t *arg; /* stats <arg> (NULL when none) */
	size_t arg_len;
	/* stats cachedump <class> <limit>; metadump: dump_class 1 when the
	 * classes asked for include the store's one class, else 0 */
	uint32_t dump_class, dump_limit;
	const uint8_t *data; /* storage: the data block, without its "\r\n" */
	size_t data_len;
};

struct mc_parse_state {
	bool discard_line; /* skipping the rest of an overlong line */
	uint64_t swallow; /* data bytes still to drop after a refused store */
};

struct mc_limits {
	size_t max_line; /* longest command line */
	uint64_t max_item; /* largest data block stored */
};

enum mc_parse_result {
	MC_MORE = 0, /* need more bytes (at least *need buffered, if non-zero) */
	MC_REQ, /* *req holds a request */
	MC_ERROR, /* *err is the full reply line, without "\r\n" */
};

/* Parses at most one request from buf[0..len).  *consumed is always set
 * (the caller drops that many bytes, also on MC_MORE when skipping).
 * req's pointers point into buf, valid until those bytes are dropped.
 * *err is a static string. */
enum mc_parse_result mc_parse(struct mc_parse_state *st, const uint8_t *buf, size_t len,
			      const struct mc_limits *lim, struct mc_req *req, size_t *consumed,
			      size_t *need, const char **err);

/* As mc_parse, except that a storage command is returned as soon as its
 * line is parsed: req->data is NULL, req->data_len the announced byte
 * count, *consumed the line's length and *need the length of the whole
 * request (line, data, "\r\n"); the caller takes the data block itself
 * and must check its "\r\n" (else "CLIENT_ERROR bad data chunk").  Lets
 * a large value be copied once, from wherever the input holds it. */
enum mc_parse_result mc_parse_head(struct mc_parse_state *st, const uint8_t *buf, size_t len,
				   const struct mc_limits *lim, struct mc_req *req,
				   size_t *consumed, size_t *need, const char **err);

/* Iterates the keys of a get-family request: returns false at the end.
 * *pos starts at 0. */
bool mc_next_key(const struct mc_req *req, size_t *pos, const uint8_t **key, size_t *len);

/* memcached's exptime rule as an absolute unix time: 0 = never expires;
 * negative = already expired; up to 30 days = relative to now; above =
 * absolute unix time.  An expired result is returned as 1 (in the past). */
int64_t mc_exptime_abs(int64_t exptime, int64_t now);

/* A decimal number as memcached's safe_strtoull reads one (an incr/decr
 * delta, or the value it applies to): leading white space, an optional
 * sign, digits, then the end or white space (what follows is ignored);
 * false on no digits, overflow, or a result that is negative as a
 * signed 64-bit number when a '-' was given. */
bool mc_strtoull(const uint8_t *p, size_t n, uint64_t *out);

/* Formats v in decimal into buf (at least 20 bytes); returns the length. */
size_t mc_u64_str(uint64_t v, char *buf);

#endif
