/*
 * cli.h - what the virgo command's files share: the subcommands (one file
 * per family: mem.c, cpu.c, cluster.c) and their argument helpers.
 * Every cmd_* gets argv from the subcommand name on and returns the
 * process exit status (2 for usage errors).
 */
#ifndef VIRGO_CLI_H
#define VIRGO_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "virgo.h"

#define CLI_STDIN_MAX (1024u * 1024 * 1024)

/* Prints "virgo: <what>: <strerror>" and returns 1. */
int cli_fail(const char *what, int rc);
/* 0, or -1 after printing why. */
int cli_parse_vuid(const char *s, virgo_vuid_t *v);
int cli_parse_size(const char *s, size_t *out);
/* All of stdin (at most CLI_STDIN_MAX), malloc'd (caller frees); NULL
 * after printing why. */
uint8_t *cli_read_stdin(size_t *len);

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
/* ls.c: virgo ls / renew; "90", "30s", "15m", "1h", "2d", "500ms" -> ms
 * (bare numbers are seconds); 0, or -1 after saying why. */
int cmd_ls(int argc, char **argv);
int cmd_renew(int argc, char **argv);
int cli_parse_ttl(const char *s, uint64_t *ms);

#endif
