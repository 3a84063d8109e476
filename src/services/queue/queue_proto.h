/*
 * queue_proto.h - the queue wire protocol parser (port 60000).
 *
 * Pure: bytes in, one request (or one error) out, no I/O, no allocation.
 * Native commands (push with a length-prefixed binary-safe payload, sub,
 * read, join/ack for consumer groups, ls, stat, ping, help, quit) may be
 * pipelined.  Any other line is the notes' telnet path (§922): the line
 * itself is a request to enqueue on the default topic.  docs/PROTOCOL.md
 * is the reference.
 */
#ifndef VIRGO_QUEUE_PROTO_H
#define VIRGO_QUEUE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/frame.h"

enum qp_op {
	QP_PUSH = 1, /* push <topic> <n> [ts=<lamport>] + n bytes + CRLF */
	QP_SUB, /* sub <topic> [<from>|end] */
	QP_READ, /* read <topic> <from> [<count>] */
	QP_JOIN, /* join <topic> <group> [<max_inflight>] [shared] */
	QP_ACK, /* ack <offset> (a group member's connection) */
	QP_LS, /* ls */
	QP_STAT, /* stat <topic> */
	QP_PING,
	QP_HELP,
	QP_QUIT,
	QP_LINE, /* any other line: the telnet path, enqueue it */
};

#define QP_NAME_MAX 64 /* bytes of a topic or group name */
#define QP_READ_DEFAULT 100 /* records per read when no count is given */
#define QP_READ_MAX 10000 /* most records one read may ask for */
#define QP_INFLIGHT_DEFAULT 16 /* a member's unacked records when not given */
#define QP_INFLIGHT_MAX 1024

/* Topic and group names: 1..QP_NAME_MAX bytes of [A-Za-z0-9._-], not
 * starting with '.' (they name directories and files). */
bool qp_name_valid(const char *name, size_t len);

struct qp_req {
	enum qp_op op;
	const char *topic; /* points into the parsed buffer */
	size_t topic_len;
	const char *group;
	size_t group_len;
	const uint8_t *data; /* push payload / telnet line; points into buf */
	size_t data_len;
	bool has_ts; /* push ts=: the client's Lamport clock */
	uint64_t ts;
	bool from_end; /* sub without <from> or with "end" */
	uint64_t from; /* sub/read: first offset wanted */
	uint64_t count; /* read: records (1..QP_READ_MAX) */
	uint64_t max_inflight; /* join: 1..QP_INFLIGHT_MAX */
	bool shared; /* join: a group it creates is anyone's (queue_owner.c) */
	uint64_t offset; /* ack */
};

struct qp_limits {
	size_t max_line; /* longest request line */
	uint64_t max_record; /* largest payload */
};

enum qp_parse_result {
	QP_MORE = 0, /* need more bytes (at least *need in total, if set) */
	QP_REQ, /* *req holds a request */
	QP_ERROR, /* *err_code (positive errno) and *err_msg describe it */
};

/* Parses at most one request from buf[0..len).  *consumed is always set:
 * the caller drops that many bytes (also on QP_MORE, when skipping).  On
 * QP_MORE, *need (if non-zero) is the buffered length worth waiting for.
 * Pointers in *req point into buf, valid until the caller drops the bytes. */
enum qp_parse_result qp_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      const struct qp_limits *lim, struct qp_req *req, size_t *consumed,
			      uint64_t *need, int *err_code, const char **err_msg);

#endif
