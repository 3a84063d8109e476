/*
 * owner.c - virgo_key_owner: which configured node owns a memcached key
 * under ketama consistent hashing (ketama.h), so sharding clients and the
 * virgo CLI agree.  The continuum is rebuilt per call (160 MD5 points per
 * node): this is a cluster-view call, not a data path.
 */
#include <errno.h>
#include <stdlib.h>

#include "client.h"
#include "ketama.h"

int virgo_key_owner(const void *key, size_t len)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	int n = c->cfg.nnodes;
	if (n <= 0)
		return -VIRGO_ENONODE;
	if (len == 0 || len > 250)
		return -EINVAL;
	struct kt_point *ring = malloc((size_t)n * KT_POINTS_PER_NODE * sizeof *ring);
	const char **hosts = malloc((size_t)n * sizeof *hosts);
	int *ports = malloc((size_t)n * sizeof *ports);
	int rc = -ENOMEM;
	if (ring && hosts && ports) {
		for (int i = 0; i < n; i++) {
			hosts[i] = c->cfg.nodes[i].host;
			ports[i] = vc_svc_base_port[VC_SVC_MEMCACHE] + c->cfg.nodes[i].port_offset;
		}
		kt_build(ring, hosts, ports, n);
		rc = kt_lookup(ring, n, key, len);
	}
	free(ring);
	free(hosts);
	free(ports);
	return rc;
}
