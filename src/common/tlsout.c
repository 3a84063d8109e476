/*
 * tlsout.c - a write BIO that collects TLS records for one send()
 * (tlsout.h): a growable buffer behind a minimal BIO method.
 */
#include "tlsout.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* a buffer this large or smaller is kept while idle */
#define TLSOUT_KEEP 20480

static BIO_METHOD *tlsout_meth;
static pthread_once_t tlsout_once = PTHREAD_ONCE_INIT;

int tlsout_reserve(struct tlsout *o, size_t n)
{
	if (o->off > 0 && o->off == o->len)
		o->off = o->len = 0;
	if (o->len + n <= o->cap)
		return 0;
	if (o->off > 0) { /* room at the front first */
		memmove(o->buf, o->buf + o->off, o->len - o->off);
		o->len -= o->off;
		o->off = 0;
		if (o->len + n <= o->cap)
			return 0;
	}
	size_t cap = o->cap ? o->cap : 4096;
	while (cap < o->len + n)
		cap *= 2;
	unsigned char *p = realloc(o->buf, cap);
	if (!p)
		return -1;
	o->buf = p;
	o->cap = cap;
	return 0;
}

static int tlsout_write_ex(BIO *b, const char *data, size_t n, size_t *written)
{
	struct tlsout *o = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (tlsout_reserve(o, n) != 0)
		return 0;
	memcpy(o->buf + o->len, data, n);
	o->len += n;
	o->written += n;
	*written = n;
	return 1;
}

static long tlsout_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	(void)ptr;
	struct tlsout *o = BIO_get_data(b);
	switch (cmd) {
	case BIO_CTRL_FLUSH: /* the owner sends */
		return 1;
	case BIO_CTRL_WPENDING:
		return o ? (long)tlsout_held(o) : 0;
	case BIO_CTRL_PENDING: /* nothing to read from a write BIO */
	default:
		return 0;
	}
}

static int tlsout_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void tlsout_init_meth(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "virgo tlsout");
	if (m && BIO_meth_set_write_ex(m, tlsout_write_ex) == 1 &&
	    BIO_meth_set_ctrl(m, tlsout_ctrl) == 1 && BIO_meth_set_create(m, tlsout_create) == 1) {
		tlsout_meth = m;
		return;
	}
	BIO_meth_free(m);
}

static BIO *tlsout_bio(struct tlsout *o)
{
	pthread_once(&tlsout_once, tlsout_init_meth);
	if (!tlsout_meth)
		return NULL;
	BIO *b = BIO_new(tlsout_meth);
	if (b)
		BIO_set_data(b, o);
	return b;
}

int tlsout_attach(SSL *ssl, int fd, struct tlsout *o)
{
	BIO *rb = BIO_new_socket(fd, BIO_NOCLOSE), *wb = tlsout_bio(o);
	if (!rb || !wb) {
		BIO_free(rb);
		BIO_free(wb);
		return -1;
	}
	SSL_set_bio(ssl, rb, wb); /* the SSL owns both */
	return 0;
}

void tlsout_mark(struct tlsout *o, size_t plain)
{
	o->ahead += plain;
	o->rec[o->nrec].plain = plain;
	o->rec[o->nrec].end = o->written;
	o->nrec++;
}

size_t tlsout_retire(struct tlsout *o)
{
	size_t done = 0;
	int k = 0;
	while (k < o->nrec && o->rec[k].end <= o->sent)
		done += o->rec[k++].plain;
	memmove(o->rec, o->rec + k, (size_t)(o->nrec - k) * sizeof o->rec[0]);
	o->nrec -= k;
	o->ahead -= done;
	return done;
}

int tlsout_send(struct tlsout *o, int fd)
{
	while (o->off < o->len) {
		ssize_t w = send(fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -1;
		}
		o->off += (size_t)w;
		o->sent += (uint64_t)w;
	}
	o->off = o->len = 0;
	return 0;
}

void tlsout_trim(struct tlsout *o)
{
	if (o->off == o->len && o->cap > TLSOUT_KEEP) {
		free(o->buf);
		o->buf = NULL;
		o->off = o->len = o->cap = 0;
	}
}

void tlsout_release(struct tlsout *o)
{
	free(o->buf);
	o->buf = NULL;
	o->off = o->len = o->cap = 0;
}
