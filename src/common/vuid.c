/*
 * vuid.c - VUID formatting, parsing and the thread-safe generator.
 *
 * The notes' next_id (§1050) was a global bumped without a lock; here it is
 * one atomic counter per node, and the owning node is encoded in the id so a
 * client can route without a lookup table.
 */
#include "vuid.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include "frame.h"

int vuid_format(uint64_t v, char *buf)
{
	return snprintf(buf, VUID_HEX_MAX + 1, "%" PRIx64, v);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int vuid_parse(const char *str, size_t n, uint64_t *out)
{
	const uint8_t *u = (const uint8_t *)str;
	frame_unquote(&u, &n);
	const char *s = (const char *)u;
	if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		s += 2, n -= 2;
	if (n == 0 || n > VUID_HEX_MAX)
		return -EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = hexval(s[i]);
		if (d < 0)
			return -EINVAL;
		v = (v << 4) | (uint64_t)d;
	}
	if (vuid_node(v) == 0)
		return -EINVAL;
	*out = v;
	return 0;
}

void vuid_gen_init(struct vuid_gen *g, unsigned node, uint64_t seed_ms)
{
	/* 2024-01-01T00:00:00Z in ms; the shift leaves room for 256 ids/ms. */
	const uint64_t epoch_ms = UINT64_C(1704067200000);
	uint64_t base = seed_ms > epoch_ms ? (seed_ms - epoch_ms) << 8 : 0;
	g->node = node;
	atomic_store(&g->next, (base & VUID_SEQ_MASK) | 1);
}

uint64_t vuid_gen_next(struct vuid_gen *g, bool span)
{
	uint64_t seq = atomic_fetch_add_explicit(&g->next, 1, memory_order_relaxed);
	return vuid_make(g->node, span, seq);
}
