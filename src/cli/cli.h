/*
 * cli.h - what the virgo command's files share: the subcommands (one file
 * per family: mem.c, ls.c, cpu.c, jobs.c, cluster.c) and their argument
 * helpers (util.c, fanout.c).
 * Every cmd_* gets argv from the subcommand name on and returns the
 * process exit status (2 for usage errors).
 */
#ifndef VIRGO_CLI_H
#define VIRGO_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>

#include "virgo.h"

#define CLI_STDIN_MAX (1024u * 1024 * 1024)

/* One subcommand: the single table (virgo.c) that dispatch, `virgo help`
 * and `virgo <cmd> --help` all read.  Strings are static. */
struct cli_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *usage; /* after "virgo ", e.g. "malloc <size>" */
	const char *summary; /* one line */
	const char *details; /* options and notes, lines of text (may be NULL) */
	const char *examples; /* lines of shell, each ending in \n */
	int no_client; /* runs without libvirgo (help) */
};
/* The command named name, or NULL. */
const struct cli_cmd *cli_cmd_find(const char *name);
/* Prints the full help of one command. */
void cli_cmd_help(const struct cli_cmd *c, FILE *f);

/* Prints "virgo: <libvirgo's detail of the failed call>" (the node, the
 * operation and the node's own sentence), or "virgo: <what>: <strerror>"
 * when there is none, and returns 1. */
int cli_fail(const char *what, int rc);
/* A usage error of command cmd: prints "virgo <cmd>: <reason>", its usage
 * line and a pointer to its help; returns 2. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 0, or -1 after printing why. */
int cli_parse_vuid(const char *s, virgo_vuid_t *v);
/* A size: bytes, or with a unit K, M, G (powers of 1024, optional B):
 * "64M".  0, or -1 after printing why. */
int cli_parse_size(const char *s, size_t *out);
/* A plain decimal count within [min,max]; 0, or -1 after printing why
 * (what names the option). */
int cli_parse_uint(const char *what, const char *s, unsigned long min, unsigned long max,
		   unsigned long *out);
/* All of stdin (at most CLI_STDIN_MAX), malloc'd (caller frees); NULL
 * after printing why. */
uint8_t *cli_read_stdin(size_t *len);

/* fanout.c: fn(i, arg) for every i in 0..n-1, many at once on threads
 * of their own (each i exactly once); returns when all have returned. */
void cli_fanout(int n, void (*fn)(int i, void *arg), void *arg);

/* jobs.c: a call run in the background (virgo clone/run --bg). */
struct cli_bg_call {
	int is_run;
	const char *const *argv; /* run: NULL-terminated */
	const char *fn; /* clone: function, argument bytes */
	const void *arg;
	size_t arg_len;
	struct virgo_call_opts opts;
};
/* Starts call as background job: a detached holder process makes it and
 * leaves the result for virgo wait; prints the job id.  words/nwords:
 * the command line shown by virgo jobs.  Returns the exit status. */
int cli_bg_start(const struct cli_bg_call *call, char *const *words, int nwords);
int cmd_jobs(int argc, char **argv);
int cmd_wait(int argc, char **argv);
int cmd_cancel(int argc, char **argv);

int cmd_malloc(int argc, char **argv);
int cmd_set(int argc, char **argv);
int cmd_get(int argc, char **argv);
int cmd_free(int argc, char **argv);
int cmd_clone(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_map(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_owner(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_help(int argc, char **argv);
/* ls.c: virgo ls / renew; "90", "30s", "15m", "1h", "2d", "500ms" -> ms
 * (bare numbers are seconds); 0, or -1 after saying why. */
int cmd_ls(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cli_parse_ttl(const char *s, uint64_t *ms);
/* certs.c: virgo certs init|add-client|add-node|revoke|add-token|revoke-token */
int cmd_certs(int argc, char **argv);
/* certs_tokens.c: a new random token for name appended to the named
 * tokens file at path (created mode 0600), printed with the client's
 * auth_token line / name's line removed.  Exit status (0, 1, or 2 for a
 * bad name). */
int certs_token_add(const char *path, const char *name);
int certs_token_revoke(const char *path, const char *name);
/* queue.c: virgo queue push|sub|work|read|ls|stat */
int cmd_queue(int argc, char **argv);
/* lock.c: virgo lock [--wait T] [--ttl T] NAME -- cmd..., virgo lock ls */
int cmd_lock(int argc, char **argv);
/* fs.c: files of any node's cloudfs, named nodeN:/path */
int cmd_cp(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_fsls(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_mkdir(int argc, char **argv);
int cmd_mv(int argc, char **argv);
int cmd_stat(int argc, char **argv);
/* virgo ls with -l or a nodeN:/path lists files (cmd_fsls) */
bool cli_fs_ls_args(int argc, char **argv);
/* analytics.c: virgo analytics set|get|ls|watch|history */
int cmd_analytics(int argc, char **argv);
/* eventnet.c: virgo eventnet log|get|why|before|dot|svg|json|shiviz|tail */
int cmd_eventnet(int argc, char **argv);

#endif
