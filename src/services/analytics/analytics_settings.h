/*
 * analytics_settings.h - the kernel analytics service's own keys of
 * virgo_cloud.conf (service-owned settings, service.h): where the
 * original's variables file is, where to stream variables from, and the
 * bounds of the store and of its watchers.
 */
#ifndef VIRGO_ANALYTICS_SETTINGS_H
#define VIRGO_ANALYTICS_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "../../daemon/service.h"

#define AN_DEFAULT_CONF "/etc/virgo_kernel_analytics.conf"
#define AN_DEFAULT_DIR "/var/lib/virgo"
#define AN_PUBLISHERS_MAX 2048 /* analytics_publishers */

struct an_settings {
	char conf[256]; /* the variables file ("" = none); re-read when it changes */
	char stream[256]; /* "host:port" to stream variables from ("" = none) */
	int max_keys; /* variables a node holds */
	uint64_t history_bytes; /* bytes of values kept over all rings */
	int max_watchers; /* watch connections at once */
	char publish_from[1024]; /* addresses that may change variables ("" = any) */
	char dir[256]; /* where revisions are reserved (analytics_rev.h; "" = memory only) */
	/* identities that may change which variables (idpolicy.h map: an
	 * identity it does not name may change none; "" = any) */
	char publishers[AN_PUBLISHERS_MAX];
	/* watcher sends in io_uring batches (analytics_uring.h) where the
	 * kernel allows; no: one send(2) per watcher */
	bool uring;
};

extern const struct vsvc_key an_settings_keys[];
void an_settings_defaults(void *settings);
void an_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out);

#endif
