/*
 * ketama.c - the ketama continuum (ketama.h).  Ties between equal point
 * values are broken by node index so every client orders them alike.
 */
#include "ketama.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/md5.h"

static uint32_t kt_word(const uint8_t *d, int h)
{
	return (uint32_t)d[3 + h * 4] << 24 | (uint32_t)d[2 + h * 4] << 16 |
	       (uint32_t)d[1 + h * 4] << 8 | d[h * 4];
}

static int kt_cmp(const void *a, const void *b)
{
	const struct kt_point *x = a, *y = b;
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	return (x->node > y->node) - (x->node < y->node);
}

void kt_build(struct kt_point *ring, const char *const *hosts, const int *ports, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < KT_POINTS_PER_NODE / 4; j++) {
			char name[128];
			int len = ports[i] == 11211
					  ? snprintf(name, sizeof name, "%s-%d", hosts[i], j)
					  : snprintf(name, sizeof name, "%s:%d-%d", hosts[i], ports[i], j);
			uint8_t d[16];
			md5_digest(name, (size_t)len < sizeof name ? (size_t)len : sizeof name - 1, d);
			for (int h = 0; h < 4; h++) {
				ring[k].value = kt_word(d, h);
				ring[k].node = i;
				k++;
			}
		}
	}
	qsort(ring, (size_t)k, sizeof *ring, kt_cmp);
}

uint32_t kt_hash(const void *key, size_t len)
{
	uint8_t d[16];
	md5_digest(key, len, d);
	return kt_word(d, 0);
}

int kt_lookup(const struct kt_point *ring, int n, const void *key, size_t len)
{
	uint32_t h = kt_hash(key, len);
	size_t lo = 0, hi = (size_t)n * KT_POINTS_PER_NODE;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ring[mid].value < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == (size_t)n * KT_POINTS_PER_NODE)
		lo = 0;
	return ring[lo].node;
}
