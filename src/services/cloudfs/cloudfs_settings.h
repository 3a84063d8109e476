/*
 * cloudfs_settings.h - the cloud file system's own keys of
 * virgo_cloud.conf (service-owned settings, service.h): which directory
 * the node exports, whether read-only, how big one read or write may be,
 * and how many descriptors clients may hold.  The daemon parses them into
 * struct cfs_settings.
 */
#ifndef VIRGO_CLOUDFS_SETTINGS_H
#define VIRGO_CLOUDFS_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "../../daemon/service.h"

/* The export root when none is configured: per node, under the daemon's
 * data directory ("%u" is the node id). */
#define CFS_DEFAULT_ROOT_FMT "/var/lib/virgo/node%u/cloudfs"

struct cfs_settings {
	char export_root[4096]; /* absolute directory, never "/"; "" = the default */
	bool read_only; /* refuse every change */
	/* identities that may change the export (idpolicy.h list; "" = all) */
	char writers[1024];
	uint64_t max_io; /* largest read reply / write payload */
	int max_fds; /* descriptors open at once, node-wide (both kinds) */
	int max_fds_per_conn; /* native descriptors one connection may hold */
	int call_fds; /* call-syntax descriptors (node-wide, outlive connections) */
	int call_fd_idle_s; /* a call-syntax descriptor unused this long is closed */
	bool sendfile_loopback; /* sendfile reads to clients on this machine too */
};

extern const struct vsvc_key cfs_settings_keys[];
void cfs_settings_defaults(void *settings);
/* Its largest reply (one read of max_io) and its descriptors. */
void cfs_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out);

#endif
