/*
 * eventnet_query.c - the cluster view of EventNet in libvirgo: get,
 * before, why, dump and tail merge what every node recorded, and export
 * writes the merged graph as DOT, JSON or a ShiViz log.
 *
 * why follows causes across nodes: a node answers its local ancestors and
 * names the causes it only knows by id (REMOTE lines); those are asked of
 * every node in turn until none is left, and the union is sorted
 * causally (Lamport time, then node and sequence: a topological order,
 * since a -> b implies L(a) < L(b)).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/evclock.h"
#include "client.h"
#include "eventnet_int.h"

#define VQ_TIMEOUT_MS 10000
#define VQ_MAX_EVENTS (4u << 20) /* most events one call gathers */

struct evlist {
	struct virgo_event *v;
	size_t n, cap;
};

static int list_push(struct evlist *l, const char *line, size_t len)
{
	if (l->n == VQ_MAX_EVENTS)
		return -E2BIG;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct virgo_event *v = realloc(l->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	int rc = ven_parse_event(line, len, &l->v[l->n]);
	if (rc == 0)
		l->n++;
	return rc;
}

void virgo_events_free(struct virgo_event *evs, size_t n)
{
	if (!evs)
		return;
	for (size_t i = 0; i < n; i++)
		ven_event_clear(&evs[i]);
	free(evs);
}

struct strset {
	char **s;
	size_t n;
};

static bool set_has(const struct strset *s, const char *x)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->s[i], x) == 0)
			return true;
	return false;
}

static int set_add(struct strset *s, const char *x)
{
	char **n = realloc(s->s, (s->n + 1) * sizeof *n);
	if (!n)
		return -ENOMEM;
	s->s = n;
	if (!(s->s[s->n] = strdup(x)))
		return -ENOMEM;
	s->n++;
	return 0;
}

static void set_free(struct strset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->s[i]);
	free(s->s);
	s->s = NULL;
	s->n = 0;
}

/* The set's ids joined by spaces into *out (malloc'd). */
static int join_ids(const struct strset *s, char **out)
{
	size_t len = 1;
	for (size_t i = 0; i < s->n; i++)
		len += strlen(s->s[i]) + 1;
	char *p = malloc(len), *o = p;
	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		o += sprintf(o, "%s%s", i ? " " : "", s->s[i]);
	*o = '\0';
	*out = p;
	return 0;
}

static unsigned node_id_of(int idx)
{
	struct virgo_node_info ni = {0};
	virgo_node_info(idx, &ni);
	return ni.id;
}

/* Where a node's reply lines go (NULL: dropped). */
struct ask_out {
	struct evlist *evs; /* EVENT lines */
	struct strset *remote; /* REMOTE <id>: causes recorded elsewhere */
	struct strset *trunc; /* TRUNCATED <id>: causes evicted from memory */
	uint64_t *next; /* NEXT <cursor> */
	uint64_t *evicted; /* EVICTED <n>: added up */
};

/* Sends req to node idx and gathers its reply into o; up to END (or one
 * line when single).  0, -ENOENT (no such event there), or another
 * -errno. */
static int node_ask(struct ven_conn *k, int idx, const char *op, const char *req, bool single,
		    const struct ask_out *o)
{
	int rc = ven_send(k, req, strlen(req));
	for (bool first = true; rc == 0; first = false) {
		char *line;
		size_t len;
		rc = ven_readline(k, &line, &len);
		if (rc)
			break;
		if (first && strncmp(line, "ERR ", 4) == 0)
			return ven_err(line, op, node_id_of(idx));
		if (strncmp(line, "EVENT ", 6) == 0 && o->evs)
			rc = list_push(o->evs, line, len);
		else if (strncmp(line, "REMOTE ", 7) == 0 && o->remote)
			rc = set_has(o->remote, line + 7) ? 0 : set_add(o->remote, line + 7);
		else if (strncmp(line, "TRUNCATED ", 10) == 0 && o->trunc)
			rc = set_has(o->trunc, line + 10) ? 0 : set_add(o->trunc, line + 10);
		else if (strncmp(line, "NEXT ", 5) == 0 && o->next)
			*o->next = strtoull(line + 5, NULL, 10);
		else if (strncmp(line, "EVICTED ", 8) == 0 && o->evicted)
			*o->evicted += strtoull(line + 8, NULL, 10);
		else if (strcmp(line, "END") == 0)
			return 0;
		if (single)
			return rc;
	}
	return rc;
}

/* Asks every node; ENOENT from a node is skipped.  When every node says
 * ENOENT, the error detail is that of a node that has evicted events (it
 * may have had this one), or none ("recorded nowhere"). */
static int ask_all(const char *op, const char *req, bool single, const struct ask_out *o,
		   bool *found)
{
	int n = virgo_node_count();
	if (n <= 0)
		return n < 0 ? n : -VIRGO_ENONODE;
	int err = 0;
	char evicted[512] = "";
	*found = false;
	for (int i = 0; i < n; i++) {
		struct ven_conn *k = malloc(sizeof *k);
		if (!k)
			return -ENOMEM;
		int rc = ven_open(i, VQ_TIMEOUT_MS, k);
		if (rc == 0)
			rc = node_ask(k, i, op, req, single, o);
		ven_close(k);
		free(k);
		if (rc == 0)
			*found = true;
		else if (rc != -ENOENT && !err)
			err = rc;
		else if (rc == -ENOENT && !evicted[0] && strstr(virgo_last_error(), "evicted"))
			snprintf(evicted, sizeof evicted, "%s", virgo_last_error());
	}
	if (*found || err)
		return *found ? 0 : err;
	if (evicted[0])
		vc_err_set(evicted);
	else
		vc_err_clear();
	return -ENOENT;
}

static bool id_arg_ok(const char *id)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)id[i] <= 0x20 || (unsigned char)id[i] >= 0x7f || id[i] == '#' ||
		    id[i] == ',' || id[i] == '@')
			return false;
	return true;
}

int virgo_eventnet_get(const char *id, struct virgo_event **ev)
{
	*ev = NULL;
	if (!id_arg_ok(id))
		return -EINVAL;
	int err = 0;
	if (!vc_get(&err))
		return err;
	char req[160];
	snprintf(req, sizeof req, "get %s\n", id);
	struct evlist l = {0};
	bool found;
	int rc = ask_all("get", req, true, &(struct ask_out){.evs = &l}, &found);
	if (rc == 0 && l.n == 0)
		rc = -ENOENT;
	if (rc) {
		virgo_events_free(l.v, l.n);
		return rc;
	}
	for (size_t i = 1; i < l.n; i++) /* the same id on two nodes: the first one */
		ven_event_clear(&l.v[i]);
	*ev = l.v;
	return 0;
}

int virgo_eventnet_compare(const struct virgo_event *a, const struct virgo_event *b)
{
	struct evc x, y;
	if (evc_parse(&x, a->clock, strlen(a->clock)) || evc_parse(&y, b->clock, strlen(b->clock)))
		return -EINVAL;
	switch (evc_compare(&x, &y)) {
	case EVC_BEFORE: return VIRGO_EV_BEFORE;
	case EVC_AFTER: return VIRGO_EV_AFTER;
	case EVC_CONCURRENT: return VIRGO_EV_CONCURRENT;
	default: return VIRGO_EV_EQUAL;
	}
}

int virgo_eventnet_before(const char *a, const char *b)
{
	struct virgo_event *x, *y;
	int rc = virgo_eventnet_get(a, &x);
	if (rc)
		return rc;
	rc = virgo_eventnet_get(b, &y);
	if (rc) {
		virgo_events_free(x, 1);
		return rc;
	}
	rc = virgo_eventnet_compare(x, y);
	virgo_events_free(x, 1);
	virgo_events_free(y, 1);
	return rc;
}

static int cmp_causal(const void *pa, const void *pb)
{
	const struct virgo_event *a = pa, *b = pb;
	if (a->lamport != b->lamport)
		return a->lamport < b->lamport ? -1 : 1;
	if (a->node != b->node)
		return a->node < b->node ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sorts causally and drops repeats (one event gathered twice). */
static void sort_unique(struct evlist *l)
{
	if (l->n == 0)
		return;
	qsort(l->v, l->n, sizeof *l->v, cmp_causal);
	size_t w = 1;
	for (size_t i = 1; i < l->n; i++) {
		if (l->v[i].node == l->v[w - 1].node && l->v[i].seq == l->v[w - 1].seq)
			ven_event_clear(&l->v[i]);
		else
			l->v[w++] = l->v[i];
	}
	l->n = w;
}

int virgo_eventnet_why_truncated(const char *id, struct virgo_event **evs, size_t *n,
				char **truncated)
{
	*evs = NULL;
	*n = 0;
	if (truncated)
		*truncated = NULL;
	if (!id_arg_ok(id))
		return -EINVAL;
	int err = 0;
	if (!vc_get(&err))
		return err;
	struct evlist l = {0};
	struct strset todo = {0}, done = {0}, trunc = {0};
	int rc = set_add(&todo, id);
	bool first = true;
	while (rc == 0 && done.n < todo.n) {
		const char *x = todo.s[done.n];
		rc = set_add(&done, x);
		if (rc)
			break;
		char req[200];
		bool found;
		snprintf(req, sizeof req, "get %s\n", x); /* the event itself */
		rc = ask_all("get", req, true, &(struct ask_out){.evs = &l}, &found);
		if (rc == 0) {
			snprintf(req, sizeof req, "why %s 100000\n", x);
			rc = ask_all("why", req, false,
				     &(struct ask_out){.evs = &l, .remote = &todo, .trunc = &trunc},
				     &found);
		}
		if (rc == -ENOENT && !first)
			rc = 0; /* a cause named but recorded nowhere: shown by its edge only */
		first = false;
	}
	set_free(&todo);
	set_free(&done);
	if (rc == 0 && truncated && trunc.n)
		rc = join_ids(&trunc, truncated);
	set_free(&trunc);
	if (rc) {
		virgo_events_free(l.v, l.n);
		return rc;
	}
	sort_unique(&l);
	*evs = l.v;
	*n = l.n;
	return 0;
}

int virgo_eventnet_why(const char *id, struct virgo_event **evs, size_t *n)
{
	return virgo_eventnet_why_truncated(id, evs, n, NULL);
}

int virgo_eventnet_dump_evicted(struct virgo_event **evs, size_t *n, uint64_t *evicted)
{
	*evs = NULL;
	*n = 0;
	uint64_t left_out = 0;
	int err = 0;
	if (!vc_get(&err))
		return err;
	int nn = virgo_node_count();
	if (nn <= 0)
		return nn < 0 ? nn : -VIRGO_ENONODE;
	struct evlist l = {0};
	int rc = 0;
	struct ven_conn *k = malloc(sizeof *k);
	if (!k)
		return -ENOMEM;
	for (int i = 0; i < nn && rc == 0; i++) {
		rc = ven_open(i, VQ_TIMEOUT_MS, k);
		uint64_t cursor = 0;
		do {
			char req[64];
			uint64_t next = 0;
			snprintf(req, sizeof req, "dump %" PRIu64 " 10000\n", cursor);
			if (rc == 0)
				rc = node_ask(k, i, "dump", req, false,
					      &(struct ask_out){.evs = &l, .next = &next,
								.evicted = &left_out});
			cursor = next;
		} while (rc == 0 && cursor);
		ven_close(k);
	}
	free(k);
	if (rc) {
		virgo_events_free(l.v, l.n);
		return rc;
	}
	sort_unique(&l);
	*evs = l.v;
	*n = l.n;
	if (evicted)
		*evicted = left_out;
	return 0;
}

int virgo_eventnet_dump(struct virgo_event **evs, size_t *n)
{
	return virgo_eventnet_dump_evicted(evs, n, NULL);
}

int virgo_eventnet_tail(int (*cb)(const struct virgo_event *ev, void *arg), void *arg)
{
	int err = 0;
	if (!vc_get(&err))
		return err;
	int nn = virgo_node_count();
	if (nn <= 0)
		return nn < 0 ? nn : -VIRGO_ENONODE;
	struct ven_conn *k = calloc((size_t)nn, sizeof *k);
	struct pollfd *p = calloc((size_t)nn, sizeof *p);
	int rc = k && p ? 0 : -ENOMEM, open = 0;
	for (int i = 0; rc == 0 && i < nn; i++) {
		k[i].fd = -1;
		p[i].fd = -1;
		char *line;
		size_t len;
		/* a node that is down is left out; the others still stream */
		if (ven_open(i, 0, &k[i]) != 0 || ven_send(&k[i], "tail\n", 5) != 0 ||
		    ven_readline(&k[i], &line, &len) != 0 || strcmp(line, "OK tail") != 0) {
			ven_close(&k[i]);
			continue;
		}
		p[i].fd = k[i].fd;
		p[i].events = POLLIN;
		open++;
	}
	if (rc == 0 && open == 0)
		rc = -VIRGO_ENONODE;
	while (rc == 0 && open > 0) {
		/* bytes a TLS record brought that poll() cannot see */
		bool ready = false;
		for (int i = 0; i < nn; i++)
			ready = ready || (p[i].fd >= 0 && ven_pending(&k[i]));
		if (poll(p, (nfds_t)nn, ready ? 0 : -1) < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		for (int i = 0; i < nn && rc == 0; i++) {
			if (p[i].fd < 0 ||
			    (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)) && !ven_pending(&k[i])))
				continue;
			/* one read's worth of lines, then back to poll */
			do {
				char *line;
				size_t len;
				int r = ven_readline(&k[i], &line, &len);
				if (r) {
					ven_close(&k[i]);
					p[i].fd = -1;
					open--;
					break;
				}
				struct virgo_event ev;
				if (strncmp(line, "EVENT ", 6) == 0 &&
				    ven_parse_event(line, len, &ev) == 0) {
					int stop = cb(&ev, arg);
					ven_event_clear(&ev);
					if (stop)
						rc = stop;
				}
			} while (rc == 0 && memchr(k[i].buf + k[i].off, '\n', k[i].len - k[i].off));
		}
	}
	for (int i = 0; k && i < nn; i++)
		ven_close(&k[i]);
	free(k);
	free(p);
	return rc > 0 ? 0 : rc;
}

/* ---- export ------------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t n, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->n + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_fmt(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
	char t[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(t, sizeof t, fmt, ap);
	va_end(ap);
	sb_add(b, t, n < 0 ? 0 : (size_t)n < sizeof t ? (size_t)n : sizeof t - 1);
}

/* A DOT / JSON string body: quotes and backslashes escaped; at most max
 * bytes (then "..."). */
static void sb_esc(struct sbuf *b, const char *s, size_t max)
{
	size_t n = 0;
	for (; *s; s++, n++) {
		if (n == max) {
			sb_str(b, "...");
			return;
		}
		if (*s == '"' || *s == '\\')
			sb_add(b, "\\", 1);
		sb_add(b, s, 1);
	}
}

/* Calls fn for each id of a csv. */
static void each_csv(const char *csv, void (*fn)(struct sbuf *, const char *, size_t, void *),
		     struct sbuf *b, void *arg)
{
	for (const char *s = csv; s && *s;) {
		const char *c = strchr(s, ',');
		size_t n = c ? (size_t)(c - s) : strlen(s);
		fn(b, s, n, arg);
		s = c ? c + 1 : s + n;
	}
}

static void dot_edge(struct sbuf *b, const char *cause, size_t n, void *arg)
{
	const struct virgo_event *e = arg;
	char c[140];
	snprintf(c, sizeof c, "%.*s", (int)n, cause);
	sb_str(b, "  \"");
	sb_esc(b, c, 200);
	sb_str(b, "\" -> \"");
	sb_esc(b, e->id, 200);
	sb_str(b, "\";\n");
}

static void json_item(struct sbuf *b, const char *s, size_t n, void *arg)
{
	bool *first = arg;
	char c[1100];
	snprintf(c, sizeof c, "%.*s", (int)n, s);
	sb_str(b, *first ? "\"" : ", \"");
	sb_esc(b, c, SIZE_MAX);
	sb_str(b, "\"");
	*first = false;
}

static void export_dot(struct sbuf *b, const struct virgo_event *evs, size_t n)
{
	sb_str(b, "digraph eventnet {\n  rankdir=TB;\n  node [shape=box, fontsize=10];\n");
	/* one cluster per node, its events in its order */
	unsigned *nodes = calloc(n ? n : 1, sizeof *nodes);
	size_t nn = 0;
	for (size_t i = 0; nodes && i < n; i++) {
		bool seen = false;
		for (size_t k = 0; k < nn; k++)
			seen |= nodes[k] == evs[i].node;
		if (!seen)
			nodes[nn++] = evs[i].node;
	}
	for (size_t k = 0; k < nn; k++) {
		sb_fmt(b, "  subgraph \"cluster_node%u\" {\n    label=\"node %u\";\n", nodes[k],
		       nodes[k]);
		for (size_t i = 0; i < n; i++) {
			const struct virgo_event *e = &evs[i];
			if (e->node != nodes[k])
				continue;
			sb_str(b, "    \"");
			sb_esc(b, e->id, 200);
			sb_str(b, "\" [label=\"");
			sb_esc(b, e->id, 60);
			sb_fmt(b, "\\nL=%" PRIu64 " [", e->lamport);
			sb_esc(b, e->clock, 100);
			sb_str(b, "]");
			if (e->partakers[0]) {
				sb_str(b, "\\n");
				sb_esc(b, e->partakers, 60);
			}
			if (e->conv[0]) {
				sb_str(b, "\\n");
				sb_esc(b, e->conv, 60);
			}
			sb_str(b, "\"];\n");
		}
		sb_str(b, "  }\n");
	}
	free(nodes);
	for (size_t i = 0; i < n; i++)
		each_csv(evs[i].causes, dot_edge, b, (void *)&evs[i]);
	sb_str(b, "}\n");
}

static void export_json(struct sbuf *b, const struct virgo_event *evs, size_t n)
{
	sb_str(b, "{\"events\": [");
	for (size_t i = 0; i < n; i++) {
		const struct virgo_event *e = &evs[i];
		sb_str(b, i ? ",\n  {\"id\": \"" : "\n  {\"id\": \"");
		sb_esc(b, e->id, SIZE_MAX);
		sb_fmt(b, "\", \"node\": %u, \"seq\": %" PRIu64 ", \"lamport\": %" PRIu64
			  ", \"clock\": {",
		       e->node, e->seq, e->lamport);
		struct evc v;
		if (evc_parse(&v, e->clock, strlen(e->clock)) == 0)
			for (unsigned k = 0; k < v.n; k++)
				sb_fmt(b, "%s\"%u\": %" PRIu64, k ? ", " : "", (unsigned)v.e[k].node,
				       v.e[k].c);
		sb_str(b, "}, \"partakers\": [");
		bool first = true;
		each_csv(e->partakers, json_item, b, &first);
		sb_str(b, "], \"causes\": [");
		first = true;
		each_csv(e->causes, json_item, b, &first);
		sb_str(b, "], \"conversations\": \"");
		sb_esc(b, e->conv, SIZE_MAX);
		sb_str(b, "\"}");
	}
	sb_str(b, n ? "\n]}\n" : "]}\n");
}

/* GoVector's log format, which ShiViz reads with the regular expression
 * on the first line: a "host {clock}" line, then the event's line. */
static void export_shiviz(struct sbuf *b, const struct virgo_event *evs, size_t n)
{
	sb_str(b, "(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)\n\n");
	for (size_t i = 0; i < n; i++) {
		const struct virgo_event *e = &evs[i];
		sb_fmt(b, "node%u {", e->node);
		struct evc v;
		if (evc_parse(&v, e->clock, strlen(e->clock)) == 0) {
			/* the host's own entry first, as GoVector writes it */
			sb_fmt(b, "\"node%u\":%" PRIu64, e->node, evc_get(&v, (uint16_t)e->node));
			for (unsigned k = 0; k < v.n; k++)
				if (v.e[k].node != e->node)
					sb_fmt(b, ", \"node%u\":%" PRIu64, (unsigned)v.e[k].node,
					       v.e[k].c);
		}
		sb_str(b, "}\n");
		sb_str(b, e->id);
		if (e->partakers[0]) {
			sb_str(b, " partakers=");
			sb_str(b, e->partakers);
		}
		if (e->causes[0]) {
			sb_str(b, " after=");
			sb_str(b, e->causes);
		}
		if (e->conv[0]) {
			sb_str(b, " ");
			sb_str(b, e->conv);
		}
		sb_str(b, "\n");
	}
}

int virgo_eventnet_export(const struct virgo_event *evs, size_t n, int format, char **text,
			  size_t *len)
{
	struct sbuf b = {0};
	*text = NULL;
	*len = 0;
	switch (format) {
	case VIRGO_EV_DOT: export_dot(&b, evs, n); break;
	case VIRGO_EV_JSON: export_json(&b, evs, n); break;
	case VIRGO_EV_SHIVIZ: export_shiviz(&b, evs, n); break;
	default: return -EINVAL;
	}
	if (b.oom) {
		free(b.p);
		return -ENOMEM;
	}
	*text = b.p;
	*len = b.n;
	return 0;
}
