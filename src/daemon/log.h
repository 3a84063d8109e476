/*
 * log.h - leveled logging to stderr for virgod.
 *
 * One line per event: ISO time, level, message.  Thread-safe (each line is
 * one write).  The level comes from the config (log_level) or --log-level.
 */
#ifndef VIRGO_LOG_H
#define VIRGO_LOG_H

enum vlog_level { VLOG_ERROR = 0, VLOG_WARN, VLOG_INFO, VLOG_DEBUG };

void vlog_set_level(enum vlog_level lvl);
/* Parses error/warn/info/debug; returns 0 or -1. */
int vlog_parse_level(const char *s, enum vlog_level *out);
void vlog(enum vlog_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) vlog(VLOG_ERROR, __VA_ARGS__)
#define log_warn(...) vlog(VLOG_WARN, __VA_ARGS__)
#define log_info(...) vlog(VLOG_INFO, __VA_ARGS__)
#define log_debug(...) vlog(VLOG_DEBUG, __VA_ARGS__)

/* True at most once a second per *last (a call site's own clock, seconds
 * of CLOCK_MONOTONIC): for conditions a client can repeat at will, so the
 * log cannot be flooded (an accept loop out of descriptors, refusals). */
int vlog_ratelimit(long long *last);
#define log_warn_every(...)                                                                        \
	do {                                                                                       \
		static long long vlog_last_;                                                       \
		if (vlog_ratelimit(&vlog_last_))                                                    \
			vlog(VLOG_WARN, __VA_ARGS__);                                              \
	} while (0)

#endif
