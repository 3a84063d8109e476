/*
 * transport.c - plain TCP and TLS behind the vc_transport ops (transport.h).
 *
 * Each op is the system call it stands for on the connection's
 * non-blocking socket; on EAGAIN it records which readiness to wait for
 * (reads wait for POLLIN, writes for POLLOUT).  SIGPIPE is never raised:
 * a write to a closed peer fails with EPIPE.
 */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/ktls.h"
#include "../common/tlsout.h"
#include "client.h"

static ssize_t tcp_read(struct vc_conn *k, void *buf, size_t n)
{
	ssize_t r = recv(k->fd, buf, n, 0);
	if (r < 0)
		k->want = POLLIN;
	return r;
}

static ssize_t tcp_readv(struct vc_conn *k, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	ssize_t r = recvmsg(k->fd, &m, 0);
	if (r < 0)
		k->want = POLLIN;
	return r;
}

static ssize_t tcp_write(struct vc_conn *k, const struct iovec *iov, int iovcnt)
{
	struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
	ssize_t w = sendmsg(k->fd, &m, MSG_NOSIGNAL);
	if (w < 0)
		k->want = POLLOUT;
	return w;
}

static int tcp_shutdown(struct vc_conn *k) { return shutdown(k->fd, SHUT_WR); }

static void tcp_close(struct vc_conn *k)
{
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

const struct vc_transport vc_tcp_transport = {
	.name = "tcp",
	.read = tcp_read,
	.readv = tcp_readv,
	.write = tcp_write,
	.shutdown = tcp_shutdown,
	.close = tcp_close,
};

/* ---- TLS ---------------------------------------------------------------
 * TLS 1.3 over the same non-blocking socket (OpenSSL 3): the node's
 * certificate must chain to tls_ca and name the node's address (or host
 * name) in its subjectAltName; tls_cert/tls_key, when set, are this
 * client's certificate for nodes that require one.  Each node's service
 * remembers the last session ticket it sent, so a new pooled connection
 * resumes instead of doing a full handshake. */
struct vc_tls_conn {
	SSL *ssl;
	pthread_mutex_t *lock; /* the node's: guards *slot */
	void **slot; /* the node's last SSL_SESSION for this service */
	bool failed; /* fatal error: no close_notify */
	/* Without kTLS the SSL writes its records into out and tls_write
	 * sends several at once (a 64 KiB value: one send, not five).  A
	 * write reports only bytes whose records are on the wire, so the
	 * caller passes the rest again (tlsout.h). */
	bool buffered;
	struct tlsout out;
};

/* SSL_get_error needs an empty error queue before the call it explains;
 * peeking costs less than clearing on every record. */
static inline void errq_reset(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

_Thread_local char vc_tls_why[200];

static void tls_note(const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[160] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	/* a node refusing a connection for a limit sends internal_error
	 * before any handshake (vd_tls_refuse) */
	const char *hint = e && ERR_GET_REASON(e) == SSL_R_TLSV1_ALERT_INTERNAL_ERROR
				   ? " (the node refused the connection: at a connection limit?)"
				   : "";
	snprintf(vc_tls_why, sizeof vc_tls_why, "TLS %s: %s%s", what, e ? buf : "connection closed",
		 hint);
	ERR_clear_error();
}

static int tls_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct vc_tls_conn *s = SSL_get_app_data(ssl);
	if (!s || !s->slot)
		return 0;
	pthread_mutex_lock(s->lock);
	if (*s->slot)
		SSL_SESSION_free(*s->slot);
	*s->slot = sess;
	pthread_mutex_unlock(s->lock);
	return 1; /* we keep the reference */
}

void *vc_tls_ctx_new(const char *ca, const char *cert, const char *key, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	const char *what = "context";
	if (!ctx)
		goto fail;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
				      "TLS_CHACHA20_POLY1305_SHA256");
	const char *why;
	if (ktls_possible(&why)) {
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	} else {
		/* read ahead: one recv per record or fewer, where there
		 * would be two (header, then body).  The buffer stays
		 * OpenSSL's default (one record and a bit): OpenSSL 3.0
		 * moves what follows each record to the buffer's front, so
		 * a 64 KiB buffer full of 16 KiB records moved 1.5 bytes per
		 * byte read (callgrind, 64 KiB values: 14% of the client's
		 * instructions) */
		SSL_CTX_set_read_ahead(ctx, 1);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	what = ca;
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1)
		goto fail;
	if (cert && cert[0]) {
		what = cert;
		if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
			goto fail;
		what = key && key[0] ? key : cert;
		if (SSL_CTX_use_PrivateKey_file(ctx, what, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1)
			goto fail;
	}
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, tls_new_session);
	return ctx;
fail:;
	unsigned long e = ERR_peek_last_error();
	char buf[200] = "out of memory";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(err, errlen, "TLS: cannot load %s: %s", what, buf);
	SSL_CTX_free(ctx);
	return NULL;
}

void vc_tls_ctx_free(void *ctx) { SSL_CTX_free(ctx); }

void vc_tls_session_free(void *sess)
{
	if (sess)
		SSL_SESSION_free(sess);
}

int vc_tls_attach(struct vc_conn *k, void *ctx, const char *host, pthread_mutex_t *lock, void **slot)
{
	struct vc_tls_conn *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->ssl = SSL_new(ctx);
	s->lock = lock;
	s->slot = slot;
	bool ok = s->ssl != NULL;
	if (ok && (SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS)) {
		ok = SSL_set_fd(s->ssl, k->fd) == 1; /* kTLS needs the socket BIO */
	} else if (ok) {
		ok = tlsout_attach(s->ssl, k->fd, &s->out) == 0;
		s->buffered = ok;
	}
	if (!ok) {
		SSL_free(s->ssl);
		free(s);
		ERR_clear_error();
		return -ENOMEM;
	}
	SSL_set_app_data(s->ssl, s);
	/* the node's certificate must name the address we dialled */
	unsigned char bin[16];
	if (inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host);
	} else {
		SSL_set_tlsext_host_name(s->ssl, host);
		SSL_set1_host(s->ssl, host);
	}
	pthread_mutex_lock(lock);
	if (*slot)
		SSL_set_session(s->ssl, *slot);
	pthread_mutex_unlock(lock);
	SSL_set_connect_state(s->ssl);
	k->tstate = s;
	k->tp = &vc_tls_transport;
	return 0;
}

bool vc_tls_resumed(const struct vc_conn *k)
{
	const struct vc_tls_conn *s = k->tstate;
	return k->tp == &vc_tls_transport && s && SSL_session_reused(s->ssl);
}

/* r <= 0 from an SSL call: -1 with errno (EAGAIN: k->want set), or 0. */
static int tls_fail(struct vc_conn *k, int r, const char *what)
{
	struct vc_tls_conn *s = k->tstate;
	switch (SSL_get_error(s->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		k->want = POLLIN;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		k->want = POLLOUT;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		s->failed = true;
		tls_note(what);
		if (errno == 0 || errno == EAGAIN)
			errno = ECONNRESET;
		return -1;
	default:
		s->failed = true;
		tls_note(what);
		errno = ECONNREFUSED; /* the peer's certificate or ours was refused */
		return -1;
	}
}

/* Sends what the SSL wrote outside tls_write (handshake messages,
 * alerts) while no request records wait: 0 when nothing is left, 1 when
 * the socket is full (k->want = POLLOUT), -1 with errno. */
static int tls_send_control(struct vc_conn *k)
{
	struct vc_tls_conn *s = k->tstate;
	if (!s->buffered || s->out.nrec > 0 || tlsout_held(&s->out) == 0)
		return 0;
	int r = tlsout_send(&s->out, k->fd);
	if (r > 0)
		k->want = POLLOUT;
	return r;
}

static int tls_start(struct vc_conn *k, int64_t deadline_ms)
{
	struct vc_tls_conn *s = k->tstate;
	vc_tls_why[0] = '\0';
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(s->ssl);
		int sr = tls_send_control(k); /* this flight, before waiting */
		if (sr < 0)
			return errno ? -errno : -EIO;
		if (r == 1 && sr == 0)
			return 0;
		if (r == 1) {
			errno = EAGAIN; /* our Finished is still to go */
		} else if (tls_fail(k, r, "handshake") == 0) {
			snprintf(vc_tls_why, sizeof vc_tls_why,
				 "TLS handshake: the node closed the connection (does it speak TLS?)");
			return -ECONNRESET;
		}
		if (errno != EAGAIN)
			return -errno;
		if (sr > 0) /* our flight first: the node waits for it */
			k->want = POLLOUT;
		for (;;) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t left = deadline_ms - ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
			if (left <= 0)
				return -ETIMEDOUT;
			struct pollfd p = {.fd = k->fd, .events = k->want};
			int pr = poll(&p, 1, (int)left);
			if (pr > 0)
				break;
			if (pr < 0 && errno != EINTR)
				return -errno;
		}
	}
}

static ssize_t tls_readv(struct vc_conn *k, const struct iovec *iov, int iovcnt)
{
	struct vc_tls_conn *s = k->tstate;
	if (tls_send_control(k) < 0) /* best effort: nothing waits for it */
		return -1;
	size_t total = 0;
	for (int i = 0; i < iovcnt; i++) {
		char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;
		while (left > 0) {
			size_t got = 0;
			errq_reset(); /* another user of OpenSSL in this thread may have left errors */
			int r = SSL_read_ex(s->ssl, p, left, &got);
			if (r <= 0) {
				if (total > 0) {
					ERR_clear_error();
					return (ssize_t)total;
				}
				return tls_fail(k, r, "read");
			}
			total += got;
			p += got;
			left -= got;
			if (!SSL_has_pending(s->ssl))
				return (ssize_t)total;
		}
	}
	return (ssize_t)total;
}

static ssize_t tls_read(struct vc_conn *k, void *buf, size_t n)
{
	struct iovec v = {buf, n};
	return tls_readv(k, &v, 1);
}

/* Gathers up to one record's worth of iov, from byte `skip` on, into tmp
 * (or points into iov when that much is contiguous there); its length. */
static size_t tls_gather(const struct iovec *iov, int iovcnt, size_t skip, unsigned char *tmp,
			 size_t cap, const void **p)
{
	int i = 0;
	while (i < iovcnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	if (i == iovcnt)
		return 0;
	if (iov[i].iov_len - skip >= cap || i == iovcnt - 1) {
		size_t n = iov[i].iov_len - skip;
		*p = (const char *)iov[i].iov_base + skip;
		return n < cap ? n : cap;
	}
	size_t len = 0;
	for (; i < iovcnt && len < cap; i++, skip = 0) {
		size_t take = iov[i].iov_len - skip < cap - len ? iov[i].iov_len - skip : cap - len;
		memcpy(tmp + len, (const char *)iov[i].iov_base + skip, take);
		len += take;
	}
	*p = tmp;
	return len;
}

/* One record per SSL_write: small iovecs (a request line, its payload,
 * CRLF) are gathered into one buffer, so a request is one record; a large
 * one is written from where it is.  Without kTLS up to TLSOUT_BATCH
 * records go out in one system call, and only bytes whose records were
 * sent are reported written (the caller passes the rest again). */
static ssize_t tls_write(struct vc_conn *k, const struct iovec *iov, int iovcnt)
{
	struct vc_tls_conn *s = k->tstate;
	unsigned char tmp[16384];
	if (!s->buffered) {
		const void *p;
		size_t len = tls_gather(iov, iovcnt, 0, tmp, sizeof tmp, &p);
		size_t w = 0;
		errq_reset();
		int r = SSL_write_ex(s->ssl, p, len, &w);
		if (r <= 0) {
			r = tls_fail(k, r, "write");
			if (r == 0) {
				errno = EPIPE;
				r = -1;
			}
			return r;
		}
		return (ssize_t)w;
	}
	if (s->out.nrec == 0 && tlsout_held(&s->out) > 0) { /* not request bytes: first */
		int r = tlsout_send(&s->out, k->fd);
		if (r != 0) {
			if (r > 0) {
				k->want = POLLOUT;
				errno = EAGAIN;
			}
			return -1;
		}
	}
	size_t total = 0; /* room for the whole batch at once (a record adds 22 bytes) */
	for (int i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	total -= s->out.ahead < total ? s->out.ahead : total;
	if (total > TLSOUT_BATCH * sizeof tmp)
		total = TLSOUT_BATCH * sizeof tmp;
	if (tlsout_reserve(&s->out, total + TLSOUT_BATCH * 64) != 0) {
		errno = ENOMEM;
		return -1;
	}
	while (s->out.nrec < TLSOUT_BATCH) {
		const void *p;
		size_t len = tls_gather(iov, iovcnt, s->out.ahead, tmp, sizeof tmp, &p);
		if (len == 0)
			break;
		size_t w = 0;
		errq_reset();
		int r = SSL_write_ex(s->ssl, p, len, &w);
		if (r <= 0) {
			if (s->out.nrec > 0) /* send what is encrypted; retry this later */
				break;
			r = tls_fail(k, r, "write");
			if (r == 0) {
				errno = EPIPE;
				r = -1;
			}
			return r;
		}
		tlsout_mark(&s->out, w);
	}
	if (s->out.nrec == 0)
		return 0; /* nothing to write (empty iovecs) */
	int r = tlsout_send(&s->out, k->fd);
	if (r < 0)
		return -1;
	size_t done = tlsout_retire(&s->out);
	if (r == 0)
		tlsout_trim(&s->out);
	if (done > 0)
		return (ssize_t)done;
	k->want = POLLOUT;
	errno = EAGAIN;
	return -1;
}

static int tls_shutdown(struct vc_conn *k)
{
	struct vc_tls_conn *s = k->tstate;
	if (!s->failed) {
		ERR_clear_error();
		SSL_shutdown(s->ssl);
		ERR_clear_error();
		tls_send_control(k); /* best effort, as the close_notify is */
	}
	return shutdown(k->fd, SHUT_WR);
}

static void tls_close(struct vc_conn *k)
{
	struct vc_tls_conn *s = k->tstate;
	if (s) {
		/* close_notify (best effort, non-blocking): an SSL freed
		 * without it marks its session not resumable, and that
		 * session is the node's latest ticket, kept in the slot */
		if (!s->failed && SSL_is_init_finished(s->ssl)) {
			SSL_shutdown(s->ssl);
			tls_send_control(k);
		}
		SSL_free(s->ssl);
		tlsout_release(&s->out);
		free(s);
		k->tstate = NULL;
		ERR_clear_error();
	}
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

static bool tls_pending(struct vc_conn *k)
{
	struct vc_tls_conn *s = k->tstate;
	return s && SSL_has_pending(s->ssl);
}

const struct vc_transport vc_tls_transport = {
	.name = "tls",
	.start = tls_start,
	.read = tls_read,
	.readv = tls_readv,
	.write = tls_write,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.pending = tls_pending,
};
