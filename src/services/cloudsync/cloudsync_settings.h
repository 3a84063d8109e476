/*
 * cloudsync_settings.h - cloudsync's own keys of virgo_cloud.conf
 * (service-owned settings, service.h): where the durable token epoch lives
 * and how many lock holders + waiters the node keeps at most.
 */
#ifndef VIRGO_CLOUDSYNC_SETTINGS_H
#define VIRGO_CLOUDSYNC_SETTINGS_H

#include "../../daemon/service.h"

#define CS_DEFAULT_STATE_DIR "/var/lib/virgo"

struct cs_settings {
	char lock_state_dir[256]; /* holds cloudsync-<node_id>.epoch */
	int lock_max; /* holders + waiters at once, node-wide */
	char lock_backend[16]; /* "local" or "zookeeper" */
	char zookeeper[1024]; /* host:port,... of the ensemble (zookeeper backend) */
	int zookeeper_wait_ms; /* how long start-up waits for the first session */
};

extern const struct vsvc_key cs_settings_keys[];
void cs_settings_defaults(void *settings);

#endif
