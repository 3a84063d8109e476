/*
 * analytics.c - the kernel analytics service (port 64000, notes §898,
 * §907, §772/§775, §1052-§1053).
 *
 * Glue between the pure parser (analytics_proto.c), the store of
 * variables with revisions and rings (analytics_store.c), the live-knob
 * registry (daemon/knob.h) and the connections.  Variables arrive from
 * the original's virgo_kernel_analytics.conf (read at start, on SIGHUP and
 * when its mtime/size changes, polled by the tick), from publishers on
 * the port (bare key=value chunks, or `set`), from an outbound stream
 * (analytics_stream.c) and from the node itself (learnt, read-only: the
 * knob registry's reporters, polled by the tick).  A variable that names
 * a knob is applied first and stored only if the knob took it.  One mutex
 * guards the store and the watchers (analytics_watch.c); the file is
 * read by analytics_conf.c.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "../../common/errcode.h"
#include "../../common/evclock.h"
#include "../../common/idpolicy.h"
#include "../../common/frame.h"
#include "../../daemon/config.h"
#include "../../daemon/knob.h"
#include "../../daemon/log.h"
#include "../../daemon/service.h"
#include "analytics_int.h"
#include "analytics_proto.h"
#include "analytics_settings.h"
#include "analytics_store.h"
#include "analytics_stream.h"
#include "analytics_uring.h"

/* ---- applying variables --------------------------------------------------- */

static const char *store_why(int rc)
{
	switch (rc) {
	case -ENOSPC: return "too many variables (analytics_max_keys)";
	case -EACCES: return "read-only: learnt by the node";
	case -EINVAL: return "bad name or value";
	default: return "out of memory";
	}
}

/* mu held.  Applies key=val (a knob first); 1 changed, 0 unchanged, or a
 * negative errno with why filled. */
static int apply_locked(struct analytics *an, const char *key, size_t klen, const char *val,
			size_t vlen, bool learnt, uint64_t *rev, char *why, size_t why_cap)
{
	char k[AN_MAX_KEY + 1], v[AN_MAX_VALUE + 1];
	if (!an_key_ok(key, klen) || vlen > AN_MAX_VALUE) {
		snprintf(why, why_cap, "bad name or value too long");
		return -EINVAL;
	}
	memcpy(k, key, klen);
	k[klen] = '\0';
	memcpy(v, val, vlen);
	v[vlen] = '\0';
	struct an_entry cur;
	bool have = an_store_get(an->st, k, klen, &cur) == 0;
	bool same = have && cur.vlen == vlen && memcmp(cur.val, v, vlen) == 0;
	if (!same) { /* a change: its revision must be reserved (analytics_rev.h) */
		uint64_t next = an_store_rev(an->st) + 1;
		int rc = an_rev_need(&an->rev, &next, why, why_cap);
		if (rc) {
			log_error("analytics: %s", why);
			return rc;
		}
		an_store_skip_to(an->st, next - 1, false);
	}
	if (!learnt && !same && vknob_exists(k)) {
		if (have && cur.learnt) {
			snprintf(why, why_cap, "%s", store_why(-EACCES));
			return -EACCES;
		}
		int rc = vknob_set(k, v, why, why_cap);
		if (rc == -EINVAL)
			return rc;
		if (rc == 0)
			log_info("analytics: knob %s = %s", k, v);
	}
	int rc = an_store_set(an->st, k, klen, v, vlen, learnt, rev);
	if (rc < 0) {
		snprintf(why, why_cap, "%s", store_why(rc));
		return rc;
	}
	if (rc == 1)
		an_notify(an, *rev, k, v, vlen);
	return rc;
}

static int apply(struct analytics *an, const char *key, size_t klen, const char *val, size_t vlen,
		 bool learnt, uint64_t *rev, char *why, size_t why_cap)
{
	pthread_mutex_lock(&an->mu);
	int rc = apply_locked(an, key, klen, val, vlen, learnt, rev, why, why_cap);
	pthread_mutex_unlock(&an->mu);
	return rc;
}

int an_apply_chunk(struct analytics *an, const char *buf, size_t len, const char *from)
{
	size_t pos = 0;
	struct an_pair p;
	int rc, bad = 0;
	while ((rc = an_next_pair(buf, len, &pos, &p)) != 0) {
		char why[VKNOB_WHY];
		uint64_t rev;
		if (rc < 0) {
			snprintf(why, sizeof why, "%s", p.err);
		} else if (apply(an, p.key, p.klen, p.val, p.vlen, false, &rev, why, sizeof why) >= 0) {
			continue;
		}
		if (bad++ < 3)
			log_warn("analytics: %s: '%.*s' refused: %s", from,
				 (int)(p.klen > 64 ? 64 : p.klen), p.key, why);
	}
	return bad;
}

static void stream_line(void *ctx, const char *line, size_t len)
{
	an_apply_chunk(ctx, line, len, "analytics_stream");
}

/* ---- learnt variables and the view for plugins and programs ---------------- */

static void learnt_emit(void *arg, const char *key, const char *value)
{
	struct analytics *an = arg;
	char why[VKNOB_WHY];
	uint64_t rev;
	apply(an, key, strlen(key), value, strnlen(value, AN_MAX_VALUE), true, &rev, why,
	      sizeof why);
}

static int var_get(void *ctx, const char *key, char *buf, size_t cap)
{
	struct analytics *an = ctx;
	struct an_entry e;
	pthread_mutex_lock(&an->mu);
	int rc = an_store_get(an->st, key, strlen(key), &e);
	if (rc == 0) {
		if (cap)
			snprintf(buf, cap, "%s", e.val);
		rc = (int)e.vlen;
	}
	pthread_mutex_unlock(&an->mu);
	return rc;
}

struct env_ctx {
	char *buf;
	size_t cap, used;
	int n;
};

static int env_cb(void *arg, const struct an_entry *e)
{
	struct env_ctx *x = arg;
	size_t need = 9 + strlen(e->key) + 1 + e->vlen + 1;
	if (x->used + need > x->cap)
		return 1;
	char *p = x->buf + x->used;
	int k = sprintf(p, "VIRGO_AN_");
	for (const char *s = e->key; *s; s++)
		p[k++] = (char)((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
					(*s >= '0' && *s <= '9')
				? *s
				: '_');
	p[k++] = '=';
	memcpy(p + k, e->val, e->vlen);
	k += (int)e->vlen;
	p[k++] = '\0';
	x->used += (size_t)k;
	x->n++;
	return 0;
}

static int var_env(void *ctx, char *buf, size_t cap)
{
	struct analytics *an = ctx;
	struct env_ctx x = {buf, cap, 0, 0};
	pthread_mutex_lock(&an->mu);
	an_store_list(an->st, NULL, 0, env_cb, &x);
	pthread_mutex_unlock(&an->mu);
	return x.n;
}

/* ---- requests -------------------------------------------------------------- */

static void reply_err(struct evbuffer *out, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_err(struct evbuffer *out, int err, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(err), msg);
}

/* May c's client change variables (analytics_publish_from)? */
static bool may_publish(struct analytics *an, struct vconn *c)
{
	char list[1024], *save = NULL;
	pthread_mutex_lock(&an->mu);
	bool ok = !an->publish_from[0];
	if (!ok)
		snprintf(list, sizeof list, "%s", an->publish_from);
	pthread_mutex_unlock(&an->mu);
	if (ok) /* anyone may (the default): nothing to compare */
		return true;
	char ip[64];
	snprintf(ip, sizeof ip, "%s", vconn_peer(c));
	char *colon = strrchr(ip, ':');
	if (colon)
		*colon = '\0';
	for (char *t = strtok_r(list, ", \t", &save); t && !ok; t = strtok_r(NULL, ", \t", &save)) {
		size_t tl = strlen(t);
		if (tl && t[tl - 1] == '*') /* a prefix: 10.0.* */
			ok = strncmp(ip, t, tl - 1) == 0;
		else
			ok = strcmp(ip, t) == 0;
	}
	return ok;
}

static void do_set(struct analytics *an, struct vconn *c, const struct an_req *r, bool quiet)
{
	struct evbuffer *out = vconn_out(c);
	if (!may_publish(an, c)) {
		reply_err(out, EACCES, "%s may not change variables (analytics_publish_from)",
			  vconn_peer(c));
		return;
	}
	/* which keys this identity may set (analytics_publishers) */
	char pubs[AN_PUBLISHERS_MAX];
	pthread_mutex_lock(&an->mu);
	pubs[0] = '\0';
	if (an->publishers[0]) /* the common case, none: no copy per request */
		snprintf(pubs, sizeof pubs, "%s", an->publishers);
	pthread_mutex_unlock(&an->mu);
	const char *id = vconn_identity(c);
	size_t pos = 0;
	struct an_pair p;
	int rc;
	uint64_t last = 0;
	while ((rc = an_next_pair(r->arg, r->arg_len, &pos, &p)) != 0) {
		char why[VKNOB_WHY];
		uint64_t rev = 0;
		if (rc < 0) {
			reply_err(out, EINVAL, "%.*s: %s", (int)(p.klen > 64 ? 64 : p.klen), p.key,
				  p.err);
			if (quiet)
				continue;
			return;
		}
		if (!idpol_map_allows(pubs, id, p.key, p.klen, true)) {
			reply_err(out, EACCES, "%.*s: identity '%s' may not publish this key "
					       "(analytics_publishers)",
				  (int)(p.klen > 64 ? 64 : p.klen), p.key, id[0] ? id : "-");
			if (quiet)
				continue;
			return;
		}
		rc = apply(an, p.key, p.klen, p.val, p.vlen, false, &rev, why, sizeof why);
		if (rc < 0) {
			reply_err(out, -rc, "%.*s: %s", (int)p.klen, p.key, why);
			if (quiet)
				continue;
			return;
		}
		last = rev;
	}
	if (!quiet) { /* "OK <rev>" by hand: snprintf was a sixth of a change's cost */
		char line[32];
		char *e = line + 3 + evc_u64(line + 3, last);
		memcpy(line, "OK ", 3);
		memcpy(e, "\r\n", 2);
		evbuffer_add(out, line, (size_t)(e + 2 - line));
	}
}

struct ls_ctx {
	struct evbuffer *out;
	const char *word;
	bool plain;
};

static int ls_cb(void *arg, const struct an_entry *e)
{
	struct ls_ctx *x = arg;
	if (x->plain)
		evbuffer_add_printf(x->out, "%s=%s\n", e->key, e->val);
	else
		evbuffer_add_printf(x->out, "%s %s %" PRIu64 " %s%s\r\n", x->word, e->key, e->rev,
				    e->learnt ? "(learnt) " : "", e->val);
	return 0;
}

struct knob_ls {
	struct analytics *an;
	struct evbuffer *out;
	const char *prefix;
	size_t plen;
};

/* Knobs never set here are listed with revision 0 and the value in force. */
static void knob_ls_cb(void *arg, const char *name, const char *doc)
{
	(void)doc;
	struct knob_ls *x = arg;
	struct an_entry e;
	if (x->plen && strncmp(name, x->prefix, x->plen) != 0)
		return;
	pthread_mutex_lock(&x->an->mu);
	bool have = an_store_get(x->an->st, name, strlen(name), &e) == 0;
	pthread_mutex_unlock(&x->an->mu);
	char v[128];
	if (!have && vknob_get(name, v, sizeof v) == 0)
		evbuffer_add_printf(x->out, "VAR %s 0 %s\r\n", name, v);
}

static int hist_cb(void *arg, const struct an_entry *e)
{
	evbuffer_add_printf(arg, "HIST %" PRIu64 " %s\r\n", e->rev, e->val);
	return 0;
}

static const char an_help[] =
	"HELP get <name>                     VALUE <name> <rev> <value>\r\n"
	"HELP set <name>=<value>[,...]       OK <rev> (a refused knob value: ERR EINVAL <why>)\r\n"
	"HELP <name>=<value>[,...]           publish: no reply unless refused\r\n"
	"HELP ls [<prefix>]                  VAR <name> <rev> <value> ... END\r\n"
	"HELP watch [from <rev>]             WATCHING <rev>, then CHANGE <rev> <name> <value>\r\n"
	"HELP history <name>                 HIST <rev> <value> ... END (the last 500)\r\n"
	"HELP " AN_STREAM_START "   name=value lines for ever\r\n"
	"HELP help | quit\r\n"
	"END\r\n";

static int exec_req(struct analytics *an, struct vconn *c, struct an_conn *cc,
		    const struct an_req *r)
{
	struct evbuffer *out = vconn_out(c);
	switch (r->cmd) {
	case AN_GET: {
		char key[AN_MAX_KEY + 1], v[128];
		memcpy(key, r->arg, r->arg_len);
		key[r->arg_len] = '\0';
		struct an_entry e;
		pthread_mutex_lock(&an->mu);
		int rc = an_store_get(an->st, key, r->arg_len, &e);
		if (rc == 0)
			evbuffer_add_printf(out, "VALUE %s %" PRIu64 " %s\r\n", key, e.rev, e.val);
		pthread_mutex_unlock(&an->mu);
		if (rc != 0 && vknob_get(key, v, sizeof v) == 0)
			evbuffer_add_printf(out, "VALUE %s 0 %s\r\n", key, v);
		else if (rc != 0)
			reply_err(out, ENOENT, "no such variable");
		return VSVC_KEEP;
	}
	case AN_SET:
	case AN_PUBLISH: {
		/* the watchers on this loop get the change before our reply */
		struct an_run run;
		an_run_begin(&run, vconn_base(c));
		do_set(an, c, r, r->cmd == AN_PUBLISH);
		an_run_end(&run);
		return VSVC_KEEP;
	}
	case AN_LS: {
		struct evbuffer *tmp = evbuffer_new();
		if (!tmp) {
			reply_err(out, ENOMEM, "out of memory");
			return VSVC_KEEP;
		}
		struct ls_ctx x = {tmp, "VAR", false};
		pthread_mutex_lock(&an->mu);
		an_store_list(an->st, r->arg, r->arg_len, ls_cb, &x);
		pthread_mutex_unlock(&an->mu);
		char prefix[AN_MAX_KEY + 1];
		memcpy(prefix, r->arg, r->arg_len);
		prefix[r->arg_len] = '\0';
		struct knob_ls k = {an, tmp, prefix, r->arg_len};
		vknob_foreach(knob_ls_cb, &k);
		evbuffer_add_buffer(out, tmp);
		evbuffer_free(tmp);
		evbuffer_add(out, "END\r\n", 5);
		return VSVC_KEEP;
	}
	case AN_HISTORY: {
		struct evbuffer *tmp = evbuffer_new();
		if (!tmp) {
			reply_err(out, ENOMEM, "out of memory");
			return VSVC_KEEP;
		}
		pthread_mutex_lock(&an->mu);
		int rc = an_store_history(an->st, r->arg, r->arg_len, hist_cb, tmp);
		pthread_mutex_unlock(&an->mu);
		if (rc == -ENOENT) {
			reply_err(out, ENOENT, "no such variable");
		} else {
			evbuffer_add_buffer(out, tmp);
			evbuffer_add(out, "END\r\n", 5);
		}
		evbuffer_free(tmp);
		return VSVC_KEEP;
	}
	case AN_WATCH:
	case AN_STREAM: {
		char why[200];
		int rc = an_watch_start(an, c, cc, r, r->cmd == AN_STREAM, why, sizeof why);
		if (rc)
			reply_err(out, -rc, "%s", why);
		return VSVC_KEEP;
	}
	case AN_HELP:
		evbuffer_add(out, an_help, sizeof an_help - 1);
		return VSVC_KEEP;
	case AN_QUIT:
		return VSVC_CLOSE;
	case AN_BAD:
	default:
		reply_err(out, EINVAL, "%s", r->err ? r->err : "bad request");
		return VSVC_KEEP;
	}
}

static int analytics_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	struct analytics *an = vconn_svc(c);
	struct an_conn *cc = vconn_state(c);
	for (;;) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			break;
		if (cc->w) { /* a watch connection only streams: input is ignored */
			evbuffer_drain(in, len);
			break;
		}
		if (vconn_out_full(c))
			return VSVC_MORE;
		const uint8_t *buf = evbuffer_pullup(in, -1);
		const uint8_t *line;
		size_t ll, used;
		enum frame_result fr =
			frame_next_line(&cc->fs, buf, len, eof, AN_MAX_LINE, &line, &ll, &used);
		int rc = VSVC_KEEP;
		if (fr == FRAME_LINE) {
			struct an_req r;
			an_parse_request((const char *)line, ll, &r);
			rc = exec_req(an, c, cc, &r);
		} else if (fr == FRAME_TOOLONG) {
			reply_err(vconn_out(c), EMSGSIZE, "line longer than %d bytes", AN_MAX_LINE);
		}
		evbuffer_drain(in, used);
		if (rc == VSVC_CLOSE)
			return VSVC_CLOSE;
		if (fr == FRAME_MORE && used == 0)
			break;
	}
	return eof ? VSVC_CLOSE : VSVC_KEEP;
}

static void analytics_conn_close(struct vconn *c)
{
	an_watch_end(vconn_svc(c), vconn_state(c));
}

/* ---- life cycle ------------------------------------------------------------- */

static int analytics_init(const struct vd_node *node, void **out)
{
	const struct an_settings *s = node->settings;
	struct analytics *an = calloc(1, sizeof *an);
	if (!an)
		return -ENOMEM;
	an->st = an_store_new(s->max_keys, s->history_bytes);
	if (!an->st) {
		free(an);
		return -ENOMEM;
	}
	pthread_mutex_init(&an->mu, NULL);
	an->max_watchers = s->max_watchers;
	an->node_id = node->node_id;
	snprintf(an->conf, sizeof an->conf, "%s", s->conf);
	snprintf(an->publish_from, sizeof an->publish_from, "%s", s->publish_from);
	char bad[256];
	if (idpol_map_check(s->publishers, bad, sizeof bad) != 0) {
		log_error("analytics_publishers: %s", bad);
		an_store_free(an->st);
		pthread_mutex_destroy(&an->mu);
		free(an);
		return -EINVAL;
	}
	snprintf(an->publishers, sizeof an->publishers, "%s", s->publishers);
	char err[400];
	if (an_rev_open(&an->rev, s->dir, node->node_id, &an->rev_base, err, sizeof err) != 0)
		log_warn("analytics: revisions start at 1 and a watch cannot tell a restart "
			 "(analytics_dir: %s)", err);
	an_store_skip_to(an->st, an->rev_base, true);
	vknob_node_init();
	vknob_set_vars(var_get, var_env, an);
	an_conf_check(an, true);
	if (s->stream[0] && !(an->stream = an_stream_start(s->stream, stream_line, an))) {
		log_error("analytics_stream: '%s' is not host:port", s->stream);
		vknob_unregister(an);
		an_store_free(an->st);
		pthread_mutex_destroy(&an->mu);
		free(an);
		return -EINVAL;
	}
	char why[160] = "analytics_uring = no";
	bool uring = s->uring && an_uring_probe(why, sizeof why);
	an_uring_enable(uring);
	log_info("analytics: %s%s%s, max %d variables, %d watchers, watcher sends: %s%s%s",
		 an->conf[0] ? "file " : "no file", an->conf, s->stream[0] ? ", streaming" : "",
		 s->max_keys, s->max_watchers, uring ? "io_uring batches" : "one send(2) each (",
		 uring ? "" : why, uring ? "" : ")");
	*out = an;
	return 0;
}

static void analytics_fini(void *svc)
{
	struct analytics *an = svc;
	an_stream_stop(an->stream);
	vknob_unregister(an);
	an_watchers_free(an);
	an_store_free(an->st);
	pthread_mutex_destroy(&an->mu);
	free(an);
}

/* SIGHUP: the file is read again (and analytics_conf/_publish_from/
 * _publishers may have changed; a malformed _publishers refuses the
 * reload). */
static int analytics_reload(void *svc, const void *settings)
{
	struct analytics *an = svc;
	const struct an_settings *s = settings;
	char bad[256];
	if (idpol_map_check(s->publishers, bad, sizeof bad) != 0) {
		log_error("analytics_publishers: %s (the old policy stays)", bad);
		return -1;
	}
	pthread_mutex_lock(&an->mu);
	snprintf(an->conf, sizeof an->conf, "%s", s->conf);
	snprintf(an->publish_from, sizeof an->publish_from, "%s", s->publish_from);
	snprintf(an->publishers, sizeof an->publishers, "%s", s->publishers);
	pthread_mutex_unlock(&an->mu);
	an_conf_check(an, true);
	return 0;
}

static void analytics_tick(void *svc)
{
	struct analytics *an = svc;
	an_conf_check(an, false);
	vknob_report(learnt_emit, an);
	an_watchers_tick(an);
}

const struct vsvc analytics_service = {
	.name = "analytics",
	.base_port = 64000,
	.conn_size = sizeof(struct an_conn),
	.movable = false, /* a watch's feed is tied to its loop */
	.unpinned = true, /* measured: pinned workers gave watchers a p99 of ms on a busy host */
	/* one loop, as Redis: a publisher and its watchers on the same
	 * thread need no cross-thread wake-up per change (measured: p50 of
	 * one watcher 40 us instead of 60-100 us; 1,000 watchers no worse) */
	.threads = 1,
	.keys = an_settings_keys,
	.settings_size = sizeof(struct an_settings),
	.settings_defaults = an_settings_defaults,
	.needs = an_settings_needs,
	.init = analytics_init,
	.reload = analytics_reload,
	.fini = analytics_fini,
	.on_input = analytics_on_input,
	.conn_close = analytics_conn_close,
	.tick = analytics_tick,
};
