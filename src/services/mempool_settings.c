/*
 * mempool_settings.c - the mempool's keys and their defaults
 * (mempool_settings.h).
 */
#include "mempool_settings.h"

#include <stddef.h>

const struct vsvc_key mp_settings_keys[] = {
	{"mempool_use_as_kingcobra_service", VSVC_KEY_BOOL,
	 offsetof(struct mp_settings, use_as_kingcobra_service), 0, 0, 0, "yes or no", false},
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void mp_settings_defaults(void *settings)
{
	struct mp_settings *s = settings;
	s->use_as_kingcobra_service = false;
}
