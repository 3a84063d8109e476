/*
 * cpupool_proto.c - parser for the cpupool protocol (cpupool_proto.h).
 *
 * Like mempool_proto.c: framing from frame.c (CR/LF/NUL end a line, NUL
 * padding ignored), a payload announced on the request line, and a request
 * whose payload is too large has that payload skipped rather than read as
 * commands.  The call syntax keeps everything after the first comma up to
 * the final ')' as the argument, spaces and quotes included (PROTOCOL.md,
 * "Compatibility with the original VIRGO": the original cut requests at a
 * space; that was a bug).
 */
#include "cpupool_proto.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define CP_MAX_TOKENS 5

static bool tok_is(const uint8_t *t, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp((const char *)t, word, n) == 0;
}

static enum cp_parse_result fail(int *code, const char **msg, int c, const char *m)
{
	*code = c;
	*msg = m;
	return CP_ERROR;
}

bool cp_fn_name_ok(const uint8_t *s, size_t n)
{
	if (n == 0 || n > CP_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = s[i];
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
		bool digit = ch >= '0' && ch <= '9';
		if (!alpha && !(digit && i > 0))
			return false;
	}
	return true;
}

/* A name in the call syntax or on a bare line: a function name or a
 * program (letters, digits, _ . - + /). */
static bool call_name_ok(const uint8_t *s, size_t n)
{
	if (n == 0 || n > CP_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '.' || ch == '-' || ch == '+' || ch == '/'))
			return false;
	}
	return true;
}

int cp_argv_check(const uint8_t *blk, size_t n, const char **why)
{
	if (n == 0 || blk[n - 1] != '\0') {
		*why = "argv block must be NUL-terminated strings";
		return -1;
	}
	if (blk[0] == '\0') {
		*why = "empty program name";
		return -1;
	}
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		if (blk[i] == '\0' && ++count > CP_ARGS_MAX) {
			*why = "too many arguments";
			return -1;
		}
	}
	return count;
}

bool cp_path_traverses(const char *p)
{
	for (const char *s = p; (s = strstr(s, "..")); s += 2) {
		bool start = s == p || s[-1] == '/';
		bool end = s[2] == '\0' || s[2] == '/';
		if (start && end)
			return true;
	}
	return false;
}

static void strip_quotes(const uint8_t **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t'))
		(*s)++, (*n)--;
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
		(*n)--;
	if (*n >= 2 && (*s)[0] == '"' && (*s)[*n - 1] == '"')
		(*s)++, *n -= 2;
}

/* virgo_clone(<name>[,<arg>]) */
static enum cp_parse_result parse_call(const uint8_t *line, size_t n, struct cp_req *req, int *code,
				       const char **msg)
{
	const uint8_t *open = memchr(line, '(', n);
	size_t close = n;
	while (close > 0 && (line[close - 1] == ' ' || line[close - 1] == '\t'))
		close--;
	if (!open || close == 0 || line[close - 1] != ')')
		return fail(code, msg, EINVAL, "call syntax is virgo_clone(<function>,<argument>)");
	const uint8_t *args = open + 1;
	size_t args_len = (size_t)(line + close - 1 - args);
	const uint8_t *comma = memchr(args, ',', args_len);
	const uint8_t *name = args;
	size_t name_len = comma ? (size_t)(comma - args) : args_len;
	strip_quotes(&name, &name_len);
	if (!call_name_ok(name, name_len))
		return fail(code, msg, EINVAL, "bad function name");
	req->op = CP_OP_CALL;
	req->legacy = true;
	req->name = name;
	req->name_len = name_len;
	if (comma) {
		req->data = comma + 1;
		req->data_len = (size_t)(args + args_len - req->data);
	}
	return CP_REQ;
}

/* Reads "<n> [<timeout_ms>]" from tokens and the payload after the line. */
static enum cp_parse_result payload_req(struct frame_state *st, const uint8_t *buf, size_t len,
					bool eof, size_t used, const uint8_t *line,
					const uint8_t **tok, const size_t *tl, int nt, int first,
					const struct cp_limits *lim, struct cp_req *req,
					size_t *consumed, uint64_t *need, int *code, const char **msg,
					const char *usage)
{
	uint64_t n;
	if (nt < first + 1 || frame_u64(tok[first], tl[first], &n) != 0)
		return fail(code, msg, EINVAL, usage);
	switch (frame_body(st, buf, len, eof, line, used, n, lim->max_arg, consumed, need)) {
	case FRAME_BODY_TOOBIG: return fail(code, msg, E2BIG, "argument larger than max_value");
	case FRAME_BODY_MORE: return CP_MORE;
	case FRAME_BODY_BADTERM:
		return fail(code, msg, EINVAL, "payload not followed by CRLF (bad data chunk)");
	case FRAME_BODY_OK: break;
	}
	if (nt > first + 2)
		return fail(code, msg, EINVAL, usage);
	if (nt == first + 2 && (frame_u64(tok[first + 1], tl[first + 1], &req->timeout_ms) != 0 ||
				req->timeout_ms == 0))
		return fail(code, msg, EINVAL, usage);
	req->data = buf + used;
	req->data_len = (size_t)n;
	return CP_REQ;
}

enum cp_parse_result cp_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      const struct cp_limits *lim, struct cp_req *req, size_t *consumed,
			      uint64_t *need, int *code, const char **msg)
{
	const uint8_t *line;
	size_t line_len, used;
	*need = 0;
	memset(req, 0, sizeof *req);
	enum frame_result fr =
		frame_next_line(st, buf, len, eof, lim->max_line, &line, &line_len, &used);
	*consumed = used;
	if (fr == FRAME_MORE)
		return CP_MORE;
	if (fr == FRAME_TOOLONG)
		return fail(code, msg, E2BIG, "request line too long");
	if (line_len > 12 && strncasecmp((const char *)line, "virgo_clone(", 12) == 0) {
		enum cp_parse_result r = parse_call(line, line_len, req, code, msg);
		req->legacy = true; /* an error too: answered, then closed */
		return r;
	}

	const uint8_t *tok[CP_MAX_TOKENS];
	size_t tl[CP_MAX_TOKENS];
	int nt = frame_tokens(line, line_len, tok, tl, CP_MAX_TOKENS);
	if (nt <= 0)
		return fail(code, msg, EINVAL, "too many arguments");
	if (tok_is(tok[0], tl[0], "clone")) {
		static const char usage[] =
			"usage: clone <function> <nbytes> [<timeout_ms>] [trace=<context>]";
		if (nt < 3) {
			/* no byte count: nothing to skip */
			return fail(code, msg, EINVAL, usage);
		}
		/* an optional last trace=<context> (eventnet_trace): opaque here */
		if (nt >= 4 && tl[nt - 1] > 6 && memcmp(tok[nt - 1], "trace=", 6) == 0) {
			if (tl[nt - 1] - 6 > CP_TRACE_MAX)
				return fail(code, msg, EINVAL, "trace context too long");
			req->trace = tok[nt - 1] + 6;
			req->trace_len = tl[nt - 1] - 6;
			nt--;
		}
		enum cp_parse_result r = payload_req(st, buf, len, eof, used, line, tok, tl, nt, 2,
						     lim, req, consumed, need, code, msg, usage);
		if (r != CP_REQ)
			return r;
		if (!cp_fn_name_ok(tok[1], tl[1]))
			return fail(code, msg, EINVAL, "bad function name ([A-Za-z_][A-Za-z0-9_]*)");
		req->op = CP_OP_CLONE;
		req->name = tok[1];
		req->name_len = tl[1];
		return CP_REQ;
	}
	if (tok_is(tok[0], tl[0], "run")) {
		static const char usage[] = "usage: run <nbytes> [<timeout_ms>] + argv block";
		enum cp_parse_result r = payload_req(st, buf, len, eof, used, line, tok, tl, nt, 1,
						     lim, req, consumed, need, code, msg, usage);
		if (r != CP_REQ)
			return r;
		const char *why;
		if (cp_argv_check(req->data, req->data_len, &why) < 0)
			return fail(code, msg, EINVAL, why);
		req->op = CP_OP_RUN;
		return CP_REQ;
	}
	static const struct {
		const char *word;
		enum cp_op op;
	} bare[] = {{"load", CP_OP_LOAD}, {"stats", CP_OP_LOAD}, {"ping", CP_OP_PING},
		    {"help", CP_OP_HELP}, {"quit", CP_OP_QUIT}};
	for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++) {
		if (tok_is(tok[0], tl[0], bare[i].word)) {
			if (nt != 1)
				return fail(code, msg, EINVAL, "this command takes no arguments");
			req->op = bare[i].op;
			return CP_REQ;
		}
	}
	/* the original's request: a bare function (or program) name */
	if (nt == 1 && call_name_ok(tok[0], tl[0])) {
		req->op = CP_OP_CALL;
		req->legacy = true;
		req->name = tok[0];
		req->name_len = tl[0];
		return CP_REQ;
	}
	/* something(...) is a call in the notes' syntax, just not one we
	 * know: the notes' clients wait for the close */
	if (memchr(tok[0], '(', tl[0])) {
		req->legacy = true;
		return fail(code, msg, ENOSYS,
			    "unknown call (the call syntax is virgo_clone(<function>,<argument>))");
	}
	return fail(code, msg, ENOSYS, "unknown command (try: help)");
}
