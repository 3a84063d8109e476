/*
 * mem.c - virgo malloc/set/get/free: memory pooling from the shell.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_malloc(int argc, char **argv)
{
	static const struct option o[] = {{"ttl", required_argument, NULL, 't'},
					  {"owner", required_argument, NULL, 'w'},
					  {0, 0, 0, 0}};
	struct virgo_malloc_opts mo = {0};
	int c;
	size_t size;
	for (int i = 1; i < argc; i++) /* "-5" is a bad size, not an option */
		if (argv[i][0] == '-' && argv[i][1] >= '0' && argv[i][1] <= '9')
			return cli_parse_size(argv[i], &size) ? 2 : cli_usage("malloc", "bad size");
	optind = 0; /* 0: glibc re-reads the ordering, so options may follow the size */
	while ((c = getopt_long(argc, argv, "t:w:", o, NULL)) != -1) {
		if (c == 't' && cli_parse_ttl(optarg, &mo.ttl_ms) == 0)
			continue;
		if (c == 'w') {
			mo.owner = optarg;
			continue;
		}
		return cli_usage("malloc", "bad --ttl (e.g. 90, 30s, 15m, 1h, 2d) or unknown option");
	}
	if (argc - optind != 1)
		return cli_usage("malloc", "wants exactly one size, got %d arguments", argc - optind);
	if (cli_parse_size(argv[optind], &size))
		return 2;
	if (size == 0)
		return cli_usage("malloc", "the size must be at least 1 byte");
	/* No --owner: the program that ran virgo (the shell or script, our
	 * parent) is the one that may leave memory behind, so the default tag
	 * is <host>:<parent pid>, unless $VIRGO_OWNER names one. */
	char deftag[80];
	if (!mo.owner && !getenv("VIRGO_OWNER")) {
		snprintf(deftag, sizeof deftag, "%s", virgo_owner_default());
		char *colon = strrchr(deftag, ':');
		if (colon)
			snprintf(colon + 1, sizeof deftag - (size_t)(colon + 1 - deftag), "%ld",
				 (long)getppid());
		mo.owner = deftag;
	}
	virgo_vuid_t v;
	int rc = virgo_malloc_ex(size, &mo, &v);
	if (rc)
		return cli_fail("malloc", rc);
	char hex[17];
	virgo_vuid_format(v, hex);
	printf("%s\n", hex);
	return 0;
}

int cmd_set(int argc, char **argv)
{
	/* operands and --offset N / --offset=N in any order; "--" ends the
	 * options (data that starts with a dash) */
	size_t off = 0;
	int have_off = 0, nargs = 0;
	char *args[2];
	bool opts = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = NULL;
		if (opts && strcmp(a, "--") == 0) {
			opts = false;
			continue;
		}
		if (opts && strcmp(a, "--offset") == 0) {
			if (i + 1 >= argc)
				return cli_usage("set", "--offset needs a value");
			val = argv[++i];
		} else if (opts && strncmp(a, "--offset=", 9) == 0) {
			val = a + 9;
		} else if (opts && a[0] == '-' && a[1] != '\0') {
			return cli_usage("set", "unknown option '%s' (data starting with '-' goes after --)",
					 a);
		}
		if (val) {
			if (cli_parse_size(val, &off))
				return 2;
			have_off = 1;
			continue;
		}
		if (nargs == 2)
			return cli_usage("set", "too many arguments ('%s')", a);
		args[nargs++] = argv[i];
	}
	if (nargs != 2)
		return cli_usage("set", "wants a VUID and the data (or - for stdin)");
	virgo_vuid_t v;
	if (cli_parse_vuid(args[0], &v))
		return 2;
	uint8_t *data;
	size_t len;
	int from_stdin = strcmp(args[1], "-") == 0;
	if (from_stdin) {
		data = cli_read_stdin(&len);
		if (!data)
			return 1;
	} else {
		data = (uint8_t *)args[1];
		len = strlen(args[1]);
	}
	int rc = have_off ? virgo_set_at(v, off, data, len) : virgo_set(v, data, len);
	if (from_stdin)
		free(data);
	return rc ? cli_fail("set", rc) : 0;
}

int cmd_get(int argc, char **argv)
{
	virgo_vuid_t v;
	if (argc != 2 && argc != 4)
		return cli_usage("get", "wants a VUID, optionally followed by an offset and a length");
	if (cli_parse_vuid(argv[1], &v))
		return 2;
	void *data = NULL;
	size_t len = 0;
	int rc;
	if (argc == 4) {
		size_t off;
		if (cli_parse_size(argv[2], &off) || cli_parse_size(argv[3], &len))
			return 2;
		data = malloc(len ? len : 1);
		if (!data)
			return cli_fail("get", -ENOMEM);
		rc = virgo_get_at(v, off, data, len);
	} else {
		rc = virgo_get(v, &data, &len);
	}
	if (rc) {
		free(data);
		return cli_fail("get", rc);
	}
	if (len && fwrite(data, 1, len, stdout) != len)
		rc = -EIO;
	/* a newline for people, never for pipes (binary safety) */
	if (isatty(STDOUT_FILENO) && (len == 0 || ((char *)data)[len - 1] != '\n'))
		putchar('\n');
	free(data);
	return rc ? cli_fail("get", rc) : 0;
}

int cmd_free(int argc, char **argv)
{
	virgo_vuid_t v;
	if (argc == 3 && strcmp(argv[1], "--owner") == 0) {
		uint64_t n = 0;
		int rc = virgo_free_owner(argv[2], &n);
		printf("%" PRIu64 "\n", n); /* what was freed, also on a partial failure */
		return rc ? cli_fail("free --owner", rc) : 0;
	}
	if (argc != 2)
		return cli_usage("free", "wants exactly one VUID");
	if (cli_parse_vuid(argv[1], &v))
		return 2;
	int rc = virgo_free(v);
	return rc ? cli_fail("free", rc) : 0;
}
