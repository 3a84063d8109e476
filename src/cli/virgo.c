/*
 * virgo.c - the virgo command line: every libvirgo call from the shell.
 * This file holds the usage text and the dispatch; the subcommands live in
 * mem.c, cpu.c and cluster.c (cli.h).
 *
 *   virgo malloc <size>                    print the new VUID
 *   virgo set <vuid> <data>|- [--offset N] store bytes (- reads stdin)
 *   virgo get <vuid> [<offset> <length>]   write the bytes to stdout
 *   virgo free <vuid>
 *   virgo ping | status | stats [<node id>]
 *   virgo owner <key>...                   node owning each memcached key
 *   virgo clone [opts] <fn> [<arg>|-]          run a function on the best node
 *   virgo run [opts] -- prog args...           run a program; its stdout,
 *                                              stderr and exit code pass through
 *   virgo map [-j N] [opts] -- cmd {} ::: in... one run per input, outputs in
 *                                              input order
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

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
		"  free <vuid>                    release it\n"
		"  malloc <size> [--ttl T] [--owner TAG]  ... freed by the node after T (1h, 30s)\n"
		"                                 unless renewed; TAG finds it again\n"
		"  free --owner TAG               free every allocation tagged TAG on every node\n"
		"  renew <vuid> <T>               restart its lease: T from now\n"
		"  ls [nodeN]                     list allocations: size, stored, age, idle, ttl, owner\n\n"
		"CPU pooling (opts: --on nodeN, --policy P, --timeout MS):\n"
		"  clone [opts] <fn> [<arg>|-]    run a function (built-in or plugin) on the\n"
		"                                 best node; prints its result (- : stdin)\n"
		"  run [opts] -- prog args...     run an allowed program there; its stdout,\n"
		"                                 stderr and exit code pass through (125: not run)\n"
		"  map [-j N] [opts] -- cmd {} ::: inputs...\n"
		"                                 one run per input ({} replaced, else appended),\n"
		"                                 N at a time; outputs in input order\n"
		"  policies: random round_robin least_loaded power_of_two learned\n\n"
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
		    {"stats", cmd_stats},   {"clone", cmd_clone}, {"run", cmd_run},
		    {"map", cmd_map},	    {"owner", cmd_owner},
		    {"ls", cmd_ls},	    {"renew", cmd_renew}};
	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (strcmp(name, cmds[i].name) != 0)
			continue;
		int rc = virgo_init(conf);
		if (rc)
			return cli_fail("config", rc);
		rc = cmds[i].fn(argc - optind, argv + optind);
		virgo_fini();
		return rc;
	}
	fprintf(stderr, "virgo: unknown command '%s' (see virgo --help)\n", name);
	return 2;
}
