/*
 * virgo.h - the public C API of libvirgo, the VIRGO cluster client.
 *
 * These are the notes' system calls (virgo_malloc/set/get/free, later
 * virgo_clone, virgo_open/read/write/close, ...) as library calls that talk
 * to virgod nodes over TCP.  Every call is thread-safe: the library owns a
 * connection pool per node and serialises nothing on the caller's behalf
 * beyond what correctness needs.  Every call returns 0 (or a non-negative
 * count) on success and a negative errno-style code on failure; pass it to
 * virgo_strerror() for a sentence.  Memory returned to the caller is always
 * released with free(); the comment on each call says when that applies.
 */
#ifndef VIRGO_H
#define VIRGO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIRGO_VERSION "0.1.0"

/* A VIRGO Unique ID: 64 bits, cluster-unique.  Bits 63..48 hold the owning
 * node's id, bit 47 marks an allocation that spans nodes, bits 46..0 are the
 * owning node's sequence number. */
typedef uint64_t virgo_vuid_t;

/* Errors beyond the errno values (all negative when returned). */
#define VIRGO_EPROTO_BASE 2000
enum {
	VIRGO_ENONODE = VIRGO_EPROTO_BASE + 1, /* no node reachable / configured */
	VIRGO_EBADREPLY = VIRGO_EPROTO_BASE + 2, /* node answered something unparsable */
	VIRGO_ECONF = VIRGO_EPROTO_BASE + 3, /* client configuration invalid */
};

/* Initialise the process-wide client from a virgo_client.conf.  path may be
 * NULL: then $VIRGO_CLIENT_CONF, $VIRGO_CONF_DIR/virgo_client.conf,
 * /etc/virgo/virgo_client.conf and finally the built-in loopback cluster
 * (nodes 1..3 at port offsets 0..2) are tried in that order.  Calling any
 * other function first initialises with path NULL.  Calling virgo_init
 * again after virgo_fini re-reads the configuration. */
int virgo_init(const char *path);

/* Close every pooled connection and forget the configuration.  No other
 * virgo_* call may be running in another thread at that moment. */
void virgo_fini(void);

/* A human sentence for a code returned by any virgo_* call (static string). */
const char *virgo_strerror(int err);

/* ---- memory pooling (notes §887, §894, §947) ---------------------------- */

/* Allocate size bytes somewhere in the cluster; the node is chosen by the
 * configured policy.  Sizes above the configured chunk_size are split into
 * chunks on several nodes; the returned VUID names the whole span. */
int virgo_malloc(size_t size, virgo_vuid_t *vuid);

/* Replace the value: write len bytes at offset 0 and make len the stored
 * length (get returns exactly these bytes).  len may not exceed the size. */
int virgo_set(virgo_vuid_t vuid, const void *data, size_t len);

/* Patch: write len bytes at offset; the stored length grows to cover them
 * if needed.  offset+len may not exceed the allocation's size. */
int virgo_set_at(virgo_vuid_t vuid, size_t offset, const void *data, size_t len);

/* Read the stored value.  On success *data is a malloc'd buffer the caller
 * frees (NULL when *len is 0) and *len its length. */
int virgo_get(virgo_vuid_t vuid, void **data, size_t *len);

/* Read exactly len bytes at offset into buf (bytes never written read as
 * zero).  offset+len may not exceed the allocation's size. */
int virgo_get_at(virgo_vuid_t vuid, size_t offset, void *buf, size_t len);

/* Release the allocation (every chunk of a span). */
int virgo_free(virgo_vuid_t vuid);

/* Format a VUID as the wire does (bare lowercase hex); buf needs 17 bytes. */
void virgo_vuid_format(virgo_vuid_t vuid, char buf[17]);
/* Parse bare hex (optionally 0x-prefixed or double-quoted); 0 or -EINVAL. */
int virgo_vuid_parse(const char *s, virgo_vuid_t *vuid);
/* The id of the node that owns the VUID (for a span: the descriptor's node). */
unsigned virgo_vuid_node(virgo_vuid_t vuid);

/* ---- cluster view -------------------------------------------------------- */

struct virgo_node_info {
	unsigned id; /* node id as configured in virgo_client.conf */
	char host[64]; /* address clients connect to */
	int port_offset; /* added to every service's base port */
	int up; /* 1 unless the node failed recently and is in back-off */
};

/* Number of configured nodes (negative on configuration error). */
int virgo_node_count(void);
/* Fill *info for the idx-th configured node (0-based). */
int virgo_node_info(int idx, struct virgo_node_info *info);
/* Ping the idx-th node's mempool service; *rtt_us gets the round trip. */
int virgo_ping(int idx, unsigned *node_id, double *rtt_us);
/* Which configured node owns a memcached key (1..250 bytes) under ketama
 * consistent hashing over every configured node (docs/PROTOCOL.md,
 * "Key placement"): returns its 0-based index (see virgo_node_info), or
 * -EINVAL, -VIRGO_ENONODE, -VIRGO_ECONF. */
int virgo_key_owner(const void *key, size_t len);
/* The idx-th node's mempool statistics as "name value" lines; *text is
 * malloc'd (caller frees). */
int virgo_mempool_stats(int idx, char **text);

#ifdef __cplusplus
}
#endif
#endif /* VIRGO_H */
