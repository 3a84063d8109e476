/*
 * fuzz_auth_proto.c - libFuzzer target for the AUTH line parser
 * (src/daemon/auth_proto.c, included here: the fuzz build compiles only
 * the services' parsers): any bytes, never a read past len, a token
 * always inside the input and free of spaces.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/daemon/auth_proto.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a private copy of exactly size bytes: ASan sees any read past it */
	char *buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	const char *tok = NULL;
	size_t n = 0;
	int r = vd_auth_parse(buf, size, &tok, &n);
	if (r > 0) {
		if ((size_t)r > size || tok < buf || tok + n > buf + size || n == 0)
			abort();
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)tok[i] <= ' ')
				abort();
	}
	free(buf);
	return 0;
}
