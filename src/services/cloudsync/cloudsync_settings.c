/*
 * cloudsync_settings.c - the cloudsync keys, defaults and bounds
 * (cloudsync_settings.h), one table so keys and hints stay together.
 */
#include "cloudsync_settings.h"

#include <stddef.h>
#include <stdio.h>

#define CS_KEY(name, type, field, len, min, max, want)                                             \
	{name, type, offsetof(struct cs_settings, field), len, min, max, want, false}

const struct vsvc_key cs_settings_keys[] = {
	CS_KEY("lock_state_dir", VSVC_KEY_STR, lock_state_dir, 256, 0, 0, "a shorter path"),
	CS_KEY("lock_max", VSVC_KEY_INT, lock_max, 0, 1, 10000000, "1..10000000"),
	CS_KEY("lock_backend", VSVC_KEY_STR, lock_backend, 16, 0, 0, "local or zookeeper"),
	CS_KEY("zookeeper", VSVC_KEY_STR, zookeeper, 1024, 0, 0, "a shorter host:port list"),
	CS_KEY("zookeeper_wait_ms", VSVC_KEY_INT, zookeeper_wait_ms, 0, 100, 600000, "100..600000"),
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void cs_settings_defaults(void *settings)
{
	struct cs_settings *s = settings;
	snprintf(s->lock_state_dir, sizeof s->lock_state_dir, "%s", CS_DEFAULT_STATE_DIR);
	s->lock_max = 100000;
	snprintf(s->lock_backend, sizeof s->lock_backend, "local");
	s->zookeeper[0] = '\0';
	s->zookeeper_wait_ms = 10000;
}
