/*
 * vuid.h - VIRGO Unique IDs: layout, formatting, parsing and generation.
 *
 * Shared by the daemon (which mints VUIDs) and libvirgo (which routes a
 * request to the node named inside a VUID).  Layout: bits 63..48 node id
 * (1..65535), bit 47 span flag, bits 46..0 a per-node sequence.  The
 * sequence is seeded from the start-up clock (milliseconds since 2024 << 8)
 * so a restarted node does not hand out the ids of its previous life.
 */
#ifndef VIRGO_VUID_H
#define VIRGO_VUID_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VUID_NODE_SHIFT 48
#define VUID_SPAN_BIT (UINT64_C(1) << 47)
#define VUID_SEQ_MASK (VUID_SPAN_BIT - 1)
#define VUID_HEX_MAX 16

static inline unsigned vuid_node(uint64_t v) { return (unsigned)(v >> VUID_NODE_SHIFT); }
static inline bool vuid_is_span(uint64_t v) { return (v & VUID_SPAN_BIT) != 0; }
static inline uint64_t vuid_make(unsigned node, bool span, uint64_t seq)
{
	return ((uint64_t)(node & 0xffff) << VUID_NODE_SHIFT) | (span ? VUID_SPAN_BIT : 0) |
	       (seq & VUID_SEQ_MASK);
}

/* Writes bare lowercase hex and a NUL into buf (>= 17 bytes); returns length. */
int vuid_format(uint64_t v, char *buf);

/* Parses n bytes of hex, optionally surrounded by double quotes and/or
 * prefixed 0x, with surrounding spaces.  Returns 0, or -EINVAL for anything
 * else (empty, non-hex, more than 16 digits, node id 0). */
int vuid_parse(const char *s, size_t n, uint64_t *out);

/* Thread-safe per-node VUID source. */
struct vuid_gen {
	unsigned node;
	_Atomic uint64_t next;
};
void vuid_gen_init(struct vuid_gen *g, unsigned node, uint64_t seed_ms);
uint64_t vuid_gen_next(struct vuid_gen *g, bool span);

#endif
