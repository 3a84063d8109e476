/*
 * eventnet_settings.h - the eventnet service's keys of virgo_cloud.conf:
 * where its files live, the durability policy and its size bounds.
 */
#ifndef VIRGO_EVENTNET_SETTINGS_H
#define VIRGO_EVENTNET_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "../../daemon/service.h"

/* eventnet_dir unset: <this>/node<id>, next to the queue's directories */
#define EVN_DEFAULT_DIR "/var/lib/virgo/eventnet"

struct evn_settings {
	char dir[256]; /* eventnet_dir (%n: the node id); "" = EVN_DEFAULT_DIR/node<id> */
	char ack[16]; /* eventnet_ack: "written" (reply after the write) or "queued" */
	int sync_ms; /* eventnet_sync_ms: fdatasync period; 0 = before each reply */
	uint64_t max_events; /* eventnet_max_events */
	uint64_t max_bytes; /* eventnet_max_bytes: memory the graph may hold */
	bool trace; /* eventnet_trace: the node's services record their own events */
};

extern const struct vsvc_key evn_settings_keys[];
void evn_settings_defaults(void *settings);

#endif
