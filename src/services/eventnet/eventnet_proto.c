/*
 * eventnet_proto.c - the EventNet parser (eventnet_proto.h): framing by
 * frame.c, then either one of the notes' '#'-separated messages or a
 * native command with key=value options.  Every field is checked here
 * (lengths, characters, counts), so the service only sees valid requests.
 */
#include "eventnet_proto.h"

#include <errno.h>
#include <string.h>

/* Byte classes, one table lookup a byte (this is the ingest path):
 * ids are printable ASCII without blanks, '#', ',' or '@'; partakers the
 * same with ','; conversations anything but control bytes. */
enum { C_ID = 1, C_PART = 2, C_CONV = 4 };
static const unsigned char cls[256] = {
	[' '] = C_CONV,
	[0x21 ... 0x22] = C_ID | C_PART | C_CONV,
	['#'] = C_CONV,
	[0x24 ... 0x2b] = C_ID | C_PART | C_CONV,
	[','] = C_PART | C_CONV,
	[0x2d ... 0x3f] = C_ID | C_PART | C_CONV,
	['@'] = C_PART | C_CONV,
	[0x41 ... 0x7e] = C_ID | C_PART | C_CONV,
	[0x80 ... 0xff] = C_CONV,
};

/* Whether every byte of s[0..n) has class c. */
static bool all_of(const char *s, size_t n, unsigned char c)
{
	unsigned char m = c;
	for (size_t i = 0; i < n; i++)
		m &= cls[(unsigned char)s[i]];
	return m != 0;
}

bool evn_id_valid(const char *s, size_t n)
{
	if (n == 0 || n > EVN_ID_MAX || (n == 1 && s[0] == '-'))
		return false; /* "-" stands for "none" in EVENT lines */
	return all_of(s, n, C_ID);
}

static bool partakers_valid(const char *s, size_t n)
{
	if (n > EVN_PARTAKERS_MAX || (n == 1 && s[0] == '-'))
		return false; /* "-" stands for "none" in EVENT lines */
	return all_of(s, n, C_PART);
}

/* Conversations: any text but control bytes (one line of the files).
 * Eight bytes a step: none below 0x20, none 0x7f (exact tests). */
static bool conv_valid(const char *s, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, s + i, 8);
		y = x ^ (0x7f * ones);
		if (((x - 0x20 * ones) & ~x & highs) || ((y - ones) & ~y & highs))
			return false;
	}
	return all_of(s + i, n - i, C_CONV);
}

int evn_trace_parse(const char *s, size_t n, struct evn_trace_ctx *out)
{
	if (n > EVN_TRACE_MAX)
		return -1;
	struct evn_str f[4];
	size_t i = 0;
	for (int k = 0; k < 4; k++) {
		const char *at = k < 3 ? memchr(s + i, '@', n - i) : NULL;
		size_t e = at ? (size_t)(at - s) : n;
		if (k < 3 && !at)
			return -1;
		f[k] = (struct evn_str){s + i, e - i};
		i = e + 1;
	}
	if (!evn_id_valid(f[0].p, f[0].n) || !evn_id_valid(f[1].p, f[1].n) ||
	    frame_u64((const uint8_t *)f[2].p, f[2].n, &out->lamport) != 0 ||
	    out->lamport > UINT64_MAX / 2 || evc_parse(&out->clock, f[3].p, f[3].n) != 0)
		return -1;
	out->id = f[0];
	out->cause = f[1];
	return 0;
}

static struct evn_str trim(const char *p, size_t n)
{
	while (n && (*p == ' ' || *p == '\t')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
		n--;
	return (struct evn_str){p, n};
}

static bool has_prefix(const char *s, size_t n, const char *pre)
{
	size_t pl = strlen(pre);
	return n >= pl && memcmp(s, pre, pl) == 0;
}

#define FAIL(code, msg)                                                                            \
	do {                                                                                       \
		*err_code = (code);                                                                \
		*err_msg = (msg);                                                                  \
		return EVN_ERROR;                                                                  \
	} while (0)

/* eventnet_edgemsg#<id>#<from>#<to> or #<from>#<to>[#] */
static enum evn_parse_result parse_legacy_edge(const char *s, size_t n, struct evn_req *req,
					       int *err_code, const char **err_msg)
{
	struct evn_str f[4];
	int nf = 0;
	size_t i = 0;
	for (;;) {
		size_t j = i;
		while (j < n && s[j] != '#')
			j++;
		if (nf == 4)
			FAIL(EINVAL, "edge message: too many '#' fields (want [<id>#]<from>#<to>)");
		f[nf++] = trim(s + i, j - i);
		if (j == n)
			break;
		i = j + 1;
	}
	if (nf > 2 && f[nf - 1].n == 0)
		nf--; /* the original's trailing '#' */
	if (nf != 2 && nf != 3)
		FAIL(EINVAL, "edge message: want eventnet_edgemsg#<id>#<from>#<to> or #<from>#<to>#");
	req->op = EVN_OP_EDGE;
	req->id = f[nf - 2];
	req->id2 = f[nf - 1];
	if (nf == 3 && f[0].n > EVN_ID_MAX)
		FAIL(EINVAL, "edge message: edge id too long");
	if (!evn_id_valid(req->id.p, req->id.n) || !evn_id_valid(req->id2.p, req->id2.n))
		FAIL(EINVAL, "edge message: bad event id (1-128 printable bytes, no blank # , @)");
	return EVN_REQ;
}

/* eventnet_vertexmsg#<id>-<partakers>-<conv> or #<id>#<partakers>#<conv> */
static enum evn_parse_result parse_legacy_vertex(const char *s, size_t n, struct evn_req *req,
						 int *err_code, const char **err_msg)
{
	size_t i = 0;
	while (i < n && s[i] != '#' && s[i] != '-')
		i++;
	if (i == n)
		FAIL(EINVAL, "vertex message: want eventnet_vertexmsg#<id>-<partakers>-<conversations>");
	char sep = s[i];
	req->op = EVN_OP_LOG;
	req->id = trim(s, i);
	size_t j = i + 1;
	while (j < n && s[j] != sep)
		j++;
	req->partakers = trim(s + i + 1, j - i - 1);
	if (j < n) {
		struct evn_str c = trim(s + j + 1, n - j - 1);
		while (sep == '#' && c.n && c.p[c.n - 1] == '#')
			c.n--; /* a trailing '#', as the original's edges had */
		req->conv = c;
	}
	if (!evn_id_valid(req->id.p, req->id.n))
		FAIL(EINVAL, "vertex message: bad event id (1-128 printable bytes, no blank # , @)");
	if (!partakers_valid(req->partakers.p, req->partakers.n))
		FAIL(EINVAL, "vertex message: bad partakers (a csv of up to 1024 bytes, no blanks or #)");
	if (!conv_valid(req->conv.p, req->conv.n))
		FAIL(EINVAL, "vertex message: control bytes in the conversation");
	return EVN_REQ;
}

static int parse_u64(const char *s, size_t n, uint64_t *out)
{
	return frame_u64((const uint8_t *)s, n, out);
}

/* after=<id>[,<id>...] */
static int parse_after(const char *s, size_t n, struct evn_req *req)
{
	size_t i = 0;
	while (i <= n) {
		size_t j = i;
		while (j < n && s[j] != ',')
			j++;
		if (req->nafter == EVN_AFTER_MAX || !evn_id_valid(s + i, j - i))
			return -1;
		req->after[req->nafter++] = (struct evn_str){s + i, j - i};
		i = j + 1;
	}
	return 0;
}

/* log <id> [partakers=..] [after=..] [clock=..] [lamport=..] [conv=<rest>] */
static enum evn_parse_result parse_log(const char *s, size_t n, struct evn_req *req,
				       int *err_code, const char **err_msg)
{
	size_t i = 0;
	req->op = EVN_OP_LOG;
	while (i < n && s[i] == ' ')
		i++;
	size_t j = i;
	while (j < n && s[j] != ' ')
		j++;
	req->id = (struct evn_str){s + i, j - i};
	if (!evn_id_valid(req->id.p, req->id.n))
		FAIL(EINVAL, "log: bad event id (1-128 printable bytes, no blank # , @)");
	i = j;
	for (;;) {
		while (i < n && s[i] == ' ')
			i++;
		if (i == n)
			break;
		if (has_prefix(s + i, n - i, "conv=")) {
			req->conv = (struct evn_str){s + i + 5, n - i - 5};
			if (!conv_valid(req->conv.p, req->conv.n))
				FAIL(EINVAL, "log: control bytes in the conversation");
			break;
		}
		j = i;
		while (j < n && s[j] != ' ')
			j++;
		const char *t = s + i;
		size_t tn = j - i;
		i = j;
		if (has_prefix(t, tn, "partakers=")) {
			req->partakers = (struct evn_str){t + 10, tn - 10};
			if (!partakers_valid(req->partakers.p, req->partakers.n))
				FAIL(EINVAL, "log: bad partakers (a csv of up to 1024 bytes, no blanks or #)");
		} else if (has_prefix(t, tn, "after=")) {
			if (parse_after(t + 6, tn - 6, req) != 0)
				FAIL(EINVAL, "log: bad after= (up to 16 event ids, comma-separated)");
		} else if (has_prefix(t, tn, "clock=")) {
			if (evc_parse(&req->clock, t + 6, tn - 6) != 0)
				FAIL(EINVAL, "log: bad clock= (want <node>:<count>[,...], at most 64 nodes)");
			req->has_clock = true;
		} else if (has_prefix(t, tn, "lamport=")) {
			if (parse_u64(t + 8, tn - 8, &req->lamport) != 0 ||
			    req->lamport > UINT64_MAX / 2)
				FAIL(EINVAL, "log: bad lamport= (a decimal number)");
		} else {
			FAIL(EINVAL, "log: unknown option (partakers= after= clock= lamport= conv=)");
		}
	}
	return EVN_REQ;
}

static enum evn_parse_result parse_native(const char *s, size_t n, struct evn_req *req,
					  int *err_code, const char **err_msg)
{
	size_t w = 0;
	while (w < n && s[w] != ' ' && s[w] != '\t')
		w++;
	if (w == 3 && memcmp(s, "log", 3) == 0)
		return parse_log(s + 3, n - 3, req, err_code, err_msg);
	const uint8_t *tok[4];
	size_t tl[4];
	int nt = frame_tokens((const uint8_t *)s, n, tok, tl, 4);
	if (nt < 1)
		FAIL(EINVAL, "too many arguments");
	const char *cmd = (const char *)tok[0];
	size_t cn = tl[0];
#define IS(word) (cn == sizeof(word) - 1 && memcmp(cmd, word, cn) == 0)
#define ARG(k) ((struct evn_str){(const char *)tok[k], tl[k]})
	if (IS("edge") || IS("before")) {
		req->op = IS("edge") ? EVN_OP_EDGE : EVN_OP_BEFORE;
		if (nt != 3)
			FAIL(EINVAL, req->op == EVN_OP_EDGE ? "usage: edge <from> <to>"
							    : "usage: before <a> <b>");
		req->id = ARG(1);
		req->id2 = ARG(2);
		if (!evn_id_valid(req->id.p, req->id.n) || !evn_id_valid(req->id2.p, req->id2.n))
			FAIL(EINVAL, "bad event id (1-128 printable bytes, no blank # , @)");
		return EVN_REQ;
	}
	if (IS("get") || IS("why")) {
		req->op = IS("get") ? EVN_OP_GET : EVN_OP_WHY;
		if (nt < 2 || nt > (req->op == EVN_OP_WHY ? 3 : 2))
			FAIL(EINVAL, req->op == EVN_OP_GET ? "usage: get <id>" : "usage: why <id> [<max>]");
		req->id = ARG(1);
		if (!evn_id_valid(req->id.p, req->id.n))
			FAIL(EINVAL, "bad event id (1-128 printable bytes, no blank # , @)");
		req->count = EVN_WHY_DEFAULT;
		if (nt == 3 && (parse_u64(ARG(2).p, ARG(2).n, &req->count) != 0 ||
				req->count > EVN_WHY_MAX))
			FAIL(EINVAL, "why: max must be 0..100000");
		return EVN_REQ;
	}
	if (IS("dump")) {
		req->op = EVN_OP_DUMP;
		req->count = EVN_DUMP_DEFAULT;
		if (nt >= 2 && parse_u64(ARG(1).p, ARG(1).n, &req->cursor) != 0)
			FAIL(EINVAL, "usage: dump [<cursor> [<count>]]");
		if (nt >= 3 && (parse_u64(ARG(2).p, ARG(2).n, &req->count) != 0 || req->count == 0 ||
				req->count > EVN_DUMP_MAX))
			FAIL(EINVAL, "dump: count must be 1..10000");
		if (nt > 3)
			FAIL(EINVAL, "usage: dump [<cursor> [<count>]]");
		return EVN_REQ;
	}
	static const struct {
		const char *w;
		enum evn_op op;
	} bare[] = {{"tail", EVN_OP_TAIL},   {"clock", EVN_OP_CLOCK}, {"stats", EVN_OP_STATS},
		    {"ping", EVN_OP_PING},   {"help", EVN_OP_HELP},   {"quit", EVN_OP_QUIT}};
	for (size_t k = 0; k < sizeof bare / sizeof bare[0]; k++) {
		if (cn == strlen(bare[k].w) && memcmp(cmd, bare[k].w, cn) == 0) {
			if (nt != 1)
				FAIL(EINVAL, "this command takes no arguments");
			req->op = bare[k].op;
			return EVN_REQ;
		}
	}
	FAIL(EINVAL, "unknown command (try help)");
#undef IS
#undef ARG
}

enum evn_parse_result evn_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
				size_t max_line, struct evn_req *req, size_t *consumed,
				int *err_code, const char **err_msg)
{
	const uint8_t *line;
	size_t ll;
	memset(req, 0, offsetof(struct evn_req, clock));
	req->clock.n = 0;
	req->lamport = req->cursor = req->count = 0;
	enum frame_result fr = frame_next_line(st, buf, len, eof, max_line, &line, &ll, consumed);
	if (fr == FRAME_MORE)
		return EVN_MORE;
	if (fr == FRAME_TOOLONG)
		FAIL(E2BIG, "line too long (max_line)");
	const char *s = (const char *)line;
	size_t n = ll;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	while (n && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	static const char edge[] = "eventnet_edgemsg#";
	static const char vx[] = "eventnet_vertexmsg#";
	static const char vtx[] = "eventnet_vertextmsg#";
	if (n < 9 || s[0] != 'e') /* not one of the notes' messages: skip their prefixes */
		return parse_native(s, n, req, err_code, err_msg);
	if (has_prefix(s, n, edge)) {
		req->legacy = true;
		return parse_legacy_edge(s + sizeof edge - 1, n - (sizeof edge - 1), req, err_code,
					 err_msg);
	}
	if (has_prefix(s, n, vx) || has_prefix(s, n, vtx)) {
		size_t pl = has_prefix(s, n, vx) ? sizeof vx - 1 : sizeof vtx - 1;
		req->legacy = true;
		return parse_legacy_vertex(s + pl, n - pl, req, err_code, err_msg);
	}
	if (has_prefix(s, n, "eventnet_"))
		FAIL(EINVAL, "unknown message (eventnet_edgemsg# or eventnet_vertexmsg#)");
	return parse_native(s, n, req, err_code, err_msg);
}
