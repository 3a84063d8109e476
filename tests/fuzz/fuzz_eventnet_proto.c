/*
 * fuzz_eventnet_proto.c - libFuzzer target for the EventNet parser and the
 * framing under it: any bytes, fed whole and then in random-sized pieces
 * (as TCP delivers them), must parse without reading outside the buffer,
 * must always make progress, and every request must satisfy the limits;
 * the same bytes as a trace context (evn_trace_parse) must parse or be
 * refused without reading outside them.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "../../src/services/eventnet/eventnet_proto.h"

static void in_buf(struct evn_str s, const uint8_t *lo, const uint8_t *hi)
{
	if (s.n && ((const uint8_t *)s.p < lo || (const uint8_t *)s.p + s.n > hi))
		abort();
}

static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	struct frame_state *st = state;
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		struct evn_req req;
		size_t used;
		int code;
		const char *msg;
		enum evn_parse_result r =
			evn_parse(st, buf + *off, n - *off, eof, 256, &req, &used, &code, &msg);
		if (used > n - *off)
			abort();
		if (r == EVN_ERROR && !msg)
			abort();
		if (r == EVN_REQ) {
			in_buf(req.id, buf, buf + n);
			in_buf(req.id2, buf, buf + n);
			in_buf(req.partakers, buf, buf + n);
			in_buf(req.conv, buf, buf + n);
			if (req.nafter > EVN_AFTER_MAX || req.clock.n > EVC_MAX)
				abort();
			if ((req.op == EVN_OP_LOG || req.op == EVN_OP_GET) &&
			    !evn_id_valid(req.id.p, req.id.n))
				abort();
		}
		*off += used;
		if (r == EVN_MORE && used == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evn_trace_ctx t;
	if (evn_trace_parse((const char *)data, size, &t) == 0) {
		in_buf(t.id, data, data + size);
		in_buf(t.cause, data, data + size);
		if (!evn_id_valid(t.id.p, t.id.n) || !evn_id_valid(t.cause.p, t.cause.n) ||
		    t.clock.n > EVC_MAX)
			abort();
	}
	replay(data, size, sizeof(struct frame_state), drive);
	return 0;
}
