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
	{"malloc", cmd_malloc, "malloc <size> [--ttl T] [--owner TAG] [--shared]",
	 "allocate pooled memory; prints the new VUID (large sizes span nodes)",
	 "  <size>       bytes, or with a unit: K, M, G (powers of 1024; 64M, 1G, 512KB)\n"
	 "  --ttl T      a lease: the node frees it after T (90 = seconds, 30s, 15m, 1h, 2d)\n"
	 "               unless renewed (virgo renew)\n"
	 "  --owner TAG  a tag to find it again (virgo ls, virgo free --owner); default\n"
	 "               $VIRGO_OWNER, else <host>:<pid of the shell or script running virgo>,\n"
	 "               so a script can end with: virgo free --owner \"$(hostname):$$\";\n"
	 "               --owner '' for no tag\n"
	 "  --shared     every identity may use it (on nodes with client certificates or\n"
	 "               a token, an allocation is otherwise its creator's alone)\n",
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
	{"ls", cmd_ls, "ls [nodeN] | ls [-l] nodeN:/path...",
	 "list allocations (VUID, size, stored bytes, age, idle, lease, owner), or files",
	 "  Every node, or one; the node sends pages, never its whole table at once.\n"
	 "  With nodeN:/path: that directory's files (cloudfs); -l: mode, size, mtime.\n",
	 "virgo ls\nvirgo ls node2\nvirgo ls -l node2:/data\n", 0},
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
	{"certs", cmd_certs,
	 "certs init [DIR] [--nodes ADDR,...] | add-client NAME | add-node NAME ADDR,... | revoke NAME"
	 " | add-token NAME | revoke-token NAME",
	 "make a cluster CA and TLS certificates for the nodes and clients, or named tokens",
	 "  init [DIR]      a CA (DIR/ca.pem, ca.key), nodeN.pem/.key for each address of\n"
	 "                  --nodes (default 127.0.0.1; with 127.0.0.1 and localhost in\n"
	 "                  subjectAltName too), client.pem/.key; DIR defaults to virgo-certs;\n"
	 "                  an existing CA is kept unless --force\n"
	 "  add-client NAME a client certificate whose CN (the client's identity) is NAME\n"
	 "  add-node NAME ADDR,...  a node certificate for those addresses\n"
	 "  revoke NAME     add NAME's certificate to DIR/crl.pem (the nodes' tls_crl)\n"
	 "  add-token NAME  append NAME and a new random token (32 bytes, hex) to the named\n"
	 "                  tokens file (the nodes' auth_tokens_file; mode 0600), print the\n"
	 "                  auth_token line for NAME's virgo_client.conf; NAME is then the\n"
	 "                  client's identity, as a certificate's CN\n"
	 "  revoke-token NAME  remove NAME's token from the file; after SIGHUP the nodes\n"
	 "                  refuse NAME and close its open connections\n"
	 "  --dir DIR       the CA's directory for add-*/revoke* (default virgo-certs)\n"
	 "  --file PATH     the tokens file (default DIR/tokens)\n"
	 "  --days N        validity (default 825)\n",
	 "virgo certs init /etc/virgo/certs --nodes 10.0.0.1,10.0.0.2,10.0.0.3\n"
	 "virgo certs add-client alice --dir /etc/virgo/certs\n"
	 "virgo certs revoke alice --dir /etc/virgo/certs\n"
	 "virgo certs add-token ci-runner --file /etc/virgo/tokens\n"
	 "virgo certs revoke-token ci-runner --file /etc/virgo/tokens\n",
	 1},
	{"queue", cmd_queue,
	 "queue push|sub|work|read|ls|stat [--on nodeN] ...",
	 "the durable queue: push requests, follow or replay a topic, run KingCobra workers",
	 "  push <topic> <data>|-     append (- reads stdin); prints <topic> <offset> once durable\n"
	 "  sub [--from N] [--count N] [--format F] <topic>\n"
	 "                            print records as they arrive (from now, or offset N) until ^C\n"
	 "  read [--from N] [--count N] [--format F] <topic>\n"
	 "                            replay what is stored (from offset 0 by default)\n"
	 "  work --group G [--inflight N] [--reply TOPIC] [--count N] <topic> -- <program> [args]\n"
	 "                            consumer-group member: runs the program per record with\n"
	 "                            the payload on stdin (VIRGO_QUEUE_TOPIC/OFFSET/STAMP set),\n"
	 "                            acks it on exit 0 (else it is delivered again); --reply\n"
	 "                            publishes REPLY#<ip>#<time>#<program's stdout> there first\n"
	 "  ls [nodeN]                every node's topics: first/next offset, records, bytes\n"
	 "  stat <topic>              a topic's counters and its groups' committed offsets\n"
	 "  --on nodeN                the topic's node (default: the owner, as virgo owner <topic>)\n"
	 "  --format F                line (offset, stamp, payload; default), raw (payload bytes),\n"
	 "                            kingcobra (REQUEST#<ip>#<sec>:<nsec>#<payload> $$)\n",
	 "virgo queue push orders '{\"id\":1}'\nvirgo queue sub orders\n"
	 "virgo queue work orders --group billing -- ./handle.sh\n"
	 "virgo queue read orders --from 0 --format kingcobra\nvirgo queue ls\n"
	 "virgo queue stat orders\n",
	 0},
	{"lock", cmd_lock, "lock [--wait T] [--ttl T] <name> -- <command> [args...] | lock ls [<name>]",
	 "run a command while holding a cluster lock (like flock(1)), or list locks",
	 "  --wait T   give up after T (90 = seconds, 30s, 500ms); 0: only if free now;\n"
	 "             default: wait for ever, served first come, first served\n"
	 "  --ttl T    the lease (default 30s), renewed every T/3 while the command runs;\n"
	 "             if a renewal fails the command gets SIGTERM, then SIGKILL after 5 s\n"
	 "  The command sees VIRGO_LOCK_TOKEN (the fencing token: pass it with its writes,\n"
	 "  e.g. mempool's set ... fence=<name>:<token>) and VIRGO_LOCK_NAME.\n"
	 "  Exit status: the command's; 1 when the lock was not taken.\n"
	 "  lock ls [<name>]: every node's locks (holder, token, lease left, waiters).\n",
	 "virgo lock backup -- ./backup.sh\n"
	 "virgo lock --wait 10s --ttl 30s deploy -- make deploy\n"
	 "virgo lock ls\n",
	 0},
	{"cp", cmd_cp, "cp [--resume] [--fsync] <src> <dst>",
	 "copy a file to, from or between nodes (nodeN:/path); constant memory",
	 "  Either side is a local path, - (stdin/stdout) or nodeN:/path (N:/path).\n"
	 "  A destination directory (or one ending in /) keeps the source's name.\n"
	 "  --resume   continue from the destination's size (a copy that stopped)\n"
	 "  --fsync    make the copy durable (fsync) before exiting\n"
	 "  On a terminal, progress goes to stderr.\n",
	 "virgo cp ./big.iso node2:/data/big.iso\nvirgo cp node2:/data/big.iso /tmp/\n"
	 "virgo cp --resume ./big.iso node2:/data/big.iso\n", 0},
	{"cat", cmd_cat, "cat nodeN:/path...", "print remote files to stdout", NULL,
	 "virgo cat node3:/logs/app.log\n", 0},
	{"rm", cmd_rm, "rm [-d] nodeN:/path...", "remove remote files (-d: empty directories too)",
	 NULL, "virgo rm node2:/data/big.iso\n", 0},
	{"mkdir", cmd_mkdir, "mkdir [-p] nodeN:/path...",
	 "make remote directories (-p: with parents, no error if present)", NULL,
	 "virgo mkdir -p node2:/data/in/2024\n", 0},
	{"mv", cmd_mv, "mv nodeN:/from nodeN:/to", "rename a remote file (within one node)", NULL,
	 "virgo mv node2:/data/a node2:/data/b\n", 0},
	{"stat", cmd_stat, "stat nodeN:/path...", "show a remote file's type, mode, size and times",
	 NULL, "virgo stat node2:/data/big.iso\n", 0},
	{"analytics", cmd_analytics,
	 "analytics set <nodeN|--all> <name>=<value>... | get <nodeN> <name> | ls [nodeN|--all] | "
	 "watch [nodeN|--all] [--from REV] | history <nodeN> <name>",
	 "kernel analytics variables: live knobs and what nodes learn",
	 "  set      change variables; a live knob (cpu_workers, cpu_queue, job_timeout_ms,\n"
	 "           mem_limit, max_connections, log_level, weight, MaxNetworkBandwidth)\n"
	 "           takes effect at once; a bad value is refused and the old one stays\n"
	 "  get      one variable's value\n"
	 "  ls       every variable: node, name, revision, value ((learnt): read-only)\n"
	 "  watch    every change as it happens, with its revision; --from REV resumes\n"
	 "           after revision REV (one node); reconnects without missing a change\n"
	 "  history  the last 500 values of a variable, oldest first\n",
	 "virgo analytics set node2 cpu_workers=1\nvirgo analytics set --all weight=0\n"
	 "virgo analytics get node2 cpu_workers\nvirgo analytics ls node2\n"
	 "virgo analytics watch --all\nvirgo analytics history node2 MaxNetworkBandwidth\n",
	 0},
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
