/*
 * virgo.c - the virgo command line: every libvirgo call from the shell.
 *
 *   virgo malloc <size>                    print the new VUID
 *   virgo set <vuid> <data>|- [--offset N] store bytes (- reads stdin)
 *   virgo get <vuid> [<offset> <length>]   write the bytes to stdout
 *   virgo free <vuid>
 *   virgo ping | status | stats [<node id>]
 *   virgo owner <key>...                   node owning each memcached key
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "virgo.h"

#define CLI_STDIN_MAX (1024u * 1024 * 1024)

static void usage(FILE *f)
{
	fprintf(f,
		"usage: virgo [-c FILE] <command> [args]\n"
		"VIRGO cluster client (libvirgo %s).\n\n"
		"Memory pooling:\n"
		"  malloc <size>                  allocate; prints the VUID (large sizes span nodes)\n"
		"  set <vuid> <data>              replace the value with <data>\n"
		"  set <vuid> - [--offset N]      ... with stdin (binary safe); with --offset, patch\n"
		"  set <vuid> <data> --offset N   write <data> at byte N, keep the rest\n"
		"  get <vuid> [<offset> <len>]    print the value (or exactly that range)\n"
		"  free <vuid>                    release it\n\n"
		"Cluster:\n"
		"  ping                           ping every node; exit 1 if any is down\n"
		"  status                         table of configured nodes\n"
		"  stats [<node id>]              mempool statistics of one or every node\n"
		"  owner <key>...                 node owning each memcached key (ketama, as\n"
		"                                 memcached clients shard; see docs/PROTOCOL.md)\n\n"
		"Options:\n"
		"  -c, --conf FILE   client config (default: $VIRGO_CLIENT_CONF,\n"
		"                    $VIRGO_CONF_DIR/virgo_client.conf, /etc/virgo/virgo_client.conf,\n"
		"                    else nodes 1..3 on 127.0.0.1 at port offsets 0..2)\n"
		"  -h, --help        this text\n"
		"  -V, --version     print the version\n",
		VIRGO_VERSION);
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "virgo: %s: %s\n", what, virgo_strerror(rc));
	return 1;
}

static int parse_vuid(const char *s, virgo_vuid_t *v)
{
	if (virgo_vuid_parse(s, v) != 0) {
		fprintf(stderr, "virgo: '%s' is not a VUID (hex, as printed by malloc)\n", s);
		return -1;
	}
	return 0;
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-') {
		fprintf(stderr, "virgo: '%s' is not a non-negative number\n", s);
		return -1;
	}
	*out = (size_t)v;
	return 0;
}

static uint8_t *read_stdin(size_t *len)
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

static int cmd_malloc(int argc, char **argv)
{
	size_t size;
	if (argc != 2 || parse_size(argv[1], &size))
		return fprintf(stderr, "usage: virgo malloc <size>\n"), 2;
	virgo_vuid_t v;
	int rc = virgo_malloc(size, &v);
	if (rc)
		return fail("malloc", rc);
	char hex[17];
	virgo_vuid_format(v, hex);
	printf("%s\n", hex);
	return 0;
}

static int cmd_set(int argc, char **argv)
{
	static const struct option o[] = {{"offset", required_argument, NULL, 'o'}, {0, 0, 0, 0}};
	size_t off = 0;
	int have_off = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+o:", o, NULL)) != -1) {
		if (c != 'o' || parse_size(optarg, &off))
			return fprintf(stderr, "usage: virgo set <vuid> <data>|- [--offset N]\n"), 2;
		have_off = 1;
	}
	/* options may also follow the operands */
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs == 4 && strcmp(args[2], "--offset") == 0) {
		if (parse_size(args[3], &off))
			return 2;
		have_off = 1;
		nargs = 2;
	}
	if (nargs != 2)
		return fprintf(stderr, "usage: virgo set <vuid> <data>|- [--offset N]\n"), 2;
	virgo_vuid_t v;
	if (parse_vuid(args[0], &v))
		return 2;
	uint8_t *data;
	size_t len;
	int from_stdin = strcmp(args[1], "-") == 0;
	if (from_stdin) {
		data = read_stdin(&len);
		if (!data)
			return 1;
	} else {
		data = (uint8_t *)args[1];
		len = strlen(args[1]);
	}
	int rc = have_off ? virgo_set_at(v, off, data, len) : virgo_set(v, data, len);
	if (from_stdin)
		free(data);
	return rc ? fail("set", rc) : 0;
}

static int cmd_get(int argc, char **argv)
{
	virgo_vuid_t v;
	if ((argc != 2 && argc != 4))
		return fprintf(stderr, "usage: virgo get <vuid> [<offset> <length>]\n"), 2;
	if (parse_vuid(argv[1], &v))
		return 2;
	void *data = NULL;
	size_t len = 0;
	int rc;
	if (argc == 4) {
		size_t off;
		if (parse_size(argv[2], &off) || parse_size(argv[3], &len))
			return 2;
		data = malloc(len ? len : 1);
		if (!data)
			return fail("get", -ENOMEM);
		rc = virgo_get_at(v, off, data, len);
	} else {
		rc = virgo_get(v, &data, &len);
	}
	if (rc) {
		free(data);
		return fail("get", rc);
	}
	if (len && fwrite(data, 1, len, stdout) != len)
		rc = -EIO;
	/* a newline for people, never for pipes (binary safety) */
	if (isatty(STDOUT_FILENO) && (len == 0 || ((char *)data)[len - 1] != '\n'))
		putchar('\n');
	free(data);
	return rc ? fail("get", rc) : 0;
}

static int cmd_free(int argc, char **argv)
{
	virgo_vuid_t v;
	if (argc != 2)
		return fprintf(stderr, "usage: virgo free <vuid>\n"), 2;
	if (parse_vuid(argv[1], &v))
		return 2;
	int rc = virgo_free(v);
	return rc ? fail("free", rc) : 0;
}

static int cmd_ping(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return fprintf(stderr, "usage: virgo ping\n"), 2;
	int n = virgo_node_count(), down = 0;
	if (n < 0)
		return fail("config", n);
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		unsigned id;
		double us;
		int rc = virgo_ping(i, &id, &us);
		if (rc) {
			printf("node %u %s+%d: DOWN (%s)\n", ni.id, ni.host, ni.port_offset,
			       virgo_strerror(rc));
			down++;
		} else if (id != ni.id) {
			printf("node %u %s+%d: answers as node %u (check virgo_client.conf)\n", ni.id,
			       ni.host, ni.port_offset, id);
			down++;
		} else {
			printf("node %u %s+%d: up, %.0f us\n", ni.id, ni.host, ni.port_offset, us);
		}
	}
	return down ? 1 : 0;
}

static int cmd_status(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return fprintf(stderr, "usage: virgo status\n"), 2;
	int n = virgo_node_count();
	if (n < 0)
		return fail("config", n);
	printf("%-6s %-20s %-8s %-6s %-12s %-12s %s\n", "NODE", "HOST", "MEMPOOL", "STATE", "ALLOCS",
	       "BYTES", "LIMIT");
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		char *text = NULL;
		int rc = virgo_mempool_stats(i, &text);
		unsigned long long allocs = 0, bytes = 0, limit = 0;
		if (rc == 0) {
			for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
				sscanf(l, "allocations %llu", &allocs);
				sscanf(l, "bytes %llu", &bytes);
				sscanf(l, "limit %llu", &limit);
			}
			printf("%-6u %-20s %-8d %-6s %-12llu %-12llu %llu\n", ni.id, ni.host,
			       30000 + ni.port_offset, "up", allocs, bytes, limit);
		} else {
			printf("%-6u %-20s %-8d %-6s %s\n", ni.id, ni.host, 30000 + ni.port_offset,
			       "DOWN", virgo_strerror(rc));
		}
		free(text);
	}
	return 0;
}

/* One line per key: "<key> node <id> <host>:<memcache port>". */
static int cmd_owner(int argc, char **argv)
{
	if (argc < 2)
		return fprintf(stderr, "usage: virgo owner <key>...\n"), 2;
	for (int i = 1; i < argc; i++) {
		int idx = virgo_key_owner(argv[i], strlen(argv[i]));
		if (idx < 0)
			return fail(argv[i], idx);
		struct virgo_node_info ni;
		virgo_node_info(idx, &ni);
		printf("%s node %u %s:%d\n", argv[i], ni.id, ni.host, 11211 + ni.port_offset);
	}
	return 0;
}

static int cmd_stats(int argc, char **argv)
{
	if (argc > 2)
		return fprintf(stderr, "usage: virgo stats [<node id>]\n"), 2;
	int n = virgo_node_count(), shown = 0, bad = 0;
	if (n < 0)
		return fail("config", n);
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		if (argc == 2 && strtoul(argv[1], NULL, 10) != ni.id)
			continue;
		shown++;
		char *text = NULL;
		int rc = virgo_mempool_stats(i, &text);
		printf("# node %u (%s+%d)\n", ni.id, ni.host, ni.port_offset);
		if (rc) {
			printf("error %s\n", virgo_strerror(rc));
			bad++;
		} else {
			fputs(text, stdout);
		}
		free(text);
	}
	if (!shown) {
		fprintf(stderr, "virgo: no node %s in the client config\n", argv[1]);
		return 1;
	}
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"conf", required_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *conf = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("virgo %s\n", VIRGO_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {{"malloc", cmd_malloc}, {"set", cmd_set},	 {"get", cmd_get},
		    {"free", cmd_free},	    {"ping", cmd_ping},	 {"status", cmd_status},
		    {"stats", cmd_stats},	    {"owner", cmd_owner}};
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(name, cmds[i].name) != 0)
			continue;
		int rc = virgo_init(conf);
		if (rc)
			return fail("config", rc);
		rc = cmds[i].fn(argc - optind, argv + optind);
		virgo_fini();
		return rc;
	}
	fprintf(stderr, "virgo: unknown command '%s' (see virgo --help)\n", name);
	return 2;
}
