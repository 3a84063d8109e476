/*
 * queue_settings.c - the queue's keys, defaults, bounds and hints
 * (queue_settings.h), in one table.
 */
#include "queue_settings.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/config.h"

#define Q_KEY(name, type, field, len, min, max, want, reload)                                      \
	{name, type, offsetof(struct q_settings, field), len, min, max, want, reload}

const struct vsvc_key q_settings_keys[] = {
	Q_KEY("queue_dir", VSVC_KEY_STR, dir, 256, 0, 0, "a shorter path", false),
	Q_KEY("queue_fsync", VSVC_KEY_STR, fsync, 32, 0, 0, "always or interval <ms>", false),
	Q_KEY("queue_segment_bytes", VSVC_KEY_SIZE, segment_bytes, 0, 4096, INT64_C(1) << 34,
	      "a size from 4K to 16G", false),
	Q_KEY("queue_retention_bytes", VSVC_KEY_SIZE, retention_bytes, 0, 0, INT64_C(1) << 50,
	      "a size, 0 = no limit", false),
	Q_KEY("queue_retention_s", VSVC_KEY_INT, retention_s, 0, 0, 2000000000,
	      "0..2000000000, 0 = no limit", false),
	Q_KEY("queue_max_record", VSVC_KEY_SIZE, max_record, 0, 1, INT64_C(64) << 20,
	      "a size from 1 to 64M", false),
	Q_KEY("queue_ack_timeout_ms", VSVC_KEY_INT, ack_timeout_ms, 0, 10, 86400000,
	      "10..86400000", false),
	Q_KEY("queue_sub_buffer", VSVC_KEY_SIZE, sub_buffer, 0, 4096, INT64_C(1) << 30,
	      "a size from 4K to 1G", false),
	Q_KEY("queue_default_topic", VSVC_KEY_STR, default_topic, 65, 0, 0,
	      "1-64 characters of A-Z a-z 0-9 . _ -", false),
	Q_KEY("queue_max_topics", VSVC_KEY_INT, max_topics, 0, 1, 65536, "1..65536", false),
	Q_KEY("queue_handler", VSVC_KEY_STR, handler, 1024, 0, 0, "a shorter command", false),
	Q_KEY("queue_handler_timeout_ms", VSVC_KEY_INT, handler_timeout_ms, 0, 1, 86400000,
	      "1..86400000", false),
	Q_KEY("queue_group_admins", VSVC_KEY_STR, group_admins, 512, 0, 0, "a shorter list",
	      false),
	Q_KEY("queue_gather_us", VSVC_KEY_INT, gather_us, 0, 0, 100000, "0..100000, 0 = off",
	      false),
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void q_settings_defaults(void *settings)
{
	struct q_settings *s = settings;
	s->dir[0] = '\0'; /* Q_DEFAULT_DIR/node<id>, filled in at init */
	snprintf(s->fsync, sizeof s->fsync, "always");
	s->segment_bytes = UINT64_C(64) << 20;
	s->retention_bytes = UINT64_C(1) << 30;
	s->retention_s = 7 * 86400;
	s->max_record = UINT64_C(1) << 20;
	s->ack_timeout_ms = 30000;
	s->sub_buffer = UINT64_C(1) << 20;
	snprintf(s->default_topic, sizeof s->default_topic, "kingcobra");
	s->max_topics = 256;
	s->handler[0] = '\0';
	s->handler_timeout_ms = 30000;
	s->group_admins[0] = '\0';
	s->gather_us = 1000;
}

int q_settings_fsync(const char *text, int *interval_ms)
{
	if (strcmp(text, "always") == 0) {
		*interval_ms = 0;
		return 0;
	}
	char *end;
	if (strncmp(text, "interval ", 9) != 0)
		return -1;
	long v = strtol(text + 9, &end, 10);
	if (end == text + 9 || (*end && strcmp(end, "ms") != 0) || v < 1 || v > 60000)
		return -1;
	*interval_ms = (int)v;
	return 0;
}

void q_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out)
{
	(void)cfg;
	const struct q_settings *s = settings;
	/* a read reply stops at the output budget plus one record */
	out->largest_reply = s->max_record + 512;
	/* each topic's active segment and directory, plus readers */
	out->fds = 2 * s->max_topics + 64;
}
