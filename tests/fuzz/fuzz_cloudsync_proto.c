/*
 * fuzz_cloudsync_proto.c - libFuzzer target for the cloudsync parser and
 * the fence syntax: any bytes, whole and in random-sized pieces, must
 * parse without reading outside the buffer, always make progress, and
 * only ever yield names that cs_name_valid accepts.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "../../src/services/cloudsync/cloudsync_proto.h"

static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	struct frame_state *st = state;
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		struct cs_req req;
		size_t used;
		int code;
		const char *msg;
		enum cs_parse_result r = cs_parse(st, buf + *off, n - *off, eof, &req, &used, &code, &msg);
		if (used > n - *off)
			abort();
		if (r == CS_REQ && req.name_len &&
		    ((const uint8_t *)req.name < buf + *off ||
		     (const uint8_t *)req.name + req.name_len > buf + n ||
		     !cs_name_valid(req.name, req.name_len)))
			abort();
		if (r == CS_REQ && (req.ttl_ms == 0 || req.ttl_ms > CS_TTL_MAX))
			abort();
		if (r == CS_ERROR && !msg)
			abort();
		*off += used;
		if (r == CS_MORE && used == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *name;
	size_t len;
	uint64_t token;
	if (cs_fence_parse(data, size, &name, &len, &token) == 0 &&
	    (len == 0 || len >= size || token == 0 || !cs_name_valid(name, len)))
		abort();
	replay(data, size, sizeof(struct frame_state), drive);
	return 0;
}
