/*
 * cfgfile.h - reads a VIRGO config file: INI "key = value" lines via libinih,
 * plus the original's legacy form (a bare line of comma-separated IPv4
 * addresses, PROTOCOL.md "Compatibility with the original VIRGO"), which is handed to a separate callback.
 *
 * The key handler returns 0 and fills the error text to reject a line; the
 * loader then reports "<file>:<line>: <text>", so an unknown key or a bad
 * value always names the key and the line.
 */
#ifndef VIRGO_CFGFILE_H
#define VIRGO_CFGFILE_H

#include <stddef.h>

struct cfgfile_ctx {
	char err[256]; /* set by a handler that rejects a line */
	void *user;
};

/* Returns 1 to accept, 0 to reject (then ctx->err says why). */
typedef int (*cfgfile_key_fn)(struct cfgfile_ctx *ctx, const char *section, const char *key,
			      const char *value);
typedef int (*cfgfile_legacy_fn)(struct cfgfile_ctx *ctx, const char *line);

/* 0 on success; -1 with "<path>:<line>: why" (or an open error) in err. */
int cfgfile_load(const char *path, cfgfile_key_fn on_key, cfgfile_legacy_fn on_legacy,
		 void *user, char *err, size_t errlen);

/* Finds the config file to use: explicit (returned as is, even if missing),
 * else $env_override, else $VIRGO_CONF_DIR/name, else /etc/virgo/name if it
 * exists.  Returns 1 with buf filled, 0 when built-in defaults apply. */
int cfgfile_find(const char *explicit_path, const char *env_override, const char *name,
		 char *buf, size_t buflen);

#endif
