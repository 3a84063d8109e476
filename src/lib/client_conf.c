/*
 * client_conf.c - virgo_client.conf (what a client knows of the cluster).
 *
 *   node = <id> <host> [<port_offset>]     one line per node
 *   node_ip_addrs_in_cloud = 10.0.0.1,10.0.0.2    the notes' form: ids 1..n
 *   policy = random | round_robin          placement of virgo_malloc
 *   clone_policy = least_loaded | ...      placement of virgo_clone/virgo_run
 *   clone_timeout_ms, load_max_age_ms      job wait; load table staleness
 *   chunk_size = 1M                        larger allocations span nodes
 *   connect_timeout_ms, timeout_ms, pool_size, backoff_ms, backoff_max_ms, seed
 *   tls_ca, tls_cert, tls_key              TLS to the nodes (tls_ca turns it on)
 *   auth_token                             the nodes' shared token
 *   memcache_tls = no                      the memcached port over TLS too
 *
 * A bare line of comma-separated addresses (the original's whole file) is
 * read like node_ip_addrs_in_cloud.  Unknown keys are errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cfgfile.h"
#include "../common/cfgval.h"
#include "client.h"

void vc_config_defaults(struct vc_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	for (int i = 0; i < 3; i++) {
		cfg->nodes[i].id = (unsigned)i + 1;
		snprintf(cfg->nodes[i].host, sizeof cfg->nodes[i].host, "127.0.0.1");
		cfg->nodes[i].port_offset = i;
	}
	cfg->nnodes = 3;
	cfg->policy = VC_POLICY_RANDOM;
	cfg->clone_policy = VC_POLICY_LEAST_LOADED;
	cfg->clone_timeout_ms = 35000;
	cfg->load_max_age_ms = 500;
	cfg->chunk_size = UINT64_C(1) << 20;
	cfg->connect_timeout_ms = 1000;
	cfg->timeout_ms = 5000;
	cfg->pool_size = 16;
	cfg->queue_port_base = 60000;
	cfg->backoff_ms = 500;
	cfg->backoff_max_ms = 30000;
}

struct conf_load {
	struct vc_config *cfg;
	bool listed; /* first node line replaces the built-in list */
};

static int add_node(struct cfgfile_ctx *ctx, unsigned id, const char *host, int offset)
{
	struct conf_load *cl = ctx->user;
	struct vc_config *cfg = cl->cfg;
	if (!cl->listed) {
		cfg->nnodes = 0;
		cl->listed = true;
	}
	if (cfg->nnodes == VC_MAX_NODES) {
		snprintf(ctx->err, sizeof ctx->err, "more than %d nodes", VC_MAX_NODES);
		return 0;
	}
	for (int i = 0; i < cfg->nnodes; i++) {
		if (cfg->nodes[i].id == id) {
			snprintf(ctx->err, sizeof ctx->err, "node id %u listed twice", id);
			return 0;
		}
	}
	if (strlen(host) >= sizeof cfg->nodes[0].host || !host[0]) {
		snprintf(ctx->err, sizeof ctx->err, "bad host '%s'", host);
		return 0;
	}
	struct vc_node *n = &cfg->nodes[cfg->nnodes++];
	n->id = id;
	snprintf(n->host, sizeof n->host, "%s", host);
	n->port_offset = offset;
	return 1;
}

static int add_list(struct cfgfile_ctx *ctx, const char *list)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", list);
	unsigned id = 1;
	char *save = NULL;
	for (char *t = strtok_r(buf, ", \t\r", &save); t; t = strtok_r(NULL, ", \t\r", &save))
		if (!add_node(ctx, id++, t, 0))
			return 0;
	return 1;
}

static int bad(struct cfgfile_ctx *ctx, const char *key, const char *value, const char *want)
{
	snprintf(ctx->err, sizeof ctx->err, "bad value '%s' for %s (%s)", value, key, want);
	return 0;
}

static int on_key(struct cfgfile_ctx *ctx, const char *section, const char *key, const char *value)
{
	struct vc_config *cfg = ((struct conf_load *)ctx->user)->cfg;
	long v;
	if (section[0] && strcmp(section, "client") != 0) {
		snprintf(ctx->err, sizeof ctx->err, "unknown section [%s]", section);
		return 0;
	}
	if (strcmp(key, "node") == 0) {
		char host[128];
		unsigned id;
		int off = 0, used = 0;
		int n = sscanf(value, "%u %127s %n", &id, host, &used);
		if (n < 2 || id == 0 || id > 65535)
			return bad(ctx, key, value, "<id 1..65535> <host> [<port_offset>]");
		if (value[used] && (cv_int(value + used, 0, 5535, &v) != 0))
			return bad(ctx, key, value, "port_offset 0..5535");
		if (value[used])
			off = (int)v;
		return add_node(ctx, id, host, off);
	}
	if (strcmp(key, "node_ip_addrs_in_cloud") == 0)
		return add_list(ctx, value);
	if (strcmp(key, "policy") == 0) {
		if (strcmp(value, "random") == 0)
			cfg->policy = VC_POLICY_RANDOM;
		else if (strcmp(value, "round_robin") == 0)
			cfg->policy = VC_POLICY_ROUND_ROBIN;
		else
			return bad(ctx, key, value, "random or round_robin");
		return 1;
	}
	if (strcmp(key, "clone_policy") == 0) {
		int p = virgo_policy_parse(value);
		if (p <= 0)
			return bad(ctx, key, value,
				   "random, round_robin, least_loaded, power_of_two or learned");
		cfg->clone_policy = (enum vc_policy)p;
		return 1;
	}
	if (strcmp(key, "chunk_size") == 0) {
		if (cv_size(value, &cfg->chunk_size) || cfg->chunk_size < 16)
			return bad(ctx, key, value, "a size of at least 16 bytes");
		return 1;
	}
	static const struct {
		const char *key;
		size_t off;
	} strs[] = {
		{"tls_ca", offsetof(struct vc_config, tls_ca)},
		{"tls_cert", offsetof(struct vc_config, tls_cert)},
		{"tls_key", offsetof(struct vc_config, tls_key)},
		{"auth_token", offsetof(struct vc_config, auth_token)},
	};
	for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
		if (strcmp(key, strs[i].key) != 0)
			continue;
		if (strlen(value) >= sizeof cfg->tls_ca || strpbrk(value, " \t"))
			return bad(ctx, key, value, "at most 255 characters, no spaces");
		snprintf((char *)cfg + strs[i].off, sizeof cfg->tls_ca, "%s", value);
		return 1;
	}
	if (strcmp(key, "memcache_tls") == 0) {
		if (cv_bool(value, &cfg->memcache_tls))
			return bad(ctx, key, value, "yes or no");
		return 1;
	}
	if (strcmp(key, "seed") == 0) {
		if (cv_int(value, 0, 0x7fffffffL, &v))
			return bad(ctx, key, value, "0..2147483647");
		cfg->seed = (uint64_t)v;
		cfg->seeded = true;
		return 1;
	}
	static const struct {
		const char *key;
		long min, max;
		size_t off;
	} ints[] = {
		{"connect_timeout_ms", 1, 600000, offsetof(struct vc_config, connect_timeout_ms)},
		{"timeout_ms", 1, 3600000, offsetof(struct vc_config, timeout_ms)},
		{"pool_size", 0, 4096, offsetof(struct vc_config, pool_size)},
		{"backoff_ms", 1, 600000, offsetof(struct vc_config, backoff_ms)},
		{"backoff_max_ms", 1, 3600000, offsetof(struct vc_config, backoff_max_ms)},
		{"clone_timeout_ms", 1, 86400000, offsetof(struct vc_config, clone_timeout_ms)},
		{"load_max_age_ms", 0, 3600000, offsetof(struct vc_config, load_max_age_ms)},
		{"queue_port_base", 1, 65535, offsetof(struct vc_config, queue_port_base)},
	};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		if (strcmp(key, ints[i].key) == 0) {
			if (cv_int(value, ints[i].min, ints[i].max, &v))
				return bad(ctx, key, value, "an integer in range");
			*(int *)((char *)cfg + ints[i].off) = (int)v;
			return 1;
		}
	}
	snprintf(ctx->err, sizeof ctx->err, "unknown key '%s'", key);
	return 0;
}

static int on_legacy(struct cfgfile_ctx *ctx, const char *line)
{
	return add_list(ctx, line);
}

int vc_config_load(struct vc_config *cfg, const char *path, char *err, size_t errlen)
{
	struct conf_load cl = {.cfg = cfg};
	if (cfgfile_load(path, on_key, on_legacy, &cl, err, errlen) != 0)
		return -1;
	if (cfg->nnodes == 0) {
		snprintf(err, errlen, "%s: no nodes listed", path);
		return -1;
	}
	snprintf(cfg->source, sizeof cfg->source, "%s", path);
	return 0;
}
