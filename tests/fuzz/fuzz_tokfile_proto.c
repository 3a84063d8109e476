/*
 * fuzz_tokfile_proto.c - libFuzzer target for the named tokens file's
 * parser (src/common/tokfile_proto.c, part of the fuzz build's common
 * sources): any bytes, never a read past len; every entry stored lies
 * inside the input with a valid name, a token of allowed length and
 * bytes, and a line number in order; an error is a NUL-ended sentence.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/tokfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy of exactly size bytes: ASan sees any read past it */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	static struct tokfile_entry ents[64];
	char err[128];
	memset(err, 'x', sizeof err);
	/* a few slots, so that entries beyond max are only counted */
	size_t max = size ? (size_t)(data[0] % 64) + 1 : 1;
	int n = tokfile_parse(buf, size, ents, max, err, sizeof err);
	if (n < 0) {
		if (!memchr(err, '\0', sizeof err))
			abort();
	} else {
		unsigned last = 0;
		for (size_t i = 0; i < (size_t)n && i < max; i++) {
			const struct tokfile_entry *e = &ents[i];
			if (e->name < buf || e->name + e->namelen > buf + size || e->token < buf ||
			    e->token + e->toklen > buf + size)
				abort();
			if (!tokfile_name_ok(e->name, e->namelen) || e->toklen < TOKFILE_TOKEN_MIN ||
			    e->toklen > TOKFILE_TOKEN_MAX || e->line <= last)
				abort();
			for (size_t k = 0; k < e->toklen; k++)
				if ((unsigned char)e->token[k] <= ' ' || (unsigned char)e->token[k] >= 0x7f)
					abort();
			last = e->line;
		}
	}
	free(buf);
	return 0;
}
