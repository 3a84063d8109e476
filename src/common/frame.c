/*
 * frame.c - line and payload framing for the text protocols (see frame.h).
 *
 * Why a discard state: a client that sends a 10 MiB line must get one error
 * reply and the node must keep serving it, without ever buffering more than
 * max_line bytes.  So once a line is known to be too long we report it and
 * then drop bytes until the next terminator, across as many reads as needed.
 */
#include "frame.h"

#include <string.h>

static bool is_term(uint8_t c) { return c == '\n' || c == '\r' || c == '\0'; }

/* Index of the first terminator in p[0..n), or n.  Eight bytes a step
 * while none of them is below 14 (every terminator is), then bytewise. */
static size_t term_scan(const uint8_t *p, size_t n)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	size_t i = 0;
	while (i + 8 <= n) {
		uint64_t x;
		memcpy(&x, p + i, 8);
		if ((x - 14 * ones) & ~x & highs)
			break; /* a byte below 14 in this word */
		i += 8;
	}
	while (i < n && !is_term(p[i]))
		i++;
	return i;
}

enum frame_result frame_next_line(struct frame_state *st, const uint8_t *buf, size_t len,
				  bool eof, size_t max_line, const uint8_t **line,
				  size_t *line_len, size_t *consumed)
{
	size_t pos = 0;
	*consumed = 0;
	if (st->swallow) {
		pos += frame_swallow(st, len);
		if (st->swallow) {
			*consumed = pos;
			return FRAME_MORE;
		}
	}
	for (;;) {
		if (st->discard_line) {
			while (pos < len && !is_term(buf[pos]))
				pos++;
			if (pos == len) {
				*consumed = pos;
				return FRAME_MORE;
			}
			st->discard_line = false;
		}
		/* skip terminators left from previous lines (CRLF, NUL padding) */
		while (pos < len && is_term(buf[pos]))
			pos++;
		if (pos == len) {
			*consumed = pos;
			return FRAME_MORE;
		}
		size_t start = pos;
		size_t lim = len - start < max_line + 1 ? len - start : max_line + 1;
		const uint8_t *p = buf + start;
		size_t i = term_scan(p, lim);
		if (i > max_line) {
			st->discard_line = true;
			*consumed = start + i;
			return FRAME_TOOLONG;
		}
		if (i == len - start) { /* no terminator yet */
			if (!eof) {
				*consumed = start;
				return FRAME_MORE;
			}
			*line = p;
			*line_len = i;
			*consumed = len;
			return FRAME_LINE;
		}
		size_t end = start + i + 1;
		if (p[i] == '\r') {
			/* a CR may be followed by the LF of a CRLF; payload bytes
			 * start after it, so wait for that byte unless at EOF */
			if (end == len && !eof) {
				*consumed = start;
				return FRAME_MORE;
			}
			if (end < len && (buf[end] == '\n' || buf[end] == '\0'))
				end++;
		}
		*line = p;
		*line_len = i;
		*consumed = end;
		return FRAME_LINE;
	}
}

enum frame_payload_result frame_payload(const uint8_t *buf, size_t len, uint64_t n, bool eof,
					size_t *consumed, uint64_t *need)
{
	*consumed = 0;
	/* every comparison is of len against n, never of n + k, so no n
	 * (even UINT64_MAX from a bad caller) can wrap; *need saturates */
	if ((uint64_t)len <= n) {
		if (eof && (uint64_t)len == n) { /* unterminated final payload */
			*consumed = len;
			return PAYLOAD_OK;
		}
		*need = n < UINT64_MAX ? n + 1 : UINT64_MAX;
		return eof ? PAYLOAD_BADTERM : PAYLOAD_MORE;
	}
	/* here n < len, so n fits a size_t and n + 1 <= len */
	size_t at = (size_t)n;
	uint8_t t = buf[at];
	if (t == '\n') {
		*consumed = at + 1;
		return PAYLOAD_OK;
	}
	if (t == '\r') {
		if (len - at < 2) {
			if (eof) {
				*consumed = at + 1;
				return PAYLOAD_OK;
			}
			*need = (uint64_t)at + 2;
			return PAYLOAD_MORE;
		}
		if (buf[at + 1] == '\n') {
			*consumed = at + 2;
			return PAYLOAD_OK;
		}
	}
	*consumed = at;
	return PAYLOAD_BADTERM;
}

enum frame_body_result frame_body(struct frame_state *st, const uint8_t *buf, size_t len,
				  bool eof, const uint8_t *line, size_t used, uint64_t n,
				  uint64_t max, size_t *consumed, uint64_t *need)
{
	if (n > max) {
		st->swallow = n;
		st->discard_line = true; /* then its terminator */
		*consumed = used + frame_swallow(st, len - used);
		return FRAME_BODY_TOOBIG;
	}
	size_t pused;
	enum frame_payload_result pr = frame_payload(buf + used, len - used, n, eof, &pused, need);
	if (pr == PAYLOAD_MORE) {
		/* keep the line: the request is parsed again once the payload
		 * is in; drop only what precedes the line */
		*consumed = (size_t)(line - buf);
		*need += (uint64_t)(used - *consumed);
		return FRAME_BODY_MORE;
	}
	*consumed = used + pused;
	if (pr == PAYLOAD_BADTERM) {
		st->discard_line = true;
		return FRAME_BODY_BADTERM;
	}
	return FRAME_BODY_OK;
}

size_t frame_swallow(struct frame_state *st, size_t len)
{
	size_t d = (uint64_t)len < st->swallow ? len : (size_t)st->swallow;
	st->swallow -= d;
	return d;
}

int frame_tokens(const uint8_t *line, size_t len, const uint8_t **tok, size_t *tok_len, int max)
{
	int n = 0;
	size_t i = 0;
	while (i < len) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i == len)
			break;
		size_t s = i;
		while (i < len && line[i] != ' ' && line[i] != '\t')
			i++;
		if (n == max)
			return -1;
		tok[n] = line + s;
		tok_len[n] = i - s;
		n++;
	}
	return n;
}

void frame_unquote(const uint8_t **sp, size_t *np)
{
	const uint8_t *s = *sp;
	size_t n = *np;
	while (n > 0 && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n >= 2 && s[0] == '"' && s[n - 1] == '"')
		s++, n -= 2;
	*sp = s;
	*np = n;
}

int frame_dec(const uint8_t *s, size_t n, uint64_t max, uint64_t *out)
{
	if (n == 0 || n > 20)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		uint64_t d = (uint64_t)(s[i] - '0');
		if (d > max || v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int frame_u64(const uint8_t *s, size_t n, uint64_t *out)
{
	frame_unquote(&s, &n);
	return frame_dec(s, n, UINT64_MAX, out);
}
