/*
 * fuzz_cloudfs_reply_proto.c - libFuzzer target for libvirgo's parser of
 * cloudfs replies (src/lib/cloudfs_reply_proto.c): the input as a readdir
 * page, plain and plus, into an array of exactly its line count (its
 * cursor read from the end must be the same), and as stat fields.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/lib/cloudfs_reply_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: a read past it is ASan's to see */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	size_t lines = cloudfs_reply_lines(text, size);
	if (lines > size + 1)
		abort();
	size_t max = lines ? lines : 1;
	struct virgo_direntplus *dp = malloc(max * sizeof *dp);
	struct virgo_dirent *d = malloc(max * sizeof *d);
	uint64_t next;
	if (dp && d) {
		long k = cloudfs_reply_page(text, size, CLOUDFS_PAGE_PLUS, dp, lines, &next);
		if (k < 0 || (size_t)k > lines)
			abort();
		for (long i = 0; i < k; i++)
			if (strlen(dp[i].name) == 0 || strlen(dp[i].name) > 255)
				abort();
		k = cloudfs_reply_page(text, size, CLOUDFS_PAGE_NAMES, dp, lines, &next);
		if (k < 0 || (size_t)k > lines)
			abort();
		for (long i = 0; i < k; i++)
			if (strlen(dp[i].name) == 0 || strlen(dp[i].name) > 255 || dp[i].st.size)
				abort();
		k = cloudfs_reply_page(text, size, CLOUDFS_PAGE_ENT, d, lines, &next);
		if (k < 0 || (size_t)k > lines)
			abort();
		if (cloudfs_reply_next(text, size) != next)
			abort(); /* read from the end, the same cursor */
	}
	struct virgo_stat st;
	const char *rest;
	if (cloudfs_reply_stat(text, text + size, &st, &rest) == 0 &&
	    (rest < text || rest > text + size))
		abort();
	free(dp);
	free(d);
	free(text);
	return 0;
}
