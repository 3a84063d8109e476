/*
 * queue_proto.c - parser for the queue protocol (queue_proto.h).
 *
 * Built on the shared framing (frame.c).  A push whose header is wrong but
 * whose byte count is readable still has its payload skipped, so one bad
 * request never turns its payload into a stream of bogus commands (or of
 * telnet-path requests).  A line whose first word is not a command is a
 * telnet-path request and is returned whole (QP_LINE).
 */
#include "queue_proto.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define QP_MAX_TOKENS 5

static bool tok_is(const uint8_t *t, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp((const char *)t, word, n) == 0;
}

static enum qp_parse_result fail(int *code, const char **msg, int c, const char *m)
{
	*code = c;
	*msg = m;
	return QP_ERROR;
}

bool qp_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > QP_NAME_MAX || name[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static const char name_rule[] = "topic and group names are 1-64 characters of A-Z a-z 0-9 . _ - "
				"(not starting with .)";

static bool set_topic(struct qp_req *req, const uint8_t *t, size_t n)
{
	req->topic = (const char *)t;
	req->topic_len = n;
	return qp_name_valid(req->topic, n);
}

static const char push_usage[] = "usage: push <topic> <nbytes> [ts=<lamport>]";

static enum qp_parse_result parse_push(struct frame_state *st, const uint8_t *buf, size_t len,
				       bool eof, const struct qp_limits *lim, const uint8_t *line,
				       size_t used, const uint8_t **tok, const size_t *tl, int nt,
				       struct qp_req *req, size_t *consumed, uint64_t *need,
				       int *code, const char **msg)
{
	uint64_t n;
	if (nt < 3 || frame_u64(tok[2], tl[2], &n) != 0)
		return fail(code, msg, EINVAL, push_usage);
	switch (frame_body(st, buf, len, eof, line, used, n, lim->max_record, consumed, need)) {
	case FRAME_BODY_TOOBIG: return fail(code, msg, E2BIG, "payload larger than queue_max_record");
	case FRAME_BODY_MORE: return QP_MORE;
	case FRAME_BODY_BADTERM: return fail(code, msg, EINVAL, "payload not followed by CRLF");
	case FRAME_BODY_OK: break;
	}
	if (nt > 4)
		return fail(code, msg, EINVAL, push_usage);
	if (!set_topic(req, tok[1], tl[1]))
		return fail(code, msg, EINVAL, name_rule);
	if (nt == 4) {
		if (tl[3] < 4 || strncasecmp((const char *)tok[3], "ts=", 3) != 0 ||
		    frame_u64(tok[3] + 3, tl[3] - 3, &req->ts) != 0)
			return fail(code, msg, EINVAL, push_usage);
		req->has_ts = true;
	}
	req->op = QP_PUSH;
	req->data = buf + used;
	req->data_len = (size_t)n;
	return QP_REQ;
}

enum qp_parse_result qp_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      const struct qp_limits *lim, struct qp_req *req, size_t *consumed,
			      uint64_t *need, int *code, const char **msg)
{
	const uint8_t *line;
	size_t line_len, used;
	*need = 0;
	memset(req, 0, sizeof *req);
	enum frame_result fr = frame_next_line(st, buf, len, eof, lim->max_line, &line, &line_len, &used);
	*consumed = used;
	if (fr == FRAME_MORE)
		return QP_MORE;
	if (fr == FRAME_TOOLONG)
		return fail(code, msg, E2BIG, "request line too long");

	const uint8_t *tok[QP_MAX_TOKENS];
	size_t tl[QP_MAX_TOKENS];
	int nt = frame_tokens(line, line_len, tok, tl, QP_MAX_TOKENS);
	if (nt == 0)
		return QP_MORE; /* blanks only: nothing to do */
	static const char *const words[] = {"push", "sub", "read", "join", "ack",
					    "stat", "ls", "ping", "help", "quit"};
	if (nt < 0) {
		/* tok[0..QP_MAX_TOKENS) are set: a command with too many
		 * words is an error (a push's payload still skipped), any
		 * other long line a telnet-path request */
		if (tok_is(tok[0], tl[0], "push"))
			return parse_push(st, buf, len, eof, lim, line, used, tok, tl, QP_MAX_TOKENS,
					  req, consumed, need, code, msg);
		for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
			if (tok_is(tok[0], tl[0], words[i]))
				return fail(code, msg, EINVAL, "too many arguments");
	}

	if (nt > 0 && tok_is(tok[0], tl[0], "push"))
		return parse_push(st, buf, len, eof, lim, line, used, tok, tl, nt, req, consumed,
				  need, code, msg);
	if (nt > 0 && tok_is(tok[0], tl[0], "sub")) {
		req->op = QP_SUB;
		if (nt < 2 || nt > 3)
			return fail(code, msg, EINVAL, "usage: sub <topic> [<from offset>|end]");
		if (!set_topic(req, tok[1], tl[1]))
			return fail(code, msg, EINVAL, name_rule);
		req->from_end = true;
		if (nt == 3 && !tok_is(tok[2], tl[2], "end")) {
			if (frame_u64(tok[2], tl[2], &req->from) != 0)
				return fail(code, msg, EINVAL, "usage: sub <topic> [<from offset>|end]");
			req->from_end = false;
		}
		return QP_REQ;
	}
	if (nt > 0 && tok_is(tok[0], tl[0], "read")) {
		req->op = QP_READ;
		req->count = QP_READ_DEFAULT;
		if (nt < 3 || nt > 4 || frame_u64(tok[2], tl[2], &req->from) != 0)
			return fail(code, msg, EINVAL, "usage: read <topic> <from offset> [<count>]");
		if (!set_topic(req, tok[1], tl[1]))
			return fail(code, msg, EINVAL, name_rule);
		if (nt == 4 && (frame_u64(tok[3], tl[3], &req->count) != 0 || req->count == 0 ||
				req->count > QP_READ_MAX))
			return fail(code, msg, EINVAL, "read count must be 1..10000");
		return QP_REQ;
	}
	if (nt > 0 && tok_is(tok[0], tl[0], "join")) {
		req->op = QP_JOIN;
		req->max_inflight = QP_INFLIGHT_DEFAULT;
		if (nt >= 4 && tok_is(tok[nt - 1], tl[nt - 1], "shared")) {
			req->shared = true;
			nt--;
		}
		if (nt < 3 || nt > 4)
			return fail(code, msg, EINVAL,
				    "usage: join <topic> <group> [<max_inflight>] [shared]");
		if (!set_topic(req, tok[1], tl[1]) || !qp_name_valid((const char *)tok[2], tl[2]))
			return fail(code, msg, EINVAL, name_rule);
		req->group = (const char *)tok[2];
		req->group_len = tl[2];
		if (nt == 4 && (frame_u64(tok[3], tl[3], &req->max_inflight) != 0 ||
				req->max_inflight == 0 || req->max_inflight > QP_INFLIGHT_MAX))
			return fail(code, msg, EINVAL, "max_inflight must be 1..1024");
		return QP_REQ;
	}
	if (nt > 0 && tok_is(tok[0], tl[0], "ack")) {
		req->op = QP_ACK;
		if (nt != 2 || frame_u64(tok[1], tl[1], &req->offset) != 0)
			return fail(code, msg, EINVAL, "usage: ack <offset>");
		return QP_REQ;
	}
	if (nt > 0 && tok_is(tok[0], tl[0], "stat")) {
		req->op = QP_STAT;
		if (nt != 2)
			return fail(code, msg, EINVAL, "usage: stat <topic>");
		if (!set_topic(req, tok[1], tl[1]))
			return fail(code, msg, EINVAL, name_rule);
		return QP_REQ;
	}
	static const struct {
		const char *word;
		enum qp_op op;
	} bare[] = {{"ls", QP_LS}, {"ping", QP_PING}, {"help", QP_HELP}, {"quit", QP_QUIT}};
	for (size_t i = 0; nt > 0 && i < sizeof bare / sizeof bare[0]; i++) {
		if (tok_is(tok[0], tl[0], bare[i].word)) {
			if (nt != 1)
				return fail(code, msg, EINVAL, "this command takes no arguments");
			req->op = bare[i].op;
			return QP_REQ;
		}
	}
	/* the telnet path: the whole line (more than QP_MAX_TOKENS words
	 * included) is the request */
	req->op = QP_LINE;
	req->data = line;
	req->data_len = line_len;
	if (line_len > lim->max_record)
		return fail(code, msg, E2BIG, "request larger than queue_max_record");
	return QP_REQ;
}
