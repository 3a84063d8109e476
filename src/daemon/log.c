/*
 * log.c - stderr logger (log.h).  Formats the whole line first and emits it
 * with a single write() so lines from worker threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int vlog_level_cur = VLOG_INFO;
static const char *const vlog_names[] = {"error", "warn", "info", "debug"};

int vlog_ratelimit(long long *last)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long now = (long long)ts.tv_sec + 1; /* 0 stays "never" */
	long long was = __atomic_load_n(last, __ATOMIC_RELAXED);
	return was != now && __atomic_compare_exchange_n(last, &was, now, 0, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED);
}

void vlog_set_level(enum vlog_level lvl) { atomic_store(&vlog_level_cur, (int)lvl); }

int vlog_parse_level(const char *s, enum vlog_level *out)
{
	for (int i = 0; i <= VLOG_DEBUG; i++)
		if (strcmp(s, vlog_names[i]) == 0) {
			*out = (enum vlog_level)i;
			return 0;
		}
	return -1;
}

void vlog(enum vlog_level lvl, const char *fmt, ...)
{
	if ((int)lvl > atomic_load(&vlog_level_cur))
		return;
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ virgod[%d] %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(), vlog_names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
