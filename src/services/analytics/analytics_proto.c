/*
 * analytics_proto.c - pair splitting and request parsing for the kernel
 * analytics service (analytics_proto.h).  Pure functions over bytes: every
 * length is bounded by the caller's buffer and the AN_MAX_* limits.
 */
#include "analytics_proto.h"

#include <errno.h>
#include <string.h>

static bool is_space(char c) { return c == ' ' || c == '\t'; }
static bool is_eol(char c) { return c == '\n' || c == '\r'; }

bool an_key_ok(const char *key, size_t klen)
{
	if (klen == 0 || klen > AN_MAX_KEY)
		return false;
	for (size_t i = 0; i < klen; i++) {
		char c = key[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == ':' || c == '/' || c == '-'))
			return false;
	}
	return true;
}

static void trim(const char **s, size_t *n)
{
	while (*n && is_space(**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n && is_space((*s)[*n - 1]))
		(*n)--;
}

int an_next_pair(const char *buf, size_t len, size_t *pos, struct an_pair *p)
{
	memset(p, 0, sizeof *p);
	size_t i = *pos;
	for (;;) {
		/* skip separators and blanks */
		while (i < len && (buf[i] == ',' || is_space(buf[i]) || is_eol(buf[i])))
			i++;
		if (i >= len) {
			*pos = i;
			return 0;
		}
		if (buf[i] != '#')
			break;
		while (i < len && !is_eol(buf[i])) /* a comment line */
			i++;
	}
	size_t start = i;
	int depth = 0;
	for (; i < len; i++) {
		char c = buf[i];
		if (is_eol(c))
			break;
		if (c == '(' || c == '[' || c == '{')
			depth++;
		else if ((c == ')' || c == ']' || c == '}') && depth > 0)
			depth--;
		else if (c == ',' && depth == 0)
			break;
	}
	*pos = i;
	const char *piece = buf + start;
	size_t plen = i - start;
	trim(&piece, &plen);
	const char *eq = memchr(piece, '=', plen);
	p->key = piece;
	p->klen = plen;
	if (!eq) {
		p->err = "not key=value";
		return -EINVAL;
	}
	p->klen = (size_t)(eq - piece);
	p->val = eq + 1;
	p->vlen = plen - p->klen - 1;
	trim(&p->key, &p->klen);
	trim(&p->val, &p->vlen);
	if (!an_key_ok(p->key, p->klen)) {
		p->err = "bad name (1-128 of A-Z a-z 0-9 _ . : / -)";
		return -EINVAL;
	}
	if (p->vlen > AN_MAX_VALUE) {
		p->err = "value longer than 1024 bytes";
		return -EINVAL;
	}
	if (memchr(p->val, '\0', p->vlen)) {
		p->err = "value holds a NUL byte";
		return -EINVAL;
	}
	return 1;
}

static bool word_is(const char *w, size_t wl, const char *name)
{
	size_t n = strlen(name);
	if (wl != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = w[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (c != name[i])
			return false;
	}
	return true;
}

static int bad(struct an_req *r, const char *why)
{
	r->cmd = AN_BAD;
	r->err = why;
	return -EINVAL;
}

int an_parse_request(const char *line, size_t len, struct an_req *r)
{
	memset(r, 0, sizeof *r);
	if (len > AN_MAX_LINE)
		return bad(r, "line too long");
	const char *s = line;
	size_t n = len;
	trim(&s, &n);
	if (n == 0)
		return bad(r, "empty request");
	size_t wl = 0;
	while (wl < n && !is_space(s[wl]))
		wl++;
	const char *rest = s + wl;
	size_t rl = n - wl;
	trim(&rest, &rl);
	r->arg = rest;
	r->arg_len = rl;
	if (wl == n && n == strlen(AN_STREAM_START) && memcmp(s, AN_STREAM_START, n) == 0) {
		r->cmd = AN_STREAM;
		return 0;
	}
	if (word_is(s, wl, "get") || word_is(s, wl, "history")) {
		r->cmd = word_is(s, wl, "get") ? AN_GET : AN_HISTORY;
		if (!an_key_ok(rest, rl))
			return bad(r, "usage: get|history <name>");
		return 0;
	}
	if (word_is(s, wl, "set")) {
		r->cmd = AN_SET;
		if (rl == 0 || !memchr(rest, '=', rl))
			return bad(r, "usage: set <name>=<value>[,<name>=<value>...]");
		return 0;
	}
	if (word_is(s, wl, "ls")) {
		r->cmd = AN_LS;
		if (rl && !an_key_ok(rest, rl))
			return bad(r, "usage: ls [<name prefix>]");
		return 0;
	}
	if (word_is(s, wl, "watch")) {
		r->cmd = AN_WATCH;
		r->arg_len = 0;
		if (rl == 0)
			return 0;
		/* "watch from <rev>" */
		if (rl < 6 || !word_is(rest, 4, "from") || !is_space(rest[4]))
			return bad(r, "usage: watch [from <revision>]");
		const char *d = rest + 5;
		size_t dl = rl - 5;
		trim(&d, &dl);
		if (dl == 0 || dl > 20)
			return bad(r, "usage: watch [from <revision>]");
		uint64_t v = 0;
		for (size_t i = 0; i < dl; i++) {
			if (d[i] < '0' || d[i] > '9')
				return bad(r, "usage: watch [from <revision>]");
			unsigned dg = (unsigned)(d[i] - '0');
			if (v > (UINT64_MAX - dg) / 10)
				return bad(r, "revision out of range");
			v = v * 10 + dg;
		}
		r->has_rev = true;
		r->rev = v;
		return 0;
	}
	if (wl == n && word_is(s, wl, "help")) {
		r->cmd = AN_HELP;
		return 0;
	}
	if (wl == n && word_is(s, wl, "quit")) {
		r->cmd = AN_QUIT;
		return 0;
	}
	if (memchr(s, '=', n)) {
		r->cmd = AN_PUBLISH;
		r->arg = s;
		r->arg_len = n;
		return 0;
	}
	return bad(r, "unknown command (get, set, ls, watch, history, help, quit or key=value)");
}

