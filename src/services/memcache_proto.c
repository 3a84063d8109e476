/*
 * memcache_proto.c - memcached text protocol parser (memcache_proto.h).
 *
 * Mirrors memcached 1.6's proto_text.c where clients can tell: the same
 * command names (case-sensitive), token counts, number ranges (flags are
 * 32-bit unsigned, exptime and the byte count 32-bit signed) and error
 * strings.  One deliberate difference: when a storage command is refused
 * after its byte count was read (key too long, bad flags or exptime), its
 * data block is swallowed, so the data is never run as commands; memcached
 * does this only for "object too large".
 */
#include "memcache_proto.h"

#include <string.h>

#define MC_MAX_TOKENS 8 /* longest non-get command: cas has 7 */

static const char E_ERROR[] = "ERROR";
static const char E_FORMAT[] = "CLIENT_ERROR bad command line format";
static const char E_BADLINE[] = "CLIENT_ERROR bad command line";
static const char E_SLAB[] = "CLIENT_ERROR Illegal slab id";
static const char E_CLASS[] = "CLIENT_ERROR bad class id";
static const char E_CHUNK[] = "CLIENT_ERROR bad data chunk";
static const char E_TOOLONG[] = "CLIENT_ERROR line too long";
static const char E_TOOLARGE[] = "SERVER_ERROR object too large for cache";
static const char E_DELTA[] = "CLIENT_ERROR invalid numeric delta argument";
static const char E_EXPTIME[] = "CLIENT_ERROR invalid exptime argument";
static const char E_DELETE[] = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";

struct mc_tok {
	const uint8_t *p;
	size_t n;
};

static bool tok_is(const struct mc_tok *t, const char *w)
{
	size_t n = strlen(w);
	return t->n == n && memcmp(t->p, w, n) == 0;
}

/* Splits on spaces as memcached does; returns the count, or max+1 when
 * there are more tokens than max (only the first max are stored). */
static int mc_tokens(const uint8_t *s, size_t n, struct mc_tok *t, int max)
{
	int k = 0;
	size_t i = 0;
	while (i < n) {
		while (i < n && s[i] == ' ')
			i++;
		if (i == n)
			break;
		size_t b = i;
		while (i < n && s[i] != ' ')
			i++;
		if (k == max)
			return max + 1;
		t[k].p = s + b;
		t[k].n = i - b;
		k++;
	}
	return k;
}

static bool parse_u64(const struct mc_tok *t, uint64_t *out)
{
	if (t->n == 0 || t->n > 20)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < t->n; i++) {
		unsigned d = (unsigned)(t->p[i] - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* A signed 32-bit decimal, as memcached's safe_strtol. */
static bool parse_i32(const struct mc_tok *t, int64_t *out)
{
	struct mc_tok u = *t;
	bool neg = u.n > 0 && u.p[0] == '-';
	if (neg) {
		u.p++;
		u.n--;
	}
	uint64_t v;
	if (!parse_u64(&u, &v) || v > (neg ? UINT64_C(2147483648) : UINT64_C(2147483647)))
		return false;
	*out = neg ? -(int64_t)v : (int64_t)v;
	return true;
}

static enum mc_parse_result fail(const char **err, const char *msg)
{
	*err = msg;
	return MC_ERROR;
}

/* Keys of a get-family request: all tokens from `first`, each <= 250. */
static enum mc_parse_result parse_get(const uint8_t *line, size_t n, const struct mc_tok *first,
				      struct mc_req *req, const char **err)
{
	req->keys = first->p;
	req->keys_len = (size_t)(line + n - first->p);
	size_t pos = 0;
	const uint8_t *k;
	size_t kl;
	while (mc_next_key(req, &pos, &k, &kl))
		if (kl > MC_KEY_MAX)
			return fail(err, E_FORMAT);
	return MC_REQ;
}

/* <cmd> <key> <flags> <exptime> <bytes> [<cas>] [noreply] + data block. */
static enum mc_parse_result parse_storage(const uint8_t *buf, size_t len, size_t line_end,
					  const struct mc_tok *t, int nt,
					  struct mc_parse_state *st, const struct mc_limits *lim,
					  struct mc_req *req, size_t *consumed, size_t *need,
					  const char **err, bool head_only)
{
	int base = req->op == MC_OP_CAS ? 6 : 5;
	if (nt != base && nt != base + 1)
		return fail(err, E_ERROR);
	/* memcached ignores an extra last token unless it is noreply */
	if (nt == base + 1 && tok_is(&t[nt - 1], "noreply"))
		req->noreply = true;
	int64_t vlen;
	if (!parse_i32(&t[4], &vlen) || vlen < 0)
		return fail(err, E_FORMAT);
	uint64_t flags;
	bool ok = t[1].n <= MC_KEY_MAX && parse_u64(&t[2], &flags) && flags <= UINT32_MAX &&
		  parse_i32(&t[3], &req->exptime) && (req->op != MC_OP_CAS || parse_u64(&t[5], &req->cas));
	if (!ok || (uint64_t)vlen > lim->max_item) {
		/* The byte count is sound: drop the data block, not run it. */
		st->swallow = (uint64_t)vlen + 2;
		return fail(err, ok ? E_TOOLARGE : E_FORMAT);
	}
	size_t total = line_end + (size_t)vlen + 2;
	req->key = t[1].p;
	req->key_len = t[1].n;
	req->flags = (uint32_t)flags;
	req->data_len = (size_t)vlen;
	if (head_only) { /* the caller takes the data block */
		*need = total;
		return MC_REQ;
	}
	if (len < total) {
		*consumed = 0;
		*need = total;
		return MC_MORE;
	}
	*consumed = total;
	if (buf[total - 2] != '\r' || buf[total - 1] != '\n')
		return fail(err, E_CHUNK);
	req->data = buf + line_end;
	return MC_REQ;
}

static bool trailing_noreply(const struct mc_tok *t, int *nt, struct mc_req *req)
{
	if (*nt > 1 && tok_is(&t[*nt - 1], "noreply")) {
		req->noreply = true;
		(*nt)--;
		return true;
	}
	return false;
}

/* "stats cachedump <class> <limit>", memcached's words for its errors
 * (words past the fourth are ignored, as memcached does). */
static enum mc_parse_result parse_cachedump(const struct mc_tok *t, int nt, struct mc_req *req,
					    const char **err)
{
	if (nt < 4)
		return fail(err, E_BADLINE);
	uint64_t cls, limit;
	if (!parse_u64(&t[2], &cls) || !parse_u64(&t[3], &limit) || cls > UINT32_MAX ||
	    limit > UINT32_MAX)
		return fail(err, E_FORMAT);
	if (cls >= MC_SLAB_CLASSES)
		return fail(err, E_SLAB);
	req->arg = t[1].p;
	req->arg_len = t[1].n;
	req->dump_class = (uint32_t)cls;
	req->dump_limit = (uint32_t)limit;
	return MC_REQ;
}

/* "lru_crawler metadump <all|hash|<class>[,<class>...]>": which classes
 * (only class 1 holds items here). */
static enum mc_parse_result parse_metadump(const struct mc_tok *t, int nt, struct mc_req *req,
					   const char **err)
{
	if (nt < 3)
		return fail(err, E_ERROR);
	req->op = MC_OP_METADUMP;
	if (tok_is(&t[2], "all") || tok_is(&t[2], "hash")) {
		req->dump_class = 1;
		return MC_REQ;
	}
	const uint8_t *p = t[2].p, *end = t[2].p + t[2].n;
	for (;;) {
		const uint8_t *q = memchr(p, ',', (size_t)(end - p));
		if (!q)
			q = end;
		struct mc_tok one = {.p = p, .n = (size_t)(q - p)};
		uint64_t cls;
		if (!parse_u64(&one, &cls) || cls >= MC_SLAB_CLASSES)
			return fail(err, E_CLASS);
		if (cls == 1)
			req->dump_class = 1;
		if (q == end)
			return MC_REQ;
		p = q + 1;
	}
}

static enum mc_parse_result parse_line(const uint8_t *buf, size_t len, size_t line_len,
				       size_t line_end, struct mc_parse_state *st,
				       const struct mc_limits *lim, struct mc_req *req,
				       size_t *consumed, size_t *need, const char **err,
				       bool head_only)
{
	struct mc_tok t[MC_MAX_TOKENS];
	int nt = mc_tokens(buf, line_len, t, MC_MAX_TOKENS);
	if (nt == 0)
		return fail(err, E_ERROR);
	const struct mc_tok *c = &t[0];
	/* get family first: it is most of the traffic, and may have any
	 * number of keys (nt is capped, the key list is re-scanned). */
	if (tok_is(c, "get") || tok_is(c, "gets")) {
		if (nt < 2)
			return fail(err, E_ERROR);
		req->op = MC_OP_GET;
		req->with_cas = c->n == 4;
		return parse_get(buf, line_len, &t[1], req, err);
	}
	if (tok_is(c, "gat") || tok_is(c, "gats")) {
		if (nt < 2)
			return fail(err, E_ERROR);
		req->op = MC_OP_GET;
		req->touch = true;
		req->with_cas = c->n == 4;
		if (!parse_i32(&t[1], &req->exptime))
			return fail(err, E_EXPTIME);
		if (nt == 2) { /* no keys: memcached answers END */
			req->keys = t[1].p + t[1].n;
			return MC_REQ;
		}
		return parse_get(buf, line_len, &t[2], req, err);
	}
	if (nt > MC_MAX_TOKENS)
		return fail(err, E_ERROR);
	static const struct {
		const char *name;
		enum mc_op op;
	} storage[] = {{"set", MC_OP_SET},	   {"add", MC_OP_ADD},
		       {"replace", MC_OP_REPLACE}, {"append", MC_OP_APPEND},
		       {"prepend", MC_OP_PREPEND}, {"cas", MC_OP_CAS}};
	for (size_t i = 0; i < sizeof storage / sizeof storage[0]; i++) {
		if (tok_is(c, storage[i].name)) {
			req->op = storage[i].op;
			return parse_storage(buf, len, line_end, t, nt, st, lim, req, consumed,
					     need, err, head_only);
		}
	}
	/* As memcached: the token counts each command accepts (else ERROR),
	 * then "noreply" as the last token silences every reply, errors
	 * included; an extra token that is not noreply is ignored. */
	if (tok_is(c, "delete")) {
		req->op = MC_OP_DELETE;
		if (nt < 2 || nt > 4)
			return fail(err, E_ERROR);
		if (nt > 2) /* "delete noreply" deletes the key "noreply" */
			trailing_noreply(t, &nt, req);
		if (nt == 4 || (nt == 3 && !tok_is(&t[2], "0")))
			return fail(err, E_DELETE);
	} else if (tok_is(c, "incr") || tok_is(c, "decr")) {
		req->op = c->p[0] == 'i' ? MC_OP_INCR : MC_OP_DECR;
		if (nt != 3 && nt != 4)
			return fail(err, E_ERROR);
		req->noreply = tok_is(&t[nt - 1], "noreply");
		if (t[1].n > MC_KEY_MAX)
			return fail(err, E_FORMAT);
		if (!mc_strtoull(t[2].p, t[2].n, &req->delta))
			return fail(err, E_DELTA);
	} else if (tok_is(c, "touch")) {
		req->op = MC_OP_TOUCH;
		if (nt != 3 && nt != 4)
			return fail(err, E_ERROR);
		req->noreply = tok_is(&t[nt - 1], "noreply");
		if (t[1].n > MC_KEY_MAX)
			return fail(err, E_FORMAT);
		if (!parse_i32(&t[2], &req->exptime))
			return fail(err, E_EXPTIME);
	} else if (tok_is(c, "flush_all")) {
		req->op = MC_OP_FLUSH_ALL;
		if (nt > 3)
			return fail(err, E_ERROR);
		trailing_noreply(t, &nt, req);
		if (nt >= 2 && !parse_i32(&t[1], &req->delay))
			return fail(err, E_EXPTIME);
		return MC_REQ;
	} else if (tok_is(c, "verbosity")) {
		req->op = MC_OP_VERBOSITY;
		if (nt != 2 && nt != 3)
			return fail(err, E_ERROR);
		/* "verbosity noreply": a bad level, quietly (memcapable) */
		req->noreply = tok_is(&t[nt - 1], "noreply");
		uint64_t v = 0;
		if (!parse_u64(&t[1], &v) || v > UINT32_MAX)
			return fail(err, E_FORMAT);
		req->delay = (int64_t)(v & 0xffff);
		return MC_REQ;
	} else if (tok_is(c, "stats")) {
		req->op = MC_OP_STATS;
		if (nt >= 2 && tok_is(&t[1], "cachedump")) /* stats cachedump <class> <limit> */
			return parse_cachedump(t, nt, req, err);
		if (nt > 2)
			return fail(err, E_ERROR);
		if (nt == 2) {
			req->arg = t[1].p;
			req->arg_len = t[1].n;
		}
		return MC_REQ;
	} else if (tok_is(c, "lru_crawler")) {
		if (nt >= 2 && tok_is(&t[1], "metadump"))
			return parse_metadump(t, nt, req, err);
		return fail(err, E_ERROR);
	} else if (tok_is(c, "version")) { /* memcached ignores arguments */
		req->op = MC_OP_VERSION;
		return MC_REQ;
	} else if (tok_is(c, "quit") && nt == 1) {
		req->op = MC_OP_QUIT;
		return MC_REQ;
	} else {
		return fail(err, E_ERROR);
	}
	if (t[1].n > MC_KEY_MAX)
		return fail(err, E_FORMAT);
	req->key = t[1].p;
	req->key_len = t[1].n;
	return MC_REQ;
}

static enum mc_parse_result parse(struct mc_parse_state *st, const uint8_t *buf, size_t len,
				  const struct mc_limits *lim, struct mc_req *req, size_t *consumed,
				  size_t *need, const char **err, bool head_only)
{
	*consumed = 0;
	*need = 0;
	memset(req, 0, sizeof *req); /* noreply false for every error below */
	if (st->swallow) {
		size_t n = st->swallow < len ? (size_t)st->swallow : len;
		st->swallow -= n;
		*consumed = n;
		return MC_MORE;
	}
	size_t scan = len < lim->max_line + 1 ? len : lim->max_line + 1;
	const uint8_t *nl = memchr(buf, '\n', scan);
	if (st->discard_line) {
		if (nl) {
			st->discard_line = false;
			*consumed = (size_t)(nl - buf) + 1;
		} else {
			*consumed = len;
		}
		return MC_MORE;
	}
	if (!nl) {
		if (len <= lim->max_line)
			return MC_MORE;
		st->discard_line = true;
		*consumed = scan;
		return fail(err, E_TOOLONG);
	}
	size_t line_end = (size_t)(nl - buf) + 1;
	size_t line_len = line_end - 1;
	if (line_len > 0 && buf[line_len - 1] == '\r')
		line_len--;
	/* memcached reads a line as a C string: a NUL ends it */
	const uint8_t *nul = memchr(buf, '\0', line_len);
	if (nul)
		line_len = (size_t)(nul - buf);
	*consumed = line_end;
	return parse_line(buf, len, line_len, line_end, st, lim, req, consumed, need, err,
			  head_only);
}

enum mc_parse_result mc_parse(struct mc_parse_state *st, const uint8_t *buf, size_t len,
			      const struct mc_limits *lim, struct mc_req *req, size_t *consumed,
			      size_t *need, const char **err)
{
	return parse(st, buf, len, lim, req, consumed, need, err, false);
}

enum mc_parse_result mc_parse_head(struct mc_parse_state *st, const uint8_t *buf, size_t len,
				   const struct mc_limits *lim, struct mc_req *req,
				   size_t *consumed, size_t *need, const char **err)
{
	return parse(st, buf, len, lim, req, consumed, need, err, true);
}

bool mc_next_key(const struct mc_req *req, size_t *pos, const uint8_t **key, size_t *len)
{
	size_t i = *pos;
	while (i < req->keys_len && req->keys[i] == ' ')
		i++;
	if (i == req->keys_len)
		return false;
	size_t b = i;
	while (i < req->keys_len && req->keys[i] != ' ')
		i++;
	*key = req->keys + b;
	*len = i - b;
	*pos = i;
	return true;
}

int64_t mc_exptime_abs(int64_t exptime, int64_t now)
{
	if (exptime == 0)
		return 0;
	if (exptime < 0)
		return 1;
	if (exptime <= MC_REALTIME_MAXDELTA)
		return now + exptime;
	return exptime <= now ? 1 : exptime;
}

static bool mc_isspace(uint8_t ch)
{
	return ch == ' ' || (ch >= '\t' && ch <= '\r');
}

bool mc_strtoull(const uint8_t *p, size_t n, uint64_t *out)
{
	size_t i = 0;
	while (i < n && mc_isspace(p[i]))
		i++;
	bool neg = false;
	if (i < n && (p[i] == '+' || p[i] == '-'))
		neg = p[i++] == '-';
	size_t first = i;
	uint64_t v = 0;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		unsigned d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false; /* strtoull: ERANGE */
		v = v * 10 + d;
	}
	if (i == first || (i < n && !mc_isspace(p[i])))
		return false;
	if (neg) /* strtoull negates; memcached refuses what looks negative */
		v = (uint64_t)0 - v;
	if (neg && (int64_t)v < 0)
		return false;
	*out = v;
	return true;
}

size_t mc_u64_str(uint64_t v, char *buf)
{
	char tmp[20];
	size_t n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}
