/*
 * eventnet_trace.h - a node tracing itself into its own EventNet graph
 * (eventnet_trace = yes; off by default, notes §994 item 10).
 *
 * Other services call these in one line where something worth tracing
 * happens: the cpupool when a traced job has run (its request carried the
 * client's trace context, so the node's event gets a causal edge from the
 * client's and merges the client's clocks: `virgo eventnet why` then
 * follows a request across nodes), the mempool on malloc/free, the queue
 * on a push, cloudfs on an open.  With the switch off each is one load of
 * a pointer.  Recording never fails or blocks the caller for long (the
 * graph's mutex; the journal line is written by eventnet's own writers).
 */
#ifndef VIRGO_EVENTNET_TRACE_H
#define VIRGO_EVENTNET_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventnet_graph.h"

/* True when this node traces itself. */
bool evn_trace_enabled(void);

/* A request's trace context ctx[0..n) (the value of its trace= token,
 * see evn_trace_parse) has been served by service: records the context's
 * event id on this node (partakers "node<id>,<service>", conversation
 * conv, may be NULL) after the client's event, with its clocks.  Nothing
 * when tracing is off or ctx is malformed. */
void evn_trace_caused(const uint8_t *ctx, size_t n, const char *service, const char *conv);

/* Something happened in service with no client context: records
 * <service>-<what>-n<node>-<k> (k counts) with conversation
 * (<what>,<detail>) (detail may be NULL; control bytes become '?'). */
void evn_trace_note(const char *service, const char *what, const char *detail);

/* eventnet.c, for eventnet_trace.c: logs in on the traced node (0, or a
 * negative errno; -ENODEV when tracing is off); *node_id gets its id. */
int evn_node_log(const struct evg_log_in *in);
unsigned evn_node_id(void);

#endif
