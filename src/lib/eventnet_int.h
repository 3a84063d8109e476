/*
 * eventnet_int.h - libvirgo's EventNet internals shared by the batched
 * logger (eventnet.c) and the queries (eventnet_query.c): a connection
 * to a node's eventnet port (libvirgo's, conn.c: TLS and the AUTH token)
 * with a reader of long lines, and the parser of the node's EVENT lines.
 */
#ifndef VIRGO_LIB_EVENTNET_INT_H
#define VIRGO_LIB_EVENTNET_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../include/virgo.h"

#define VEN_BASE_PORT 20000
#define VEN_LINE_MAX (160 * 1024) /* an EVENT line: 64K of conversations + causes */

struct vc_conn;

struct ven_conn {
	int fd; /* k's socket, for poll(); -1 when closed */
	struct vc_conn *k;
	int timeout_ms; /* per read or write; 0: none */
	size_t off, len;
	char buf[VEN_LINE_MAX];
};

/* Connects to the idx-th configured node's eventnet port; 0 or -errno
 * (a refused TLS handshake or token: the detail says why).  Every read
 * and write on it gives up after timeout_ms (0: never). */
int ven_open(int idx, int timeout_ms, struct ven_conn *k);
void ven_close(struct ven_conn *k);
/* Received bytes that poll() on k->fd cannot see (a TLS record, or a
 * whole line already read). */
bool ven_pending(struct ven_conn *k);
/* Writes all of buf; 0 or -errno. */
int ven_send(struct ven_conn *k, const char *buf, size_t n);
/* The next line without its CRLF, NUL-terminated, in k->buf (valid until
 * the next read); 0 or -errno (-EPIPE at EOF, -EMSGSIZE when too long). */
int ven_readline(struct ven_conn *k, char **line, size_t *len);
/* An "ERR <CODE> <sentence>" line as -errno (and the detail set), else 0. */
int ven_err(const char *line, const char *op, unsigned node);

/* Parses "EVENT <id> <node> <seq> <lamport> <vc> <partakers|-> <causes|-> <conv>"
 * into ev (its strings in one malloc'd block, freed by virgo_events_free).
 * 0, -EBADMSG, -ENOMEM. */
int ven_parse_event(const char *line, size_t len, struct virgo_event *ev);
/* Frees the strings of one event (not the struct). */
void ven_event_clear(struct virgo_event *ev);

/* Tracing libvirgo's own calls (eventnet_trace.c): VIRGO_TRACE=1. */
struct ven_trace {
	char base[64]; /* clone-<pid>-<n> */
	char prev[160]; /* the previous step's event, "" before the first */
	char clock[1800]; /* its vector clock */
	uint64_t lamport;
	int home;
};
bool ven_tracing(void);
void ven_trace_begin(struct ven_trace *t);
/* Logs <base>-<step> on node index idx (-1: home) after the previous step. */
void ven_trace_step(struct ven_trace *t, int idx, const char *step, const char *partakers,
		    const char *conv);
/* " trace=<base>-<step>@<previous step>@<lamport>@<clock>" into buf (cap
 * bytes): the context a traced request carries so that a node with
 * eventnet_trace = yes records <base>-<step> itself.  Its length, 0 when
 * there is no previous step or it does not fit. */
size_t ven_trace_context(const struct ven_trace *t, const char *step, char *buf, size_t cap);
/* Takes <base>-<step> as the previous step when node index idx recorded
 * it (its clock, for the next step): 0, or -ENOENT / -errno. */
int ven_trace_adopt(struct ven_trace *t, int idx, const char *step);

/* Stops the logger thread (virgo_fini): what is queued is sent first,
 * for at most timeout_ms. */
void ven_shutdown(int timeout_ms);

#endif
