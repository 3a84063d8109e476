/*
 * eventnet.c - virgo eventnet: log events, ask the cluster's causal graph
 * (get, why, before, tail) and draw it (dot, svg via Debian's graphviz,
 * json, shiviz).  Every query merges what all the nodes recorded.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static int ev_fail(const char *what, const char *id, int rc)
{
	if (rc == -ENOENT && !*virgo_last_error()) {
		fprintf(stderr, "virgo: eventnet %s: no event '%s' on any node\n", what, id);
		return 1;
	}
	return cli_fail(what, rc);
}

/* Where a history stops because its node evicted older events (trunc:
 * space-separated ids, or NULL); frees trunc. */
static void truncated_note(FILE *f, char *trunc)
{
	if (!trunc)
		return;
	fprintf(f, "# the history stops at %s: evicted from its node's memory (eventnet_max_events/"
		   "_bytes); it and its causes are in that node's EventNetVertices.txt and "
		   "EventNetEdges.txt\n", trunc);
	free(trunc);
}

static void print_event(const struct virgo_event *e, const char *mark)
{
	printf("%s%-8" PRIu64 " node%-3u %-20s [%s]", mark, e->lamport, e->node, e->id, e->clock);
	if (e->partakers[0])
		printf(" partakers=%s", e->partakers);
	if (e->causes[0])
		printf(" after=%s", e->causes);
	if (e->conv[0])
		printf(" %s", e->conv);
	printf("\n");
}

static int ev_log(int argc, char **argv)
{
	static const struct option opts[] = {{"id", required_argument, NULL, 'i'},
					     {"partakers", required_argument, NULL, 'p'},
					     {"conv", required_argument, NULL, 'c'},
					     {"after", required_argument, NULL, 'a'},
					     {NULL, 0, NULL, 0}};
	const char *id = NULL, *part = NULL, *conv = NULL, *after = NULL;
	int o;
	optind = 1;
	while ((o = getopt_long(argc, argv, "+i:p:c:a:", opts, NULL)) != -1) {
		switch (o) {
		case 'i': id = optarg; break;
		case 'p': part = optarg; break;
		case 'c': conv = optarg; break;
		case 'a': after = optarg; break;
		default: return cli_usage("eventnet", "log: unknown option");
		}
	}
	if (!id && optind < argc)
		id = argv[optind++];
	if (!id || optind != argc)
		return cli_usage("eventnet", "log needs --id ID (and nothing else)");
	int rc = virgo_eventnet_log(id, part, conv, after);
	if (rc == -EINVAL) {
		fprintf(stderr, "virgo: eventnet log: bad id, partakers, conversation or after "
				"(ids: 1-128 printable bytes without blanks # , @)\n");
		return 2;
	}
	if (rc == 0)
		rc = virgo_eventnet_flush(10000);
	if (rc)
		return ev_fail("log", id, rc);
	struct virgo_event *e;
	rc = virgo_eventnet_get(id, &e);
	if (rc)
		return ev_fail("log", id, rc);
	printf("%s: node %u, seq %" PRIu64 ", Lamport %" PRIu64 ", clock %s\n", e->id, e->node,
	       e->seq, e->lamport, e->clock);
	virgo_events_free(e, 1);
	return 0;
}

static int ev_get(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("eventnet", "get <event>");
	struct virgo_event *e;
	int rc = virgo_eventnet_get(argv[1], &e);
	if (rc)
		return ev_fail("get", argv[1], rc);
	print_event(e, "");
	virgo_events_free(e, 1);
	return 0;
}

static int ev_why(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("eventnet", "why <event>");
	struct virgo_event *evs;
	size_t n;
	char *trunc;
	int rc = virgo_eventnet_why_truncated(argv[1], &evs, &n, &trunc);
	if (rc)
		return ev_fail("why", argv[1], rc);
	printf("# %zu cause%s of %s%s, in causal order (Lamport time, node, event, clock)\n",
	       n ? n - 1 : 0, n == 2 ? "" : "s", argv[1], trunc ? " in the nodes' memory" : "");
	for (size_t i = 0; i < n; i++)
		print_event(&evs[i], strcmp(evs[i].id, argv[1]) == 0 ? "=> " : "   ");
	truncated_note(stdout, trunc);
	virgo_events_free(evs, n);
	return 0;
}

static int ev_before(int argc, char **argv)
{
	if (argc != 3)
		return cli_usage("eventnet", "before <a> <b>");
	int rc = virgo_eventnet_before(argv[1], argv[2]);
	if (rc < 0)
		return ev_fail("before", argc > 2 ? argv[1] : "", rc);
	const char *a = argv[1], *b = argv[2];
	switch (rc) {
	case VIRGO_EV_BEFORE: printf("%s happened before %s\n", a, b); break;
	case VIRGO_EV_AFTER: printf("%s happened after %s\n", a, b); break;
	case VIRGO_EV_CONCURRENT: printf("%s and %s are concurrent\n", a, b); break;
	default: printf("%s and %s are the same event\n", a, b); break;
	}
	return 0;
}

/* The events to draw: everything, or one event's history. */
static int gather(int argc, char **argv, struct virgo_event **evs, size_t *n)
{
	if (argc > 2)
		return cli_usage("eventnet", "%s [<event>]", argv[0]);
	char *trunc = NULL;
	uint64_t evicted = 0;
	int rc = argc == 2 ? virgo_eventnet_why_truncated(argv[1], evs, n, &trunc)
			   : virgo_eventnet_dump_evicted(evs, n, &evicted);
	if (rc)
		return ev_fail(argv[0], argc == 2 ? argv[1] : "", rc);
	/* on stderr: stdout is the drawing */
	truncated_note(stderr, trunc);
	if (evicted)
		fprintf(stderr,
			"# %" PRIu64 " older event%s evicted from the nodes' memory (eventnet_max_events/"
			"_bytes) are not drawn; they are in the nodes' EventNetVertices.txt and "
			"EventNetEdges.txt\n",
			evicted, evicted == 1 ? "" : "s");
	return 0;
}

/* The events the arguments select, drawn in format: *text (malloc'd, the
 * caller frees) and *len.  0, or the exit status after saying why. */
static int export_text(int argc, char **argv, int format, char **text, size_t *len)
{
	struct virgo_event *evs;
	size_t n;
	int rc = gather(argc, argv, &evs, &n);
	if (rc)
		return rc;
	rc = virgo_eventnet_export(evs, n, format, text, len);
	virgo_events_free(evs, n);
	return rc ? cli_fail("export", rc) : 0;
}

static int ev_export(int argc, char **argv, int format)
{
	char *text;
	size_t len;
	int rc = export_text(argc, argv, format, &text, &len);
	if (rc)
		return rc;
	fwrite(text, 1, len, stdout);
	free(text);
	return 0;
}

/* DOT through graphviz's `dot -Tsvg` (Debian: apt-get install graphviz). */
static int ev_svg(int argc, char **argv)
{
	char *text;
	size_t len;
	int rc = export_text(argc, argv, VIRGO_EV_DOT, &text, &len);
	if (rc)
		return rc;
	int p[2];
	if (pipe(p) != 0) {
		free(text);
		return cli_fail("pipe", -errno);
	}
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[0], 0);
		close(p[0]);
		close(p[1]);
		execlp("dot", "dot", "-Tsvg", (char *)NULL);
		fprintf(stderr, "virgo: eventnet svg needs graphviz's dot (apt-get install graphviz): "
				"%s\n", strerror(errno));
		_exit(127);
	}
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	size_t off = 0;
	while (pid > 0 && off < len) {
		ssize_t w = write(p[1], text + off, len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(p[1]);
	free(text);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0)
		return cli_fail("fork", -errno);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static int tail_print(const struct virgo_event *ev, void *arg)
{
	(void)arg;
	print_event(ev, "");
	fflush(stdout);
	return 0;
}

static int ev_tail(int argc, char **argv)
{
	bool follow = false;
	unsigned long last = 10;
	int o;
	optind = 1;
	while ((o = getopt(argc, argv, "+fn:")) != -1) {
		if (o == 'f')
			follow = true;
		else if (o != 'n' || cli_parse_uint("-n", optarg, 0, 1000000, &last) != 0)
			return cli_usage("eventnet", "tail [-f] [-n N]");
	}
	if (optind != argc)
		return cli_usage("eventnet", "tail [-f] [-n N]");
	if (last) {
		struct virgo_event *evs;
		size_t n;
		int rc = virgo_eventnet_dump(&evs, &n);
		if (rc)
			return cli_fail("tail", rc);
		for (size_t i = n > last ? n - last : 0; i < n; i++)
			print_event(&evs[i], "");
		virgo_events_free(evs, n);
		fflush(stdout);
	}
	if (!follow)
		return 0;
	int rc = virgo_eventnet_tail(tail_print, NULL);
	return rc ? cli_fail("tail", rc) : 0;
}

int cmd_eventnet(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("eventnet", "which subcommand?");
	const char *sub = argv[1];
	argc--;
	argv++;
	if (strcmp(sub, "log") == 0)
		return ev_log(argc, argv);
	if (strcmp(sub, "get") == 0)
		return ev_get(argc, argv);
	if (strcmp(sub, "why") == 0)
		return ev_why(argc, argv);
	if (strcmp(sub, "before") == 0)
		return ev_before(argc, argv);
	if (strcmp(sub, "dot") == 0)
		return ev_export(argc, argv, VIRGO_EV_DOT);
	if (strcmp(sub, "json") == 0)
		return ev_export(argc, argv, VIRGO_EV_JSON);
	if (strcmp(sub, "shiviz") == 0)
		return ev_export(argc, argv, VIRGO_EV_SHIVIZ);
	if (strcmp(sub, "svg") == 0)
		return ev_svg(argc, argv);
	if (strcmp(sub, "tail") == 0)
		return ev_tail(argc, argv);
	return cli_usage("eventnet", "unknown subcommand '%s'", sub);
}
