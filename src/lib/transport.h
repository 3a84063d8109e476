/*
 * transport.h - libvirgo's byte transport under one pooled connection.
 *
 * conn.c never calls a socket function on an established connection
 * directly: it goes through the connection's ops table, so TLS can be
 * added as one more table (SSL_read/SSL_write over the same socket)
 * without touching the callers.  Plain TCP (vc_tcp_transport) is the only
 * implementation today.  The ops behave like the system calls they stand
 * for (a count, 0 at EOF for reads, or -1 with errno); when they fail with
 * EAGAIN they set k->want to the poll events to wait for before calling
 * again, which lets a transport ask to write while the caller reads (TLS
 * renegotiation) or the reverse.
 */
#ifndef VIRGO_TRANSPORT_H
#define VIRGO_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct vc_conn;

struct vc_transport {
	const char *name;
	/* Optional: run once on a freshly connected socket before the first
	 * request (a TLS handshake); 0 or a negative errno. */
	int (*start)(struct vc_conn *k, int64_t deadline_ms);
	ssize_t (*read)(struct vc_conn *k, void *buf, size_t n);
	ssize_t (*readv)(struct vc_conn *k, const struct iovec *iov, int iovcnt);
	/* A gather write; may write only part (the caller loops). */
	ssize_t (*write)(struct vc_conn *k, const struct iovec *iov, int iovcnt);
	/* The caller sends nothing more (half-close / close_notify). */
	int (*shutdown)(struct vc_conn *k);
	/* Releases the transport's state and the socket (not k itself). */
	void (*close)(struct vc_conn *k);
	/* Optional: bytes the transport already holds decrypted for the
	 * reader, which poll() on the socket cannot see. */
	bool (*pending)(struct vc_conn *k);
};

extern const struct vc_transport vc_tcp_transport;
/* TLS 1.3 (OpenSSL); start does the handshake. */
extern const struct vc_transport vc_tls_transport;

/* A client SSL_CTX (returned as void *, owned: vc_tls_ctx_free) trusting
 * ca, presenting cert/key when cert is non-empty.  NULL with err. */
void *vc_tls_ctx_new(const char *ca, const char *cert, const char *key, char *err, size_t errlen);
void vc_tls_ctx_free(void *ctx);
/* Frees a remembered session (an SSL_SESSION *, may be NULL). */
void vc_tls_session_free(void *sess);
/* Makes k (connected socket in k->fd) a TLS client end for host, resuming
 * *slot's session if any and storing the node's next ticket there (under
 * lock).  0 or -ENOMEM; then call k->tp->start. */
int vc_tls_attach(struct vc_conn *k, void *ctx, const char *host, pthread_mutex_t *lock,
		  void **slot);
/* Did k's handshake resume a session? */
bool vc_tls_resumed(const struct vc_conn *k);
/* Why the calling thread's last TLS operation failed ("" if none). */
extern _Thread_local char vc_tls_why[200];

#endif
