/*
 * eventnet_settings.c - the eventnet keys, their defaults and bounds
 * (eventnet_settings.h), in one table.
 */
#include "eventnet_settings.h"

#include <stddef.h>
#include <string.h>

#define EVN_KEY(name, type, field, len, min, max, want, reload)                                   \
	{name, type, offsetof(struct evn_settings, field), len, min, max, want, reload}

const struct vsvc_key evn_settings_keys[] = {
	EVN_KEY("eventnet_dir", VSVC_KEY_STR, dir, 256, 0, 0, "a path shorter than 256 bytes",
		false),
	EVN_KEY("eventnet_ack", VSVC_KEY_STR, ack, 16, 0, 0, "written or queued", false),
	EVN_KEY("eventnet_sync_ms", VSVC_KEY_INT, sync_ms, 0, 0, 60000, "0..60000", false),
	EVN_KEY("eventnet_max_events", VSVC_KEY_SIZE, max_events, 0, 1024, INT64_C(1) << 30,
		"a count from 1K to 1G", false),
	/* events are carved from 2 MiB chunks: below 16M the bound is mostly slack */
	EVN_KEY("eventnet_max_bytes", VSVC_KEY_SIZE, max_bytes, 0, INT64_C(16) << 20,
		INT64_C(1) << 40, "a size from 16M to 1024G", false),
	EVN_KEY("eventnet_trace", VSVC_KEY_BOOL, trace, 0, 0, 0, "yes or no", false),
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void evn_settings_defaults(void *settings)
{
	struct evn_settings *s = settings;
	memset(s, 0, sizeof *s);
	strcpy(s->ack, "written");
	s->sync_ms = 1000;
	s->max_events = UINT64_C(4) << 20;
	s->max_bytes = UINT64_C(1) << 30;
}
