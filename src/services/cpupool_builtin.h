/*
 * cpupool_builtin.h - functions compiled into virgod that clone/call can
 * run by name without any plugin: virgo_cloud_test (echo; the original's
 * virgo_cloud_test_kernelspace is an alias), virgo_sleep (argument: a
 * number of milliseconds; cancellable), virgo_load (the node's load as
 * "name value" lines).
 */
#ifndef VIRGO_CPUPOOL_BUILTIN_H
#define VIRGO_CPUPOOL_BUILTIN_H

#include <stddef.h>
#include <stdint.h>

struct cp_builtin_ctx {
	int cancel_fd; /* readable once the job is cancelled */
	int64_t deadline_ms; /* CLOCK_MONOTONIC ms */
	/* the node's load text for virgo_load; malloc'd, caller frees */
	char *(*load_text)(void *arg);
	void *load_arg;
};

/* Runs built-in fn: 0 with *out (malloc'd, caller frees; may be NULL when
 * *out_len is 0), or a negative errno (-ETIMEDOUT, -ECANCELED, -EINVAL). */
typedef int (*cp_builtin_fn)(const struct cp_builtin_ctx *ctx, const uint8_t *arg, size_t len,
			     uint8_t **out, size_t *out_len);

/* The built-in with this name, or NULL. */
cp_builtin_fn cp_builtin_find(const char *name);

#endif
