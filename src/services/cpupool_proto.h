/*
 * cpupool_proto.h - the cpupool wire protocol parser (port 10000).
 *
 * Pure: bytes in, one request (or one error) out, no I/O, no allocation.
 * Native commands: clone <name> <n> [<timeout_ms>] [trace=<context>] + n
 * argument bytes (the context: see eventnet_trace.h),
 * run <n> [<timeout_ms>] + an argv block of n bytes (NUL-terminated
 * strings), load/stats, ping, help, quit.  The notes' forms:
 * virgo_clone(<name>,<arg>) and a bare name on a line, answered in the
 * original's shape (bare bytes, then close).  docs/PROTOCOL.md is the
 * reference.
 */
#ifndef VIRGO_CPUPOOL_PROTO_H
#define VIRGO_CPUPOOL_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/frame.h"

#define CP_NAME_MAX 255 /* function or program name */
#define CP_ARGS_MAX 256 /* argv entries of one run */
#define CP_TRACE_MAX 2048 /* bytes of a clone's trace=<context> (eventnet_trace.h) */

enum cp_op {
	CP_OP_CLONE = 1, /* a built-in or plugin function by name */
	CP_OP_RUN, /* an allow-listed executable with an argv */
	CP_OP_CALL, /* notes' form: function, built-in or executable */
	CP_OP_LOAD,
	CP_OP_PING,
	CP_OP_HELP,
	CP_OP_QUIT,
};

struct cp_req {
	enum cp_op op;
	bool legacy; /* notes' syntax: bare reply, then close */
	const uint8_t *name; /* clone/call: points into the parsed buffer */
	size_t name_len;
	const uint8_t *data; /* clone/call argument, run argv block */
	size_t data_len;
	uint64_t timeout_ms; /* 0: the node's job_timeout_ms */
	const uint8_t *trace; /* clone trace=<context>: an EventNet trace context, or NULL */
	size_t trace_len;
};

struct cp_limits {
	size_t max_line;
	uint64_t max_arg; /* largest argument / argv block */
};

enum cp_parse_result {
	CP_MORE = 0, /* need more bytes (at least *need in total, if set) */
	CP_REQ,
	CP_ERROR, /* *err_code (positive errno), *err_msg (static) */
};

/* Parses at most one request from buf[0..len); contract as mp_parse:
 * *consumed is always set, req pointers are valid until those bytes are
 * dropped.  On CP_ERROR, req->legacy says the line was in the notes' call
 * syntax (virgo_clone(...), or any name(...)): its connection closes after
 * the error, as after a call that fails. */
enum cp_parse_result cp_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      const struct cp_limits *lim, struct cp_req *req, size_t *consumed,
			      uint64_t *need, int *err_code, const char **err_msg);

/* A function name: [A-Za-z_][A-Za-z0-9_]*, at most CP_NAME_MAX bytes. */
bool cp_fn_name_ok(const uint8_t *s, size_t n);

/* Checks an argv block: 1..CP_ARGS_MAX NUL-terminated strings, the first
 * non-empty.  Returns the count, or -1 (with *why set, static). */
int cp_argv_check(const uint8_t *blk, size_t n, const char **why);

/* True if a program path has a ".." component (refused before lookup). */
bool cp_path_traverses(const char *path);

#endif
