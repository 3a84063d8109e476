/*
 * transport.c - plain TCP behind the vc_transport ops (transport.h).
 *
 * Each op is the system call it stands for on the connection's
 * non-blocking socket; on EAGAIN it records which readiness to wait for
 * (reads wait for POLLIN, writes for POLLOUT).  SIGPIPE is never raised:
 * a write to a closed peer fails with EPIPE.
 */
#include "transport.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
