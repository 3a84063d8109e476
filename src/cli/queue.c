/*
 * queue.c - virgo queue push|sub|work|read|ls|stat: the durable queue from
 * the shell.  push returns once the node has the record on disk; sub
 * follows a topic until Ctrl-C; work runs a program per record as a
 * consumer-group member (KingCobra's workers) and acknowledges those it
 * ran successfully, optionally publishing the program's output to a reply
 * topic; read replays, also in the original KingCobra text form.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t q_stop;

static void on_sigint(int sig)
{
	(void)sig;
	q_stop = 1;
}

/* --on N|nodeN -> the node's index; -1 after saying why. */
static int node_index(const char *s)
{
	const char *d = strncmp(s, "node", 4) == 0 ? s + 4 : s;
	char *end;
	unsigned long id = strtoul(d, &end, 10);
	if (*d == '\0' || *end || id == 0 || id > 65535) {
		fprintf(stderr, "virgo: --on wants a node (2 or node2), not '%s'\n", s);
		return -1;
	}
	int n = virgo_node_count();
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		if (virgo_node_info(i, &ni) == 0 && ni.id == id)
			return i;
	}
	fprintf(stderr, "virgo: no node %lu in the client config\n", id);
	return -1;
}

/* The topic's node: --on, else the owner. */
static int topic_node(int on, const char *topic)
{
	if (on >= 0)
		return on;
	int idx = virgo_key_owner(topic, strlen(topic));
	if (idx < 0)
		cli_fail("queue", idx);
	return idx;
}

enum fmt { F_LINE, F_RAW, F_KINGCOBRA };

static int parse_fmt(const char *s, enum fmt *f)
{
	if (strcmp(s, "line") == 0)
		*f = F_LINE;
	else if (strcmp(s, "raw") == 0)
		*f = F_RAW;
	else if (strcmp(s, "kingcobra") == 0)
		*f = F_KINGCOBRA;
	else
		return -1;
	return 0;
}

/* "<word>#<client ip>#<sec>:<nsec>#", the original KingCobra's header
 * (COMPAT.md), from a record's stamp "<ip>:<sec>.<nsec>". */
static int kc_head(const struct virgo_queue_msg *m, const char *word, char *buf, size_t cap)
{
	const char *colon = strrchr(m->stamp, ':');
	char ts[64];
	snprintf(ts, sizeof ts, "%s", colon ? colon + 1 : "0.0");
	char *dot = strchr(ts, '.');
	if (dot)
		*dot = ':';
	return snprintf(buf, cap, "%s#%.*s#%s#", word, colon ? (int)(colon - m->stamp) : 1,
			colon ? m->stamp : "-", ts);
}

static void print_msg(const struct virgo_queue_msg *m, enum fmt f)
{
	if (f == F_KINGCOBRA) {
		char head[192];
		kc_head(m, "REQUEST", head, sizeof head);
		fputs(head, stdout);
		fwrite(m->data, 1, m->len, stdout);
		fputs(" $$\n", stdout);
	} else if (f == F_RAW) {
		fwrite(m->data, 1, m->len, stdout);
	} else {
		printf("%" PRIu64 "\t%s\t", m->offset, m->stamp);
		fwrite(m->data, 1, m->len, stdout);
		putchar('\n');
	}
}

static const struct option common_opts[] = {
	{"on", required_argument, NULL, 'o'},	  {"from", required_argument, NULL, 'f'},
	{"count", required_argument, NULL, 'n'},  {"format", required_argument, NULL, 'F'},
	{"group", required_argument, NULL, 'g'},  {"inflight", required_argument, NULL, 'i'},
	{"reply", required_argument, NULL, 'r'},  {NULL, 0, NULL, 0}};

struct qopts {
	int on;
	int has_from;
	uint64_t from;
	unsigned long count;
	enum fmt fmt;
	const char *group, *reply;
	unsigned long inflight;
};

/* Parses options up to the first operand (or "--"); returns optind or -1. */
static int parse_opts(const char *cmd, int argc, char **argv, struct qopts *o)
{
	memset(o, 0, sizeof *o);
	o->on = -1;
	o->count = 0;
	o->inflight = 1;
	optind = 0; /* glibc: re-initialise (main's getopt ran) */
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", common_opts, NULL)) != -1) {
		unsigned long v;
		switch (c) {
		case 'o':
			if ((o->on = node_index(optarg)) < 0)
				return -1;
			break;
		case 'f':
			if (cli_parse_uint("--from", optarg, 0, ULONG_MAX, &v))
				return -1;
			o->from = v;
			o->has_from = 1;
			break;
		case 'n':
			if (cli_parse_uint("--count", optarg, 1, ULONG_MAX, &o->count))
				return -1;
			break;
		case 'F':
			if (parse_fmt(optarg, &o->fmt)) {
				fprintf(stderr, "virgo: --format is line, raw or kingcobra\n");
				return -1;
			}
			break;
		case 'g': o->group = optarg; break;
		case 'r': o->reply = optarg; break;
		case 'i':
			if (cli_parse_uint("--inflight", optarg, 1, 1024, &o->inflight))
				return -1;
			break;
		default:
			cli_usage(cmd, "unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	return optind;
}

static int q_push(int argc, char **argv)
{
	struct qopts o;
	int i = parse_opts("queue", argc, argv, &o);
	if (i < 0)
		return 2;
	if (argc - i != 2)
		return cli_usage("queue", "push wants <topic> <data>|-");
	const char *topic = argv[i];
	uint8_t *data = NULL;
	size_t len;
	if (strcmp(argv[i + 1], "-") == 0) {
		if (!(data = cli_read_stdin(&len)))
			return 1;
	} else {
		len = strlen(argv[i + 1]);
	}
	int idx = topic_node(o.on, topic);
	if (idx < 0) {
		free(data);
		return 1;
	}
	uint64_t off;
	int rc = virgo_queue_push_ex(idx, topic, data ? data : (uint8_t *)argv[i + 1], len, &off,
				     NULL);
	free(data);
	if (rc)
		return cli_fail("queue push", rc);
	printf("%s %" PRIu64 "\n", topic, off);
	return 0;
}

static int q_read(int argc, char **argv)
{
	struct qopts o;
	int i = parse_opts("queue", argc, argv, &o);
	if (i < 0)
		return 2;
	if (argc - i != 1)
		return cli_usage("queue", "read wants <topic>");
	const char *topic = argv[i];
	int idx = topic_node(o.on, topic);
	if (idx < 0)
		return 1;
	uint64_t from = o.from, left = o.count ? o.count : UINT64_MAX;
	while (left > 0) {
		struct virgo_queue_msg *m;
		size_t n;
		uint64_t next;
		int rc = virgo_queue_read_ex(idx, topic, from, left < 1000 ? (size_t)left : 1000, &m, &n,
					     &next);
		if (rc)
			return cli_fail("queue read", rc);
		for (size_t k = 0; k < n; k++)
			print_msg(&m[k], o.fmt);
		virgo_queue_msgs_free(m, n);
		left -= n < left ? n : left;
		if (n == 0 || next == from)
			break;
		from = next;
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* One record of a subscription or a group: true when it counts towards
 * --count.  m is freed after. */
typedef bool (*follow_fn)(struct virgo_queue_sub *s, const struct virgo_queue_msg *m, void *arg);

/* Takes records from s until Ctrl-C or `count` of them (0: no end),
 * calling fn on each; closes s.  0, or cli_fail's status. */
static int follow(struct virgo_queue_sub *s, unsigned long count, const char *what,
		  follow_fn fn, void *arg)
{
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	unsigned long n = 0;
	int rc = 0;
	while (!q_stop && (!count || n < count)) {
		struct virgo_queue_msg m;
		rc = virgo_queue_next(s, 200, &m);
		if (rc == -ETIMEDOUT) {
			rc = 0;
			continue;
		}
		if (rc)
			break;
		if (fn(s, &m, arg))
			n++;
		virgo_queue_msg_free(&m);
	}
	virgo_queue_close(s);
	return rc ? cli_fail(what, rc) : 0;
}

static bool sub_one(struct virgo_queue_sub *s, const struct virgo_queue_msg *m, void *arg)
{
	(void)s;
	const struct qopts *o = arg;
	print_msg(m, o->fmt);
	fflush(stdout);
	return true;
}

static int q_sub(int argc, char **argv)
{
	struct qopts o;
	int i = parse_opts("queue", argc, argv, &o);
	if (i < 0)
		return 2;
	if (argc - i != 1)
		return cli_usage("queue", "sub wants <topic>");
	const char *topic = argv[i];
	int idx = topic_node(o.on, topic);
	if (idx < 0)
		return 1;
	struct virgo_queue_sub *s;
	int rc = virgo_queue_sub_ex(idx, topic, o.has_from ? o.from : VIRGO_QUEUE_END, &s);
	if (rc)
		return cli_fail("queue sub", rc);
	return follow(s, o.count, "queue sub", sub_one, &o);
}

/* Runs argv with the payload on stdin; its stdout into *out (malloc'd).
 * Returns the exit status (128+signal), or -1. */
static int run_handler(char **argv, const struct virgo_queue_msg *m, char **out, size_t *out_len)
{
	int in[2], op[2];
	if (pipe(in) || pipe(op))
		return -1;
	char off[32];
	snprintf(off, sizeof off, "%" PRIu64, m->offset);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(op[1], 1);
		close(in[0]);
		close(in[1]);
		close(op[0]);
		close(op[1]);
		setenv("VIRGO_QUEUE_TOPIC", m->topic, 1);
		setenv("VIRGO_QUEUE_OFFSET", off, 1);
		setenv("VIRGO_QUEUE_STAMP", m->stamp, 1);
		execvp(argv[0], argv);
		fprintf(stderr, "virgo: %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(op[1]);
	/* the payload, then EOF (a handler that does not read it gets
	 * SIGPIPE'd writes ignored: EPIPE) */
	signal(SIGPIPE, SIG_IGN);
	size_t done = 0;
	while (done < m->len) {
		ssize_t w = write(in[1], (const char *)m->data + done, m->len - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	close(in[1]);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (buf && len == cap) {
			char *nb = cap < (1u << 20) ? realloc(buf, cap * 2) : NULL;
			if (nb) {
				buf = nb;
				cap *= 2;
			}
		}
		char sink[4096];
		char *dst = buf && len < cap ? buf + len : sink;
		size_t room = buf && len < cap ? cap - len : sizeof sink;
		ssize_t r = read(op[0], dst, room);
		if (r <= 0)
			break;
		if (dst != sink)
			len += (size_t)r;
	}
	close(op[0]);
	int st;
	if (waitpid(pid, &st, 0) != pid) {
		free(buf);
		return -1;
	}
	*out = buf;
	*out_len = buf ? len : 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Can execvp run prog (a path, or a name found on PATH)?  0, or the
 * errno execvp would fail with.  work checks before it joins: a program
 * that cannot run would otherwise fail on every record, none acked. */
static int runnable(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? 0 : errno;
	const char *path = getenv("PATH");
	if (!path || !*path)
		path = "/bin:/usr/bin";
	int err = ENOENT;
	while (*path) {
		size_t n = strcspn(path, ":");
		char full[PATH_MAX];
		if (snprintf(full, sizeof full, "%.*s/%s", (int)n, n ? path : ".", prog) <
		    (int)sizeof full) {
			if (access(full, X_OK) == 0)
				return 0;
			if (errno == EACCES)
				err = EACCES;
		}
		path += n + (path[n] == ':');
	}
	return err;
}

struct work_ctx {
	char **prog;
	const char *topic, *reply;
	int idx;
};

/* Runs the program on one record; acks it on exit 0, after publishing
 * the reply (an ack without it would lose it).  A reply that could not
 * be published leaves the record unacked (it runs again) and uncounted. */
static bool work_one(struct virgo_queue_sub *s, const struct virgo_queue_msg *m, void *arg)
{
	const struct work_ctx *w = arg;
	char *out = NULL;
	size_t out_len = 0;
	int st = run_handler(w->prog, m, &out, &out_len);
	fprintf(stderr, "virgo: %s %" PRIu64 ": exit %d%s\n", w->topic, m->offset, st,
		st == 0 ? "" : " (not acknowledged: delivered again)");
	if (st == 0 && w->reply) {
		char head[192];
		int hl = kc_head(m, "REPLY", head, sizeof head);
		char *rep = malloc((size_t)hl + out_len + 1);
		int prc = -ENOMEM;
		if (rep) {
			memcpy(rep, head, (size_t)hl);
			if (out_len)
				memcpy(rep + hl, out, out_len);
			prc = virgo_queue_push_ex(w->idx, w->reply, rep, (size_t)hl + out_len, NULL,
						  NULL);
		}
		free(rep);
		if (prc) {
			cli_fail("queue work: reply", prc);
			free(out);
			return false;
		}
	}
	if (st == 0)
		virgo_queue_ack(s, m->offset);
	free(out);
	return true;
}

static int q_work(int argc, char **argv)
{
	/* options and the topic before "--", the program after */
	int dd = 1;
	while (dd < argc && strcmp(argv[dd], "--") != 0)
		dd++;
	if (dd + 1 >= argc)
		return cli_usage("queue", "work wants <topic> -- <program> [args...]");
	struct qopts o;
	int i = parse_opts("queue", dd, argv, &o);
	if (i < 0)
		return 2;
	if (!o.group)
		return cli_usage("queue", "work wants --group <name>");
	if (dd - i != 1)
		return cli_usage("queue", "work wants one <topic> before --");
	const char *topic = argv[i];
	char **prog = argv + dd + 1;
	int perr = runnable(prog[0]);
	if (perr) {
		fprintf(stderr, "virgo: queue work: %s: %s\n", prog[0], strerror(perr));
		return perr == ENOENT ? 127 : 126;
	}
	int idx = topic_node(o.on, topic);
	if (idx < 0)
		return 1;
	struct virgo_queue_sub *s;
	int rc = virgo_queue_join_ex(idx, topic, o.group, (int)o.inflight, &s);
	if (rc)
		return cli_fail("queue work", rc);
	struct work_ctx w = {prog, topic, o.reply, idx};
	return follow(s, o.count, "queue work", work_one, &w);
}

static int q_stat(int argc, char **argv, int ls)
{
	struct qopts o;
	int i = parse_opts("queue", argc, argv, &o);
	if (i < 0)
		return 2;
	if (ls ? argc - i > 1 : argc - i != 1)
		return cli_usage("queue", ls ? "ls wants at most one node" : "stat wants <topic>");
	if (!ls) {
		int idx = topic_node(o.on, argv[i]);
		if (idx < 0)
			return 1;
		char *text;
		int rc = virgo_queue_stat_ex(idx, argv[i], &text);
		if (rc)
			return cli_fail("queue stat", rc);
		fputs(text, stdout);
		free(text);
		return 0;
	}
	int want = argc - i == 1 ? node_index(argv[i]) : -1;
	if (argc - i == 1 && want < 0)
		return 2;
	int n = virgo_node_count();
	if (n < 0)
		return cli_fail("config", n);
	int bad = 0;
	printf("%-7s %-24s %12s %12s %12s %12s %8s\n", "NODE", "TOPIC", "FIRST", "NEXT", "RECORDS",
	       "BYTES", "SEGMENTS");
	for (int k = 0; k < n; k++) {
		struct virgo_node_info ni;
		if (virgo_node_info(k, &ni) || (want >= 0 && k != want))
			continue;
		char *text;
		int rc = virgo_queue_stat_ex(k, NULL, &text);
		if (rc) {
			fprintf(stderr, "virgo: queue ls node%u: %s\n", ni.id, virgo_strerror(rc));
			bad++;
			continue;
		}
		char *save = NULL;
		for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char name[80];
			unsigned long long f, nx, r, b, sg;
			if (sscanf(l, "topic %79s %llu %llu %llu %llu %llu", name, &f, &nx, &r, &b, &sg) ==
			    6)
				printf("node%-3u %-24s %12llu %12llu %12llu %12llu %8llu\n", ni.id, name, f,
				       nx, r, b, sg);
		}
		free(text);
	}
	return bad ? 1 : 0;
}

int cmd_queue(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("queue", "wants a verb: push, sub, work, read, ls or stat");
	const char *verb = argv[1];
	argc--;
	argv++;
	if (strcmp(verb, "push") == 0)
		return q_push(argc, argv);
	if (strcmp(verb, "sub") == 0)
		return q_sub(argc, argv);
	if (strcmp(verb, "work") == 0)
		return q_work(argc, argv);
	if (strcmp(verb, "read") == 0)
		return q_read(argc, argv);
	if (strcmp(verb, "ls") == 0)
		return q_stat(argc, argv, 1);
	if (strcmp(verb, "stat") == 0)
		return q_stat(argc, argv, 0);
	return cli_usage("queue", "unknown verb '%s' (push, sub, work, read, ls, stat)", verb);
}
