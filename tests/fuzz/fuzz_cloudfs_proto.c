/*
 * fuzz_cloudfs_proto.c - libFuzzer target for the cloudfs parser and the
 * framing under it: any bytes, fed whole and then in random-sized pieces
 * (as TCP delivers them), must parse without reading outside the buffer,
 * always make progress, and yield NUL-terminated paths of bounded length.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "../../src/common/pathcodec.h"
#include "../../src/services/cloudfs/cloudfs_proto.h"

static const struct cfs_limits lim = {.max_line = 256, .max_io = 4096};

static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	struct frame_state *st = state;
	static struct cfs_req req;
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		size_t used;
		uint64_t need;
		int code;
		const char *msg;
		enum cfs_parse_result r = cfs_parse(st, buf + *off, n - *off, eof, &lim, &req, &used,
						    &need, &code, &msg);
		if (used > n - *off)
			abort();
		if (r == CFS_REQ && req.data_len &&
		    (req.data < buf + *off || req.data + req.data_len > buf + n))
			abort();
		if (r == CFS_REQ && (strlen(req.path) != req.path_len ||
				     strlen(req.path2) != req.path2_len || req.path_len > CFS_PATH_MAX))
			abort();
		if (r == CFS_ERROR && !msg)
			abort();
		/* flag p and mkdir's s: only where they mean something */
		if (r == CFS_REQ && (req.flags & CFS_O_PARENT) &&
		    (req.op != CFS_OP_OPEN || !(req.flags & (CFS_O_READ | CFS_O_WRITE))))
			abort();
		if (r == CFS_REQ && (req.op == CFS_OP_MKDIR || req.op == CFS_OP_READDIR) &&
		    (req.flags & ~CFS_O_STAT))
			abort();
		*off += used;
		if (r == CFS_MORE && used == 0)
			return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	replay(data, size, sizeof(struct frame_state), drive);
	/* the path codec round-trips whatever it encodes */
	if (size < 600) {
		char enc[1800], dec[CFS_PATH_MAX + 1];
		size_t e = pathcodec_encode((const char *)data, size, enc, sizeof enc);
		if (e >= sizeof enc || strlen(enc) != e)
			abort();
		if (size && !memchr(data, 0, size)) {
			if (pathcodec_decode((const uint8_t *)enc, e, dec, sizeof dec) != 0 ||
			    memcmp(dec, data, size) != 0 || dec[size] != '\0')
				abort();
		}
	}
	return 0;
}
