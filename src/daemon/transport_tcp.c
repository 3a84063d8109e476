/*
 * transport_tcp.c - the plain TCP transport (transport.h): one recv or
 * readv per read, one writev per write (libevent's evbuffer_write; a
 * file segment at the front goes with sendfile), no state of its own.  What server.c measured before the transport layer
 * existed is what it costs now: the table adds one indirect call.
 */
#include "transport.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdint.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t tcp_readv(struct vd_tconn *t, struct iovec *iov, int n)
{
	ssize_t r = n == 1 ? recv(t->fd, iov[0].iov_base, iov[0].iov_len, 0) : readv(t->fd, iov, n);
	if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		t->want = EV_READ;
	return r;
}

static int tcp_write(struct vd_tconn *t, struct evbuffer *buf, size_t max)
{
	errno = 0;
	int n = max == SIZE_MAX ? evbuffer_write(buf, t->fd)
				: evbuffer_write_atmost(buf, t->fd, (ev_ssize_t)max);
	/* a file segment (sendfile, cloudfs reads): libevent says 0 both
	 * for a full socket (errno EAGAIN) and for a file that ended
	 * before the bytes promised (errno untouched: the reply cannot be
	 * completed, so the connection fails) */
	if (n == 0 && evbuffer_get_length(buf) > 0) {
		n = -1;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			errno = EIO;
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		t->want = EV_WRITE;
	return n;
}

static int tcp_shutdown(struct vd_tconn *t) { return shutdown(t->fd, SHUT_WR); }

static void tcp_close(struct vd_tconn *t)
{
	if (t->fd >= 0)
		evutil_closesocket(t->fd);
	t->fd = -1;
}

const struct vd_transport vd_transport_tcp = {
	.name = "tcp",
	.readv = tcp_readv,
	.write = tcp_write,
	.shutdown = tcp_shutdown,
	.close = tcp_close,
};
