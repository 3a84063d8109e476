/*
 * analytics_settings.c - the analytics service's keys, defaults and bounds
 * (analytics_settings.h), in one table.
 */
#include "analytics_settings.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../../daemon/config.h"

#include "analytics_proto.h"
#include "analytics_store.h"

#define AN_KEY(name, type, field, len, min, max, want, reload)                                     \
	{name, type, offsetof(struct an_settings, field), len, min, max, want, reload}

const struct vsvc_key an_settings_keys[] = {
	AN_KEY("analytics_conf", VSVC_KEY_STR, conf, 256, 0, 0, "a shorter path", true),
	AN_KEY("analytics_stream", VSVC_KEY_STR, stream, 256, 0, 0, "host:port", false),
	AN_KEY("analytics_max_keys", VSVC_KEY_INT, max_keys, 0, 1, 65536, "1..65536", false),
	AN_KEY("analytics_history_bytes", VSVC_KEY_SIZE, history_bytes, 0, INT64_C(64) << 10,
	       INT64_C(1) << 30, "a size from 64K to 1G", false),
	AN_KEY("analytics_max_watchers", VSVC_KEY_INT, max_watchers, 0, 1, 100000, "1..100000",
	       false),
	AN_KEY("analytics_publish_from", VSVC_KEY_STR, publish_from, 1024, 0, 0, "a shorter list",
	       true),
	AN_KEY("analytics_dir", VSVC_KEY_STR, dir, 256, 0, 0, "a shorter path", false),
	AN_KEY("analytics_publishers", VSVC_KEY_STR, publishers, AN_PUBLISHERS_MAX, 0, 0,
	       "a shorter map", true),
	AN_KEY("analytics_uring", VSVC_KEY_BOOL, uring, 0, 0, 0, "yes or no", false),
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void an_settings_defaults(void *settings)
{
	struct an_settings *s = settings;
	snprintf(s->conf, sizeof s->conf, "%s", AN_DEFAULT_CONF);
	s->stream[0] = '\0';
	s->max_keys = 1024;
	s->history_bytes = UINT64_C(16) << 20;
	s->max_watchers = 4096;
	s->publish_from[0] = '\0';
	snprintf(s->dir, sizeof s->dir, "%s", AN_DEFAULT_DIR);
	s->publishers[0] = '\0';
	s->uring = true;
}

void an_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out)
{
	const struct an_settings *s = settings;
	/* ls: one line per variable; history: one per kept value */
	uint64_t ls = (uint64_t)s->max_keys * (AN_MAX_KEY + AN_MAX_VALUE + 48);
	uint64_t hist = (uint64_t)AN_RING * (AN_MAX_VALUE + 32);
	out->largest_reply = ls > hist ? ls : hist;
	out->fds = s->stream[0] ? 2 : 0;
	/* io_uring: a ring per loop thread, made on its first change */
	for (int i = 0; s->uring && vsvc_table[i]; i++)
		if (strcmp(vsvc_table[i]->name, "analytics") == 0)
			out->fds += vd_config_threads(cfg, i);
}
