/*
 * testplugin.c - a cpupool plugin library for the tests (built twice:
 * libvtp_fast.so and libvtp_slow.so differ only in TP_DELAY_MS, so the
 * learned policy has a slow node to learn about).  Every function has the
 * virgo_fn signature of include/virgo.h.
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
	for (int i = 0; i < 60000 && !*cancel; i++)
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
