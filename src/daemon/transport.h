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

#include <stdbool.h>
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
	/* Sends at most max bytes from the front of buf (SIZE_MAX: all it
	 * can; server.c passes less under MaxNetworkBandwidth, bw.h) and
	 * drains what was sent: bytes sent, or -1 with errno (EAGAIN: set
	 * want, retry on that event). */
	int (*write)(struct vd_tconn *t, struct evbuffer *buf, size_t max);
	/* Ends our direction of the stream (half-close); 0 or -1. */
	int (*shutdown)(struct vd_tconn *t);
	/* Releases ctx and closes fd (fd < 0: nothing to close). */
	void (*close)(struct vd_tconn *t);
	/* Optional: bytes the transport already holds for the reader (a TLS
	 * record read whole but not all taken), which no readable event
	 * will announce; server.c reads again while true. */
	bool (*pending)(const struct vd_tconn *t);
};

/* Plain TCP: recv/readv, writev (evbuffer_write), shutdown(SHUT_WR). */
extern const struct vd_transport vd_transport_tcp;

/* TLS 1.3 (transport_tls.c): SSL_read_ex/SSL_write_ex on the socket. */
extern const struct vd_transport vd_transport_tls;

/* The node's TLS state: the SSL_CTX new connections are accepted with. */
struct vd_config;
struct vd_tls;
/* From cfg's tls_cert, tls_key, tls_ca (client certificates required)
 * and tls_crl.  NULL with a message in err.  Owned: vd_tls_free. */
struct vd_tls *vd_tls_new(const struct vd_config *cfg, char *err, size_t errlen);
/* SIGHUP: a new context from the files for new connections; open ones
 * keep theirs.  0, or -1 with err (the old context stays). */
int vd_tls_reload(struct vd_tls *tls, const struct vd_config *cfg, char *err, size_t errlen);
void vd_tls_free(struct vd_tls *tls);
/* Makes t (a fresh accepted socket) a TLS server end: 0 or -1. */
int vd_tls_attach(struct vd_tls *tls, struct vd_tconn *t);
/* Has t's handshake completed? */
bool vd_tls_established(const struct vd_tconn *t);
/* The client certificate's CN once the handshake is done, else NULL
 * (points into t's state). */
const char *vd_tls_peer_name(const struct vd_tconn *t);
/* Appends the node's TLS and kTLS counters as "STAT k v" lines. */
void vd_tls_stats_add(struct evbuffer *out);
/* Refuses a fresh accepted socket of a TLS port (a connection limit)
 * without a handshake: a TLS alert, never a plain-text line, and the
 * sending side shut down.  The caller closes fd, best once the client's
 * ClientHello has arrived (else the close is a reset). */
void vd_tls_refuse(int fd);

#endif
