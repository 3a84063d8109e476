/*
 * virgo.c - the virgo command line: every libvirgo call from the shell.
 * This file holds the one table of subcommands (name, usage, summary,
 * details, examples) that dispatch, `virgo help`, `virgo help <cmd>` and
 * `virgo <cmd> --help` all read, the global options and the dispatch; the
 * subcommands live in mem.c, ls.c, cpu.c, jobs.c and cluster.c (cli.h).
 *
 * Exit status: 0 success, 1 a call failed, 2 bad arguments or an unusable
 * -c file; run passes the program's status through (124: killed at its
 * deadline, 125: not run).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define CPU_OPTS                                                                              \
	"  --on nodeN       run on exactly that node (N or nodeN)\n"                          \
	"  --policy P       placement: random round_robin least_loaded power_of_two learned\n" \
	"  --timeout MS     job deadline on the node, in milliseconds\n"

static const struct cli_cmd cmds[] = {
	{"malloc", cmd_malloc, "malloc <size> [--ttl T] [--owner TAG]",
	 "allocate pooled memory; prints the new VUID (large sizes span nodes)",
	 "  <size>       bytes, or with a unit: K, M, G (powers of 1024; 64M, 1G, 512KB)\n"
	 "  --ttl T      a lease: the node frees it after T (90 = seconds, 30s, 15m, 1h, 2d)\n"
	 "               unless renewed (virgo renew)\n"
	 "  --owner TAG  a tag to find it again (virgo ls, virgo free --owner); default\n"
	 "               $VIRGO_OWNER, else <host>:<pid of the shell or script running virgo>,\n"
	 "               so a script can end with: virgo free --owner \"$(hostname):$$\";\n"
	 "               --owner '' for no tag\n",
	 "virgo malloc 5000\nvirgo malloc 64M\nvirgo malloc 5000 --ttl 1h --owner backup-job\n", 0},
	{"set", cmd_set, "set <vuid> <data>|- [--offset N]",
	 "store bytes: replace the value, or patch at an offset with --offset",
	 "  -              read the data from stdin (binary safe)\n"
	 "  --offset N     write at byte N and keep the rest (N may have a unit: 4K)\n",
	 "virgo set 1000000000000001 hello\nvirgo set 1000000000000001 - < file.bin\n"
	 "virgo set 1000000000000001 XY --offset 3\n",
	 0},
	{"get", cmd_get, "get <vuid> [<offset> <length>]",
	 "print the stored value (or exactly that range) to stdout",
	 "  <offset> <length>  sizes; bytes, or with a unit (K, M, G)\n"
	 "  On a terminal the output ends with a newline; never in a pipe.\n",
	 "virgo get 1000000000000001\nvirgo get 1000000000000001 0 5\n"
	 "virgo get 1000000000000001 > copy.bin\n",
	 0},
	{"free", cmd_free, "free <vuid> | free --owner TAG",
	 "release an allocation (every chunk of a span), or every one tagged TAG",
	 "  --owner TAG  free every allocation with that tag on every node; prints the count\n",
	 "virgo free 1000000000000001\nvirgo free --owner backup-job\n", 0},
	{"renew", cmd_renew, "renew <vuid> <T>", "restart an allocation's lease: T from now",
	 "  <T>  90 (seconds), 30s, 15m, 1h, 2d; 0 removes the lease\n",
	 "virgo renew 1000000000000001 1h\n", 0},
	{"ls", cmd_ls, "ls [nodeN]",
	 "list allocations: VUID, size, stored bytes, age, idle time, lease, owner",
	 "  Every node, or one; the node sends pages, never its whole table at once.\n",
	 "virgo ls\nvirgo ls node2\n", 0},
	{"clone", cmd_clone,
	 "clone [--bg] [--on nodeN] [--policy P] [--timeout MS] <function> [<arg>|-]",
	 "run a function (built-in or plugin) on the best node; prints its result",
	 CPU_OPTS "  --bg             in the background: print a job id at once (virgo jobs, wait)\n"
	 "  -                read the argument from stdin\n",
	 "virgo clone virgo_cloud_test \"some text\"\nvirgo clone wordcount - < file.txt\n"
	 "virgo clone --on node2 --timeout 2000 virgo_cloud_test hi\n",
	 0},
	{"run", cmd_run, "run [--bg] [--on nodeN] [--policy P] [--timeout MS] -- <program> [args...]",
	 "run an allowed program on a node; its stdout, stderr and exit status pass through",
	 CPU_OPTS "  --bg             in the background: print a job id at once (virgo jobs, wait)\n"
	 "  Exit status: the program's; 124 killed at its deadline; 125 not run.\n",
	 "virgo run -- uname -a\nvirgo run --on node2 -- false; echo $?\n"
	 "virgo run --policy learned --timeout 2000 -- sha256sum /etc/hostname\n",
	 0},
	{"map", cmd_map,
	 "map [-j N] [-v] [--on nodeN] [--policy P] [--timeout MS] -- <command> [args with {}] "
	 "[::: <input>...]",
	 "run a command once per input, N at a time; outputs in input order",
	 "  -j, --jobs N     runs at once (1..1024, default 4)\n"
	 "  -v, --verbose    on stderr, one line per job: input, node, exit status\n" CPU_OPTS
	 "  {} in the command is replaced by the input, else the input is appended.\n"
	 "  Without :::, the inputs are read from stdin, one per line (empty lines skipped).\n"
	 "  On a terminal (stderr a tty) a line shows done/total, failures and an ETA.\n"
	 "  Exit status: 0 all succeeded; 1 a program failed; 125 a job was not run.\n",
	 "virgo map -j 8 -- gzip -9 -c {} ::: /var/log/*.log\nvirgo map -- echo v ::: a b c\n"
	 "ls *.txt | virgo map -v -- wc -l\n", 0},
	{"jobs", cmd_jobs, "jobs", "list this user's background jobs (clone/run --bg)",
	 "  JOB STATE NODE PID AGE COMMAND; STATE: running, done, exit N (the program\n"
	 "  failed), deadline (killed at it), failed (not run), lost (its holder process\n"
	 "  died: the node cancelled the job).  A finished job stays until virgo wait or\n"
	 "  virgo cancel collects it.  Jobs live in $XDG_RUNTIME_DIR/virgo-jobs (else\n"
	 "  /tmp/virgo-jobs-<uid>), each held by a detached virgo process; a program's\n"
	 "  own virgo_clone_submit jobs stay in that program.\n",
	 "virgo run --bg -- sleep 60\nvirgo jobs\n", 0},
	{"wait", cmd_wait, "wait <job>",
	 "wait for a background job; print its output and exit as clone/run would have",
	 "  <job>  the id clone/run --bg printed (3 or %3)\n"
	 "  Exit status: run: the program's, 124 killed at its deadline, 125 not run (or\n"
	 "  its holder died); clone: 0, or 1 with the node's error.  The job is then gone.\n"
	 "  To give up after a while: timeout 10 virgo wait 3 (the job keeps running).\n",
	 "virgo wait 3\nvirgo wait \"$(virgo run --bg -- sha256sum /etc/hostname)\"\n"
	 "timeout 10 virgo wait 3\n", 0},
	{"cancel", cmd_cancel, "cancel <job>",
	 "stop a background job (the node kills or drops it), or discard a finished one",
	 "  Stops the job's holder process; its connection closes and the node cancels\n"
	 "  the job: a program and its children are killed, a queued job is dropped, a\n"
	 "  plugin function's cancel flag is set.\n",
	 "virgo cancel 3\n", 0},
	{"ping", cmd_ping, "ping", "ping every node's mempool; exit 1 if any is down",
	 "  All nodes at once (a hung node costs one timeout); a node answering with\n"
	 "  another id than virgo_client.conf gives it is named and counts as down.\n",
	 "virgo ping\n", 0},
	{"status", cmd_status, "status [--json]",
	 "table of the configured nodes: address, load, jobs, pool memory; exit 1 if any is down",
	 "  --json           one JSON object: {\"nodes\": [...], \"down\": N}, numbers as\n"
	 "                   numbers, \"state\": \"up\" or \"down\", pool fields as the node\n"
	 "                   reports them (virgo stats)\n"
	 "  ADDRESS is the node's mempool host:port; bytes in K, M, G (powers of 1024).\n"
	 "  PINNED/LIMIT: bytes the allocations hold (with overhead) / the node's mem_limit;\n"
	 "  CACHE: bytes the memcache items hold; ITEMS, HIT% (get hits / gets since the\n"
	 "  node started), EVICT: the memcache port's own stats (\"memcache\" in --json);\n"
	 "  LIVE/RES: all the node accounts / its resident set.\n"
	 "  Every node and service is asked at once: hung nodes cost one timeout in all.\n",
	 "virgo status\nvirgo status || echo 'a node is down'\n"
	 "virgo status --json | python3 -m json.tool\n", 0},
	{"stats", cmd_stats, "stats [<node id>]", "mempool statistics of one node or every node",
	 NULL, "virgo stats\nvirgo stats 2\n", 0},
	{"owner", cmd_owner, "owner <key>...",
	 "the node owning each memcached key (ketama, as memcached clients shard)",
	 "  One line per key: <key> node <id> <host>:<memcache port>.\n",
	 "virgo owner k\nvirgo owner user:1 user:2\n", 0},
	{"eventnet", cmd_eventnet,
	 "eventnet log|get|why|before|dot|svg|json|shiviz|tail ...",
	 "log events and query the cluster's causal event graph (logical clocks)",
	 "  log --id ID [--partakers CSV] [--conv TEXT] [--after EV[,EV...]]\n"
	 "                   record an event (logged after its causes, on any node)\n"
	 "  get <event>      the event: Lamport time, node, vector clock, causes\n"
	 "  why <event>      its causal history across the nodes, in causal order\n"
	 "  before <a> <b>   happened before, after, or concurrent (vector clocks)\n"
	 "  dot|json|shiviz [<event>]  the whole graph (or one history) as graphviz DOT,\n"
	 "                   JSON, or a ShiViz log (https://bestchai.bitbucket.io/shiviz/)\n"
	 "  svg [<event>]    the DOT drawn by graphviz's dot -Tsvg (apt-get install graphviz)\n"
	 "  tail [-n N] [-f] the last N events (default 10); -f: then follow every node\n"
	 "  Lines: <Lamport time> node<N> <event> [<vector clock>] partakers= after= <conv>\n",
	 "virgo eventnet log --id login --partakers alice,web1 --conv '(GET,/login)'\n"
	 "virgo eventnet log --id session --after login\n"
	 "virgo eventnet why session\nvirgo eventnet before login session\n"
	 "virgo eventnet svg > g.svg\nvirgo eventnet tail -f\n",
	 0},
	{"help", cmd_help, "help [<command>]", "list the commands, or show one command's help",
	 NULL, "virgo help\nvirgo help malloc\nvirgo malloc --help\n", 1},
};
#define NCMDS (sizeof cmds / sizeof cmds[0])

const struct cli_cmd *cli_cmd_find(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++)
		if (strcmp(name, cmds[i].name) == 0)
			return &cmds[i];
	return NULL;
}

void cli_cmd_help(const struct cli_cmd *c, FILE *f)
{
	fprintf(f, "usage: virgo [-c FILE] %s\n%s.\n", c->usage, c->summary);
	if (c->details)
		fprintf(f, "\n%s", c->details);
	fprintf(f, "\nExamples:\n");
	for (const char *l = c->examples; *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		fprintf(f, "  $ %.*s\n", (int)n, l);
		l += n + (nl != NULL);
	}
}

/* The command list: one line per command, two spaces then its name. */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: virgo [-c FILE] <command> [args]\n"
		"VIRGO cluster client (libvirgo %s).\n\n"
		"Commands:\n",
		VIRGO_VERSION);
	for (size_t i = 0; i < NCMDS; i++)
		fprintf(f, "  %-8s %s\n", cmds[i].name, cmds[i].summary);
	fprintf(f,
		"\nOptions:\n"
		"  -c, --config FILE  client config (default: $VIRGO_CLIENT_CONF,\n"
		"                     $VIRGO_CONF_DIR/virgo_client.conf, /etc/virgo/virgo_client.conf,\n"
		"                     else nodes 1..3 on 127.0.0.1 at port offsets 0..2)\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n\n"
		"'virgo help <command>' or 'virgo <command> --help' shows a command's usage and "
		"examples.\n"
		"Exit status: 0 success, 1 a call failed, 2 bad arguments or configuration.\n");
}

int cmd_help(int argc, char **argv)
{
	if (argc == 1) {
		usage(stdout);
		return 0;
	}
	if (argc > 2)
		return cli_usage("help", "one command at most");
	const struct cli_cmd *c = cli_cmd_find(argv[1]);
	if (!c) {
		fprintf(stderr, "virgo help: unknown command '%s' (see virgo help)\n", argv[1]);
		return 2;
	}
	cli_cmd_help(c, stdout);
	return 0;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "virgo %s: ", cmd);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	const struct cli_cmd *c = cli_cmd_find(cmd);
	fprintf(stderr, "\nusage: virgo %s\n(see 'virgo help %s')\n", c ? c->usage : cmd, cmd);
	return 2;
}

/* --help or -h among a command's own arguments (before any "--", after
 * which the words belong to a program). */
static int wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return 0;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return 1;
	}
	return 0;
}

/* An explicit -c FILE must be a readable, non-empty regular file: never a
 * silent fall-back to the built-in cluster.  0, or 2 after saying why. */
static int check_conf(const char *path)
{
	struct stat st;
	const char *why = NULL;
	if (stat(path, &st) != 0)
		why = strerror(errno);
	else if (S_ISDIR(st.st_mode))
		why = "is a directory, not a virgo_client.conf";
	else if (!S_ISREG(st.st_mode))
		why = "is not a regular file";
	else if (st.st_size == 0)
		why = "is empty (a client config lists the nodes: node = <id> <host> [<offset>])";
	else if (access(path, R_OK) != 0)
		why = strerror(errno);
	if (!why)
		return 0;
	fprintf(stderr, "virgo: -c %s: %s\n", path, why);
	return 2;
}

/* Nodes that hung (timed out) in the last minute, as earlier virgo
 * commands of this user saw them, start in back-off: placement skips them,
 * so a hung node costs one timeout a minute, not one per command.  Kept
 * in $XDG_RUNTIME_DIR/virgo-health (a private directory); without it, no
 * cache. */
static void cli_health_cache(void)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (!x || x[0] != '/')
		return;
	char path[512];
	snprintf(path, sizeof path, "%s/virgo-health", x);
	virgo_health_cache(path, 60000);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
					     {"conf", required_argument, NULL, 'c'},
					     {"help", no_argument, NULL, 'h'},
					     {"version", no_argument, NULL, 'V'},
					     {NULL, 0, NULL, 0}};
	const char *conf = NULL;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': conf = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("virgo %s\n", VIRGO_VERSION); return 0;
		default:
			if (optopt == 'c')
				fprintf(stderr, "virgo: -c needs a file\n");
			else
				fprintf(stderr, "virgo: unknown option '%s'\n", argv[optind - 1]);
			fprintf(stderr, "usage: virgo [-c FILE] <command> [args] (see virgo help)\n");
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	const char *name = argv[optind];
	const struct cli_cmd *cmd = cli_cmd_find(name);
	if (!cmd) {
		fprintf(stderr, "virgo: unknown command '%s' (see virgo help)\n", name);
		return 2;
	}
	int cargc = argc - optind;
	char **cargv = argv + optind;
	if (wants_help(cargc, cargv)) {
		cli_cmd_help(cmd, stdout);
		return 0;
	}
	if (cmd->no_client)
		return cmd->fn(cargc, cargv);
	if (conf && check_conf(conf))
		return 2;
	int rc = virgo_init(conf);
	if (rc) {
		if (rc != -VIRGO_ECONF) /* libvirgo has said which line of which file */
			cli_fail("config", rc);
		return 2;
	}
	cli_health_cache();
	rc = cmd->fn(cargc, cargv);
	virgo_fini();
	return rc;
}
