/*
 * span.c - span descriptor format and parser (span.h).
 */
#include "span.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/frame.h"
#include "../common/vuid.h"

char *span_format(const struct span *s, size_t *len)
{
	size_t cap = 64 + (size_t)s->n * (VUID_HEX_MAX + 1);
	char *buf = malloc(cap);
	if (!buf)
		return NULL;
	size_t o = (size_t)snprintf(buf, cap, "VSPAN1 %" PRIu64 " %" PRIu64 " %" PRIu32 "\n",
				    s->total, s->chunk, s->n);
	for (uint32_t i = 0; i < s->n; i++) {
		o += (size_t)vuid_format(s->vuids[i], buf + o);
		buf[o++] = '\n';
	}
	*len = o;
	return buf;
}

int span_parse(const uint8_t *text, size_t len, struct span *s)
{
	memset(s, 0, sizeof *s);
	const uint8_t *nl = memchr(text, '\n', len);
	if (!nl)
		return -EBADMSG;
	const uint8_t *tok[5];
	size_t tl[5];
	if (frame_tokens(text, (size_t)(nl - text), tok, tl, 5) != 4 || tl[0] != 6 ||
	    memcmp(tok[0], "VSPAN1", 6) != 0)
		return -EBADMSG;
	uint64_t n;
	if (frame_u64(tok[1], tl[1], &s->total) || frame_u64(tok[2], tl[2], &s->chunk) ||
	    frame_u64(tok[3], tl[3], &n) || s->chunk == 0 || n == 0 || n > SPAN_MAX_CHUNKS ||
	    s->total > UINT64_MAX / 2 || s->chunk > UINT64_MAX / 2 ||
	    n != (s->total + s->chunk - 1) / s->chunk)
		return -EBADMSG;
	s->n = (uint32_t)n;
	s->vuids = calloc(n, sizeof *s->vuids);
	if (!s->vuids)
		return -ENOMEM;
	const uint8_t *p = nl + 1, *end = text + len;
	for (uint32_t i = 0; i < s->n; i++) {
		const uint8_t *e = memchr(p, '\n', (size_t)(end - p));
		if (!e || vuid_parse((const char *)p, (size_t)(e - p), &s->vuids[i]) != 0 ||
		    vuid_is_span(s->vuids[i])) {
			span_clear(s);
			return -EBADMSG;
		}
		p = e + 1;
	}
	if (p != end) {
		span_clear(s);
		return -EBADMSG;
	}
	return 0;
}

void span_clear(struct span *s)
{
	free(s->vuids);
	s->vuids = NULL;
	s->n = 0;
}
