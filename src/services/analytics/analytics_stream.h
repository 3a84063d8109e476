/*
 * analytics_stream.h - the original's outbound analytics stream: connect
 * to host:port, send KERNEL_ANALYTICS_STREAMING_START, read key=value
 * chunks for ever and hand each line to a callback; reconnect with
 * exponential back-off (100 ms doubling to 5 s) when the server is gone.
 * One thread of its own, blocking sockets with poll() so that stopping
 * is prompt.
 */
#ifndef VIRGO_ANALYTICS_STREAM_H
#define VIRGO_ANALYTICS_STREAM_H

#include <stddef.h>

#define AN_STREAM_BACKOFF_MIN_MS 100
#define AN_STREAM_BACKOFF_MAX_MS 5000

/* Called on the stream's thread with one line (no terminator). */
typedef void (*an_stream_line_fn)(void *ctx, const char *line, size_t len);

struct an_stream;

/* Starts streaming from "host:port" (IPv4/IPv6 literal or name).  NULL on
 * a malformed address or out of resources.  Stop with an_stream_stop. */
struct an_stream *an_stream_start(const char *hostport, an_stream_line_fn fn, void *ctx);
/* Stops the thread (within ~100 ms) and frees s; NULL is a no-op. */
void an_stream_stop(struct an_stream *s);

#endif
