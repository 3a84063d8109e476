/*
 * fuzz_cpupool_proto.c - libFuzzer target for the cpupool parser: any
 * bytes, whole and then as a stream of growing prefixes, parse without
 * reading outside the buffer, always make progress, and every request's
 * name and payload lie inside the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "../../src/services/cpupool_proto.h"

static const struct cp_limits lim = {.max_line = 256, .max_arg = 4096};

static bool inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
	return n == 0 || (p >= buf && p + n <= buf + len);
}

static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	struct frame_state *st = state;
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		struct cp_req req;
		size_t used;
		uint64_t need;
		int code;
		const char *msg;
		enum cp_parse_result r = cp_parse(st, buf + *off, n - *off, eof, &lim, &req, &used,
						  &need, &code, &msg);
		if (used > n - *off)
			abort();
		if (r == CP_REQ && (!inside(req.name, req.name_len, buf, n) ||
				    !inside(req.data, req.data_len, buf, n)))
			abort();
		if (r == CP_REQ && req.op == CP_OP_RUN) {
			const char *why;
			if (cp_argv_check(req.data, req.data_len, &why) < 1)
				abort();
		}
		if (r == CP_ERROR && !msg)
			abort();
		*off += used;
		if (r == CP_MORE && used == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	replay(data, size, sizeof(struct frame_state), drive);
	return 0;
}
