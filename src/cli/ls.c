/*
 * ls.c - virgo ls / renew, and the duration parser malloc --ttl uses:
 * finding memory again from the shell.  `virgo ls [nodeN]` pages through
 * each node's allocation table (virgo_ls) and prints one line per
 * allocation, so a table of any size is listed in bounded memory on both
 * sides.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_parse_ttl(const char *s, uint64_t *ms)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000},
		     {"d", 86400000}};
	if (end == s || *s == '-' || errno)
		goto bad;
	for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
		if (strcmp(end, units[i].unit) != 0)
			continue;
		if (v == 0 || v > UINT64_MAX / units[i].ms)
			goto bad;
		*ms = v * units[i].ms;
		return 0;
	}
bad:
	fprintf(stderr, "virgo: '%s' is not a duration (e.g. 90, 30s, 15m, 1h, 2d, 500ms)\n", s);
	return -1;
}

static void print_human(uint64_t s, char *buf, size_t cap)
{
	if (s < 120)
		snprintf(buf, cap, "%" PRIu64 "s", s);
	else if (s < 7200)
		snprintf(buf, cap, "%" PRIu64 "m", s / 60);
	else if (s < 172800)
		snprintf(buf, cap, "%" PRIu64 "h", s / 3600);
	else
		snprintf(buf, cap, "%" PRIu64 "d", s / 86400);
}

/* Every page of node idx; returns 0 or the error that stopped it. */
static int ls_node(int idx, unsigned id)
{
	uint64_t cursor = 0;
	do {
		struct virgo_alloc_info *v;
		size_t n;
		int rc = virgo_ls(idx, &cursor, 1000, &v, &n);
		if (rc) {
			fprintf(stderr, "virgo: ls node%u: %s\n", id, virgo_strerror(rc));
			return rc;
		}
		for (size_t i = 0; i < n; i++) {
			char hex[17], age[16], idle[16], ttl[16];
			virgo_vuid_format(v[i].vuid, hex);
			print_human(v[i].age_s, age, sizeof age);
			print_human(v[i].idle_s, idle, sizeof idle);
			if (v[i].ttl_s < 0)
				snprintf(ttl, sizeof ttl, "-");
			else
				print_human((uint64_t)v[i].ttl_s, ttl, sizeof ttl);
			printf("node%-3u %-16s %12" PRIu64 " %12" PRIu64 " %6s %6s %6s %s\n", id, hex,
			       v[i].size, v[i].len, age, idle, ttl, v[i].owner[0] ? v[i].owner : "-");
		}
		free(v);
	} while (cursor != 0);
	return 0;
}

int cmd_ls(int argc, char **argv)
{
	if (cli_fs_ls_args(argc, argv))
		return cmd_fsls(argc, argv); /* files: virgo ls -l node2:/data */
	if (argc > 2)
		return cli_usage("ls", "wants at most one node (N or nodeN)");
	unsigned want = 0;
	if (argc == 2) {
		const char *d = strncmp(argv[1], "node", 4) == 0 ? argv[1] + 4 : argv[1];
		char *end;
		unsigned long id = strtoul(d, &end, 10);
		if (*d == '\0' || *end || id == 0 || id > 65535)
			return fprintf(stderr, "virgo: ls wants a node (2 or node2), not '%s'\n",
				       argv[1]),
			       2;
		want = (unsigned)id;
	}
	int n = virgo_node_count();
	if (n < 0)
		return cli_fail("config", n);
	int shown = 0, bad = 0;
	printf("%-7s %-16s %12s %12s %6s %6s %6s %s\n", "NODE", "VUID", "SIZE", "STORED", "AGE",
	       "IDLE", "TTL", "OWNER");
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		if (virgo_node_info(i, &ni) || (want && ni.id != want))
			continue;
		shown++;
		bad += ls_node(i, ni.id) != 0;
	}
	if (!shown) {
		fprintf(stderr, "virgo: no node %u in the client config\n", want);
		return 1;
	}
	return bad ? 1 : 0;
}

int cmd_renew(int argc, char **argv)
{
	virgo_vuid_t v;
	uint64_t ms;
	if (argc != 3)
		return cli_usage("renew", "wants a VUID and a lease such as 1h");
	if (cli_parse_vuid(argv[1], &v) || cli_parse_ttl(argv[2], &ms))
		return 2;
	int rc = virgo_renew(v, ms);
	return rc ? cli_fail("renew", rc) : 0;
}
