/*
 * eventnet_proto.h - the EventNet wire protocol parser (port 20000).
 *
 * Pure: bytes in, one request (or one error) out; no I/O, no allocation.
 * Two syntaxes share the port: the notes' and the original's messages
 * (eventnet_edgemsg#..., eventnet_vertexmsg#... and the misspelt
 * eventnet_vertextmsg#..., answered "EventNet updated") and the native
 * line commands (log, edge, get, why, before, dump, tail, clock, stats,
 * ping, help, quit), pipelined.  docs/PROTOCOL.md is the reference.
 */
#ifndef VIRGO_EVENTNET_PROTO_H
#define VIRGO_EVENTNET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/evclock.h"
#include "../../common/frame.h"

#define EVN_ID_MAX 128 /* bytes of an event id */
#define EVN_PARTAKERS_MAX 1024 /* bytes of a partakers list */
#define EVN_AFTER_MAX 16 /* causes one log line may name */
#define EVN_WHY_DEFAULT 1000 /* ancestors listed when no max is given */
#define EVN_WHY_MAX 100000
#define EVN_DUMP_DEFAULT 1000 /* events per dump page */
#define EVN_DUMP_MAX 10000

enum evn_op {
	EVN_OP_LOG = 1, /* a vertex: log, or a legacy vertex message */
	EVN_OP_EDGE, /* edge <from> <to>, or a legacy edge message */
	EVN_OP_GET,
	EVN_OP_WHY,
	EVN_OP_BEFORE,
	EVN_OP_DUMP,
	EVN_OP_TAIL,
	EVN_OP_CLOCK,
	EVN_OP_STATS,
	EVN_OP_PING,
	EVN_OP_HELP,
	EVN_OP_QUIT,
};

/* A byte range of the parsed buffer (valid until the caller drops it). */
struct evn_str {
	const char *p;
	size_t n;
};

struct evn_req {
	enum evn_op op;
	bool legacy; /* the notes' message syntax: reply "EventNet updated" */
	struct evn_str id; /* log/get/why: the event; edge: from; before: a */
	struct evn_str id2; /* edge: to; before: b */
	struct evn_str partakers; /* log: csv, may be empty */
	struct evn_str conv; /* log: the conversation, may be empty */
	unsigned nafter; /* log after=: causes */
	struct evn_str after[EVN_AFTER_MAX];
	bool has_clock; /* log clock=: the client's vector clock */
	struct evc clock;
	uint64_t lamport; /* log lamport=: the client's Lamport time (0: none) */
	uint64_t cursor, count; /* dump; why: count = max ancestors listed */
};

enum evn_parse_result {
	EVN_MORE = 0, /* need more bytes */
	EVN_REQ, /* *req holds a request */
	EVN_ERROR, /* *err_code (positive errno) and *err_msg describe it */
};

/* A request's trace context (another service's request line carries it
 * as trace=<id>@<cause>@<lamport>@<vclock>, eventnet_trace.h): the node
 * records its event <id> after the client's event <cause>, merging the
 * client's clocks. */
struct evn_trace_ctx {
	struct evn_str id, cause;
	uint64_t lamport;
	struct evc clock;
};
#define EVN_TRACE_MAX (2 * EVN_ID_MAX + 24 + EVC_TEXT_MAX) /* bytes of one context */

/* Parses a trace context (without "trace=") of n bytes: 0, or -1 when
 * malformed or longer than EVN_TRACE_MAX.  Strings point into s. */
int evn_trace_parse(const char *s, size_t n, struct evn_trace_ctx *out);

/* An event id: 1..EVN_ID_MAX bytes of printable ASCII without blanks,
 * '#', ',' or '@' (the files and the CLI's id@node use those). */
bool evn_id_valid(const char *s, size_t n);

/* Parses at most one request from buf[0..len).  *consumed is always set
 * (the caller drops that many bytes, also on EVN_MORE).  Strings in *req
 * point into buf. */
enum evn_parse_result evn_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
				size_t max_line, struct evn_req *req, size_t *consumed,
				int *err_code, const char **err_msg);

#endif
