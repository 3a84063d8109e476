/*
 * cloudfs_ops.h - one cloudfs request run against the disk, on a pool
 * thread (never on an event loop: a stat on a slow disk, an fsync, a
 * 1 MiB read all block).  The service glue (cloudfs.c) parses, checks
 * the descriptor and the read-only rule, fills a job, and writes the
 * reply the job built once it is back on the connection's loop.
 */
#ifndef VIRGO_CLOUDFS_OPS_H
#define VIRGO_CLOUDFS_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cloudfs_proto.h"

struct evbuffer;
struct vconn_ticket;

struct cfs_job {
	struct cfs_req req; /* the request (paths copied) */
	int root; /* the export root (O_PATH directory) */
	uint64_t max_io; /* read replies are clipped to this */
	bool zero_copy; /* the connection sends file segments with sendfile */
	int osfd; /* fd requests: the OS descriptor (a reference held), else -1 */
	uint8_t *data; /* write payload (owned by the job), data_len bytes */
	struct evbuffer *frame; /* non-NULL: data points into it (the request's
				 * bytes, moved from the input uncopied) */
	size_t data_len;
	uint64_t vfd; /* the descriptor the reference is held on */
	uint64_t ident; /* the caller's identity (vconn_identity_id; 0: none) */
	struct vconn_ticket *ticket;
	void *svc; /* the service (for the done callback) */
	/* results */
	int rc; /* 0 or -errno */
	const char *msg; /* the error's sentence, or NULL for the usual one */
	struct evbuffer *reply; /* cfs_ops_run's reply (rc == 0), made whole by cloudfs.c */
	int newfd; /* open: the OS descriptor to register (else -1) */
	size_t file_bytes; /* read: bytes of the reply queued as a file segment */
	bool writable; /* open: opened for writing */
	struct stat newst; /* open: the file's attributes (its fstat) */
	/* the reply made whole and sent from the pool thread (cloudfs.c,
	 * job_finish) */
	uint64_t owner; /* the connection's descriptor owner (0: node-wide) */
	size_t sent; /* bytes of the reply that went out already */
	bool added; /* open: newvfd was registered (newfd is the table's) */
	uint64_t newvfd;
};

/* Runs j->req; sets j->rc and, on success, fills j->reply (open: sets
 * j->newfd and leaves the reply's start to the caller, who mints the
 * descriptor: j->reply holds only the stat fields of an open with 's'). */
void cfs_ops_run(struct cfs_job *j);

#endif
