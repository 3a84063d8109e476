/*
 * service.h - the interface every VIRGO service module implements, and the
 * connection handle the daemon gives it.
 *
 * The daemon owns sockets, threads, limits and (later) TLS; a service only
 * sees bytes: its on_input gets the connection's input buffer, consumes
 * whole requests and appends replies to vconn_out().  Because services
 * never touch the socket, wrapping a connection in TLS (an OpenSSL filter
 * bufferevent) changes nothing here.  Adding a service = one module file
 * plus one line in vsvc_table (service.c).
 */
#ifndef VIRGO_SERVICE_H
#define VIRGO_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct vconn;
struct vd_config;

#define VSVC_KEEP 0
#define VSVC_CLOSE 1 /* close once the replies are flushed */

struct vsvc {
	const char *name; /* also the config key prefix: <name>_port */
	uint16_t base_port; /* notes' port; the node's port_offset is added */
	size_t conn_size; /* bytes of zeroed per-connection state */
	/* Once at start-up, before listening; *svc is passed back below. */
	int (*init)(const struct vd_config *cfg, void **svc);
	void (*fini)(void *svc);
	/* New input is in `in`; eof: the peer will send nothing more.
	 * Consume what can be answered now; return VSVC_KEEP or VSVC_CLOSE. */
	int (*on_input)(struct vconn *c, struct evbuffer *in, bool eof);
	/* Optional: release per-connection resources. */
	void (*conn_close)(struct vconn *c);
};

/* NULL-terminated table of the services this build provides. */
extern const struct vsvc *const vsvc_table[];

/* Accessors for service code. */
struct evbuffer *vconn_out(struct vconn *c); /* replies go here */
void *vconn_state(struct vconn *c); /* conn_size bytes, zeroed at accept */
void *vconn_svc(struct vconn *c); /* what init stored in *svc */
const char *vconn_peer(struct vconn *c); /* "ip:port" of the client */

#endif
