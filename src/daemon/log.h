/*
 * log.h - leveled logging for virgod: stderr, a log file, or syslog.
 *
 * One line per event: ISO time, level, message.  Thread-safe (each line is
 * one write).  The level comes from the config (log_level) or --log-level.
 * Lines go to stderr unless a log file (--log-file / log_file: appended,
 * reopened on SIGHUP so logrotate can move it) or syslog (--syslog /
 * log_syslog) is chosen; both may be.  Events a client causes are logged
 * as "<event> peer=<ip:port> key=value ..." (docs/PROTOCOL.md, "Log
 * events") through the rate-limited forms, so no client can flood the log.
 */
#ifndef VIRGO_LOG_H
#define VIRGO_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum vlog_level { VLOG_ERROR = 0, VLOG_WARN, VLOG_INFO, VLOG_DEBUG };

void vlog_set_level(enum vlog_level lvl);
enum vlog_level vlog_get_level(void);
const char *vlog_level_name(enum vlog_level lvl); /* "error" .. "debug" */
/* Parses error/warn/info/debug; returns 0 or -1. */
int vlog_parse_level(const char *s, enum vlog_level *out);
void vlog(enum vlog_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends lines to path (created 0640, appended) instead of stderr.  0 or
 * -errno (the destination is then unchanged).  Main thread, at start-up. */
int vlog_open_file(const char *path);
/* Reopens the log file by its path (after logrotate moved it); lines
 * written meanwhile go to the old file.  0, or -errno (the old file is
 * kept).  No-op without a log file. */
int vlog_reopen(void);
/* Also (or, without a log file, instead of stderr) send lines to syslog,
 * facility daemon, ident "virgod"; levels map to LOG_ERR, LOG_WARNING,
 * LOG_INFO and LOG_DEBUG.  Main thread, at start-up. */
void vlog_use_syslog(void);

/* A client-supplied string made safe for one log line: printable ASCII
 * other than '"' and '\\' kept, the rest as \xHH, at most cap-1 bytes
 * (cut strings end in "..."); double-quoted when empty or holding a space
 * or '='.  Returns buf (the caller's, cap >= 8). */
const char *vlog_quote(char *buf, size_t cap, const char *s, size_t len);

/* A call site's budget for lines a client can cause at will: at most
 * VLOG_RL_BURST lines a second; lines over it are counted and the next
 * line logged ends in " suppressed=N". */
#define VLOG_RL_BURST 5
struct vlog_rl {
	long long sec;
	int n;
	unsigned dropped;
};
void vlog_limited(struct vlog_rl *rl, enum vlog_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(...) vlog(VLOG_ERROR, __VA_ARGS__)
#define log_warn(...) vlog(VLOG_WARN, __VA_ARGS__)
#define log_info(...) vlog(VLOG_INFO, __VA_ARGS__)
#define log_debug(...) vlog(VLOG_DEBUG, __VA_ARGS__)

/* Rate-limited per call site (struct vlog_rl above): for conditions a
 * client can repeat at will (an accept loop out of descriptors, refusals,
 * a client's jobs killed or cancelled). */
#define log_every(lvl, ...)                                                                        \
	do {                                                                                       \
		static struct vlog_rl vlog_rl_;                                                    \
		vlog_limited(&vlog_rl_, (lvl), __VA_ARGS__);                                       \
	} while (0)
#define log_warn_every(...) log_every(VLOG_WARN, __VA_ARGS__)
#define log_info_every(...) log_every(VLOG_INFO, __VA_ARGS__)

#endif
