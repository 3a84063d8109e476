/*
 * queue_route.h - the other services' way into the queue: the notes'
 * use_as_kingcobra_service (§976, §1017), where the cpupool enqueues an
 * incoming request for KingCobra instead of running it, so virgo_clone
 * gets an asynchronous, durable path whose result arrives on a reply
 * topic (virgo queue work --reply).
 */
#ifndef VIRGO_QUEUE_ROUTE_H
#define VIRGO_QUEUE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

struct vconn;

/* Runs once on c's loop thread when the record is durable (err 0, its
 * topic and offset) or failed (err a positive errno), or with c NULL when
 * the connection closed meanwhile (arg is still the caller's to free). */
typedef void (*queue_route_fn)(struct vconn *c, void *arg, int err, const char *topic,
			       uint64_t offset);

/* Loop thread of c (a connection of any service): appends data to the
 * queue's default topic, stamped with c's peer address.  0 (fn will run;
 * the caller waits, VSVC_WAIT), -ENOSYS when this node runs no queue
 * service, -ENOMEM. */
int queue_route(struct vconn *c, const void *data, size_t len, queue_route_fn fn, void *arg);

#endif
