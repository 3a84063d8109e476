/*
 * config.h - a node's settings (virgo_cloud.conf, notes §892/§987).
 *
 * Defaults describe node 1 on 127.0.0.1 at the notes' ports; the file and
 * then the command line override them.  Unknown keys are errors that name
 * the key and the line.  Every service port is <base> + port_offset unless
 * <service>_port sets it (0 turns the service off).
 */
#ifndef VIRGO_CONFIG_H
#define VIRGO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"

#define VD_MAX_SERVICES 16
/* Upper bounds of the size settings, so that no size arithmetic on them
 * (n + 1 for a terminator, a reply's header, chunk counts) can wrap. */
#define VD_MAX_MEM (UINT64_C(1) << 44) /* 16 TiB: mem_limit, max_alloc */
#define VD_MAX_VALUE (UINT64_C(1) << 30) /* 1 GiB: max_value (memcached's own maximum) */
/* Bytes for all services' own settings structs (service.h, keys). */
#define VD_SETTINGS_MAX (32 * 1024)

struct vd_config {
	unsigned node_id; /* 1..65535; the top 16 bits of this node's VUIDs */
	char listen[64]; /* address every service binds */
	int port_offset; /* added to each service's base port */
	int ports[VD_MAX_SERVICES]; /* -1: base+offset; 0: off; else explicit */
	uint64_t mem_limit; /* bytes all allocations on this node may hold */
	uint64_t max_alloc; /* largest single allocation */
	uint64_t max_value; /* largest payload in one request */
	size_t max_line; /* longest request line */
	int threads; /* worker threads of each service (0: one per core) */
	int svc_threads[VD_MAX_SERVICES]; /* -1: threads; else this service's own count */
	bool cpu_affinity; /* pin workers to CPUs, connections follow their client's CPU */
	int max_conns; /* open connections at once, node-wide */
	int svc_max_conns[VD_MAX_SERVICES]; /* -1: 3/4 of max_conns; else this service's cap */
	int request_timeout_s; /* a started request must complete within this */
	int idle_timeout_s; /* close a connection silent this long */
	int drain_timeout_ms; /* SIGTERM: time given to flush replies */
	uint64_t body_budget; /* bytes of request bodies in flight, node-wide (0: mem_limit / 4) */
	int body_timeout_s; /* an admitted body must arrive within this */
	char pidfile[256]; /* "" for none */
	enum vlog_level log_level;
	char log_file[256]; /* "" = stderr; appended, reopened on SIGHUP */
	bool log_syslog; /* also log to syslog (daemon facility) */
	bool insecure_listen; /* allow a non-loopback listen without auth */
	/* TLS (transport_tls.c): cert + key turn TLS on for every port but
	 * the memcached one (unless memcache_tls); ca makes client
	 * certificates signed by it mandatory (mutual TLS); crl, optional,
	 * revokes some.  All four are re-read on SIGHUP. */
	char tls_cert[256], tls_key[256], tls_ca[256], tls_crl[256];
	bool memcache_tls; /* the memcached port speaks TLS too (default: plain, loopback) */
	/* shared token clients send first ("AUTH <token>"); "" = none */
	char auth_token[256];
	/* named tokens, "<name> <token>" lines (tokfile.h): a client sending
	 * one is the identity <name>; re-read on SIGHUP; "" = none */
	char auth_tokens_file[256];
	char source[256]; /* file the settings came from ("" = defaults) */
	/* each service's own settings (its keys), at svc_settings_at[i] */
	size_t svc_settings_at[VD_MAX_SERVICES];
	_Alignas(16) unsigned char svc_settings[VD_SETTINGS_MAX];
};


void vd_config_defaults(struct vd_config *cfg);
/* 0, or -1 with a message naming the file, line and key in err. */
int vd_config_load(struct vd_config *cfg, const char *path, char *err, size_t errlen);
/* The port service #idx listens on (0 = disabled). */
int vd_config_port(const struct vd_config *cfg, int idx);
/* Service #idx's own settings struct (NULL when it declares none). */
const void *vd_config_settings(const struct vd_config *cfg, int idx);
struct vsvc_needs;
/* What service #idx needs of the daemon's limits (service.h). */
void vd_config_needs(const struct vd_config *cfg, int idx, struct vsvc_needs *out);
/* The connection cap of service #idx (<= max_conns). */
int vd_config_max_conns(const struct vd_config *cfg, int idx);
/* Has authentication (client certificates, a token or a tokens file) been
 * configured? */
bool vd_config_has_auth(const struct vd_config *cfg);
/* Does service #idx use TLS / the token?  Every service does when
 * configured, but the memcached port only with memcache_tls. */
bool vd_config_svc_secured(const struct vd_config *cfg, int idx);
/* How many worker threads serve service #idx's connections (>= 1). */
int vd_config_threads(const struct vd_config *cfg, int idx);

#endif
