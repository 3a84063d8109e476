/*
 * mem.c - virgo malloc/set/get/free: memory pooling from the shell.
 */
#include <errno.h>
#include <getopt.h>
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
	optind = 0; /* 0: glibc re-reads the ordering, so options may follow the size */
	while ((c = getopt_long(argc, argv, "t:w:", o, NULL)) != -1) {
		if (c == 't' && cli_parse_ttl(optarg, &mo.ttl_ms) == 0)
			continue;
		if (c == 'w') {
			mo.owner = optarg;
			continue;
		}
		return fprintf(stderr, "usage: virgo malloc <size> [--ttl T] [--owner TAG]\n"), 2;
	}
	size_t size;
	if (argc - optind != 1 || cli_parse_size(argv[optind], &size))
		return fprintf(stderr, "usage: virgo malloc <size> [--ttl T] [--owner TAG]\n"), 2;
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
	static const struct option o[] = {{"offset", required_argument, NULL, 'o'}, {0, 0, 0, 0}};
	size_t off = 0;
	int have_off = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+o:", o, NULL)) != -1) {
		if (c != 'o' || cli_parse_size(optarg, &off))
			return fprintf(stderr, "usage: virgo set <vuid> <data>|- [--offset N]\n"), 2;
		have_off = 1;
	}
	/* options may also follow the operands */
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs == 4 && strcmp(args[2], "--offset") == 0) {
		if (cli_parse_size(args[3], &off))
			return 2;
		have_off = 1;
		nargs = 2;
	}
	if (nargs != 2)
		return fprintf(stderr, "usage: virgo set <vuid> <data>|- [--offset N]\n"), 2;
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
	if ((argc != 2 && argc != 4))
		return fprintf(stderr, "usage: virgo get <vuid> [<offset> <length>]\n"), 2;
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
		return fprintf(stderr, "usage: virgo free <vuid> | virgo free --owner TAG\n"), 2;
	if (cli_parse_vuid(argv[1], &v))
		return 2;
	int rc = virgo_free(v);
	return rc ? cli_fail("free", rc) : 0;
}
