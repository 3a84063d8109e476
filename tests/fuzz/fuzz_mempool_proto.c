/*
 * fuzz_mempool_proto.c - libFuzzer target for the mempool parser and the
 * framing under it: any bytes, fed whole and then in random-sized pieces
 * (as TCP delivers them), must parse without reading outside the buffer
 * and must always make progress.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/services/mempool_proto.h"

static const struct mp_limits lim = {.max_line = 256, .max_value = 4096};

/* Parses buf like the service does: repeatedly, dropping consumed bytes. */
static void drive(const uint8_t *buf, size_t n, bool eof, struct frame_state *st, size_t *off)
{
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		struct mp_req req;
		size_t used;
		uint64_t need;
		int code;
		const char *msg;
		enum mp_parse_result r = mp_parse(st, buf + *off, n - *off, eof, &lim, &req, &used,
						  &need, &code, &msg);
		if (used > n - *off)
			abort();
		if (r == MP_REQ && req.op == MP_OP_SET && req.data_len &&
		    (req.data < buf + *off || req.data + req.data_len > buf + n))
			abort();
		if (r == MP_ERROR && !msg)
			abort();
		*off += used;
		if (r == MP_MORE && used == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy so ASan catches any read past the end */
	uint8_t *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	struct frame_state st = {0};
	size_t off = 0;
	drive(buf, size, true, &st, &off);
	/* the same bytes as a stream: growing prefixes, EOF only at the end */
	memset(&st, 0, sizeof st);
	off = 0;
	size_t step = size ? (size_t)(data[0] % 17) + 1 : 1;
	for (size_t have = 0; have < size;) {
		have = have + step < size ? have + step : size;
		uint8_t *prefix = malloc(have);
		memcpy(prefix, buf, have);
		drive(prefix, have, have == size, &st, &off);
		free(prefix);
	}
	free(buf);
	return 0;
}
