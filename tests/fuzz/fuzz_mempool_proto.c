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

#include "replay.h"
#include "../../src/services/mempool_proto.h"

static const struct mp_limits lim = {.max_line = 256, .max_value = 4096};

/* Parses buf like the service does: repeatedly, dropping consumed bytes. */
static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	struct frame_state *st = state;
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
	replay(data, size, sizeof(struct frame_state), drive);
	return 0;
}
