/*
 * cfgfile.c - config file loading (cfgfile.h).
 *
 * The file is read whole (bounded at 1 MiB), legacy address lines are
 * replaced by comment lines so libinih's line numbers stay true, and the
 * result is parsed with ini_parse_string.
 */
#include "cfgfile.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CFGFILE_MAX (1 << 20)

struct cf_run {
	struct cfgfile_ctx ctx;
	cfgfile_key_fn on_key;
};

static int cf_handler(void *u, const char *section, const char *name, const char *value)
{
	struct cf_run *r = u;
	return r->on_key(&r->ctx, section, name, value);
}

static int is_legacy_line(const char *s, size_t n)
{
	int digits = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c >= '0' && c <= '9')
			digits++;
		else if (c != '.' && c != ',' && c != ' ' && c != '\t' && c != '\r')
			return 0;
	}
	return digits > 0;
}

int cfgfile_load(const char *path, cfgfile_key_fn on_key, cfgfile_legacy_fn on_legacy,
		 void *user, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *buf = malloc(CFGFILE_MAX + 1);
	if (!buf) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	size_t n = fread(buf, 1, CFGFILE_MAX + 1, f);
	fclose(f);
	if (n > CFGFILE_MAX) {
		free(buf);
		snprintf(err, errlen, "%s: larger than %d bytes", path, CFGFILE_MAX);
		return -1;
	}
	buf[n] = '\0';
	struct cf_run r = {.on_key = on_key};
	r.ctx.user = user;
	int lineno = 0;
	for (char *p = buf; *p;) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (is_legacy_line(p, len)) {
			char save = p[len];
			p[len] = '\0';
			int ok = on_legacy ? on_legacy(&r.ctx, p) : 0;
			p[len] = save;
			if (!ok) {
				snprintf(err, errlen, "%s:%d: %s", path, lineno,
					 r.ctx.err[0] ? r.ctx.err : "address list not allowed here");
				free(buf);
				return -1;
			}
			p[0] = ';'; /* hide it from inih, keep the numbering */
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	int rc = ini_parse_string(buf, cf_handler, &r);
	free(buf);
	if (rc != 0) {
		snprintf(err, errlen, "%s:%d: %s", path, rc,
			 r.ctx.err[0] ? r.ctx.err : "syntax error (expected key = value)");
		return -1;
	}
	return 0;
}

int cfgfile_find(const char *explicit_path, const char *env_override, const char *name,
		 char *buf, size_t buflen)
{
	if (explicit_path) {
		snprintf(buf, buflen, "%s", explicit_path);
		return 1;
	}
	const char *e = env_override ? getenv(env_override) : NULL;
	if (e && *e) {
		snprintf(buf, buflen, "%s", e);
		return 1;
	}
	const char *dir = getenv("VIRGO_CONF_DIR");
	if (dir && *dir) {
		snprintf(buf, buflen, "%s/%s", dir, name);
		if (access(buf, F_OK) == 0)
			return 1;
	}
	snprintf(buf, buflen, "/etc/virgo/%s", name);
	if (access(buf, F_OK) == 0)
		return 1;
	return 0;
}
