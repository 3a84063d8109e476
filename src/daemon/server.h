/*
 * server.h - listeners, worker threads and connections of one virgod.
 *
 * The main thread binds one listener per enabled service and accepts; each
 * accepted socket is handed to a worker thread (round robin) that runs its
 * own libevent loop and owns the connection from then on, memcached-style.
 */
#ifndef VIRGO_SERVER_H
#define VIRGO_SERVER_H

#include "config.h"

struct vd_server;

/* Initialises services, binds every listener and starts the workers.
 * Returns NULL after logging why (busy port, bad address, ...). */
struct vd_server *server_start(const struct vd_config *cfg);

/* Runs until SIGTERM/SIGINT, then stops accepting, lets workers flush
 * replies for up to drain_timeout_ms and joins them.  Returns 0. */
int server_run(struct vd_server *srv);

/* Any thread: as SIGTERM (server_run drains and returns). */
void server_stop(struct vd_server *srv);

void server_free(struct vd_server *srv);

#endif
