/*
 * config.c - virgo_cloud.conf parsing (config.h).  Keys are a table so the
 * set of valid keys, their ranges and the docs stay in one place; service
 * ports are derived from the service table, so a new service module gets
 * its <name>_port key without touching this file.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/cfgfile.h"
#include "../common/cfgval.h"
#include "service.h"

void vd_config_defaults(struct vd_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->node_id = 1;
	snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1");
	for (int i = 0; i < VD_MAX_SERVICES; i++)
		cfg->ports[i] = cfg->svc_threads[i] = cfg->svc_max_conns[i] = -1;
	cfg->mem_limit = UINT64_C(256) << 20;
	cfg->max_alloc = UINT64_C(64) << 20;
	cfg->max_value = UINT64_C(64) << 20;
	cfg->max_line = 64 * 1024;
	cfg->threads = 0;
	cfg->cpu_affinity = true;
	cfg->max_conns = 4096;
	cfg->idle_timeout_s = 300;
	cfg->request_timeout_s = 60;
	cfg->drain_timeout_ms = 5000;
	cfg->body_budget = 0;
	cfg->body_timeout_s = 60;
	cfg->log_level = VLOG_INFO;
	size_t at = 0;
	for (int i = 0; vsvc_table[i]; i++) {
		const struct vsvc *svc = vsvc_table[i];
		cfg->svc_settings_at[i] = at;
		if (svc->settings_size == 0)
			continue;
		if (at + svc->settings_size > VD_SETTINGS_MAX)
			abort(); /* a build error: raise VD_SETTINGS_MAX */
		if (svc->settings_defaults)
			svc->settings_defaults(cfg->svc_settings + at);
		at += (svc->settings_size + 15) & ~(size_t)15;
	}
}

void vd_config_needs(const struct vd_config *cfg, int idx, struct vsvc_needs *out)
{
	out->largest_reply = cfg->max_value + cfg->max_line;
	out->fds = 0;
	if (vsvc_table[idx]->needs)
		vsvc_table[idx]->needs(cfg, vd_config_settings(cfg, idx), out);
}

const void *vd_config_settings(const struct vd_config *cfg, int idx)
{
	if (vsvc_table[idx]->settings_size == 0)
		return NULL;
	return cfg->svc_settings + cfg->svc_settings_at[idx];
}

static int bad(struct cfgfile_ctx *ctx, const char *key, const char *value, const char *want)
{
	snprintf(ctx->err, sizeof ctx->err, "bad value '%s' for %s (%s)", value, key, want);
	return 0;
}

/* A key one of the services declared: 1 (taken), 0 (a bad value, err
 * set), -1 (no service has it). */
static int svc_key(struct vd_config *cfg, struct cfgfile_ctx *ctx, const char *key,
		   const char *value)
{
	for (int i = 0; vsvc_table[i]; i++) {
		const struct vsvc_key *k = vsvc_table[i]->keys;
		for (; k && k->name; k++) {
			if (strcmp(k->name, key) != 0)
				continue;
			unsigned char *f = cfg->svc_settings + cfg->svc_settings_at[i] + k->offset;
			long v;
			uint64_t sz;
			bool b;
			switch (k->type) {
			case VSVC_KEY_INT:
				if (cv_int(value, (long)k->min, (long)k->max, &v))
					return bad(ctx, key, value, k->want);
				*(int *)(void *)f = (int)v;
				break;
			case VSVC_KEY_SIZE:
				if (cv_size(value, &sz) || sz < (uint64_t)k->min || sz > (uint64_t)k->max)
					return bad(ctx, key, value, k->want);
				memcpy(f, &sz, sizeof sz);
				break;
			case VSVC_KEY_BOOL:
				if (cv_bool(value, &b))
					return bad(ctx, key, value, "yes or no");
				*(bool *)(void *)f = b;
				break;
			case VSVC_KEY_STR:
				if (strlen(value) >= k->len)
					return bad(ctx, key, value, k->want);
				snprintf((char *)f, k->len, "%s", value);
				break;
			}
			return 1;
		}
	}
	return -1;
}

int vd_config_port(const struct vd_config *cfg, int idx)
{
	if (cfg->ports[idx] >= 0)
		return cfg->ports[idx];
	return vsvc_table[idx]->base_port + cfg->port_offset;
}

int vd_config_max_conns(const struct vd_config *cfg, int idx)
{
	/* by default one service may take 3/4 of the node's connections, so
	 * a flood on one port always leaves room on the others */
	int n = cfg->svc_max_conns[idx] > 0 ? cfg->svc_max_conns[idx]
					    : cfg->max_conns - cfg->max_conns / 4;
	return n < cfg->max_conns ? n : cfg->max_conns;
}

bool vd_config_has_auth(const struct vd_config *cfg)
{
	return (cfg->tls_cert[0] && cfg->tls_ca[0]) || cfg->auth_token[0] ||
	       cfg->auth_tokens_file[0];
}

bool vd_config_svc_secured(const struct vd_config *cfg, int idx)
{
	return strcmp(vsvc_table[idx]->name, "memcache") != 0 || cfg->memcache_tls;
}

int vd_config_threads(const struct vd_config *cfg, int idx)
{
	/* <service>_threads, else the service's own default, else threads */
	int n = cfg->svc_threads[idx] > 0	   ? cfg->svc_threads[idx]
		: vsvc_table[idx]->threads > 0 ? vsvc_table[idx]->threads
					       : cfg->threads;
	if (n <= 0)
		n = (int)sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? n : 1;
}

static int on_key(struct cfgfile_ctx *ctx, const char *section, const char *key, const char *value)
{
	struct vd_config *cfg = ctx->user;
	long v;
	if (section[0] && strcmp(section, "node") != 0) {
		snprintf(ctx->err, sizeof ctx->err, "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(key, "node_id") == 0) {
		if (cv_int(value, 1, 65535, &v))
			return bad(ctx, key, value, "1..65535");
		cfg->node_id = (unsigned)v;
	} else if (strcmp(key, "listen") == 0) {
		if (strlen(value) >= sizeof cfg->listen || !value[0])
			return bad(ctx, key, value, "an IP address");
		snprintf(cfg->listen, sizeof cfg->listen, "%s", value);
	} else if (strcmp(key, "port_offset") == 0) {
		if (cv_int(value, 0, 1500, &v))
			return bad(ctx, key, value, "0..1500");
		cfg->port_offset = (int)v;
	} else if (strcmp(key, "mem_limit") == 0) {
		if (cv_size(value, &cfg->mem_limit) || cfg->mem_limit == 0 ||
		    cfg->mem_limit > VD_MAX_MEM)
			return bad(ctx, key, value, "a size such as 256M, at most 16384G");
	} else if (strcmp(key, "max_alloc") == 0) {
		if (cv_size(value, &cfg->max_alloc) || cfg->max_alloc == 0 ||
		    cfg->max_alloc > VD_MAX_MEM)
			return bad(ctx, key, value, "a size such as 64M, at most 16384G");
	} else if (strcmp(key, "max_value") == 0) {
		if (cv_size(value, &cfg->max_value) || cfg->max_value == 0 ||
		    cfg->max_value > VD_MAX_VALUE)
			return bad(ctx, key, value, "a size such as 64M, at most 1G");
	} else if (strcmp(key, "max_line") == 0) {
		if (cv_int(value, 64, 1 << 20, &v))
			return bad(ctx, key, value, "64..1048576");
		cfg->max_line = (size_t)v;
	} else if (strcmp(key, "threads") == 0) {
		if (cv_int(value, 0, 256, &v))
			return bad(ctx, key, value, "0..256, 0 = one per core");
		cfg->threads = (int)v;
	} else if (strcmp(key, "max_connections") == 0) {
		if (cv_int(value, 1, 1000000, &v))
			return bad(ctx, key, value, "1..1000000");
		cfg->max_conns = (int)v;
	} else if (strcmp(key, "idle_timeout") == 0) {
		if (cv_int(value, 1, 86400, &v))
			return bad(ctx, key, value, "seconds, 1..86400");
		cfg->idle_timeout_s = (int)v;
	} else if (strcmp(key, "drain_timeout_ms") == 0) {
		if (cv_int(value, 0, 600000, &v))
			return bad(ctx, key, value, "0..600000");
		cfg->drain_timeout_ms = (int)v;
	} else if (strcmp(key, "request_timeout") == 0) {
		if (cv_int(value, 1, 86400, &v))
			return bad(ctx, key, value, "seconds, 1..86400");
		cfg->request_timeout_s = (int)v;
	} else if (strcmp(key, "body_budget") == 0) {
		if (cv_size(value, &cfg->body_budget) || cfg->body_budget > (UINT64_C(1) << 40))
			return bad(ctx, key, value, "a size up to 1T, 0 = mem_limit / 4");
	} else if (strcmp(key, "body_timeout") == 0) {
		if (cv_int(value, 1, 86400, &v))
			return bad(ctx, key, value, "seconds, 1..86400");
		cfg->body_timeout_s = (int)v;
	} else if (strcmp(key, "pidfile") == 0) {
		if (strlen(value) >= sizeof cfg->pidfile)
			return bad(ctx, key, value, "a shorter path");
		snprintf(cfg->pidfile, sizeof cfg->pidfile, "%s", value);
	} else if (strcmp(key, "log_level") == 0) {
		if (vlog_parse_level(value, &cfg->log_level))
			return bad(ctx, key, value, "error, warn, info or debug");
	} else if (strcmp(key, "log_file") == 0) {
		if (strlen(value) >= sizeof cfg->log_file || (value[0] && value[0] != '/'))
			return bad(ctx, key, value, "an absolute path, shorter than 256 bytes");
		snprintf(cfg->log_file, sizeof cfg->log_file, "%s", value);
	} else if (strcmp(key, "log_syslog") == 0) {
		if (cv_bool(value, &cfg->log_syslog))
			return bad(ctx, key, value, "yes or no");
	} else if (strcmp(key, "cpu_affinity") == 0) {
		if (cv_bool(value, &cfg->cpu_affinity))
			return bad(ctx, key, value, "yes or no");
	} else if (strcmp(key, "insecure_listen") == 0) {
		if (cv_bool(value, &cfg->insecure_listen))
			return bad(ctx, key, value, "yes or no");
	} else if (strcmp(key, "memcache_tls") == 0) {
		if (cv_bool(value, &cfg->memcache_tls))
			return bad(ctx, key, value, "yes or no");
	} else if (strcmp(key, "auth_token") == 0) {
		if (strlen(value) >= sizeof cfg->auth_token || (value[0] && strlen(value) < 16) ||
		    strpbrk(value, " \t"))
			return bad(ctx, key, value, "16..255 characters without spaces");
		snprintf(cfg->auth_token, sizeof cfg->auth_token, "%s", value);
	} else if (strcmp(key, "auth_tokens_file") == 0) {
		if (strlen(value) >= sizeof cfg->auth_tokens_file)
			return bad(ctx, key, value, "a path shorter than 256 bytes");
		snprintf(cfg->auth_tokens_file, sizeof cfg->auth_tokens_file, "%s", value);
	} else if (strcmp(key, "tls_cert") == 0 || strcmp(key, "tls_key") == 0 ||
		   strcmp(key, "tls_ca") == 0 || strcmp(key, "tls_crl") == 0) {
		char *dst = key[4] == 'c' && key[5] == 'e'   ? cfg->tls_cert
			    : key[4] == 'k'		     ? cfg->tls_key
			    : key[4] == 'c' && key[5] == 'a' ? cfg->tls_ca
							     : cfg->tls_crl;
		if (strlen(value) >= sizeof cfg->tls_cert)
			return bad(ctx, key, value, "a path shorter than 256 bytes");
		snprintf(dst, sizeof cfg->tls_cert, "%s", value);
	} else {
		/* per-service keys: <service>_port, _threads, _max_connections */
		const struct {
			const char *suffix;
			long max;
			const char *want;
			int *slots; /* one per service */
		} per_svc[] = {
			{"_port", 65535, "0..65535, 0 = off", cfg->ports},
			{"_threads", 256, "0..256, 0 = as threads", cfg->svc_threads},
			{"_max_connections", 1000000, "0..1000000, 0 = 3/4 of max_connections",
			 cfg->svc_max_conns},
		};
		for (int i = 0; vsvc_table[i]; i++) {
			for (size_t k = 0; k < sizeof per_svc / sizeof per_svc[0]; k++) {
				char name[64];
				snprintf(name, sizeof name, "%s%s", vsvc_table[i]->name,
					 per_svc[k].suffix);
				if (strcmp(key, name) != 0)
					continue;
				if (cv_int(value, 0, per_svc[k].max, &v))
					return bad(ctx, key, value, per_svc[k].want);
				per_svc[k].slots[i] = (int)v;
				return 1;
			}
		}
		int taken = svc_key(cfg, ctx, key, value);
		if (taken >= 0)
			return taken;
		snprintf(ctx->err, sizeof ctx->err, "unknown key '%s'", key);
		return 0;
	}
	return 1;
}

/* The original's virgo_cloud.conf was one line of node addresses; a node
 * does not need the list, so it is accepted and ignored. */
static int on_legacy(struct cfgfile_ctx *ctx, const char *line)
{
	(void)ctx;
	(void)line;
	return 1;
}

int vd_config_load(struct vd_config *cfg, const char *path, char *err, size_t errlen)
{
	if (cfgfile_load(path, on_key, on_legacy, cfg, err, errlen) != 0)
		return -1;
	snprintf(cfg->source, sizeof cfg->source, "%s", path);
	return 0;
}
