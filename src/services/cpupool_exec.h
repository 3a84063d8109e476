/*
 * cpupool_exec.h - run one allow-listed executable for the cpupool: argv
 * (never a shell), stdout/stderr captured up to a cap, exit status, killed
 * at a deadline or on cancel, resource limits, and always reaped.
 */
#ifndef VIRGO_CPUPOOL_EXEC_H
#define VIRGO_CPUPOOL_EXEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cp_exec_limits {
	uint64_t output_cap; /* bytes kept of stdout, and of stderr */
	uint64_t mem_limit; /* RLIMIT_AS of the child (0: none) */
	int64_t deadline_ms; /* CLOCK_MONOTONIC ms; killed (group) after it */
	struct cp_cgroup *cg; /* NULL: no pids cgroup (cpupool_cgroup.h) */
	/* extra "NAME=value" strings for the program's environment (the
	 * analytics snapshot, VIRGO_AN_*), NULL-terminated; NULL: none */
	char *const *env;
};

struct cp_exec_result {
	bool signaled; /* killed by a signal: code is its number */
	int code; /* exit status or signal number */
	uint8_t *out, *err; /* malloc'd (caller frees; NULL when empty) */
	size_t out_len, err_len;
	bool truncated; /* stdout or stderr went past output_cap */
};

/* Runs path with argv (NULL-terminated; argv[0] is passed as given) in its
 * own process group under a subreaper shepherd, stdin /dev/null, a minimal
 * environment.  Returns 0
 * with *res filled, or: -ETIMEDOUT (killed at the deadline), -ECANCELED
 * (cancel_fd became readable; the group was killed), -ENOENT/-EACCES/...
 * (exec failed), -ENOMEM.  In every case the program and every process it
 * started (setsid or not) have been killed and reaped (no zombie, no
 * orphan), and on error *res holds nothing. */
int cp_exec_run(const char *path, char *const argv[], const struct cp_exec_limits *lim,
		int cancel_fd, struct cp_exec_result *res);

/* Frees the buffers of a result (not res itself). */
void cp_exec_result_free(struct cp_exec_result *res);

#endif
