/*
 * queue.c - the durable queue service (port 60000, notes §897/§919/§922):
 * the connections' side.
 *
 * Parses requests (queue_proto.c) and answers them.  Consecutive pushes
 * (and telnet-path lines) are collected into one batch, handed to the
 * writer thread (queue_commit.c) with a ticket, and the connection waits
 * (VSVC_WAIT) until every record of the batch is durable: only then are
 * the OK replies written, in request order.  read replays on the node's
 * work pool (disk I/O never runs on an event loop); sub and join turn the
 * connection into a feed fed by the delivery thread (queue_deliver.c).
 * Each record is stamped with the client's real address and the time (the
 * notes' <ip>:<timestamp>, §913/§978), an offset and a Lamport timestamp.
 */
#include <errno.h>
#include <stdatomic.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/errcode.h"
#include "../../common/evclock.h"
#include "../../common/idpolicy.h"
#include "../../daemon/config.h"
#include "../../daemon/log.h"
#include "../../daemon/workpool.h"
#include "../eventnet/eventnet_trace.h"
#include "queue_int.h"
#include "queue_route.h"

#define Q_BATCH_RECS 256 /* records per batch */
#define Q_BATCH_BYTES (UINT64_C(4) << 20) /* payload bytes per batch */

struct q_conn {
	struct frame_state fs;
	uint64_t need;
	bool in_body;
	bool legacy_close; /* a telnet-path request was answered: close */
	struct q_sub *sub; /* sub / join: this connection is a feed */
	bool member;
	bool waiting; /* a batch or a read is out: take no input until resumed */
	/* gathering (queue_commit.c): the round that acknowledged this
	 * connection's last batch, and when the acknowledgement was written */
	uint64_t acked_gen, acked_ns;
};

static void q_fini(void *svc);

/* The node's queue, for queue_route (one queue service per process). */
static struct queue *_Atomic q_node;

static int q_init(const struct vd_node *node, void **out)
{
	struct queue *q = calloc(1, sizeof *q);
	if (!q)
		return -ENOMEM;
	if (node->settings)
		memcpy(&q->set, node->settings, sizeof q->set);
	else
		q_settings_defaults(&q->set);
	if (q_settings_fsync(q->set.fsync, &q->interval_ms) != 0) {
		log_error("queue_fsync = %s: want always or interval <ms> (1..60000)", q->set.fsync);
		free(q);
		return -EINVAL;
	}
	if (!qp_name_valid(q->set.default_topic, strlen(q->set.default_topic))) {
		log_error("queue_default_topic = %s: want 1-64 characters of A-Z a-z 0-9 . _ -",
			  q->set.default_topic);
		free(q);
		return -EINVAL;
	}
	if (!q->set.dir[0])
		snprintf(q->set.dir, sizeof q->set.dir, "%s/node%u", Q_DEFAULT_DIR, node->node_id);
	if (q->set.max_record > node->cfg->max_value)
		q->set.max_record = node->cfg->max_value;
	q->node_id = node->node_id;
	q->max_line = node->cfg->max_line;
	q->pool = node->pool;
	q->lockfd = -1;
	pthread_mutex_init(&q->tmu, NULL);
	pthread_mutex_init(&q->wmu, NULL);
	pthread_mutex_init(&q->dmu, NULL);
	pthread_mutex_init(&q->zmu, NULL);
	pthread_cond_init(&q->zcond, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->wcond, &ca);
	pthread_cond_init(&q->dcond, &ca);
	pthread_condattr_destroy(&ca);
	q->topics = calloc((size_t)q->set.max_topics, sizeof *q->topics);
	if (!q->topics) {
		q_fini(q);
		return -ENOMEM;
	}
	/* An existing queue directory is recovered now (reported in the
	 * log before the port opens); a missing one is created by the
	 * first push, so nodes that never queue anything write nothing. */
	struct stat sb;
	if (stat(q->set.dir, &sb) == 0)
		qt_open_dir(q, false);
	else
		q->state = Q_LAZY;
	/* the handler first: the writer then starts knowing about it */
	int hrc = qh_start(q);
	if (hrc) {
		q_fini(q);
		return hrc;
	}
	qo_load(q); /* consumer groups' owners, before anyone joins */
	if (qz_start(q) != 0 || qc_start(q) != 0 || qd_start(q) != 0) {
		q_fini(q);
		return -ENOMEM;
	}
	log_info("queue_ready dir=%s fsync=%s state=%s topics=%d", q->set.dir, q->set.fsync,
		 q->state == Q_READY ? "ready" : q->state == Q_LAZY ? "created_on_first_push"
								    : "disabled",
		 q->ntopics);
	*out = q;
	atomic_store(&q_node, q);
	return 0;
}

static void q_fini(void *svc)
{
	struct queue *q = svc;
	atomic_store(&q_node, NULL);
	qh_stop(q); /* before the writer: it may wait for a reply's commit */
	qc_stop(q);
	qz_stop(q); /* after the writer, who queues work for it */
	qd_stop(q);
	qo_free(q);
	qt_free_all(q);
	if (q->lockfd >= 0)
		close(q->lockfd);
	pthread_cond_destroy(&q->wcond);
	pthread_cond_destroy(&q->dcond);
	pthread_mutex_destroy(&q->tmu);
	pthread_mutex_destroy(&q->wmu);
	pthread_mutex_destroy(&q->dmu);
	pthread_mutex_destroy(&q->zmu);
	pthread_cond_destroy(&q->zcond);
	free(q);
}

int q_thread_start(struct queue *q, pthread_t *th, bool *started, void *(*fn)(void *),
		   const char *name)
{
	int rc = pthread_create(th, NULL, fn, q);
	if (rc)
		return -rc;
	pthread_setname_np(*th, name);
	*started = true;
	return 0;
}

static void reply_err(struct evbuffer *out, int code, const char *msg)
{
	evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(code), msg);
}

static const char *err_msg(int code)
{
	switch (code) {
	case ENOSPC: return "too many topics (queue_max_topics) or disk full";
	case ENOMEM: return "out of memory";
	case E2BIG: return "payload larger than queue_max_record";
	case ENOENT: return "no such topic";
	default: return "the log could not be written (see the node's log)";
	}
}

void q_batch_done(struct vconn *c, void *arg)
{
	struct q_batch *b = arg;
	if (b->route_fn) { /* another service's connection (queue_route) */
		const struct q_rec *r = &b->recs[0];
		b->route_fn(c, b->route_arg, r->err, r->topic, r->off);
		qc_batch_free(b);
		return;
	}
	if (!c) {
		qc_batch_free(b);
		return;
	}
	/* every reply of the batch, in one write (the connection's) */
	struct evbuffer *out = vconn_out(c);
	for (int i = 0; i < b->n; i++) {
		struct q_rec *r = &b->recs[i];
		if (r->err) {
			reply_err(out, r->err, r->msg ? r->msg : err_msg(r->err));
			continue;
		}
		char line[QP_NAME_MAX + 64];
		size_t tl = strlen(r->topic), n = 3 + tl;
		memcpy(line, "OK ", 3);
		memcpy(line + 3, r->topic, tl);
		line[n++] = ' ';
		n += evc_u64(line + n, r->off);
		line[n++] = ' ';
		n += evc_u64(line + n, r->lamport);
		line[n++] = '\r';
		line[n++] = '\n';
		evbuffer_add(out, line, n);
	}
	struct q_conn *qc = vconn_state(c);
	if (b->legacy)
		qc->legacy_close = true;
	qc->waiting = false;
	qc->acked_gen = b->ack_gen;
	qc->acked_ns = b->ack_gen ? qc_now_ns() : 0;
	qc_batch_free(b);
	vconn_resume(c);
}

static struct q_batch *batch_new(struct vconn *c)
{
	struct q_batch *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->cap = 16;
	b->recs = calloc((size_t)b->cap, sizeof *b->recs);
	if (!b->recs) {
		free(b);
		return NULL;
	}
	/* the notes' stamp is the client's address; the port is dropped */
	snprintf(b->peer, sizeof b->peer, "%s", vconn_peer(c));
	char *colon = strrchr(b->peer, ':');
	if (colon)
		*colon = '\0';
	if (b->peer[0] == '[') { /* [v6]:port */
		memmove(b->peer, b->peer + 1, strlen(b->peer));
		char *e = strchr(b->peer, ']');
		if (e)
			*e = '\0';
	}
	return b;
}

/* Appends a record (or an error to answer in its place); -ENOMEM. */
static int batch_add(struct q_batch *b, const char *topic, size_t topic_len, const uint8_t *data,
		     size_t len, const struct qp_req *r, int err, const char *msg)
{
	if (b->n == b->cap) {
		int nc = b->cap * 2;
		struct q_rec *nr = realloc(b->recs, (size_t)nc * sizeof *nr);
		if (!nr)
			return -ENOMEM;
		b->recs = nr;
		b->cap = nc;
	}
	struct q_rec *rec = &b->recs[b->n];
	memset(rec, 0, sizeof *rec);
	snprintf(rec->topic, sizeof rec->topic, "%.*s", (int)topic_len, topic ? topic : "");
	rec->err = err;
	rec->msg = msg;
	if (!err) {
		rec->data = malloc(len ? len : 1);
		if (!rec->data)
			return -ENOMEM;
		memcpy(rec->data, data, len);
		rec->len = len;
		rec->has_ts = r && r->has_ts;
		rec->ts = r ? r->ts : 0;
		b->bytes += len;
	}
	b->n++;
	return 0;
}

int queue_route(struct vconn *c, const void *data, size_t len, queue_route_fn fn, void *arg)
{
	struct queue *q = atomic_load(&q_node);
	if (!q)
		return -ENOSYS;
	if (len > q->set.max_record)
		return -E2BIG;
	struct q_batch *b = batch_new(c);
	if (!b)
		return -ENOMEM;
	int err = q->state == Q_DISABLED ? EIO : 0;
	if (batch_add(b, q->set.default_topic, strlen(q->set.default_topic), data, len, NULL, err,
		      err ? q->why : NULL) != 0 ||
	    !(b->ticket = vconn_ticket_new(c))) {
		qc_batch_free(b);
		return -ENOMEM;
	}
	b->route_fn = fn;
	b->route_arg = arg;
	qc_submit(q, b);
	return 0;
}

/* ---- read: replay on the work pool ---------------------------------- */
struct rjob {
	struct queue *q;
	struct vconn_ticket *ticket;
	char topic[QP_NAME_MAX + 1];
	uint64_t from, count, next;
	int err;
	struct evbuffer *buf;
};

static void read_done(struct vconn *c, void *arg)
{
	struct rjob *j = arg;
	if (c) {
		struct evbuffer *out = vconn_out(c);
		if (j->err)
			reply_err(out, j->err,
				  j->err == ENOENT ? "no such topic" : "the log could not be read");
		else {
			evbuffer_add_buffer(out, j->buf);
			evbuffer_add_printf(out, "END %" PRIu64 "\r\n", j->next);
		}
	}
	evbuffer_free(j->buf);
	free(j);
	if (c) {
		((struct q_conn *)vconn_state(c))->waiting = false;
		vconn_resume(c);
	}
}

static void read_work(void *arg, bool cancelled)
{
	struct rjob *j = arg;
	struct ql_topic *t = cancelled ? NULL : qt_find(j->q, j->topic);
	j->next = j->from;
	if (cancelled)
		j->err = ECANCELED;
	else if (!t)
		j->err = ENOENT;
	size_t cap = (size_t)j->q->set.max_record;
	uint8_t *rec = t ? malloc(cap ? cap : 1) : NULL;
	char *msg = t ? malloc(cap + 512) : NULL;
	if (t && (!rec || !msg))
		j->err = ENOMEM;
	if (!j->err) {
		struct ql_reader rd;
		ql_reader_init(&rd, j->from);
		for (uint64_t i = 0; i < j->count; i++) {
			/* a reply stays near the output budget */
			if (evbuffer_get_length(j->buf) >= VCONN_OUT_BUDGET / 2)
				break;
			struct ql_record r;
			int rc = ql_read(t, &rd, rec, cap, &r);
			if (rc <= 0) {
				if (rc < 0 && i == 0)
					j->err = EIO;
				break;
			}
			size_t n = qd_format_msg(msg, cap + 512, j->topic, &r);
			evbuffer_add(j->buf, msg, n);
		}
		j->next = rd.off;
		ql_reader_close(&rd);
	}
	free(rec);
	free(msg);
	vconn_ticket_post(j->ticket, read_done, j);
}

static int start_read(struct vconn *c, struct queue *q, const struct qp_req *r)
{
	struct evbuffer *out = vconn_out(c);
	struct rjob *j = calloc(1, sizeof *j);
	if (!j || !(j->buf = evbuffer_new())) {
		free(j);
		reply_err(out, ENOMEM, "out of memory");
		return VSVC_KEEP;
	}
	j->q = q;
	snprintf(j->topic, sizeof j->topic, "%.*s", (int)r->topic_len, r->topic);
	j->from = r->from;
	j->count = r->count;
	j->ticket = vconn_ticket_new(c);
	int rc = j->ticket ? vd_workpool_submit(q->pool, read_work, j) : -ENOMEM;
	if (rc) {
		if (j->ticket)
			vconn_ticket_drop(j->ticket);
		evbuffer_free(j->buf);
		free(j);
		reply_err(out, -rc, rc == -EBUSY ? "node busy (work pool full); retry" : "out of memory");
		return VSVC_KEEP;
	}
	((struct q_conn *)vconn_state(c))->waiting = true;
	return VSVC_WAIT;
}

static void reply_topic_line(struct evbuffer *out, struct ql_topic *t)
{
	struct ql_stats st;
	ql_get_stats(t, &st);
	evbuffer_add_printf(out,
			    "STAT topic %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
			    "\r\n",
			    ql_name(t), st.first, st.next, st.records, st.bytes, st.segments);
}

static void reply_ls(struct vconn *c, struct queue *q, struct evbuffer *out)
{
	pthread_mutex_lock(&q->tmu);
	int n = q->ntopics;
	pthread_mutex_unlock(&q->tmu);
	for (int i = 0; i < n && !vconn_out_full(c); i++) {
		pthread_mutex_lock(&q->tmu);
		struct ql_topic *t = q->topics[i];
		pthread_mutex_unlock(&q->tmu);
		reply_topic_line(out, t);
	}
	evbuffer_add(out, "END\r\n", 5);
}

static void reply_stat(struct queue *q, const char *topic, struct evbuffer *out)
{
	struct ql_topic *t = qt_find(q, topic);
	if (!t) {
		reply_err(out, ENOENT, "no such topic");
		return;
	}
	struct ql_stats st;
	ql_get_stats(t, &st);
	int subs, groups;
	uint64_t redelivered;
	qd_topic_counts(q, topic, &subs, &groups, &redelivered);
	evbuffer_add_printf(out,
			    "STAT topic %s\r\nSTAT first %" PRIu64 "\r\nSTAT next %" PRIu64 "\r\n"
			    "STAT records %" PRIu64 "\r\nSTAT bytes %" PRIu64 "\r\n"
			    "STAT segments %" PRIu64 "\r\nSTAT corrupt %" PRIu64 "\r\n"
			    "STAT truncated_bytes %" PRIu64 "\r\nSTAT deleted_segments %" PRIu64
			    "\r\nSTAT subscribers %d\r\nSTAT groups %d\r\nSTAT redelivered %" PRIu64
			    "\r\nSTAT fsync %s\r\nSTAT syncs %" PRIu64 "\r\n",
			    topic, st.first, st.next, st.records, st.bytes, st.segments, st.corrupt,
			    st.truncated_bytes, st.deleted_segments, subs, groups, redelivered,
			    q->set.fsync, st.syncs);
	qd_group_lines(q, topic, out);
	evbuffer_add(out, "END\r\n", 5);
}

static const char q_help[] =
	"HELP push <topic> <nbytes> [ts=<lamport>] + <nbytes> bytes + CRLF -> OK <topic> <offset> "
	"<lamport> (once durable)\r\n"
	"HELP sub <topic> [<from>|end]        -> OK <first offset>, then MSG lines\r\n"
	"HELP read <topic> <from> [<count>]   -> MSG lines, END <next offset>\r\n"
	"HELP join <topic> <group> [<max_inflight>] [shared] -> OK, then MSG lines; answer ack "
	"<offset>\r\n"
	"HELP MSG <topic> <offset> <lamport> <ip>:<sec>.<nsec> <nbytes> + bytes + CRLF\r\n"
	"HELP ls | stat <topic> | ping | help | quit\r\n"
	"HELP any other line: a request enqueued on the default topic (telnet path)\r\n"
	"END\r\n";

static int q_exec(struct vconn *c, struct queue *q, struct q_conn *qc, const struct qp_req *r,
		  struct evbuffer *out)
{
	char topic[QP_NAME_MAX + 1], group[QP_NAME_MAX + 1];
	snprintf(topic, sizeof topic, "%.*s", (int)r->topic_len, r->topic ? r->topic : "");
	snprintf(group, sizeof group, "%.*s", (int)r->group_len, r->group ? r->group : "");
	if (qc->sub) {
		/* a feed's replies go out in whole messages: on a
		 * subscribed connection only ack and quit are taken */
		if (r->op == QP_ACK && qc->member) {
			qd_ack(q, qc->sub, r->offset);
			return VSVC_KEEP;
		}
		return VSVC_CLOSE;
	}
	switch (r->op) {
	case QP_PING:
		evbuffer_add_printf(out, "PONG %u\r\n", q->node_id);
		return VSVC_KEEP;
	case QP_HELP:
		evbuffer_add(out, q_help, sizeof q_help - 1);
		return VSVC_KEEP;
	case QP_QUIT:
		return VSVC_CLOSE;
	default:
		break;
	}
	if (q->state == Q_DISABLED) {
		reply_err(out, EIO, q->why);
		return VSVC_KEEP;
	}
	int rc;
	uint64_t first;
	switch (r->op) {
	case QP_SUB:
		rc = qd_sub_open(q, c, topic, r->from_end, r->from, &first, &qc->sub);
		if (rc)
			break;
		evbuffer_add_printf(out, "OK %" PRIu64 "\r\n", first);
		return VSVC_KEEP;
	case QP_JOIN:
		rc = qd_join(q, c, topic, group, (int)r->max_inflight, vconn_identity_id(c), r->shared,
			     idpol_list_has(q->set.group_admins, vconn_identity(c)), &qc->sub);
		if (rc == -EACCES) {
			reply_err(out, EACCES, "group owned by another identity (its owner can create "
					       "it with: join <topic> <group> shared; queue_group_admins "
					       "may join any)");
			return VSVC_KEEP;
		}
		if (rc)
			break;
		qc->member = true;
		evbuffer_add(out, "OK\r\n", 4);
		return VSVC_KEEP;
	case QP_READ:
		return start_read(c, q, r);
	case QP_ACK:
		reply_err(out, EINVAL, "ack is for a connection that joined a group");
		return VSVC_KEEP;
	case QP_LS:
		reply_ls(c, q, out);
		return VSVC_KEEP;
	case QP_STAT:
		reply_stat(q, topic, out);
		return VSVC_KEEP;
	default:
		return VSVC_CLOSE;
	}
	reply_err(out, -rc, rc == -ENOSPC ? "too many consumer groups" : "out of memory");
	return VSVC_KEEP;
}

static int q_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	struct queue *q = vconn_svc(c);
	struct q_conn *qc = vconn_state(c);
	struct evbuffer *out = vconn_out(c);
	struct qp_limits lim = {q->max_line, q->set.max_record};
	struct q_batch *b = NULL;
	if (qc->waiting)
		return VSVC_WAIT;
	for (;;) {
		size_t len = evbuffer_get_length(in);
		if (len == 0 || (!eof && qc->need && len < qc->need))
			break;
		if (!b && vconn_out_full(c))
			return VSVC_MORE;
		const uint8_t *buf = evbuffer_pullup(in, -1);
		struct qp_req req;
		size_t used;
		int code;
		const char *msg;
		enum qp_parse_result pr =
			qp_parse(&qc->fs, buf, len, eof, &lim, &req, &used, &qc->need, &code, &msg);
		/* a payload still arriving counts against the node's
		 * body_budget (service.h), as mempool's sets do */
		if (pr == QP_MORE && qc->need > 0 && !qc->in_body && !eof) {
			if (!vconn_body_begin(c, qc->need)) {
				if (b)
					break; /* answer the batch first */
				reply_err(out, EBUSY, "node busy receiving other uploads (body_budget); retry");
				return VSVC_CLOSE;
			}
			qc->in_body = true;
		}
		if (pr != QP_MORE && qc->in_body) {
			vconn_body_end(c);
			qc->in_body = false;
		}
		bool is_push = pr == QP_REQ && (req.op == QP_PUSH || req.op == QP_LINE);
		if (is_push && !qc->sub) {
			if (!b && !(b = batch_new(c))) {
				reply_err(out, ENOMEM, "out of memory");
				evbuffer_drain(in, used);
				continue;
			}
			int arc;
			if (req.op == QP_LINE) {
				b->legacy = true;
				arc = batch_add(b, q->set.default_topic, strlen(q->set.default_topic),
						req.data, req.data_len, NULL, 0, NULL);
			} else {
				arc = batch_add(b, req.topic, req.topic_len, req.data, req.data_len, &req,
						0, NULL);
			}
			if (arc)
				batch_add(b, NULL, 0, NULL, 0, NULL, ENOMEM, "out of memory");
			evn_trace_note("queue", "push", NULL); /* eventnet_trace = yes */
			evbuffer_drain(in, used);
			if (b->n >= Q_BATCH_RECS || b->bytes >= Q_BATCH_BYTES)
				break;
			continue;
		}
		if (pr == QP_ERROR && b) {
			if (batch_add(b, NULL, 0, NULL, 0, NULL, code, msg) != 0)
				break;
			evbuffer_drain(in, used);
			continue;
		}
		if (pr == QP_REQ && b)
			break; /* the batch's replies come first */
		int rc = VSVC_KEEP;
		if (pr == QP_REQ)
			rc = q_exec(c, q, qc, &req, out);
		else if (pr == QP_ERROR && !qc->sub)
			reply_err(out, code, msg);
		evbuffer_drain(in, used);
		if (rc != VSVC_KEEP)
			return rc;
		if (pr == QP_MORE && (eof || used == 0))
			break;
	}
	if (b) {
		b->ticket = vconn_ticket_new(c);
		if (!b->ticket) {
			qc_batch_free(b);
			reply_err(out, ENOMEM, "out of memory");
			return VSVC_CLOSE;
		}
		qc->waiting = true;
		/* back quickly after the last acknowledgement: expected
		 * again after this one (gathering, queue_commit.c) */
		b->from_gen = qc->acked_gen;
		b->fast = !qc->acked_ns ||
			  qc_now_ns() - qc->acked_ns <= atomic_load_explicit(&q->g_fast_ns, memory_order_relaxed);
		qc->acked_gen = 0;
		qc_submit_loop(q, b, vconn_base(c));
		return VSVC_WAIT;
	}
	/* the telnet path (§922): like the original's one-request
	 * connections, close once every such request is answered, so
	 * `printf 'hello kingcobra\n' | nc host 60000` returns */
	if (qc->legacy_close && evbuffer_get_length(in) == 0)
		return VSVC_CLOSE;
	return VSVC_KEEP;
}

static void q_conn_close(struct vconn *c)
{
	struct q_conn *qc = vconn_state(c);
	if (qc->in_body)
		vconn_body_end(c);
	if (qc->sub)
		qd_sub_close(vconn_svc(c), qc->sub);
	qc->sub = NULL;
}

const struct vsvc queue_service = {
	.name = "queue",
	.base_port = 60000,
	.conn_size = sizeof(struct q_conn),
	.movable = true,
	.bulk = VSVC_BULK_TX, /* fan-out (sub, join, read): MaxNetworkBandwidth */
	/* acks are posted from the writer thread: a worker pinned to a CPU
	 * that the writer, the producers or anything else holds waits for it
	 * while the other CPU may be idle (the analytics watches' case) */
	.unpinned = true,
	/* one loop by default (queue_threads): the acks of a commit round
	 * then cost one wake-up of one loop, and the batches of one pass of
	 * it reach the writer as one group; measured 19-21 µs of node CPU
	 * per 128 B push against 21-29 with two loops (README, bench) */
	.threads = 1,
	.keys = q_settings_keys,
	.settings_size = sizeof(struct q_settings),
	.settings_defaults = q_settings_defaults,
	.needs = q_settings_needs,
	.init = q_init,
	.fini = q_fini,
	.on_input = q_on_input,
	.conn_close = q_conn_close,
};
