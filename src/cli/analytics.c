/*
 * analytics.c - `virgo analytics set|get|ls|watch|history`: the kernel
 * analytics variables of one node or every node (libvirgo's
 * virgo_analytics_* calls).  A node is named N or nodeN (its id in
 * virgo_client.conf); --all means every configured node.  watch --all
 * runs one thread per node and prints each change as it comes.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define AN_ALL (-1)

/* "--all" -> AN_ALL, "N"/"nodeN" -> its index; -2 after printing why. */
static int node_arg(const char *s)
{
	if (strcmp(s, "--all") == 0)
		return AN_ALL;
	const char *d = strncmp(s, "node", 4) == 0 ? s + 4 : s;
	char *end;
	unsigned long id = strtoul(d, &end, 10);
	int n = virgo_node_count();
	if (*d && !*end && id > 0)
		for (int i = 0; i < n; i++) {
			struct virgo_node_info ni;
			if (virgo_node_info(i, &ni) == 0 && ni.id == id)
				return i;
		}
	fprintf(stderr, "virgo analytics: '%s' is not a configured node (N, nodeN or --all)\n", s);
	return -2;
}

static unsigned node_id(int idx)
{
	struct virgo_node_info ni;
	return virgo_node_info(idx, &ni) == 0 ? ni.id : 0;
}

static int print_var(void *arg, uint64_t rev, const char *key, const char *value)
{
	printf("node%-4u %-32s %8" PRIu64 "  %s\n", *(unsigned *)arg, key, rev, value);
	return 0;
}

static int print_hist(void *arg, uint64_t rev, const char *key, const char *value)
{
	(void)arg;
	(void)key;
	printf("%8" PRIu64 "  %s\n", rev, value);
	return 0;
}

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static int print_change(void *arg, uint64_t rev, const char *key, const char *value)
{
	pthread_mutex_lock(&out_mu);
	printf("node%-4u %8" PRIu64 "  %s=%s\n", *(unsigned *)arg, rev, key, value);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
	return 0;
}

struct watch_arg {
	int idx;
	unsigned id;
	uint64_t from;
	int rc;
	int running;
};

static void *watch_main(void *p)
{
	struct watch_arg *w = p;
	w->rc = virgo_analytics_watch(w->idx, w->from, -1, print_change, &w->id);
	if (w->rc)
		cli_fail("analytics watch", w->rc);
	return NULL;
}

static int an_set(int argc, char **argv)
{
	if (argc < 4)
		return cli_usage("analytics", "set wants a node (or --all) and name=value");
	int idx = node_arg(argv[2]);
	if (idx == -2)
		return 2;
	int bad = 0;
	for (int i = 3; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i])
			return cli_usage("analytics", "'%s' is not name=value", argv[i]);
		*eq = '\0';
		uint64_t rev = 0;
		int rc = virgo_analytics_set(idx, argv[i], eq + 1, &rev);
		if (rc)
			bad = cli_fail("analytics set", rc);
		else if (idx >= 0)
			printf("%s=%s (revision %" PRIu64 ")\n", argv[i], eq + 1, rev);
		else
			printf("%s=%s on every node\n", argv[i], eq + 1);
	}
	return bad;
}

int cmd_analytics(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("analytics", "wants set, get, ls, watch or history");
	const char *sub = argv[1];
	if (strcmp(sub, "set") == 0)
		return an_set(argc, argv);
	if (strcmp(sub, "get") == 0 || strcmp(sub, "history") == 0) {
		if (argc != 4)
			return cli_usage("analytics", "%s wants a node and a name", sub);
		int idx = node_arg(argv[2]);
		if (idx == -2)
			return 2;
		if (idx == AN_ALL)
			return cli_usage("analytics", "%s wants one node", sub);
		if (sub[0] == 'h') {
			int rc = virgo_analytics_history(idx, argv[3], print_hist, NULL);
			return rc ? cli_fail("analytics history", rc) : 0;
		}
		char value[1100];
		uint64_t rev;
		int rc = virgo_analytics_get(idx, argv[3], value, sizeof value, &rev);
		if (rc)
			return cli_fail("analytics get", rc);
		printf("%s\n", value);
		return 0;
	}
	if (strcmp(sub, "ls") == 0) {
		if (argc > 3)
			return cli_usage("analytics", "ls wants at most one node (or --all)");
		int idx = argc == 3 ? node_arg(argv[2]) : AN_ALL;
		if (idx == -2)
			return 2;
		int n = virgo_node_count(), bad = 0;
		if (n < 0)
			return cli_fail("config", n);
		printf("%-8s %-32s %8s  %s\n", "NODE", "NAME", "REV", "VALUE");
		for (int i = 0; i < n; i++) {
			if (idx != AN_ALL && i != idx)
				continue;
			unsigned id = node_id(i);
			int rc = virgo_analytics_ls(i, NULL, print_var, &id);
			if (rc)
				bad = cli_fail("analytics ls", rc);
		}
		return bad;
	}
	if (strcmp(sub, "watch") == 0) {
		int idx = AN_ALL;
		uint64_t from = VIRGO_ANALYTICS_NOW;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
				unsigned long v;
				if (cli_parse_uint("--from", argv[++i], 0, ~0ul, &v))
					return 2;
				from = v;
			} else if ((idx = node_arg(argv[i])) == -2) {
				return 2;
			}
		}
		int n = virgo_node_count();
		if (n < 0)
			return cli_fail("config", n);
		struct watch_arg *w = calloc((size_t)n, sizeof *w);
		pthread_t *th = calloc((size_t)n, sizeof *th);
		if (!w || !th)
			return cli_fail("analytics watch", -ENOMEM);
		int started = 0;
		for (int i = 0; i < n; i++) {
			if (idx != AN_ALL && i != idx)
				continue;
			w[i] = (struct watch_arg){i, node_id(i), from, 0, 0};
			if (pthread_create(&th[i], NULL, watch_main, &w[i]) == 0) {
				w[i].running = 1;
				started++;
			}
		}
		int bad = 0;
		for (int i = 0; i < n; i++)
			if (w[i].running) {
				pthread_join(th[i], NULL);
				bad |= w[i].rc != 0;
			}
		free(w);
		free(th);
		return started ? bad : 1;
	}
	return cli_usage("analytics", "unknown subcommand '%s' (set, get, ls, watch, history)", sub);
}
