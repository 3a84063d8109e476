/*
 * frame.h - request framing shared by every VIRGO text protocol.
 *
 * A request is a line ended by LF, CR, CRLF or NUL (the original clients
 * NUL-pad their requests, PROTOCOL.md "Compatibility"), optionally followed by a payload of a
 * byte count the line announced, itself ended by CRLF or LF.  These are pure
 * functions over bytes plus a small state (for discarding an oversized line
 * or payload without buffering it), so every service parser built on them
 * can be unit-tested and fuzzed without sockets.
 */
#ifndef VIRGO_FRAME_H
#define VIRGO_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct frame_state {
	bool discard_line; /* skipping the rest of an oversized line */
	uint64_t swallow; /* payload bytes still to drop (incl. terminator) */
};

enum frame_result {
	FRAME_MORE = 0, /* need more input; *consumed may still be > 0 */
	FRAME_LINE, /* line and line_len set; *consumed covers the terminator */
	FRAME_TOOLONG, /* the line exceeds max_line: reply an error, once */
};

/* Finds the next non-empty line in buf[0..len).  eof says no more bytes
 * will come, so an unterminated tail counts as a line.  Empty lines and
 * stray NULs are skipped.  Always sets *consumed (bytes the caller drops). */
enum frame_result frame_next_line(struct frame_state *st, const uint8_t *buf, size_t len,
				  bool eof, size_t max_line, const uint8_t **line,
				  size_t *line_len, size_t *consumed);

enum frame_payload_result {
	PAYLOAD_MORE = 0, /* need at least *need bytes in all */
	PAYLOAD_OK, /* payload is buf[0..n); *consumed includes terminator */
	PAYLOAD_BADTERM, /* n bytes present but not followed by CRLF/LF */
};

/* Checks that buf holds n payload bytes plus their terminator. */
enum frame_payload_result frame_payload(const uint8_t *buf, size_t len, uint64_t n, bool eof,
					size_t *consumed, uint64_t *need);

/* Drops up to len bytes of a payload being swallowed; returns bytes dropped. */
size_t frame_swallow(struct frame_state *st, size_t len);

enum frame_body_result {
	FRAME_BODY_MORE = 0, /* need *need bytes from the line on; *consumed keeps the line */
	FRAME_BODY_OK, /* the payload is buf[used..used+n); *consumed covers it */
	FRAME_BODY_TOOBIG, /* n > max: being swallowed with its line's terminator */
	FRAME_BODY_BADTERM, /* n bytes not followed by CRLF/LF: the rest of the line is dropped */
};

/* The payload of n bytes that the line starting at `line` (in buf, parsed
 * up to buf + used) announced, for every service's "<cmd> ... <n>\r\n<data>\r\n"
 * requests: refuses (and swallows) one larger than max, keeps the line
 * unconsumed until the whole payload is in so the request is parsed again
 * then, and drops a payload whose terminator is wrong.  Sets *consumed
 * (and *need for MORE) as the service parsers return them. */
enum frame_body_result frame_body(struct frame_state *st, const uint8_t *buf, size_t len,
				  bool eof, const uint8_t *line, size_t used, uint64_t n,
				  uint64_t max, size_t *consumed, uint64_t *need);

/* Splits a line into at most max whitespace-separated tokens.  Returns the
 * number of tokens, or -1 if there are more than max. */
int frame_tokens(const uint8_t *line, size_t len, const uint8_t **tok, size_t *tok_len, int max);

/* Narrows [*s, *s + *n) past surrounding blanks and one pair of double
 * quotes (the notes' clients quoted ids and numbers). */
void frame_unquote(const uint8_t **s, size_t *n);

/* Parses [s, s + n) as a decimal of 1-20 digits, no sign or blanks, at
 * most max.  Returns 0 or -1 (empty, non-digit, over max). */
int frame_dec(const uint8_t *s, size_t n, uint64_t max, uint64_t *out);

/* Parses a decimal unsigned integer token (optional double quotes).
 * Returns 0 or -1 (empty, non-digit, overflow). */
int frame_u64(const uint8_t *s, size_t n, uint64_t *out);

#endif
