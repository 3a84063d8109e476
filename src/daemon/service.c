/*
 * service.c - the service table: which modules this virgod hosts.
 *
 * Order matters only for log output.  Services not listed here are not
 * listened on at all (no fake replies for what is not built yet).
 */
#include "service.h"

extern const struct vsvc cpupool_service;
extern const struct vsvc mempool_service;
extern const struct vsvc memcache_service;
extern const struct vsvc queue_service;
extern const struct vsvc cloudsync_service;
extern const struct vsvc cloudfs_service;
extern const struct vsvc analytics_service;
extern const struct vsvc eventnet_service;

/* weak: an in-process test may link its own table of test services */
__attribute__((weak)) const struct vsvc *const vsvc_table[] = {
	&mempool_service,
	&cpupool_service,
	&memcache_service,
	&queue_service,
	&cloudsync_service,
	&cloudfs_service,
	&analytics_service,
	&eventnet_service,
	NULL,
};
