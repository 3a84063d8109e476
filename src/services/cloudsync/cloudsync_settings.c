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
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void cs_settings_defaults(void *settings)
{
	struct cs_settings *s = settings;
	snprintf(s->lock_state_dir, sizeof s->lock_state_dir, "%s", CS_DEFAULT_STATE_DIR);
	s->lock_max = 100000;
}
