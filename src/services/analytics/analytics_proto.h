/*
 * analytics_proto.h - the kernel analytics wire and file formats as pure
 * functions over bytes (no sockets, no store), so they are unit-tested
 * and fuzzed (tests/fuzz/fuzz_analytics_proto.c).
 *
 * Two inputs share one grammar of pairs: the original's
 * virgo_kernel_analytics.conf (comma-separated key=value, over several
 * lines, values with brackets and spaces: "match=True,kernel_analytics1=v1"
 * and the balancer's ",localhost_load=[0.5, 0.3, 0.2]") and what publishers
 * write to port 64000 (key=value lines or comma-separated chunks).  A
 * comma inside brackets ( [ { belongs to the value.  Requests of the native
 * protocol (get/set/ls/watch/history) are told apart by their first word.
 */
#ifndef VIRGO_ANALYTICS_PROTO_H
#define VIRGO_ANALYTICS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AN_MAX_KEY 128 /* bytes of a variable's name */
#define AN_MAX_VALUE 1024 /* bytes of a value */
#define AN_MAX_LINE 65536 /* bytes of one request or chunk line */
#define AN_STREAM_START "KERNEL_ANALYTICS_STREAMING_START"

/* One key=value pair; pointers into the caller's buffer (not terminated). */
struct an_pair {
	const char *key;
	size_t klen;
	const char *val;
	size_t vlen;
	const char *err; /* an_next_pair() < 0: why (static sentence) */
};

/* The next pair of buf[*pos..len): pieces end at a comma or a line break
 * outside brackets; blank pieces and lines starting with '#' are skipped;
 * spaces around keys and values are trimmed.  Returns 1 (p holds a pair),
 * 0 (no more), or -EINVAL (p->key/klen hold the bad piece, p->err why);
 * *pos always advances past what was read, so a caller may skip a bad
 * piece and go on. */
int an_next_pair(const char *buf, size_t len, size_t *pos, struct an_pair *p);

/* true when key[0..klen) is a valid name: 1..AN_MAX_KEY bytes of
 * A-Z a-z 0-9 _ . : / - */
bool an_key_ok(const char *key, size_t klen);

enum an_cmd {
	AN_BAD = 0, /* r->err says why */
	AN_GET, /* arg: key */
	AN_SET, /* arg: pairs (a reply per request) */
	AN_PUBLISH, /* arg: the whole line of pairs (no reply unless refused) */
	AN_LS, /* arg: optional key prefix */
	AN_WATCH, /* has_rev: resume after rev */
	AN_HISTORY, /* arg: key */
	AN_STREAM, /* KERNEL_ANALYTICS_STREAMING_START: stream key=value lines */
	AN_HELP,
	AN_QUIT,
};

struct an_req {
	enum an_cmd cmd;
	const char *arg; /* into the line; arg_len bytes */
	size_t arg_len;
	bool has_rev;
	uint64_t rev;
	const char *err;
};

/* Parses one request line (without its terminator).  Returns 0, or
 * -EINVAL with r->cmd = AN_BAD and r->err set. */
int an_parse_request(const char *line, size_t len, struct an_req *r);

#endif
