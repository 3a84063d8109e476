/*
 * fuzz_analytics_proto.c - libFuzzer target for the kernel analytics
 * parser: any bytes, as a file or chunk (pairs) and as a request line,
 * must parse without reading outside the buffer and always make progress.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/services/analytics/analytics_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t pos = 0, last = 0, steps = 0;
	struct an_pair p;
	int rc;
	while ((rc = an_next_pair(buf, size, &pos, &p)) != 0) {
		if (pos > size || (pos <= last && steps > 0) || ++steps > size + 1)
			abort();
		last = pos;
		if (rc > 0 && (p.key < buf || p.key + p.klen > buf + size || p.val < buf ||
			       p.val + p.vlen > buf + size || p.vlen > AN_MAX_VALUE ||
			       !an_key_ok(p.key, p.klen)))
			abort();
		if (rc < 0 && !p.err)
			abort();
	}
	struct an_req r;
	rc = an_parse_request(buf, size, &r);
	if (rc < 0 && (r.cmd != AN_BAD || !r.err))
		abort();
	if (rc == 0 && r.arg_len && (r.arg < buf || r.arg + r.arg_len > buf + size))
		abort();
	return 0;
}
