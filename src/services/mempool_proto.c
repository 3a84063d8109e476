/*
 * mempool_proto.c - parser for the mempool protocol (mempool_proto.h).
 *
 * The call syntax follows PROTOCOL.md ("Compatibility with the original VIRGO"): quotes around ids and numbers are
 * ignored, the data of virgo_cloud_set runs from the first comma to the
 * final ')' of the line (so it may contain commas, parentheses and spaces),
 * and NUL padding ends a line.  A native set whose header is wrong but whose
 * byte count is readable still has its payload skipped, so one bad request
 * never turns its payload into a stream of bogus commands.
 */
#include "mempool_proto.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "../common/vuid.h"
#include "cloudsync/cloudsync_proto.h"

#define MP_MAX_TOKENS 7 /* malloc <size> span shared ttl= owner= rid= */

static bool tok_is(const uint8_t *t, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp((const char *)t, word, n) == 0;
}

static enum mp_parse_result fail(int *code, const char **msg, int c, const char *m)
{
	*code = c;
	*msg = m;
	return MP_ERROR;
}

/* virgo_cloud_<name>(<args>) */
static enum mp_parse_result parse_legacy(const uint8_t *line, size_t n, struct mp_req *req,
					 int *code, const char **msg)
{
	static const char prefix[] = "virgo_cloud_";
	const size_t plen = sizeof prefix - 1;
	const uint8_t *open = memchr(line, '(', n);
	size_t close = n;
	while (close > 0 && (line[close - 1] == ' ' || line[close - 1] == '\t'))
		close--;
	if (!open || close == 0 || line[close - 1] != ')')
		return fail(code, msg, EINVAL, "call syntax is virgo_cloud_<op>(<args>)");
	const uint8_t *name = line + plen;
	size_t name_len = (size_t)(open - name);
	while (name_len > 0 && name[name_len - 1] == ' ')
		name_len--;
	const uint8_t *args = open + 1;
	size_t args_len = (size_t)(line + close - 1 - args);
	req->legacy = true;
	if (tok_is(name, name_len, "malloc")) {
		req->op = MP_OP_MALLOC;
		if (frame_u64(args, args_len, &req->size) != 0)
			return fail(code, msg, EINVAL, "malloc needs a decimal size");
		return MP_REQ;
	}
	if (tok_is(name, name_len, "get") || tok_is(name, name_len, "free")) {
		req->op = tok_is(name, name_len, "get") ? MP_OP_GET : MP_OP_FREE;
		if (vuid_parse((const char *)args, args_len, &req->vuid) != 0)
			return fail(code, msg, EINVAL, "bad VUID (expected hex)");
		return MP_REQ;
	}
	if (tok_is(name, name_len, "set")) {
		req->op = MP_OP_SET;
		const uint8_t *comma = memchr(args, ',', args_len);
		if (!comma)
			return fail(code, msg, EINVAL, "set needs (<vuid>,<data>)");
		if (vuid_parse((const char *)args, (size_t)(comma - args), &req->vuid) != 0)
			return fail(code, msg, EINVAL, "bad VUID (expected hex)");
		req->data = comma + 1;
		req->data_len = (size_t)(args + args_len - req->data);
		return MP_REQ;
	}
	return fail(code, msg, ENOSYS, "unknown call (malloc, set, get, free)");
}

bool mp_owner_valid(const char *owner, size_t len)
{
	if (len == 0 || len > MP_OWNER_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)owner[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-' || ch == ':' || ch == '@' || ch == '/'))
			return false;
	}
	return true;
}

/* "<name>=<value>": *v and *vl get the value. */
static bool kv_is(const uint8_t *t, size_t n, const char *name, const uint8_t **v, size_t *vl)
{
	size_t k = strlen(name);
	if (n <= k || t[k] != '=' || strncasecmp((const char *)t, name, k) != 0)
		return false;
	*v = t + k + 1;
	*vl = n - k - 1;
	return true;
}

/* 1..16 hex digits (no prefix). */
static int parse_hex64(const uint8_t *t, size_t n, uint64_t *out)
{
	if (n == 0 || n > 16)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d;
		if (t[i] >= '0' && t[i] <= '9')
			d = t[i] - '0';
		else if ((t[i] | 0x20) >= 'a' && (t[i] | 0x20) <= 'f')
			d = (t[i] | 0x20) - 'a' + 10;
		else
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

static const char set_usage[] =
	"usage: set <vuid> <nbytes> [<offset>] [fence=<lock>:<token>]";

static const char malloc_usage[] =
	"usage: malloc <size> [span] [shared] [ttl=<ms>] [owner=<tag>] [rid=<hex>]";

/* The optional words after malloc's size, in any order, each at most once. */
static enum mp_parse_result parse_malloc_opts(const uint8_t **tok, const size_t *tl, int nt,
					      struct mp_req *req, int *code, const char **msg)
{
	bool seen_ttl = false;
	for (int i = 2; i < nt; i++) {
		const uint8_t *v;
		size_t vl;
		if (tok_is(tok[i], tl[i], "span") && !req->span) {
			req->span = true;
		} else if (tok_is(tok[i], tl[i], "shared") && !req->shared) {
			req->shared = true;
		} else if (kv_is(tok[i], tl[i], "ttl", &v, &vl) && !seen_ttl) {
			if (frame_u64(v, vl, &req->ttl_ms) != 0 || req->ttl_ms == 0)
				return fail(code, msg, EINVAL, "ttl= takes milliseconds (1 or more)");
			seen_ttl = true;
		} else if (kv_is(tok[i], tl[i], "owner", &v, &vl) && !req->owner) {
			if (!mp_owner_valid((const char *)v, vl))
				return fail(code, msg, EINVAL,
					    "owner= takes 1-64 characters of A-Z a-z 0-9 . _ - : @ /");
			req->owner = (const char *)v;
			req->owner_len = vl;
		} else if (kv_is(tok[i], tl[i], "rid", &v, &vl) && !req->has_rid) {
			if (parse_hex64(v, vl, &req->rid) != 0)
				return fail(code, msg, EINVAL, "rid= takes 1-16 hex digits");
			req->has_rid = true;
		} else {
			return fail(code, msg, EINVAL, malloc_usage);
		}
	}
	return MP_REQ;
}

static int parse_vuid_tok(const uint8_t *t, size_t n, uint64_t *v)
{
	return vuid_parse((const char *)t, n, v);
}

enum mp_parse_result mp_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      const struct mp_limits *lim, struct mp_req *req, size_t *consumed,
			      uint64_t *need, int *code, const char **msg)
{
	const uint8_t *line;
	size_t line_len, used;
	*need = 0;
	memset(req, 0, sizeof *req);
	enum frame_result fr = frame_next_line(st, buf, len, eof, lim->max_line, &line, &line_len, &used);
	*consumed = used;
	if (fr == FRAME_MORE)
		return MP_MORE;
	if (fr == FRAME_TOOLONG)
		return fail(code, msg, E2BIG, "request line too long");

	if (line_len > 12 && strncasecmp((const char *)line, "virgo_cloud_", 12) == 0)
		return parse_legacy(line, line_len, req, code, msg);

	const uint8_t *tok[MP_MAX_TOKENS];
	size_t tl[MP_MAX_TOKENS];
	int nt = frame_tokens(line, line_len, tok, tl, MP_MAX_TOKENS);
	if (nt <= 0)
		return fail(code, msg, EINVAL, "too many arguments");

	if (tok_is(tok[0], tl[0], "set")) {
		/* set <vuid> <nbytes> [<offset>] \r\n <payload> \r\n */
		uint64_t n;
		if (nt < 3 || frame_u64(tok[2], tl[2], &n) != 0)
			return fail(code, msg, EINVAL, set_usage);
		switch (frame_body(st, buf, len, eof, line, used, n, lim->max_value, consumed, need)) {
		case FRAME_BODY_TOOBIG: return fail(code, msg, E2BIG, "value larger than max_value");
		case FRAME_BODY_MORE: return MP_MORE;
		case FRAME_BODY_BADTERM:
			return fail(code, msg, EINVAL, "payload not followed by CRLF (bad data chunk)");
		case FRAME_BODY_OK: break;
		}
		if (nt > 5)
			return fail(code, msg, EINVAL, set_usage);
		if (parse_vuid_tok(tok[1], tl[1], &req->vuid) != 0)
			return fail(code, msg, EINVAL, "bad VUID (expected hex)");
		for (int i = 3; i < nt; i++) {
			const uint8_t *v;
			size_t vl;
			if (kv_is(tok[i], tl[i], "fence", &v, &vl) && !req->fence_name) {
				if (cs_fence_parse(v, vl, &req->fence_name, &req->fence_len,
						   &req->fence_token) != 0)
					return fail(code, msg, EINVAL,
						    "fence= takes <lock>:<token> (token >= 1)");
			} else if (i == 3) {
				if (frame_u64(tok[3], tl[3], &req->offset) != 0)
					return fail(code, msg, EINVAL, "bad offset");
				req->has_offset = true;
			} else {
				return fail(code, msg, EINVAL, set_usage);
			}
		}
		req->op = MP_OP_SET;
		req->data = buf + used;
		req->data_len = (size_t)n;
		return MP_REQ;
	}
	if (tok_is(tok[0], tl[0], "malloc")) {
		req->op = MP_OP_MALLOC;
		if (nt < 2 || nt > 6 || frame_u64(tok[1], tl[1], &req->size) != 0)
			return fail(code, msg, EINVAL, malloc_usage);
		return parse_malloc_opts(tok, tl, nt, req, code, msg);
	}
	if (tok_is(tok[0], tl[0], "get")) {
		req->op = MP_OP_GET;
		if ((nt != 2 && nt != 4) || parse_vuid_tok(tok[1], tl[1], &req->vuid) != 0)
			return fail(code, msg, EINVAL, "usage: get <vuid> [<offset> <length>]");
		if (nt == 4) {
			if (frame_u64(tok[2], tl[2], &req->offset) != 0 ||
			    frame_u64(tok[3], tl[3], &req->length) != 0)
				return fail(code, msg, EINVAL, "usage: get <vuid> [<offset> <length>]");
			if (req->length > lim->max_value)
				return fail(code, msg, E2BIG, "range larger than max_value");
			req->has_offset = true;
		}
		return MP_REQ;
	}
	if (tok_is(tok[0], tl[0], "free")) {
		const uint8_t *v;
		size_t vl;
		req->op = MP_OP_FREE;
		if (nt == 2 && kv_is(tok[1], tl[1], "owner", &v, &vl)) {
			if (!mp_owner_valid((const char *)v, vl))
				return fail(code, msg, EINVAL,
					    "owner= takes 1-64 characters of A-Z a-z 0-9 . _ - : @ /");
			req->op = MP_OP_FREE_OWNER;
			req->owner = (const char *)v;
			req->owner_len = vl;
			return MP_REQ;
		}
		if (nt != 2 || parse_vuid_tok(tok[1], tl[1], &req->vuid) != 0)
			return fail(code, msg, EINVAL, "usage: free <vuid> | free owner=<tag>");
		return MP_REQ;
	}
	if (tok_is(tok[0], tl[0], "ls")) {
		req->op = MP_OP_LS;
		req->count = MP_LS_DEFAULT;
		if (nt > 3 || (nt >= 2 && parse_hex64(tok[1], tl[1], &req->cursor) != 0))
			return fail(code, msg, EINVAL, "usage: ls [<cursor> [<count>]]");
		if (nt == 3 && (frame_u64(tok[2], tl[2], &req->count) != 0 || req->count == 0 ||
				req->count > MP_LS_MAX))
			return fail(code, msg, EINVAL, "ls count must be 1..1000");
		return MP_REQ;
	}
	if (tok_is(tok[0], tl[0], "renew")) {
		req->op = MP_OP_RENEW;
		if (nt != 3 || parse_vuid_tok(tok[1], tl[1], &req->vuid) != 0 ||
		    frame_u64(tok[2], tl[2], &req->ttl_ms) != 0)
			return fail(code, msg, EINVAL, "usage: renew <vuid> <ttl_ms> (0: no lease)");
		return MP_REQ;
	}
	static const struct {
		const char *word;
		enum mp_op op;
	} bare[] = {{"stats", MP_OP_STATS}, {"ping", MP_OP_PING}, {"help", MP_OP_HELP},
		    {"quit", MP_OP_QUIT}};
	for (size_t i = 0; i < sizeof bare / sizeof bare[0]; i++) {
		if (tok_is(tok[0], tl[0], bare[i].word)) {
			if (nt != 1)
				return fail(code, msg, EINVAL, "this command takes no arguments");
			req->op = bare[i].op;
			return MP_REQ;
		}
	}
	return fail(code, msg, ENOSYS, "unknown command (try: help)");
}
