/*
 * queue_settings.h - the queue's own keys of virgo_cloud.conf
 * (service-owned settings, service.h): where the logs live, the fsync
 * policy, segment size, retention, record size, consumer deadlines and
 * buffers.  The daemon parses them into struct q_settings; queue_fsync's
 * text is checked by q_settings_fsync at init.
 */
#ifndef VIRGO_QUEUE_SETTINGS_H
#define VIRGO_QUEUE_SETTINGS_H

#include <stdint.h>

#include "../../daemon/service.h"

/* queue_dir when the config leaves it empty: one directory per node id,
 * so the nodes of one host never share (q_init appends "/node<id>") */
#define Q_DEFAULT_DIR "/var/lib/virgo/queue"

struct q_settings {
	char dir[256]; /* queue_dir: one sub-directory per topic ("": the default) */
	char fsync[32]; /* queue_fsync: "always" or "interval <ms>" */
	uint64_t segment_bytes; /* queue_segment_bytes */
	uint64_t retention_bytes; /* queue_retention_bytes, per topic (0: none) */
	int retention_s; /* queue_retention_s, per topic (0: none) */
	uint64_t max_record; /* queue_max_record: largest payload */
	int ack_timeout_ms; /* queue_ack_timeout_ms: group redelivery deadline */
	uint64_t sub_buffer; /* queue_sub_buffer: bytes waiting per subscriber */
	char default_topic[65]; /* queue_default_topic: the telnet path's topic */
	int max_topics; /* queue_max_topics */
	char handler[1024]; /* queue_handler: "<absolute program> [args]" ("" none) */
	int handler_timeout_ms; /* queue_handler_timeout_ms */
	/* queue_group_admins: identities that may join any consumer group
	 * (idpolicy.h list; "" none) */
	char group_admins[512];
	/* queue_gather_us: the longest a commit round waits for the
	 * producers the last round acknowledged (queue_commit.c; 0: never) */
	int gather_us;
};

extern const struct vsvc_key q_settings_keys[];
void q_settings_defaults(void *settings);
/* queue_fsync's value: 0 and *interval_ms (0 for always), or -1. */
int q_settings_fsync(const char *text, int *interval_ms);
void q_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out);

#endif
