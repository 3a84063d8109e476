/*
 * fuzz_memcache_proto.c - libFuzzer target for the memcached text protocol
 * parser: any bytes, whole and as a growing stream, must parse without
 * reading outside what has arrived, keep every pointer inside the buffer,
 * and always make progress.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "../../src/services/memcache_proto.h"

static const struct mc_limits lim = {.max_line = 2048, .max_item = 8192};

static bool inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
	return n == 0 || (p >= buf && p + n <= buf + len);
}

static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	(void)eof; /* memcached's framing has no end-of-stream rule */
	struct mc_parse_state *st = state;
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		struct mc_req req;
		size_t used = 0, need = 0;
		const char *err = NULL;
		/* the header-only parse (memcache.c's large-value path) sees the
		 * same bytes first and must agree on the line it consumed */
		struct mc_parse_state hst = *st;
		size_t hused = 0, hneed = 0;
		enum mc_parse_result hr =
			mc_parse_head(&hst, buf + *off, n - *off, &lim, &req, &hused, &hneed, &err);
		if (hused > n - *off || (hr == MC_REQ && req.data_len > 0 && req.data) ||
		    (hr == MC_REQ && !req.data && req.op >= MC_OP_SET && req.op <= MC_OP_CAS &&
		     hneed != hused + req.data_len + 2))
			abort();
		err = NULL;
		enum mc_parse_result r = mc_parse(st, buf + *off, n - *off, &lim, &req, &used, &need, &err);
		if (used > n - *off)
			abort();
		if (r == MC_ERROR && !err)
			abort();
		if (r == MC_REQ) {
			if (!inside(req.key, req.key_len, buf, n) || !inside(req.keys, req.keys_len, buf, n) ||
			    !inside(req.data, req.data_len, buf, n) || !inside(req.arg, req.arg_len, buf, n) ||
			    req.key_len > MC_KEY_MAX)
				abort();
			if (req.op == MC_OP_GET) {
				size_t pos = 0, kl;
				const uint8_t *k;
				while (mc_next_key(&req, &pos, &k, &kl))
					if (kl == 0 || kl > MC_KEY_MAX || !inside(k, kl, buf, n))
						abort();
			}
		}
		*off += used;
		if (r == MC_MORE && used == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	replay(data, size, sizeof(struct mc_parse_state), drive);
	return 0;
}
