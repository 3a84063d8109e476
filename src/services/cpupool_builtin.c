/*
 * cpupool_builtin.c - the cpupool's built-in functions (cpupool_builtin.h).
 */
#include "cpupool_builtin.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/frame.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int bi_echo(const struct cp_builtin_ctx *ctx, const uint8_t *arg, size_t len, uint8_t **out,
		   size_t *out_len)
{
	(void)ctx;
	*out = NULL;
	*out_len = len;
	if (len == 0)
		return 0;
	*out = malloc(len);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, arg, len);
	return 0;
}

/* Sleeps <arg> ms, waking early (and failing) on cancel or deadline. */
static int bi_sleep(const struct cp_builtin_ctx *ctx, const uint8_t *arg, size_t len,
		    uint8_t **out, size_t *out_len)
{
	uint64_t ms;
	*out = NULL;
	*out_len = 0;
	if (frame_u64(arg, len, &ms) != 0 || ms > 86400000)
		return -EINVAL;
	int64_t until = now_ms() + (int64_t)ms;
	for (;;) {
		int64_t now = now_ms();
		if (now >= until)
			break;
		if (now >= ctx->deadline_ms)
			return -ETIMEDOUT;
		int64_t stop = until < ctx->deadline_ms ? until : ctx->deadline_ms;
		struct pollfd p = {.fd = ctx->cancel_fd, .events = POLLIN};
		if (poll(&p, 1, (int)(stop - now)) > 0)
			return -ECANCELED;
	}
	char buf[32];
	int n = snprintf((char *)buf, sizeof buf, "slept %llu", (unsigned long long)ms);
	*out = malloc((size_t)n);
	if (!*out)
		return -ENOMEM;
	memcpy(*out, buf, (size_t)n);
	*out_len = (size_t)n;
	return 0;
}

static int bi_load(const struct cp_builtin_ctx *ctx, const uint8_t *arg, size_t len,
		   uint8_t **out, size_t *out_len)
{
	(void)arg;
	(void)len;
	char *t = ctx->load_text(ctx->load_arg);
	if (!t)
		return -ENOMEM;
	*out = (uint8_t *)t;
	*out_len = strlen(t);
	return 0;
}

static const struct {
	const char *name;
	cp_builtin_fn fn;
} cp_builtins[] = {
	{"virgo_cloud_test", bi_echo},
	{"virgo_cloud_test_kernelspace", bi_echo},
	{"virgo_sleep", bi_sleep},
	{"virgo_load", bi_load},
};

cp_builtin_fn cp_builtin_find(const char *name)
{
	for (size_t i = 0; i < sizeof cp_builtins / sizeof cp_builtins[0]; i++)
		if (strcmp(cp_builtins[i].name, name) == 0)
			return cp_builtins[i].fn;
	return NULL;
}
