/*
 * cpu.c - virgo clone/run/map: CPU pooling from the shell.  map runs one
 * job per input on a small thread pool and prints outputs in input order.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/abstime.h"
#include "cli.h"

/* Parses the shared options (--on, --policy, --timeout, and -j, -v for
 * map) of command cmd up to "--" or the first operand.  Returns the index
 * of the first operand or -1 after printing why (cli_usage). */
static int cpu_opts(const char *cmd, int argc, char **argv, struct virgo_call_opts *o, int *jobs,
		    bool *verbose, bool *bg)
{
	memset(o, 0, sizeof *o);
	int i = 1;
	while (i < argc) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0)
			return i + 1;
		if (a[0] != '-' || a[1] == '\0')
			return i;
		if (verbose && (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0)) {
			*verbose = true;
			i++;
			continue;
		}
		if (bg && strcmp(a, "--bg") == 0) {
			*bg = true;
			i++;
			continue;
		}
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return cli_usage(cmd, "%s needs a value", a), -1;
		if (strcmp(a, "--on") == 0) {
			const char *d = strncmp(v, "node", 4) == 0 ? v + 4 : v;
			char *end;
			unsigned long id = strtoul(d, &end, 10);
			if (!*d || *end || id == 0 || id > 65535)
				return cli_usage(cmd, "--on wants a node id (2 or node2), not '%s'", v), -1;
			o->node_id = (unsigned)id;
		} else if (strcmp(a, "--policy") == 0) {
			o->policy = virgo_policy_parse(v);
			if (o->policy < 0)
				return cli_usage(cmd,
						 "unknown policy '%s' (random round_robin least_loaded "
						 "power_of_two learned)",
						 v),
				       -1;
		} else if (strcmp(a, "--timeout") == 0) {
			unsigned long t;
			if (cli_parse_uint("--timeout (milliseconds)", v, 1, 86400000, &t))
				return -1;
			o->timeout_ms = (int)t;
		} else if (jobs && (strcmp(a, "-j") == 0 || strcmp(a, "--jobs") == 0)) {
			unsigned long j;
			if (cli_parse_uint("-j", v, 1, 1024, &j))
				return -1;
			*jobs = (int)j;
		} else {
			return cli_usage(cmd, "unknown option '%s'", a), -1;
		}
		i += 2; /* the option and its value */
	}
	return i;
}

int cmd_clone(int argc, char **argv)
{
	struct virgo_call_opts o;
	bool bg = false;
	int i = cpu_opts("clone", argc, argv, &o, NULL, NULL, &bg);
	if (i < 0)
		return 2;
	if (argc - i < 1)
		return cli_usage("clone", "wants a function name");
	if (argc - i > 2)
		return cli_usage("clone", "one argument at most (quote it, or use - for stdin)");
	const char *fn = argv[i];
	uint8_t *arg = (uint8_t *)"";
	size_t len = 0;
	int from_stdin = argc - i == 2 && strcmp(argv[i + 1], "-") == 0;
	if (from_stdin) {
		if (!(arg = cli_read_stdin(&len)))
			return 1;
	} else if (argc - i == 2) {
		arg = (uint8_t *)argv[i + 1];
		len = strlen(argv[i + 1]);
	}
	if (bg) {
		struct cli_bg_call call = {.fn = fn, .arg = arg, .arg_len = len, .opts = o};
		int st = cli_bg_start(&call, argv + i, argc - i);
		if (from_stdin)
			free(arg);
		return st;
	}
	void *out = NULL;
	size_t n = 0;
	int rc = virgo_clone_ex(fn, arg, len, &o, &out, &n, NULL);
	if (from_stdin)
		free(arg);
	if (rc)
		return cli_fail("clone", rc);
	if (n && fwrite(out, 1, n, stdout) != n)
		rc = -EIO;
	if (isatty(STDOUT_FILENO) && (n == 0 || ((char *)out)[n - 1] != '\n'))
		putchar('\n');
	free(out);
	return rc ? cli_fail("clone", rc) : 0;
}

int cmd_run(int argc, char **argv)
{
	struct virgo_call_opts o;
	bool bg = false;
	int i = cpu_opts("run", argc, argv, &o, NULL, NULL, &bg);
	if (i < 0)
		return 2;
	if (i >= argc)
		return cli_usage("run", "wants a program to run");
	if (bg) {
		struct cli_bg_call call = {.is_run = 1, .argv = (const char *const *)(argv + i),
					   .opts = o};
		return cli_bg_start(&call, argv + i, argc - i);
	}
	struct virgo_run_result r;
	int rc = virgo_run_ex((const char *const *)(argv + i), &o, &r);
	if (rc) {
		const char *d = virgo_last_error();
		if (*d)
			fprintf(stderr, "virgo: run %s: %s\n", argv[i], d);
		else
			fprintf(stderr, "virgo: run %s: %s\n", argv[i], virgo_strerror(rc));
		/* as timeout(1): 124 when the deadline ran out, 125 not run */
		return rc == -ETIMEDOUT ? 124 : 125;
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
	char **detail; /* virgo_last_error() of a failed job (malloc'd) */
	int ndone, nfailed; /* finished jobs, of which failed or not run (mu) */
};

/* The progress line of map on a terminal (stderr a tty): done/total,
 * failures, elapsed time and an ETA from the mean time per job so far.
 * Drawn at most 5 times a second, from 0.5 s on (short runs never show
 * it), cleared before any output is printed and at the end. */
struct map_progress {
	bool on, shown;
	int64_t start_ms, drawn_ms;
};

static int64_t map_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "42s", "3m05s", "1h02m". */
static void map_dur(char *buf, size_t cap, int64_t ms)
{
	long long s = (long long)(ms / 1000);
	if (s < 60)
		snprintf(buf, cap, "%llds", s);
	else if (s < 3600)
		snprintf(buf, cap, "%lldm%02llds", s / 60, s % 60);
	else
		snprintf(buf, cap, "%lldh%02lldm", s / 3600, s / 60 % 60);
}

static void map_progress_clear(struct map_progress *p)
{
	if (p->shown)
		fputs("\r\033[K", stderr);
	p->shown = false;
}

static void map_progress_draw(struct map_progress *p, int done, int failed, int total)
{
	int64_t now = map_now_ms();
	if (!p->on || now - p->start_ms < 500 || (p->shown && now - p->drawn_ms < 200))
		return;
	char el[32], eta[32] = "?";
	map_dur(el, sizeof el, now - p->start_ms);
	if (done > 0)
		map_dur(eta, sizeof eta, (now - p->start_ms) * (total - done) / done);
	fprintf(stderr, "\r\033[Kvirgo map: %d/%d done, %d failed, %s elapsed, ETA %s", done, total,
		failed, el, eta);
	fflush(stderr);
	p->shown = true;
	p->drawn_ms = now;
}

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
		m->ndone++;
		m->nfailed += rc != 0 || r.exit_code != 0;
		if (rc && *virgo_last_error())
			m->detail[k] = strdup(virgo_last_error());
		m->done[k] = true;
		pthread_cond_broadcast(&m->cv);
		pthread_mutex_unlock(&m->mu);
	}
}

#define MAP_INPUTS_MAX (1u << 20)

/* The inputs of map from stdin, one per line (xargs/parallel habit):
 * empty lines are skipped, a trailing \r is dropped.  *buf (all of stdin,
 * split in place) and *inputs (pointers into it) are malloc'd: the caller
 * frees both.  0, or -1 after printing why. */
static int map_read_inputs(uint8_t **buf, char ***inputs, int *n)
{
	size_t len;
	*inputs = NULL;
	*n = 0;
	if (!(*buf = cli_read_stdin(&len)))
		return -1;
	uint8_t *b = realloc(*buf, len + 1); /* room for the last line's NUL */
	if (!b) {
		free(*buf);
		cli_fail("map", -ENOMEM);
		return -1;
	}
	*buf = b;
	size_t lines = 0;
	for (size_t k = 0; k < len; k++)
		lines += (*buf)[k] == '\n';
	if (lines + 1 > MAP_INPUTS_MAX) {
		fprintf(stderr, "virgo: map: more than %u inputs on stdin\n", MAP_INPUTS_MAX);
		free(*buf);
		return -1;
	}
	*inputs = calloc(lines + 1, sizeof **inputs);
	if (!*inputs) {
		free(*buf);
		cli_fail("map", -ENOMEM);
		return -1;
	}
	char *p = (char *)*buf, *end = p + len;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *e = nl ? nl : end;
		if (e > p && e[-1] == '\r')
			e--;
		*e = '\0';
		if (e > p) {
			if (memchr(p, '\0', (size_t)(e - p))) {
				fprintf(stderr, "virgo: map: input line %d has a NUL byte\n", *n + 1);
				free(*inputs);
				free(*buf);
				return -1;
			}
			(*inputs)[(*n)++] = p;
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}

int cmd_map(int argc, char **argv)
{
	struct map_ctx m;
	memset(&m, 0, sizeof m);
	int jobs = 4;
	bool verbose = false;
	int i = cpu_opts("map", argc, argv, &m.o, &jobs, &verbose, NULL);
	if (i < 0)
		return 2;
	int sep = -1;
	for (int k = i; i >= 0 && k < argc; k++)
		if (strcmp(argv[k], ":::") == 0) {
			sep = k;
			break;
		}
	if (sep == i || (sep < 0 && i >= argc))
		return cli_usage("map", "wants a command (then ::: and the inputs, or inputs on stdin)");
	m.tmpl = argv + i;
	uint8_t *buf = NULL; /* stdin, split in place into m.inputs */
	if (sep >= 0) {
		m.tmpl_n = sep - i;
		m.inputs = argv + sep + 1;
		m.n = argc - sep - 1;
	} else {
		m.tmpl_n = argc - i;
		if (map_read_inputs(&buf, &m.inputs, &m.n))
			return 1;
	}
	if (m.n == 0) {
		free(buf);
		free(sep < 0 ? m.inputs : NULL);
		return 0;
	}
	m.res = calloc((size_t)m.n, sizeof *m.res);
	m.rc = calloc((size_t)m.n, sizeof *m.rc);
	m.done = calloc((size_t)m.n, sizeof *m.done);
	m.detail = calloc((size_t)m.n, sizeof *m.detail);
	if (!m.res || !m.rc || !m.done || !m.detail)
		return cli_fail("map", -ENOMEM);
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
		return cli_fail("map", -EAGAIN);
	int failed = 0, refused = 0;
	struct map_progress prog = {.on = isatty(STDERR_FILENO), .start_ms = map_now_ms()};
	/* print each result as soon as every earlier one is printed */
	for (int k = 0; k < m.n; k++) {
		pthread_mutex_lock(&m.mu);
		while (!m.done[k]) {
			if (!prog.on) {
				pthread_cond_wait(&m.cv, &m.mu);
				continue;
			}
			struct timespec dl;
			abstime_after_ms(CLOCK_REALTIME, 200, &dl);
			pthread_cond_timedwait(&m.cv, &m.mu, &dl);
			int nd = m.ndone, nf = m.nfailed;
			pthread_mutex_unlock(&m.mu);
			map_progress_draw(&prog, nd, nf, m.n);
			pthread_mutex_lock(&m.mu);
		}
		pthread_mutex_unlock(&m.mu);
		map_progress_clear(&prog);
		struct virgo_run_result *r = &m.res[k];
		if (verbose && !m.rc[k])
			fprintf(stderr, "virgo: map input %d '%s': node %u, exit %d\n", k + 1,
				m.inputs[k], r->node_id, r->exit_code);
		if (m.rc[k]) {
			fprintf(stderr, "virgo: map input %d (%s): %s\n", k + 1, m.inputs[k],
				m.detail[k] ? m.detail[k] : virgo_strerror(m.rc[k]));
			free(m.detail[k]);
			refused++;
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
	map_progress_clear(&prog);
	for (int k = 0; k < started; k++)
		pthread_join(th[k], NULL);
	free(th);
	free(m.res);
	free(m.rc);
	free(m.done);
	pthread_mutex_destroy(&m.mu);
	pthread_cond_destroy(&m.cv);
	free(m.detail);
	if (sep < 0) {
		free(m.inputs);
		free(buf);
	}
	/* a job the cluster did not run outranks a program that failed */
	return refused ? 125 : failed ? 1 : 0;
}
