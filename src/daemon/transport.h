/*
 * transport.h - how a connection's bytes cross the wire, below server.c.
 *
 * server.c never calls recv/send/shutdown itself: it calls the four
 * operations of its connection's transport.  Plain TCP (transport_tcp.c)
 * is the only one today; TLS is one more table (SSL_read_ex/SSL_write_ex
 * over the same socket) with no change to server.c or to any service.
 * A transport may need the other direction to make progress (TLS: a read
 * that must first send a handshake record, a write that must first
 * receive one): it then fails with EAGAIN and sets t->want to the event
 * (EV_READ or EV_WRITE) that will let the operation continue; server.c
 * waits for that event and retries the operation, whichever it was.
 */
#ifndef VIRGO_TRANSPORT_H
#define VIRGO_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct evbuffer;

/* One connection's end of a transport. */
struct vd_tconn {
	int fd; /* the socket (owned: closed by close) */
	void *ctx; /* the transport's per-connection state (NULL for TCP) */
	short want; /* after EAGAIN: EV_READ or EV_WRITE it waits for */
};

struct vd_transport {
	const char *name;
	/* Reads into iov[0..n): bytes read (> 0), 0 at end of stream, or -1
	 * with errno (EAGAIN: set want, retry on that event). */
	ssize_t (*readv)(struct vd_tconn *t, struct iovec *iov, int n);
	/* Sends from the front of buf and drains what was sent: bytes sent,
	 * or -1 with errno (EAGAIN: set want, retry on that event). */
	int (*write)(struct vd_tconn *t, struct evbuffer *buf);
	/* Ends our direction of the stream (half-close); 0 or -1. */
	int (*shutdown)(struct vd_tconn *t);
	/* Releases ctx and closes fd (fd < 0: nothing to close). */
	void (*close)(struct vd_tconn *t);
};

/* Plain TCP: recv/readv, writev (evbuffer_write), shutdown(SHUT_WR). */
extern const struct vd_transport vd_transport_tcp;

#endif
