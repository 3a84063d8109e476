/*
 * eventnet_trace.c - the node-side tracing calls (eventnet_trace.h): the
 * event ids, partakers and conversations of a node's own events, built
 * here and recorded through eventnet.c's graph like any logged event.
 */
#include "eventnet_trace.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "eventnet_proto.h"

static _Atomic uint64_t note_seq;

void evn_trace_caused(const uint8_t *ctx, size_t n, const char *service, const char *conv)
{
	struct evn_trace_ctx t;
	if (!ctx || !evn_trace_enabled() || evn_trace_parse((const char *)ctx, n, &t) != 0)
		return;
	char who[80];
	int wl = snprintf(who, sizeof who, "node%u,%s", evn_node_id(), service);
	struct evg_str after = {t.cause.p, t.cause.n};
	struct evg_log_in in = {
		.id = {t.id.p, t.id.n},
		.partakers = {who, (size_t)wl},
		.conv = {conv ? conv : "", conv ? strlen(conv) : 0},
		.after = &after,
		.nafter = 1,
		.clock = &t.clock,
		.lamport = t.lamport,
	};
	evn_node_log(&in);
}

void evn_trace_note(const char *service, const char *what, const char *detail)
{
	if (!evn_trace_enabled())
		return;
	unsigned node = evn_node_id();
	char id[EVN_ID_MAX + 1], who[80], conv[300];
	int il = snprintf(id, sizeof id, "%s-%s-n%u-%llu", service, what, node,
			  (unsigned long long)atomic_fetch_add(&note_seq, 1) + 1);
	int wl = snprintf(who, sizeof who, "node%u,%s", node, service);
	int cl = snprintf(conv, sizeof conv, "(%s,%s)", what, detail ? detail : "");
	if (il < 0 || il >= (int)sizeof id || wl < 0 || wl >= (int)sizeof who || cl < 0)
		return;
	if (cl >= (int)sizeof conv)
		cl = (int)sizeof conv - 1;
	for (int i = 0; i < cl; i++) /* a detail from a request: one line of the files */
		if ((unsigned char)conv[i] < 0x20 || conv[i] == 0x7f)
			conv[i] = '?';
	struct evg_log_in in = {
		.id = {id, (size_t)il},
		.partakers = {who, (size_t)wl},
		.conv = {conv, (size_t)cl},
	};
	evn_node_log(&in);
}
