/*
 * cfgfile.c - config file loading (cfgfile.h).
 *
 * The file is read whole (bounded at 1 MiB), legacy address lines are
 * replaced by comment lines so libinih's line numbers stay true, and the
 * result is parsed with ini_parse_string.  libinih reads a line in pieces
 * of at most 199 characters (its compiled-in INI_MAX_LINE), so a longer
 * `key = value` line (a long allow_exec list) is given to it as
 * `key = \x01<n>` and its value, split off here by libinih's own rules,
 * is put back in the handler: long lines work and line numbers stay true.
 */
#include "cfgfile.h"

#include <errno.h>
#include <stdbool.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CFGFILE_MAX (1 << 20)
/* lines at least this long are not given to libinih as they are */
#define CF_LONG 190
#define CF_LONG_MARK '\x01'

struct cf_run {
	struct cfgfile_ctx ctx;
	cfgfile_key_fn on_key;
	char **longv; /* values of long lines, by index */
	size_t nlong;
};

static int cf_handler(void *u, const char *section, const char *name, const char *value)
{
	struct cf_run *r = u;
	if (value[0] == CF_LONG_MARK) {
		size_t i = strtoul(value + 1, NULL, 10);
		if (i < r->nlong)
			value = r->longv[i];
	}
	return r->on_key(&r->ctx, section, name, value);
}

static bool cf_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

/* Rewrites the long line p[0..len) for libinih into out (room for at
 * least len + 1 bytes): a comment becomes ";", `key = value` becomes
 * `key = \x01<n>` with the value kept in r.  Returns the bytes written,
 * or -1 with r->ctx.err set. */
static long cf_long_line(struct cf_run *r, const char *p, size_t len, char *out)
{
	size_t i = 0;
	while (i < len && cf_space(p[i]))
		i++;
	if (i == len || p[i] == ';' || p[i] == '#') {
		out[0] = ';';
		return 1;
	}
	if (p[i] == '[') {
		snprintf(r->ctx.err, sizeof r->ctx.err, "section name too long");
		return -1;
	}
	const char *eq = NULL;
	for (size_t k = i; k < len && !eq; k++)
		if (p[k] == '=' || p[k] == ':')
			eq = p + k;
	if (!eq) {
		snprintf(r->ctx.err, sizeof r->ctx.err, "syntax error (expected key = value)");
		return -1;
	}
	size_t klen = (size_t)(eq - (p + i));
	while (klen > 0 && cf_space(p[i + klen - 1]))
		klen--;
	if (klen > 100) {
		snprintf(r->ctx.err, sizeof r->ctx.err, "key too long");
		return -1;
	}
	const char *v = eq + 1, *end = p + len;
	while (v < end && cf_space(*v))
		v++;
	/* an inline comment: ';' after whitespace (libinih's rule) */
	for (const char *c = v; c < end; c++)
		if (*c == ';' && c > v && cf_space(c[-1])) {
			end = c;
			break;
		}
	while (end > v && cf_space(end[-1]))
		end--;
	char **nv = realloc(r->longv, (r->nlong + 1) * sizeof *nv);
	char *val = nv ? strndup(v, (size_t)(end - v)) : NULL;
	if (nv)
		r->longv = nv;
	if (!val) {
		snprintf(r->ctx.err, sizeof r->ctx.err, "out of memory");
		return -1;
	}
	r->longv[r->nlong] = val;
	int w = sprintf(out, "%.*s = %c%zu", (int)klen, p + i, CF_LONG_MARK, r->nlong);
	r->nlong++;
	return w;
}

static void cf_run_free(struct cf_run *r)
{
	for (size_t i = 0; i < r->nlong; i++)
		free(r->longv[i]);
	free(r->longv);
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
	/* lines are copied to ob (never longer than buf: long ones shrink) */
	char *ob = malloc(n + 1);
	size_t on = 0;
	int rc = ob ? 0 : -1;
	if (!ob)
		snprintf(r.ctx.err, sizeof r.ctx.err, "out of memory");
	for (char *p = buf; *p && rc == 0;) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		lineno++;
		if (is_legacy_line(p, len)) {
			char save = p[len];
			p[len] = '\0';
			int ok = on_legacy ? on_legacy(&r.ctx, p) : 0;
			p[len] = save;
			if (!ok) {
				if (!r.ctx.err[0])
					snprintf(r.ctx.err, sizeof r.ctx.err,
						 "address list not allowed here");
				rc = lineno;
				break;
			}
			p[0] = ';'; /* hide it from inih, keep the numbering */
		}
		if (len >= CF_LONG) {
			long w = cf_long_line(&r, p, len, ob + on);
			if (w < 0) {
				rc = lineno;
				break;
			}
			on += (size_t)w;
		} else {
			memcpy(ob + on, p, len);
			on += len;
		}
		if (!nl)
			break;
		ob[on++] = '\n';
		p = nl + 1;
	}
	free(buf);
	if (rc == 0) {
		ob[on] = '\0';
		rc = ini_parse_string(ob, cf_handler, &r);
	}
	free(ob);
	cf_run_free(&r);
	if (rc != 0) {
		if (rc < 0)
			snprintf(err, errlen, "%s: %s", path, r.ctx.err);
		else
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
