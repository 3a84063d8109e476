/*
 * log.c - the daemon's logger (log.h).  Formats the whole line first and
 * emits it with a single write() so lines from worker threads never
 * interleave.  The log file's descriptor number never changes: a reopen
 * dup2()s the new file onto it, so a writer on another thread writes to
 * the old file or the new one, never to a closed descriptor.
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static _Atomic int vlog_level_cur = VLOG_INFO;
static const char *const vlog_names[] = {"error", "warn", "info", "debug"};
static const int vlog_prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
static int vlog_fd = STDERR_FILENO; /* set before threads start */
static bool vlog_to_fd = true, vlog_syslog;
static char vlog_path[512];
static pthread_mutex_t vlog_rl_mu = PTHREAD_MUTEX_INITIALIZER;

static long long mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec + 1; /* 0 stays "never" */
}

void vlog_set_level(enum vlog_level lvl) { atomic_store(&vlog_level_cur, (int)lvl); }
enum vlog_level vlog_get_level(void) { return (enum vlog_level)atomic_load(&vlog_level_cur); }
const char *vlog_level_name(enum vlog_level lvl)
{
	return (int)lvl >= 0 && lvl <= VLOG_DEBUG ? vlog_names[lvl] : "?";
}

int vlog_parse_level(const char *s, enum vlog_level *out)
{
	for (int i = 0; i <= VLOG_DEBUG; i++)
		if (strcmp(s, vlog_names[i]) == 0) {
			*out = (enum vlog_level)i;
			return 0;
		}
	return -1;
}

static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	return fd < 0 ? -errno : fd;
}

int vlog_open_file(const char *path)
{
	if (strlen(path) >= sizeof vlog_path)
		return -ENAMETOOLONG;
	int fd = open_log(path);
	if (fd < 0)
		return fd;
	snprintf(vlog_path, sizeof vlog_path, "%s", path);
	vlog_fd = fd;
	vlog_to_fd = true;
	return 0;
}

int vlog_reopen(void)
{
	if (!vlog_path[0])
		return 0;
	int fd = open_log(vlog_path);
	if (fd < 0)
		return fd;
	int rc = dup2(fd, vlog_fd) < 0 ? -errno : 0;
	close(fd);
	return rc;
}

void vlog_use_syslog(void)
{
	openlog("virgod", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	vlog_syslog = true;
	vlog_to_fd = vlog_path[0] != '\0';
}

const char *vlog_quote(char *buf, size_t cap, const char *s, size_t len)
{
	bool quote = len == 0;
	for (size_t i = 0; i < len && !quote; i++)
		quote = s[i] == ' ' || s[i] == '=';
	size_t o = 0, room = cap - (quote ? 3 : 1); /* quotes and NUL */
	if (quote)
		buf[o++] = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		bool plain = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
		size_t need = plain ? 1 : 4;
		if (o + need + (i + 1 == len ? 0 : 3) > room) {
			/* the previous byte fitted with room for these */
			memcpy(buf + o, "...", 3);
			o += 3;
			break;
		}
		if (plain)
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, 5, "\\x%02x", ch);
	}
	if (quote)
		buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static void vlog_emit(enum vlog_level lvl, const char *fmt, va_list ap, unsigned dropped)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ virgod[%d] %s: ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, (int)getpid(), vlog_names[lvl]);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof line - 2)
		len = sizeof line - 2;
	if (dropped) {
		int k = snprintf(line + len, sizeof line - len - 1, " suppressed=%u", dropped);
		len += k < 0 ? 0 : (size_t)k;
		if (len > sizeof line - 2)
			len = sizeof line - 2;
	}
	line[len] = '\0';
	if (vlog_syslog)
		syslog(vlog_prio[lvl], "%s", line + n);
	if (vlog_to_fd) {
		line[len++] = '\n';
		ssize_t w = write(vlog_fd, line, len);
		(void)w;
	}
}

void vlog(enum vlog_level lvl, const char *fmt, ...)
{
	if ((int)lvl > atomic_load(&vlog_level_cur))
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog_emit(lvl, fmt, ap, 0);
	va_end(ap);
}

void vlog_limited(struct vlog_rl *rl, enum vlog_level lvl, const char *fmt, ...)
{
	if ((int)lvl > atomic_load(&vlog_level_cur))
		return;
	long long now = mono_s();
	unsigned dropped = 0;
	bool emit;
	pthread_mutex_lock(&vlog_rl_mu);
	if (rl->sec != now) {
		rl->sec = now;
		rl->n = 0;
	}
	emit = rl->n < VLOG_RL_BURST;
	if (emit) {
		rl->n++;
		dropped = rl->dropped;
		rl->dropped = 0;
	} else {
		rl->dropped++;
	}
	pthread_mutex_unlock(&vlog_rl_mu);
	if (!emit)
		return;
	va_list ap;
	va_start(ap, fmt);
	vlog_emit(lvl, fmt, ap, dropped);
	va_end(ap);
}
