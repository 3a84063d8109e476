/*
 * fuzz_client_replies.c - libFuzzer target for what libvirgo parses from a
 * node: reply status lines and span descriptors.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/reply.h"
#include "../../src/lib/span.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *line = malloc(size + 1);
	memcpy(line, data, size);
	line[size] = '\0';
	uint64_t n;
	int err;
	vc_reply_classify(line, strlen(line), &n, &err);
	struct span s;
	if (span_parse((const uint8_t *)line, size, &s) == 0) {
		size_t len;
		char *text = span_format(&s, &len);
		struct span back;
		if (!text || span_parse((const uint8_t *)text, len, &back) != 0 || back.n != s.n ||
		    memcmp(back.vuids, s.vuids, s.n * sizeof *s.vuids) != 0)
			abort(); /* format and parse must round-trip */
		span_clear(&back);
		free(text);
		span_clear(&s);
	}
	free(line);
	return 0;
}
