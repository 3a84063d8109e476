/*
 * transport_tls.c - the TLS transport (transport.h): TLS 1.3 only
 * (OpenSSL 3), SSL_read_ex/SSL_write_ex over the connection's socket, and
 * the node's TLS state: one SSL_CTX built from tls_cert/tls_key (and
 * tls_ca: client certificates signed by it are then required; tls_crl
 * revokes some).  SIGHUP builds a new SSL_CTX from the files and swaps
 * it in for new connections; an established connection keeps the context
 * it was accepted with (an SSL holds a reference to it), so a reload
 * drops nothing.  SSL_OP_ENABLE_KTLS is set: where the kernel has the TLS
 * ULP and OpenSSL was built with kTLS, record encryption moves into the
 * kernel after the handshake; every connection records whether it did,
 * and the counters (vd_tls_stats_add) say so in the mempool's stats.
 * A client that speaks plain text to a TLS port is told so in one plain
 * error line before the connection closes.
 */
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/ktls.h"
#include "../common/tlsout.h"
#include "config.h"
#include "log.h"

/* one TLS record's worth of plaintext per SSL_write_ex */
#define TLS_WRITE_CHUNK 16384
/* sessions a context keeps for resumption (ctx_build) */
#define VD_TLS_SESSIONS 4096

struct vd_tls {
	pthread_mutex_t lock; /* guards ctx (swapped by reload) */
	SSL_CTX *ctx;
	bool client_certs; /* tls_ca set: a client certificate is required */
	bool ktls; /* kTLS may work: records go through the socket BIO */
};

/* One connection's TLS state (vd_tconn.ctx). */
struct tls_conn {
	SSL *ssl;
	bool checked; /* first byte looked at (plain text is refused) */
	bool established; /* handshake done, counted */
	bool failed; /* a fatal error: no close_notify */
	bool ktls_send, ktls_recv;
	char peer_cn[64];
	/* Without kTLS the SSL writes its records into out (tlsout.h) and
	 * tls_write sends up to TLSOUT_BATCH of them (128 KiB of a reply)
	 * per system call, as plain TCP's writev would.  Reply bytes whose
	 * records are not on the wire yet stay at the front of the output
	 * evbuffer, so server.c keeps writing until they are. */
	bool buffered;
	struct tlsout out;
};

/* node-wide counters (one daemon per process; in-process tests share them) */
static _Atomic long tls_active, tls_handshakes, tls_resumed, tls_failures, tls_ktls_active,
	tls_ktls_total;
static _Atomic bool tls_on, tls_need_certs;

/* SSL_get_error needs an empty error queue before the call it explains;
 * peeking costs less than clearing on every record. */
static inline void errq_reset(void)
{
	if (ERR_peek_error())
		ERR_clear_error();
}

static void errq_text(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
}

/* A new server SSL_CTX from cfg's files; NULL with err. */
static SSL_CTX *ctx_build(const struct vd_config *cfg, char *err, size_t errlen)
{
	char why[256];
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		errq_text(why, sizeof why);
		snprintf(err, errlen, "TLS: %s", why);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
				      "TLS_CHACHA20_POLY1305_SHA256");
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	const char *no_ktls;
	if (ktls_possible(&no_ktls)) {
		SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
	} else {
		/* OpenSSL 3.0 reads ahead only without SSL_OP_ENABLE_KTLS: one
		 * recv per record (not a header, then a body), or several
		 * records per recv; SSL_has_pending reports what is left */
		SSL_CTX_set_read_ahead(ctx, 1);
	}
	/* resumption: one ticket per handshake is enough for a pooled
	 * client.  The tickets are stateful (SSL_OP_NO_TICKET in TLS 1.3):
	 * the ticket names a session kept in this context's cache.  A
	 * stateless ticket carries the session, client certificate included,
	 * and OpenSSL 3.0 decodes that certificate on every resumption
	 * (d2i_SSL_SESSION, its key through the decoder framework): 55% of a
	 * resumed handshake's CPU on the node, measured with callgrind.  The
	 * cache is bounded (VD_TLS_SESSIONS, a few KiB each: the session and
	 * its client certificate); when full, the oldest go and those clients
	 * do one full handshake.  A ticket stays usable more than once
	 * (libvirgo opens pooled connections in parallel from the node's
	 * latest ticket): OpenSSL makes stateful tickets single-use only for
	 * 0-RTT replay protection, and SSL_OP_NO_ANTI_REPLAY says so
	 * explicitly (no early data is accepted here).  A reload's
	 * new context starts with an empty cache, so a revoked client cannot
	 * resume past its refusal.  The id context lets a session with a
	 * client certificate resume at all. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_ANTI_REPLAY);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
	SSL_CTX_sess_set_cache_size(ctx, VD_TLS_SESSIONS);
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"virgo", 5);
	const char *what = cfg->tls_cert;
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
		goto fail;
	what = cfg->tls_key;
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	if (cfg->tls_ca[0]) {
		what = cfg->tls_ca;
		if (SSL_CTX_load_verify_locations(ctx, cfg->tls_ca, NULL) != 1)
			goto fail;
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->tls_ca);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		if (cfg->tls_crl[0]) {
			what = cfg->tls_crl;
			X509_STORE *st = SSL_CTX_get_cert_store(ctx);
			X509_LOOKUP *lu = X509_STORE_add_lookup(st, X509_LOOKUP_file());
			if (!lu || X509_load_crl_file(lu, cfg->tls_crl, X509_FILETYPE_PEM) < 1)
				goto fail;
			X509_STORE_set_flags(st, X509_V_FLAG_CRL_CHECK);
		}
	} else if (cfg->tls_crl[0]) {
		snprintf(err, errlen, "tls_crl is set but tls_ca is not (a CRL revokes client "
				      "certificates, which only tls_ca asks for)");
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
fail:
	errq_text(why, sizeof why);
	snprintf(err, errlen, "TLS: cannot load %s: %s", what, why);
	SSL_CTX_free(ctx);
	return NULL;
}

struct vd_tls *vd_tls_new(const struct vd_config *cfg, char *err, size_t errlen)
{
	if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
		snprintf(err, errlen, "TLS needs both tls_cert and tls_key (%s is missing)",
			 cfg->tls_cert[0] ? "tls_key" : "tls_cert");
		return NULL;
	}
	struct vd_tls *tls = calloc(1, sizeof *tls);
	if (!tls) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	tls->ctx = ctx_build(cfg, err, errlen);
	if (!tls->ctx) {
		free(tls);
		return NULL;
	}
	tls->client_certs = cfg->tls_ca[0] != 0;
	const char *why;
	tls->ktls = ktls_possible(&why);
	pthread_mutex_init(&tls->lock, NULL);
	atomic_store(&tls_on, true);
	atomic_store(&tls_need_certs, tls->client_certs);
	return tls;
}

int vd_tls_reload(struct vd_tls *tls, const struct vd_config *cfg, char *err, size_t errlen)
{
	if (!cfg->tls_cert[0] || !cfg->tls_key[0]) {
		snprintf(err, errlen, "tls_cert and tls_key are gone from the config; TLS stays on "
				      "with the old certificates until a restart");
		return -1;
	}
	if (!cfg->tls_ca[0] && tls->client_certs) {
		snprintf(err, errlen, "tls_ca is gone from the config; client certificates stay "
				      "required until a restart");
		return -1;
	}
	SSL_CTX *ctx = ctx_build(cfg, err, errlen);
	if (!ctx)
		return -1;
	pthread_mutex_lock(&tls->lock);
	SSL_CTX *old = tls->ctx;
	tls->ctx = ctx;
	tls->client_certs = cfg->tls_ca[0] != 0;
	pthread_mutex_unlock(&tls->lock);
	atomic_store(&tls_need_certs, cfg->tls_ca[0] != 0);
	SSL_CTX_free(old); /* connections accepted with it hold their own reference */
	return 0;
}

void vd_tls_free(struct vd_tls *tls)
{
	if (!tls)
		return;
	SSL_CTX_free(tls->ctx);
	pthread_mutex_destroy(&tls->lock);
	free(tls);
	atomic_store(&tls_on, false);
}

int vd_tls_attach(struct vd_tls *tls, struct vd_tconn *t)
{
	struct tls_conn *s = calloc(1, sizeof *s);
	if (!s)
		return -1;
	pthread_mutex_lock(&tls->lock);
	s->ssl = SSL_new(tls->ctx);
	pthread_mutex_unlock(&tls->lock);
	bool ok = s->ssl != NULL;
	if (ok && tls->ktls) {
		ok = SSL_set_fd(s->ssl, t->fd) == 1;
	} else if (ok) {
		ok = tlsout_attach(s->ssl, t->fd, &s->out) == 0;
		s->buffered = ok;
	}
	if (!ok) {
		SSL_free(s->ssl);
		free(s);
		ERR_clear_error();
		return -1;
	}
	SSL_set_accept_state(s->ssl);
	t->ctx = s;
	return 0;
}

bool vd_tls_established(const struct vd_tconn *t)
{
	const struct tls_conn *s = t->ctx;
	return s && s->established;
}

const char *vd_tls_peer_name(const struct vd_tconn *t)
{
	const struct tls_conn *s = t->ctx;
	return s && s->established && s->peer_cn[0] ? s->peer_cn : NULL;
}

static void peer_of(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	char host[64] = "?";
	int port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *a = (struct sockaddr_in *)&ss;
			evutil_inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
			evutil_inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
			port = ntohs(a->sin6_port);
		}
	}
	snprintf(buf, len, "%s:%d", host, port);
}

/* The handshake just completed: who is it, did kTLS take over. */
static void tls_established(struct tls_conn *s)
{
	s->established = true;
	X509 *cert = SSL_get0_peer_certificate(s->ssl);
	if (cert)
		X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, s->peer_cn,
					  sizeof s->peer_cn);
	s->ktls_send = BIO_get_ktls_send(SSL_get_wbio(s->ssl));
	s->ktls_recv = BIO_get_ktls_recv(SSL_get_rbio(s->ssl));
	atomic_fetch_add(&tls_active, 1);
	atomic_fetch_add(&tls_handshakes, 1);
	if (SSL_session_reused(s->ssl))
		atomic_fetch_add(&tls_resumed, 1);
	if (s->ktls_send || s->ktls_recv) {
		atomic_fetch_add(&tls_ktls_active, 1);
		atomic_fetch_add(&tls_ktls_total, 1);
	}
}

/* An SSL call returned r <= 0: errno and t->want as transport.h says. */
static int tls_fail(struct vd_tconn *t, int r)
{
	struct tls_conn *s = t->ctx;
	int e = SSL_get_error(s->ssl, r);
	switch (e) {
	case SSL_ERROR_WANT_READ:
		t->want = EV_READ;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		t->want = EV_WRITE;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN: /* close_notify */
		return 0;
	case SSL_ERROR_SYSCALL:
		s->failed = true;
		ERR_clear_error();
		if (errno == 0 || errno == EAGAIN)
			errno = ECONNRESET; /* EOF without close_notify */
		return -1;
	default: {
		s->failed = true;
		char why[256], peer[80];
		errq_text(why, sizeof why);
		peer_of(t->fd, peer, sizeof peer);
		if (!s->established) {
			atomic_fetch_add(&tls_failures, 1);
			log_info_every("tls_refused peer=%s reason=\"%s\"", peer, why);
		} else {
			log_debug("TLS error from %s: %s", peer, why);
		}
		errno = EPROTO;
		return -1;
	}
	}
}

/* Before the handshake: a client that sends plain text (a request line)
 * gets one plain error line instead of a TLS alert it cannot read.  A
 * TLS ClientHello starts with a handshake record: byte 0x16. */
static int tls_check_first(struct vd_tconn *t)
{
	struct tls_conn *s = t->ctx;
	unsigned char b;
	ssize_t r = recv(t->fd, &b, 1, MSG_PEEK);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			t->want = EV_READ;
		return -1;
	}
	if (r == 0)
		return 0;
	s->checked = true;
	if (b == 0x16)
		return 1;
	static const char msg[] = "ERR EACCES this port requires TLS (set tls_ca, tls_cert and "
				  "tls_key in virgo_client.conf)\r\n";
	ssize_t w = send(t->fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	/* take what the client sent, so that the close is a FIN, not a reset
	 * that could destroy the line in flight */
	char sink[4096];
	for (int i = 0; i < 16 && recv(t->fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
		;
	shutdown(t->fd, SHUT_WR);
	char peer[80];
	peer_of(t->fd, peer, sizeof peer);
	atomic_fetch_add(&tls_failures, 1);
	log_info_every("tls_refused peer=%s reason=\"plain text on a TLS port\"", peer);
	s->failed = true;
	errno = EPROTO;
	return -1;
}

/* Sends what the SSL wrote outside tls_write (handshake messages, session
 * tickets, alerts) while no reply records wait: those are tls_write's to
 * send, in order, and this output then follows them.  -1 with errno on a
 * socket error. */
static int tls_send_control(struct vd_tconn *t)
{
	struct tls_conn *s = t->ctx;
	if (!s->buffered || s->out.nrec > 0 || tlsout_held(&s->out) == 0)
		return 0;
	return tlsout_send(&s->out, t->fd) < 0 ? -1 : 0;
}

/* What readv returns after its reads (r, and err: their errno when
 * r < 0), once the SSL's own output is sent; a handshake whose next
 * flight could not all be sent waits for writability, not for the peer
 * (which waits for that flight). */
static ssize_t tls_read_result(struct vd_tconn *t, ssize_t r, int err)
{
	struct tls_conn *s = t->ctx;
	if (tls_send_control(t) < 0)
		return -1;
	if (r < 0) {
		errno = err;
		if (err == EAGAIN && s->buffered && !s->established && s->out.nrec == 0 &&
		    tlsout_held(&s->out) > 0)
			t->want = EV_WRITE;
	}
	return r;
}

static ssize_t tls_readv(struct vd_tconn *t, struct iovec *iov, int n)
{
	struct tls_conn *s = t->ctx;
	if (!s->checked) {
		int c = tls_check_first(t);
		if (c <= 0)
			return c;
	}
	if (tls_send_control(t) < 0)
		return -1;
	size_t total = 0;
	for (int i = 0; i < n; i++) {
		char *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;
		while (left > 0) {
			size_t got = 0;
			errq_reset(); /* cheap when empty, as it is after our own calls */
			int r = SSL_read_ex(s->ssl, p, left, &got);
			if (!s->established && SSL_is_init_finished(s->ssl))
				tls_established(s);
			if (r <= 0) {
				if (total > 0) {
					ERR_clear_error();
					return tls_read_result(t, (ssize_t)total, 0);
				}
				int f = tls_fail(t, r);
				if (f < 0 && errno != EAGAIN)
					return f;
				return tls_read_result(t, f, errno);
			}
			total += got;
			p += got;
			left -= got;
			/* more only if OpenSSL holds it already: another
			 * read of the socket would just say EAGAIN */
			if (!SSL_has_pending(s->ssl))
				return tls_read_result(t, (ssize_t)total, 0);
		}
	}
	return tls_read_result(t, (ssize_t)total, 0);
}

/* tls_write without kTLS: encrypts up to TLSOUT_BATCH records of
 * buf into s->out and sends them with one send().  Bytes drained from
 * buf (their records sent), or -1 with errno (EAGAIN: want set). */
static int tls_write_batch(struct vd_tconn *t, struct evbuffer *buf)
{
	struct tls_conn *s = t->ctx;
	size_t len = evbuffer_get_length(buf);
	if (s->out.nrec == 0) { /* what was held is not reply bytes: send it first */
		if (tlsout_held(&s->out) > 0) {
			int r = tlsout_send(&s->out, t->fd);
			if (r < 0)
				return -1;
			if (r > 0) {
				t->want = EV_WRITE;
				errno = EAGAIN;
				return -1;
			}
		}
	}
	/* room for the whole batch at once (a record adds 22 bytes) */
	size_t batch = len - s->out.ahead;
	if (batch > (size_t)TLSOUT_BATCH * TLS_WRITE_CHUNK)
		batch = (size_t)TLSOUT_BATCH * TLS_WRITE_CHUNK;
	if (tlsout_reserve(&s->out, batch + TLSOUT_BATCH * 64) != 0) {
		errno = ENOMEM;
		return -1;
	}
	while (s->out.nrec < TLSOUT_BATCH && s->out.ahead < len && tlsout_held(&s->out) < (1u << 20)) {
		size_t n = len - s->out.ahead;
		if (n > TLS_WRITE_CHUNK)
			n = TLS_WRITE_CHUNK;
		unsigned char tmp[TLS_WRITE_CHUNK];
		const unsigned char *p;
		struct evbuffer_ptr pos;
		struct evbuffer_iovec v;
		if (evbuffer_ptr_set(buf, &pos, s->out.ahead, EVBUFFER_PTR_SET) == 0 &&
		    evbuffer_peek(buf, (ev_ssize_t)n, &pos, &v, 1) >= 1 && v.iov_len >= n) {
			p = v.iov_base; /* contiguous where it is */
		} else {
			if (evbuffer_ptr_set(buf, &pos, s->out.ahead, EVBUFFER_PTR_SET) != 0 ||
			    evbuffer_copyout_from(buf, &pos, tmp, n) != (ev_ssize_t)n) {
				errno = ENOMEM;
				return -1;
			}
			p = tmp;
		}
		size_t w = 0;
		errq_reset();
		int r = SSL_write_ex(s->ssl, p, n, &w);
		if (!s->established && SSL_is_init_finished(s->ssl))
			tls_established(s);
		if (r <= 0) {
			if (s->out.nrec > 0) /* send what is encrypted; retry this later */
				break;
			r = tls_fail(t, r);
			if (r == 0) { /* the peer closed: nothing more can be written */
				errno = EPIPE;
				r = -1;
			}
			return r;
		}
		tlsout_mark(&s->out, w);
	}
	int r = tlsout_send(&s->out, t->fd);
	if (r < 0)
		return -1;
	size_t done = tlsout_retire(&s->out);
	evbuffer_drain(buf, done);
	if (r == 0)
		tlsout_trim(&s->out);
	if (done > 0)
		return (int)done;
	t->want = EV_WRITE;
	errno = EAGAIN;
	return -1;
}

static int tls_write(struct vd_tconn *t, struct evbuffer *buf, size_t max)
{
	struct tls_conn *s = t->ctx;
	if (s->buffered)
		return tls_write_batch(t, buf);
	size_t len = evbuffer_get_length(buf);
	/* a retried SSL_write_ex may not shrink: a capped grant (bw.h) is
	 * at least min(buffered, 16 KiB), so len is what it was before */
	if (len > max)
		len = max;
	if (len > TLS_WRITE_CHUNK)
		len = TLS_WRITE_CHUNK;
	unsigned char *p = evbuffer_pullup(buf, (ev_ssize_t)len);
	if (!p) {
		errno = ENOMEM;
		return -1;
	}
	size_t w = 0;
	errq_reset();
	int r = SSL_write_ex(s->ssl, p, len, &w);
	if (!s->established && SSL_is_init_finished(s->ssl))
		tls_established(s);
	if (r <= 0) {
		r = tls_fail(t, r);
		if (r == 0) { /* the peer closed: nothing more can be written */
			errno = EPIPE;
			r = -1;
		}
		return r;
	}
	evbuffer_drain(buf, w);
	return (int)w;
}

static int tls_shutdown(struct vd_tconn *t)
{
	struct tls_conn *s = t->ctx;
	if (s->established && !s->failed) {
		ERR_clear_error();
		SSL_shutdown(s->ssl); /* close_notify, best effort */
		ERR_clear_error();
		if (s->buffered && s->out.nrec == 0)
			tlsout_send(&s->out, t->fd);
	}
	return shutdown(t->fd, SHUT_WR);
}

static bool tls_pending(const struct vd_tconn *t)
{
	const struct tls_conn *s = t->ctx;
	return s && SSL_has_pending(s->ssl);
}

static void tls_close(struct vd_tconn *t)
{
	struct tls_conn *s = t->ctx;
	if (s) {
		if (s->established) {
			atomic_fetch_sub(&tls_active, 1);
			if (s->ktls_send || s->ktls_recv)
				atomic_fetch_sub(&tls_ktls_active, 1);
			/* SSL_free drops the session (the one the client's
			 * ticket names) from the cache unless our close_notify
			 * went out; a connection that ended without an error
			 * (the client closed) leaves a resumable session */
			if (!s->failed)
				SSL_set_shutdown(s->ssl, SSL_get_shutdown(s->ssl) | SSL_SENT_SHUTDOWN);
		}
		SSL_free(s->ssl);
		tlsout_release(&s->out);
		free(s);
		t->ctx = NULL;
		ERR_clear_error();
	}
	if (t->fd >= 0)
		evutil_closesocket(t->fd);
	t->fd = -1;
}

const struct vd_transport vd_transport_tls = {
	.name = "tls",
	.readv = tls_readv,
	.write = tls_write,
	.shutdown = tls_shutdown,
	.close = tls_close,
	.pending = tls_pending,
};

void vd_tls_stats_add(struct evbuffer *out)
{
	const char *why = NULL;
	if (ktls_possible(&why))
		why = NULL;
	evbuffer_add_printf(out,
			    "STAT tls %s\r\nSTAT tls_client_certs %s\r\n"
			    "STAT tls_connections %ld\r\nSTAT tls_handshakes %ld\r\n"
			    "STAT tls_resumed %ld\r\nSTAT tls_refused %ld\r\nSTAT ktls %s\r\n"
			    "STAT ktls_connections %ld\r\nSTAT ktls_total %ld\r\n"
			    "STAT ktls_note %s\r\n",
			    atomic_load(&tls_on) ? "on" : "off",
			    atomic_load(&tls_need_certs) ? "required" : "no",
			    atomic_load(&tls_active), atomic_load(&tls_handshakes),
			    atomic_load(&tls_resumed), atomic_load(&tls_failures),
			    atomic_load(&tls_ktls_active) > 0 ? "active" : "off",
			    atomic_load(&tls_ktls_active), atomic_load(&tls_ktls_total),
			    why ? why : (atomic_load(&tls_on) ? "available" : "tls_off"));
}

void vd_tls_refuse(int fd)
{
	/* a fatal internal_error alert: before the handshake, alerts travel
	 * as plain records, so a TLS client reads it as the node's refusal
	 * ("tlsv1 alert internal error") instead of garbage or a reset */
	static const unsigned char alert[] = {0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x50};
	ssize_t w = send(fd, alert, sizeof alert, MSG_NOSIGNAL | MSG_DONTWAIT);
	(void)w;
	/* take what the client sent (its ClientHello), so that the close is
	 * a FIN, not a reset that could destroy the alert in flight */
	char sink[4096];
	for (int i = 0; i < 16 && recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0; i++)
		;
	shutdown(fd, SHUT_WR);
}
