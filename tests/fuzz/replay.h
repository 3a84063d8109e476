/*
 * replay.h - shared driver for the protocol fuzz targets: feeds the input
 * to a parser loop whole (at EOF), then again as a stream of growing
 * prefixes in a private copy each time, the way TCP delivers bytes, so
 * ASan sees any read past what has arrived.
 */
#ifndef VIRGO_FUZZ_REPLAY_H
#define VIRGO_FUZZ_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parses buf[*off..n) repeatedly, advancing *off past what was consumed;
 * aborts on any broken invariant.  st is the parser's own state (zeroed
 * before each pass, state_size bytes). */
typedef void (*replay_drive_fn)(const uint8_t *buf, size_t n, bool eof, void *st, size_t *off);

#define REPLAY_STATE_MAX 64

static inline void replay(const uint8_t *data, size_t size, size_t state_size,
			  replay_drive_fn drive)
{
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	_Alignas(16) uint8_t st[REPLAY_STATE_MAX];
	if (state_size > sizeof st)
		abort();
	memset(st, 0, sizeof st);
	size_t off = 0;
	drive(buf, size, true, st, &off);
	memset(st, 0, sizeof st);
	off = 0;
	size_t step = size ? (size_t)(data[0] % 17) + 1 : 1;
	for (size_t have = 0; have < size;) {
		have = have + step < size ? have + step : size;
		uint8_t *prefix = malloc(have);
		memcpy(prefix, buf, have);
		drive(prefix, have, have == size, st, &off);
		free(prefix);
	}
	free(buf);
}

#endif
