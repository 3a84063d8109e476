/*
 * mempool_settings.h - the mempool's own keys of virgo_cloud.conf
 * (service-owned settings, service.h).  One so far: the notes'
 * use_as_kingcobra_service for memory pooling (§976), under the name
 * mempool_use_as_kingcobra_service (the cpupool owns the bare name),
 * which makes the mempool enqueue its requests on the queue instead of
 * serving them.
 */
#ifndef VIRGO_MEMPOOL_SETTINGS_H
#define VIRGO_MEMPOOL_SETTINGS_H

#include <stdbool.h>

#include "../daemon/service.h"

struct mp_settings {
	bool use_as_kingcobra_service; /* enqueue requests on the queue (§976) */
};

extern const struct vsvc_key mp_settings_keys[];
void mp_settings_defaults(void *settings);

#endif
