/*
 * fuzz_queue_proto.c - libFuzzer target for the queue parser and the
 * framing under it: any bytes, fed whole and then in random-sized pieces
 * (as TCP delivers them), must parse without reading outside the buffer,
 * must always make progress, and every name it returns must be valid.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "../../src/services/queue/queue_proto.h"

static const struct qp_limits lim = {.max_line = 256, .max_record = 4096};

static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	struct frame_state *st = state;
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		struct qp_req req;
		size_t used;
		uint64_t need;
		int code;
		const char *msg;
		enum qp_parse_result r = qp_parse(st, buf + *off, n - *off, eof, &lim, &req, &used,
						  &need, &code, &msg);
		if (used > n - *off)
			abort();
		if (r == QP_REQ && req.data_len &&
		    (req.data < buf + *off || req.data + req.data_len > buf + n))
			abort();
		if (r == QP_REQ && req.data_len > lim.max_record)
			abort();
		if (r == QP_REQ && req.topic && !qp_name_valid(req.topic, req.topic_len))
			abort();
		if (r == QP_REQ && req.group && !qp_name_valid(req.group, req.group_len))
			abort();
		if (r == QP_ERROR && !msg)
			abort();
		*off += used;
		if (r == QP_MORE && used == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	replay(data, size, sizeof(struct frame_state), drive);
	return 0;
}
