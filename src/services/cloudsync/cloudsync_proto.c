/*
 * cloudsync_proto.c - parser for the cloudsync protocol (cloudsync_proto.h).
 *
 * Numbers are decimal milliseconds, bounded (a lease of at most a day, a
 * bounded wait of at most a day), so no deadline arithmetic downstream can
 * overflow.  A lock name is checked here once; the lock table and the
 * fence table trust it afterwards.
 */
#include "cloudsync_proto.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define CS_MAX_TOKENS 5

static bool tok_is(const uint8_t *t, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp((const char *)t, word, n) == 0;
}

static enum cs_parse_result fail(int *code, const char **msg, int c, const char *m)
{
	*code = c;
	*msg = m;
	return CS_ERROR;
}

bool cs_name_valid(const char *name, size_t len)
{
	if (len == 0 || len > CS_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-' || ch == ':' || ch == '@' || ch == '/'))
			return false;
	}
	return true;
}

/* A plain decimal (no quotes, no sign), at most 19 digits. */
static int dec_u64(const uint8_t *s, size_t n, uint64_t *out)
{
	if (n == 0 || n > 19)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int cs_fence_parse(const uint8_t *s, size_t n, const char **name, size_t *name_len,
		   uint64_t *token)
{
	size_t colon = n;
	while (colon > 0 && s[colon - 1] != ':')
		colon--;
	if (colon < 2) /* no ':' or an empty name */
		return -1;
	if (!cs_name_valid((const char *)s, colon - 1) ||
	    dec_u64(s + colon, n - colon, token) != 0 || *token == 0)
		return -1;
	*name = (const char *)s;
	*name_len = colon - 1;
	return 0;
}

static const char name_msg[] = "lock names are 1-128 characters of A-Z a-z 0-9 . _ - : @ /";

enum cs_parse_result cs_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
			      struct cs_req *req, size_t *consumed, int *code, const char **msg)
{
	const uint8_t *line;
	size_t line_len, used;
	memset(req, 0, sizeof *req);
	enum frame_result fr = frame_next_line(st, buf, len, eof, CS_LINE_MAX, &line, &line_len, &used);
	*consumed = used;
	if (fr == FRAME_MORE)
		return CS_MORE;
	if (fr == FRAME_TOOLONG)
		return fail(code, msg, E2BIG, "request line too long");

	const uint8_t *tok[CS_MAX_TOKENS];
	size_t tl[CS_MAX_TOKENS];
	int nt = frame_tokens(line, line_len, tok, tl, CS_MAX_TOKENS);
	if (nt <= 0)
		return fail(code, msg, EINVAL, "too many arguments");

	static const struct {
		const char *word;
		enum cs_op op;
		int min, max; /* tokens, the command included */
		const char *usage;
	} cmds[] = {
		{"lock", CS_OP_LOCK, 2, 4, "usage: lock <name> [<ttl_ms> [<wait_ms>]]"},
		{"trylock", CS_OP_TRYLOCK, 2, 3, "usage: trylock <name> [<ttl_ms>]"},
		{"renew", CS_OP_RENEW, 2, 3, "usage: renew <name> [<ttl_ms>]"},
		{"unlock", CS_OP_UNLOCK, 2, 2, "usage: unlock <name>"},
		{"ls", CS_OP_LS, 1, 2, "usage: ls [<name>]"},
		{"stats", CS_OP_STATS, 1, 1, "this command takes no arguments"},
		{"ping", CS_OP_PING, 1, 1, "this command takes no arguments"},
		{"help", CS_OP_HELP, 1, 1, "this command takes no arguments"},
		{"quit", CS_OP_QUIT, 1, 1, "this command takes no arguments"},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (!tok_is(tok[0], tl[0], cmds[i].word))
			continue;
		if (nt < cmds[i].min || nt > cmds[i].max)
			return fail(code, msg, EINVAL, cmds[i].usage);
		req->op = cmds[i].op;
		req->ttl_ms = CS_TTL_DEFAULT;
		req->wait_ms = CS_WAIT_FOREVER;
		if (nt >= 2) {
			if (!cs_name_valid((const char *)tok[1], tl[1]))
				return fail(code, msg, EINVAL, name_msg);
			req->name = (const char *)tok[1];
			req->name_len = tl[1];
		}
		if (nt >= 3 && (dec_u64(tok[2], tl[2], &req->ttl_ms) != 0 || req->ttl_ms == 0 ||
				req->ttl_ms > CS_TTL_MAX))
			return fail(code, msg, EINVAL, "ttl_ms must be 1..86400000");
		if (nt >= 4 && (dec_u64(tok[3], tl[3], &req->wait_ms) != 0 ||
				req->wait_ms > CS_WAIT_MAX))
			return fail(code, msg, EINVAL, "wait_ms must be 0..86400000");
		return CS_REQ;
	}
	return fail(code, msg, ENOSYS, "unknown command (try: help)");
}
