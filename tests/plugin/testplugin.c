/*
 * testplugin.c - a cpupool plugin library for the tests (built three
 * times: libvtp_fast.so and libvtp_slow.so differ only in TP_DELAY_MS, so
 * the learned policy has a slow node to learn about; libvtp_notable.so is
 * built with TP_NO_TABLE, a library without an export table, so the
 * fallback lookup is tested too).  The callable functions have the
 * virgo_fn signature of include/virgo.h and are listed in
 * virgo_plugin_functions[]; plugin_version (data) and tp_hidden (another
 * signature) are exported but must never be callable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virgo.h"

#ifndef TP_DELAY_MS
#define TP_DELAY_MS 5
#endif

/* Returns the argument reversed (binary safe). */
int tp_reverse(const void *arg, size_t len, void **out, size_t *out_len, const volatile int *cancel)
{
	(void)cancel;
	unsigned char *o = malloc(len ? len : 1);
	if (!o)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		o[i] = ((const unsigned char *)arg)[len - 1 - i];
	*out = o;
	*out_len = len;
	return 0;
}

/* Always fails with -EINVAL. */
int tp_fail(const void *arg, size_t len, void **out, size_t *out_len, const volatile int *cancel)
{
	(void)arg, (void)len, (void)out, (void)out_len, (void)cancel;
	return -EINVAL;
}

/* Busy-waits (1 ms naps) until cancelled, then returns -ECANCELED. */
int tp_spin(const void *arg, size_t len, void **out, size_t *out_len, const volatile int *cancel)
{
	(void)arg, (void)len, (void)out, (void)out_len;
	struct timespec ts = {0, 1000000};
	for (int i = 0; i < 60000 && !__atomic_load_n(cancel, __ATOMIC_ACQUIRE); i++)
		nanosleep(&ts, NULL);
	return -ECANCELED;
}

/* Takes TP_DELAY_MS and says how long. */
int tp_work(const void *arg, size_t len, void **out, size_t *out_len, const volatile int *cancel)
{
	(void)arg, (void)len, (void)cancel;
	struct timespec ts = {TP_DELAY_MS / 1000, (TP_DELAY_MS % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	static const char msg[] = "worked";
	*out = malloc(sizeof msg - 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, msg, sizeof msg - 1);
	*out_len = sizeof msg - 1;
	return 0;
}

/* Ignores its cancel flag: spins (1 ms naps) for <arg> ms, at most 10 min.
 * Stands for a badly written plugin (SIGTERM must still end the node). */
int tp_stubborn(const void *arg, size_t len, void **out, size_t *out_len,
		const volatile int *cancel)
{
	(void)cancel, (void)out, (void)out_len;
	char num[16] = {0};
	memcpy(num, arg, len < sizeof num - 1 ? len : sizeof num - 1);
	long ms = strtol(num, NULL, 10);
	if (ms <= 0 || ms > 600000)
		ms = 600000;
	struct timespec ts = {0, 1000000};
	for (long i = 0; i < ms; i++)
		nanosleep(&ts, NULL);
	return -ETIMEDOUT;
}

/* Set by the node at load (virgo.h, virgo_plugin_host). */
const struct virgo_plugin_host *virgo_plugin_host;

/* Returns the node's kernel analytics variable named by arg. */
int tp_analytics(const void *arg, size_t len, void **out, size_t *out_len,
		 const volatile int *cancel)
{
	(void)cancel;
	char key[129] = {0}, val[1100];
	if (!virgo_plugin_host || len == 0 || len >= sizeof key)
		return -EINVAL;
	memcpy(key, arg, len);
	int n = virgo_plugin_host->analytics_get(key, val, sizeof val);
	if (n < 0)
		return n;
	*out = malloc((size_t)n + 1);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, val, (size_t)n);
	*out_len = (size_t)n;
	return 0;
}

/* Exported data: calling it as code was a remote crash (issue 14 #3). */
const char plugin_version[] = "vtp 1.0";

#ifdef TP_NO_TABLE
/* Only in the library without a table: reachable through the fallback. */
int tp_notable_only(const void *arg, size_t len, void **out, size_t *out_len,
		    const volatile int *cancel)
{
	return tp_reverse(arg, len, out, out_len, cancel);
}
#else
/* Exported, but of another signature and not in the table: unreachable. */
int tp_hidden(int a, int b)
{
	return a + b;
}

const struct virgo_plugin_function virgo_plugin_functions[] = {
	{"tp_reverse", tp_reverse}, {"tp_fail", tp_fail},	  {"tp_spin", tp_spin},
	{"tp_work", tp_work},	    {"tp_stubborn", tp_stubborn}, {"tp_analytics", tp_analytics},
	{NULL, NULL},
};
#endif
