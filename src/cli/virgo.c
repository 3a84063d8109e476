/*
 * virgo.c - the virgo command line: every libvirgo call from the shell.
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
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
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

/* ---- CPU pooling ---------------------------------------------------------- */

/* Parses the shared options (--on, --policy, --timeout, and -j for map)
 * up to "--" or the first operand.  Returns the index of the first operand
 * or -1 after printing why. */
static int cpu_opts(int argc, char **argv, struct virgo_call_opts *o, int *jobs)
{
	memset(o, 0, sizeof *o);
	int i = 1;
	while (i < argc) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1;
		if (a[0] != '-' || a[1] == '\0')
			return i;
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "virgo: %s needs a value\n", a);
			return -1;
		}
		if (strcmp(a, "--on") == 0) {
			const char *d = strncmp(v, "node", 4) == 0 ? v + 4 : v;
			char *end;
			unsigned long id = strtoul(d, &end, 10);
			if (!*d || *end || id == 0 || id > 65535) {
				fprintf(stderr, "virgo: --on wants a node id (2 or node2), not '%s'\n", v);
				return -1;
			}
			o->node_id = (unsigned)id;
		} else if (strcmp(a, "--policy") == 0) {
			o->policy = virgo_policy_parse(v);
			if (o->policy < 0) {
				fprintf(stderr, "virgo: unknown policy '%s'\n", v);
				return -1;
			}
		} else if (strcmp(a, "--timeout") == 0) {
			size_t t;
			if (parse_size(v, &t) || t == 0 || t > 86400000)
				return -1;
			o->timeout_ms = (int)t;
		} else if (jobs && (strcmp(a, "-j") == 0 || strcmp(a, "--jobs") == 0)) {
			size_t j;
			if (parse_size(v, &j) || j == 0 || j > 1024) {
				fprintf(stderr, "virgo: -j wants 1..1024\n");
				return -1;
			}
			*jobs = (int)j;
		} else {
			fprintf(stderr, "virgo: unknown option '%s'\n", a);
			return -1;
		}
		i += 2; /* the option and its value */
	}
	return i;
}

static int cmd_clone(int argc, char **argv)
{
	struct virgo_call_opts o;
	int i = cpu_opts(argc, argv, &o, NULL);
	if (i < 0 || argc - i < 1 || argc - i > 2)
		return fprintf(stderr, "usage: virgo clone [--on nodeN] [--policy P] [--timeout MS] "
				       "<function> [<arg>|-]\n"),
		       2;
	const char *fn = argv[i];
	uint8_t *arg = (uint8_t *)"";
	size_t len = 0;
	int from_stdin = argc - i == 2 && strcmp(argv[i + 1], "-") == 0;
	if (from_stdin) {
		if (!(arg = read_stdin(&len)))
			return 1;
	} else if (argc - i == 2) {
		arg = (uint8_t *)argv[i + 1];
		len = strlen(argv[i + 1]);
	}
	void *out = NULL;
	size_t n = 0;
	int rc = virgo_clone_ex(fn, arg, len, &o, &out, &n, NULL);
	if (from_stdin)
		free(arg);
	if (rc)
		return fail("clone", rc);
	if (n && fwrite(out, 1, n, stdout) != n)
		rc = -EIO;
	if (isatty(STDOUT_FILENO) && (n == 0 || ((char *)out)[n - 1] != '\n'))
		putchar('\n');
	free(out);
	return rc ? fail("clone", rc) : 0;
}

static int cmd_run(int argc, char **argv)
{
	struct virgo_call_opts o;
	int i = cpu_opts(argc, argv, &o, NULL);
	if (i < 0 || i >= argc)
		return fprintf(stderr, "usage: virgo run [--on nodeN] [--policy P] [--timeout MS] "
				       "-- program [args...]\n"),
		       2;
	struct virgo_run_result r;
	int rc = virgo_run_ex((const char *const *)(argv + i), &o, &r);
	if (rc) {
		fprintf(stderr, "virgo: run %s: %s\n", argv[i], virgo_strerror(rc));
		return 125;
	}
	fflush(stdout);
	if (r.out_len && fwrite(r.out, 1, r.out_len, stdout) != r.out_len)
		rc = -EIO;
	fflush(stdout);
	if (r.err_len && fwrite(r.err, 1, r.err_len, stderr) != r.err_len)
		rc = -EIO;
	if (r.truncated)
		fprintf(stderr, "virgo: output truncated at the node's output_cap\n");
	int code = r.exit_code;
	virgo_run_result_free(&r);
	return rc ? 125 : code;
}

struct map_ctx {
	char **tmpl; /* command with {} */
	int tmpl_n;
	char **inputs;
	int n;
	struct virgo_call_opts o;
	_Atomic int next;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct virgo_run_result *res;
	int *rc;
	bool *done;
};

/* argv for input k: {} replaced by the input (within words too), or the
 * input appended when the command has no {}.  malloc'd strings. */
static char **map_argv(struct map_ctx *m, int k)
{
	char **av = calloc((size_t)m->tmpl_n + 2, sizeof *av);
	if (!av)
		return NULL;
	bool used = false;
	const char *in = m->inputs[k];
	for (int i = 0; i < m->tmpl_n; i++) {
		const char *t = m->tmpl[i];
		size_t cap = strlen(t) + 1, len = 0;
		for (const char *p = t; (p = strstr(p, "{}")); p += 2)
			cap += strlen(in);
		char *w = malloc(cap);
		if (!w)
			return av; /* partial: caller sees a NULL hole */
		for (const char *p = t; *p;) {
			if (p[0] == '{' && p[1] == '}') {
				memcpy(w + len, in, strlen(in));
				len += strlen(in);
				p += 2;
				used = true;
			} else {
				w[len++] = *p++;
			}
		}
		w[len] = '\0';
		av[i] = w;
	}
	if (!used)
		av[m->tmpl_n] = strdup(in);
	return av;
}

static void *map_worker(void *arg)
{
	struct map_ctx *m = arg;
	for (;;) {
		int k = atomic_fetch_add(&m->next, 1);
		if (k >= m->n)
			return NULL;
		char **av = map_argv(m, k);
		struct virgo_run_result r;
		memset(&r, 0, sizeof r);
		int rc = av ? virgo_run_ex((const char *const *)av, &m->o, &r) : -ENOMEM;
		for (int i = 0; av && av[i]; i++)
			free(av[i]);
		free(av);
		pthread_mutex_lock(&m->mu);
		m->res[k] = r;
		m->rc[k] = rc;
		m->done[k] = true;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
	}
}

static int cmd_map(int argc, char **argv)
{
	struct map_ctx m;
	memset(&m, 0, sizeof m);
	int jobs = 4;
	int i = cpu_opts(argc, argv, &m.o, &jobs);
	int sep = -1;
	for (int k = i; i >= 0 && k < argc; k++)
		if (strcmp(argv[k], ":::") == 0) {
			sep = k;
			break;
		}
	if (i < 0 || sep <= i)
		return fprintf(stderr, "usage: virgo map [-j N] [--policy P] [--timeout MS] -- "
				       "command [args with {}] ::: input...\n"),
		       2;
	m.tmpl = argv + i;
	m.tmpl_n = sep - i;
	m.inputs = argv + sep + 1;
	m.n = argc - sep - 1;
	if (m.n == 0)
		return 0;
	m.res = calloc((size_t)m.n, sizeof *m.res);
	m.rc = calloc((size_t)m.n, sizeof *m.rc);
	m.done = calloc((size_t)m.n, sizeof *m.done);
	if (!m.res || !m.rc || !m.done)
		return fail("map", -ENOMEM);
	pthread_mutex_init(&m.mu, NULL);
	pthread_cond_init(&m.cv, NULL);
	if (jobs > m.n)
		jobs = m.n;
	pthread_t *th = calloc((size_t)jobs, sizeof *th);
	int started = 0;
	for (; th && started < jobs; started++)
		if (pthread_create(&th[started], NULL, map_worker, &m) != 0)
			break;
	if (started == 0)
		return fail("map", -EAGAIN);
	int failed = 0;
	/* print each result as soon as every earlier one is printed */
	for (int k = 0; k < m.n; k++) {
		pthread_mutex_lock(&m.mu);
		while (!m.done[k])
			pthread_cond_wait(&m.cv, &m.mu);
		pthread_mutex_unlock(&m.mu);
		struct virgo_run_result *r = &m.res[k];
		if (m.rc[k]) {
			fprintf(stderr, "virgo: map input %d (%s): %s\n", k + 1, m.inputs[k],
				virgo_strerror(m.rc[k]));
			failed++;
			continue;
		}
		fflush(stdout);
		if (r->out_len)
			fwrite(r->out, 1, r->out_len, stdout);
		fflush(stdout);
		if (r->err_len)
			fwrite(r->err, 1, r->err_len, stderr);
		failed += r->exit_code != 0;
		virgo_run_result_free(r);
	}
	for (int k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	free(th);
	free(m.res);
	free(m.rc);
	free(m.done);
	pthread_mutex_destroy(&m.mu);
	pthread_cond_destroy(&m.cv);
	return failed ? 1 : 0;
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
	printf("%-5s %-16s %-6s %-5s %-6s %-11s %-10s %-8s %-7s %-11s %s\n", "NODE", "HOST",
	       "STATE", "CORES", "LOAD1", "RUN/WORKERS", "QUEUED/MAX", "JOBS", "ALLOCS", "BYTES",
	       "MEMFREE");
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		char *text = NULL;
		int rc = virgo_mempool_stats(i, &text);
		unsigned long long allocs = 0, bytes = 0;
		for (char *l = text; rc == 0 && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			sscanf(l, "allocations %llu", &allocs);
			sscanf(l, "bytes %llu", &bytes);
		}
		free(text);
		struct virgo_load ld;
		int lrc = virgo_load(i, &ld);
		if (rc && lrc) {
			printf("%-5u %-16s %-6s %s\n", ni.id, ni.host, "DOWN", virgo_strerror(lrc));
			continue;
		}
		char rw[32] = "-", q[32] = "-", done[32] = "-", cores[16] = "-", l1[16] = "-",
		     mf[32] = "-";
		if (lrc == 0) {
			snprintf(rw, sizeof rw, "%d/%d", ld.running, ld.workers);
			snprintf(q, sizeof q, "%d/%d", ld.queued, ld.queue_max);
			snprintf(done, sizeof done, "%llu", (unsigned long long)ld.jobs_done);
			snprintf(cores, sizeof cores, "%d", ld.cores);
			snprintf(l1, sizeof l1, "%.2f", ld.load1);
			snprintf(mf, sizeof mf, "%lluM", (unsigned long long)(ld.mem_free >> 20));
		}
		printf("%-5u %-16s %-6s %-5s %-6s %-11s %-10s %-8s %-7llu %-11llu %s\n", ni.id, ni.host,
		       "up", cores, l1, rw, q, done, allocs, bytes, mf);
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
		    {"stats", cmd_stats},   {"clone", cmd_clone}, {"run", cmd_run},
		    {"map", cmd_map},	    {"owner", cmd_owner}};
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
