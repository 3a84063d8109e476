/*
 * span.h - the descriptor of an allocation that spans nodes (pure).
 *
 * A span is stored as an ordinary allocation whose VUID has the span bit
 * set; its value is this text, so a person can read it with telnet:
 *   VSPAN1 <total bytes> <chunk bytes> <chunk count>\n
 *   <chunk vuid hex>\n   (one per chunk, in address order)
 */
#ifndef VIRGO_SPAN_H
#define VIRGO_SPAN_H

#include <stddef.h>
#include <stdint.h>

#define SPAN_MAX_CHUNKS 65536

struct span {
	uint64_t total, chunk;
	uint32_t n;
	uint64_t *vuids; /* n entries, malloc'd; free with span_clear */
};

/* Text form of s; returns a malloc'd buffer (caller frees) and its length. */
char *span_format(const struct span *s, size_t *len);
/* Parses and validates (n == ceil(total/chunk), every VUID valid).
 * 0 or -EBADMSG; on success s->vuids is malloc'd. */
int span_parse(const uint8_t *text, size_t len, struct span *s);
void span_clear(struct span *s);

#endif
