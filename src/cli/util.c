/*
 * util.c - argument helpers shared by the virgo subcommands (cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cfgval.h"
#include "cli.h"

int cli_fail(const char *what, int rc)
{
	const char *d = virgo_last_error();
	if (d && *d)
		fprintf(stderr, "virgo: %s\n", d);
	else
		fprintf(stderr, "virgo: %s: %s\n", what, virgo_strerror(rc));
	return 1;
}

int cli_parse_vuid(const char *s, virgo_vuid_t *v)
{
	if (virgo_vuid_parse(s, v) != 0) {
		fprintf(stderr, "virgo: '%s' is not a VUID (hex, as printed by malloc)\n", s);
		return -1;
	}
	return 0;
}

int cli_parse_size(const char *s, size_t *out)
{
	uint64_t v;
	if (cv_size(s, &v) != 0 || v > SIZE_MAX) {
		fprintf(stderr,
			"virgo: '%s' is not a size (bytes, or a number with a unit K, M or G: "
			"5000, 64M, 1G)\n",
			s);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

int cli_parse_uint(const char *what, const char *s, unsigned long min, unsigned long max,
		   unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = s[0] >= '0' && s[0] <= '9' ? strtoul(s, &end, 10) : 0;
	if (s[0] < '0' || s[0] > '9' || errno || *end || v < min || v > max) {
		fprintf(stderr, "virgo: %s wants a whole number in %lu..%lu, not '%s'\n", what, min,
			max, s);
		return -1;
	}
	*out = v;
	return 0;
}

uint8_t *cli_read_stdin(size_t *len)
{
	size_t cap = 65536, n = 0;
	uint8_t *buf = malloc(cap);
	while (buf) {
		if (n == cap) {
			if (cap >= CLI_STDIN_MAX) {
				fprintf(stderr, "virgo: stdin larger than %u bytes\n", CLI_STDIN_MAX);
				free(buf);
				return NULL;
			}
			uint8_t *b = realloc(buf, cap * 2);
			if (!b)
				break;
			buf = b;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, stdin);
		n += r;
		if (r == 0) {
			if (ferror(stdin))
				break;
			*len = n;
			return buf;
		}
	}
	free(buf);
	fprintf(stderr, "virgo: cannot read stdin\n");
	return NULL;
}
