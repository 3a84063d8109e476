/*
 * ketama.h - consistent hashing of memcached keys onto VIRGO nodes, the
 * way memcached clients do it (libketama; libmemcached's
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED with equal weights), so client-side
 * sharding lands each key on the node VIRGO names as its owner.
 *
 * Each node contributes 160 points on a 32-bit circle: for k in 0..39,
 * MD5("<host>:<port>-<k>") gives four points (bytes 4h..4h+3 read
 * little-endian, h = 0..3).  <port> is the node's memcache port (11211 +
 * port_offset); libmemcached leaves ":<port>" out when it is 11211, and so
 * do we.  A key's hash is the first four bytes of MD5(key), little-endian;
 * its owner is the node of the first point >= the hash, wrapping to the
 * lowest point.  Pure functions, no allocation beyond the caller's ring.
 */
#ifndef VIRGO_KETAMA_H
#define VIRGO_KETAMA_H

#include <stddef.h>
#include <stdint.h>

#define KT_POINTS_PER_NODE 160

struct kt_point {
	uint32_t value;
	int node; /* index into the node list given to kt_build */
};

/* Fills ring (n * KT_POINTS_PER_NODE entries, caller-owned) from the
 * nodes' "host" and memcache ports, sorted. */
void kt_build(struct kt_point *ring, const char *const *hosts, const int *ports, int n);
uint32_t kt_hash(const void *key, size_t len);
/* The owning node index for key (n >= 1). */
int kt_lookup(const struct kt_point *ring, int n, const void *key, size_t len);

#endif
