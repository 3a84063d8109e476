/*
 * analytics_stream.c - the outbound analytics stream (analytics_stream.h).
 * A thread loops: resolve and connect (bounded by a 2 s poll), send the
 * start line, read into a buffer of AN_MAX_LINE bytes and cut it at line
 * breaks (a longer line is dropped whole), and on EOF or error wait the
 * back-off and start again.  A self-pipe wakes every poll() at stop.
 */
#include "analytics_stream.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../daemon/log.h"
#include "analytics_proto.h"

struct an_stream {
	char host[256], port[16];
	an_stream_line_fn fn;
	void *ctx;
	int wake[2]; /* self-pipe: written at stop */
	_Atomic bool stop;
	pthread_t th;
	char buf[AN_MAX_LINE];
};

/* Waits for fd to be ready for `events` or the stop pipe; 1 ready, 0
 * timeout, -1 stopping. */
static int wait_fd(struct an_stream *s, int fd, short events, int timeout_ms)
{
	struct pollfd p[2] = {{s->wake[0], POLLIN, 0}, {fd, events, 0}};
	int n = poll(p, fd >= 0 ? 2 : 1, timeout_ms);
	if (atomic_load(&s->stop))
		return -1;
	return n > 0 && fd >= 0 && p[1].revents ? 1 : 0;
}

static int dial(struct an_stream *s)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	if (getaddrinfo(s->host, s->port, &hints, &res) != 0 || !res)
		return -1;
	int fd = -1;
	for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
		fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0)
			continue;
		if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
			close(fd);
			fd = -1;
			continue;
		}
		int err = 0;
		socklen_t el = sizeof err;
		if (wait_fd(s, fd, POLLOUT, 2000) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* Reads lines until EOF, an error or stop. */
static void session(struct an_stream *s, int fd)
{
	static const char start[] = AN_STREAM_START "\n";
	if (send(fd, start, sizeof start - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof start - 1))
		return;
	size_t have = 0;
	bool skipping = false; /* inside a line longer than the buffer */
	for (;;) {
		int w = wait_fd(s, fd, POLLIN, 1000);
		if (w < 0)
			return;
		if (w == 0)
			continue;
		ssize_t n = recv(fd, s->buf + have, sizeof s->buf - have, 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
		if (n < 0)
			continue;
		have += (size_t)n;
		size_t from = 0;
		for (size_t i = 0; i < have; i++) {
			if (s->buf[i] != '\n' && s->buf[i] != '\r' && s->buf[i] != '\0')
				continue;
			if (!skipping && i > from)
				s->fn(s->ctx, s->buf + from, i - from);
			skipping = false;
			from = i + 1;
		}
		memmove(s->buf, s->buf + from, have - from);
		have -= from;
		if (have == sizeof s->buf) { /* a line longer than AN_MAX_LINE */
			log_warn("analytics_stream: a line longer than %d bytes dropped", AN_MAX_LINE);
			skipping = true;
			have = 0;
		}
	}
}

static void *stream_main(void *arg)
{
	struct an_stream *s = arg;
	int backoff = AN_STREAM_BACKOFF_MIN_MS;
	bool warned = false;
	while (!atomic_load(&s->stop)) {
		int fd = dial(s);
		if (fd >= 0) {
			log_info("analytics_stream: connected to %s:%s", s->host, s->port);
			warned = false;
			backoff = AN_STREAM_BACKOFF_MIN_MS;
			session(s, fd);
			close(fd);
			if (atomic_load(&s->stop))
				break;
			log_info("analytics_stream: %s:%s closed; reconnecting", s->host, s->port);
		} else if (!warned) {
			log_warn("analytics_stream: cannot connect to %s:%s; retrying with back-off",
				 s->host, s->port);
			warned = true;
		}
		if (wait_fd(s, -1, 0, backoff) < 0)
			break;
		backoff = backoff * 2 > AN_STREAM_BACKOFF_MAX_MS ? AN_STREAM_BACKOFF_MAX_MS : backoff * 2;
	}
	return NULL;
}

struct an_stream *an_stream_start(const char *hostport, an_stream_line_fn fn, void *ctx)
{
	const char *colon = strrchr(hostport, ':');
	if (!colon || colon == hostport || !colon[1] || strlen(colon + 1) >= 16)
		return NULL;
	struct an_stream *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	size_t hl = (size_t)(colon - hostport);
	if (hostport[0] == '[' && hl >= 2 && hostport[hl - 1] == ']') { /* [v6]:port */
		hostport++;
		hl -= 2;
	}
	if (hl >= sizeof s->host) {
		free(s);
		return NULL;
	}
	memcpy(s->host, hostport, hl);
	snprintf(s->port, sizeof s->port, "%s", colon + 1);
	s->fn = fn;
	s->ctx = ctx;
	if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(s);
		return NULL;
	}
	if (pthread_create(&s->th, NULL, stream_main, s) != 0) {
		close(s->wake[0]);
		close(s->wake[1]);
		free(s);
		return NULL;
	}
	return s;
}

void an_stream_stop(struct an_stream *s)
{
	if (!s)
		return;
	atomic_store(&s->stop, true);
	ssize_t r = write(s->wake[1], "x", 1);
	(void)r;
	pthread_join(s->th, NULL);
	close(s->wake[0]);
	close(s->wake[1]);
	free(s);
}
