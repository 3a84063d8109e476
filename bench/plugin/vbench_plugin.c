/*
 * vbench_plugin.c - the trivial plugin function the cpupool bench times
 * (bench/suite_cpupool.sh): vbench_noop returns its argument; vbench_work
 * takes VB_WORK_MS (10 ms; the "slow node" build takes 40); both listed in
 * virgo_plugin_functions[], the export table.  Built as
 * $(BUILD)/bench/libvbench_plugin{,_slow}.so by `make bench-bins`.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef VB_WORK_MS
#define VB_WORK_MS 10
#endif

#include "virgo.h"

int vbench_noop(const void *arg, size_t len, void **out, size_t *out_len, const volatile int *cancel)
{
	(void)cancel;
	*out = malloc(len ? len : 1);
	if (!*out)
		return -12;
	memcpy(*out, arg, len);
	*out_len = len;
	return 0;
}

int vbench_work(const void *arg, size_t len, void **out, size_t *out_len, const volatile int *cancel)
{
	(void)arg, (void)len, (void)cancel;
	struct timespec ts = {0, VB_WORK_MS * 1000000L};
	nanosleep(&ts, NULL);
	*out = NULL;
	*out_len = 0;
	return 0;
}

const struct virgo_plugin_function virgo_plugin_functions[] = {
	{"vbench_noop", vbench_noop},
	{"vbench_work", vbench_work},
	{NULL, NULL},
};
