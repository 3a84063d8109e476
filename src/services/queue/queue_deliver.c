/*
 * queue_deliver.c - the delivery thread: subscribers and consumer groups
 * (queue_int.h).
 *
 * A subscriber has a reader (its next offset) and a feed (service.h) of
 * at most queue_sub_buffer bytes: each round the thread reads published
 * records and pushes them as MSG replies until the feed refuses one
 * (-ENOBUFS: the client is not reading), then rewinds to that record and
 * retries a few milliseconds later.  So a slow subscriber is held back by
 * its own pace (back-pressure) and costs the node at most its feed plus
 * the output budget; one that falls behind retention (its next record was
 * deleted) is dropped with "ERR ERANGE ...".
 *
 * A consumer group (KingCobra's worker pool, notes §774) hands each record
 * to one member (the one with the fewest unacknowledged records, within
 * its max_inflight) and remembers it as in flight with a deadline
 * (queue_ack_timeout_ms).  An ack removes it; a member that closes, or a
 * deadline that passes, puts it back to be delivered again (at least
 * once).  The committed offset (every record below it acknowledged) is
 * persisted to <topic>/<group>.group (write, fdatasync, rename) at most
 * every 100 ms and at shutdown, and a restarted node resumes from it.
 * In-flight records per group are bounded (Q_GROUP_INFLIGHT).
 */
#include <errno.h>
#include <stdatomic.h>
#include <event2/buffer.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/abstime.h"
#include "../../daemon/log.h"
#include "queue_int.h"

#define Q_GROUP_INFLIGHT 1024 /* records in flight per group (24 B each) */
#define Q_MAX_GROUPS 256 /* active groups on the node */
#define Q_SUB_ROUND 64 /* records per subscriber per round (fairness) */
#define Q_POLL_MS 5 /* retry delay for a full feed */
#define Q_PERSIST_MS 100

struct q_sub {
	struct q_sub *next;
	char topic[QP_NAME_MAX + 1];
	struct ql_topic *t;
	struct vconn_feed *feed;
	struct ql_reader rd;
	struct q_group *g; /* a group member, or NULL for a subscriber */
	int max_inflight, inflight;
	bool dead; /* its connection closed (qd_sub_close) */
	bool dropped; /* no more deliveries (a reason was sent) */
	bool full; /* its feed refused a record this round */
	const char *why; /* being dropped: the reason still to send */
};

struct q_entry {
	uint64_t off;
	struct q_sub *m; /* NULL: to be (re)delivered */
	uint64_t deadline_ms;
};

struct q_group {
	struct q_group *next;
	char topic[QP_NAME_MAX + 1], name[QP_NAME_MAX + 1];
	struct ql_topic *t;
	struct q_sub *members;
	struct q_entry *ents;
	int nents;
	struct ql_reader rd, rd2; /* new records; redeliveries */
	bool loaded;
	uint64_t committed, persisted, last_persist_ms, redelivered;
	uint64_t owner; /* its owner's identity (queue_owner.c), 0: none */
	bool shared; /* anyone may join it */
	bool owner_dirty; /* the owner line is still to be written */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

size_t qd_format_msg(char *out, size_t cap, const char *topic, const struct ql_record *r)
{
	int n = snprintf(out, cap, "MSG %s %" PRIu64 " %" PRIu64 " %s:%" PRIu64 ".%09" PRIu64
			 " %zu\r\n",
			 topic, r->off, r->lamport, r->peer[0] ? r->peer : "-",
			 r->time_ns / 1000000000u, r->time_ns % 1000000000u, r->len);
	if (n < 0 || (size_t)n + r->len + 2 > cap)
		return 0;
	memcpy(out + n, r->data, r->len);
	memcpy(out + n + r->len, "\r\n", 2);
	return (size_t)n + r->len + 2;
}

void qd_wake(struct queue *q)
{
	pthread_mutex_lock(&q->dmu);
	q->dwake = true;
	pthread_cond_signal(&q->dcond);
	pthread_mutex_unlock(&q->dmu);
}

void qd_wake_if_consumers(struct queue *q)
{
	/* a consumer that registers after this load sees the records
	 * anyway: registration wakes the thread itself */
	if (atomic_load(&q->consumers) > 0)
		qd_wake(q);
}

struct dbuf {
	uint8_t *rec;
	char *msg;
	size_t rec_cap, msg_cap;
};

/* Stops deliveries to s; the reason goes out as soon as its feed has room
 * (a subscriber that reads slowly must still learn why). */
static void drop(struct q_sub *s, const char *why)
{
	s->why = why;
	int rc = vconn_feed_push(s->feed, why, strlen(why));
	if (rc == -ENOBUFS || rc == -ENOMEM) {
		s->full = true; /* retried next round */
		return;
	}
	s->dropped = true;
}

static void deliver_sub(struct queue *q, struct q_sub *s, struct dbuf *db)
{
	if (s->dropped)
		return;
	if (s->why) {
		drop(s, s->why);
		return;
	}
	if (!s->t && !(s->t = qt_find(q, s->topic)))
		return;
	for (int i = 0; i < Q_SUB_ROUND; i++) {
		struct ql_record rec;
		int rc = ql_read(s->t, &s->rd, db->rec, db->rec_cap, &rec);
		if (s->rd.lost) {
			drop(s, "ERR ERANGE subscriber fell behind retention (records deleted "
				"before delivery)\r\n");
			return;
		}
		if (rc == 0)
			return;
		if (rc < 0) {
			drop(s, "ERR EIO corrupt record in the log\r\n");
			return;
		}
		size_t n = qd_format_msg(db->msg, db->msg_cap, s->topic, &rec);
		int prc = vconn_feed_push(s->feed, db->msg, n);
		if (prc == -ENOBUFS || prc == -ENOMEM) {
			ql_reader_rewind(&s->rd, &rec);
			s->full = true;
			return;
		}
		if (prc < 0) {
			s->dropped = true;
			return;
		}
	}
	s->full = true; /* more may be waiting: come back soon */
}

static struct q_sub *pick(struct q_group *g)
{
	struct q_sub *best = NULL;
	for (struct q_sub *m = g->members; m; m = m->next)
		if (!m->dead && !m->dropped && !m->full && m->inflight < m->max_inflight &&
		    (!best || m->inflight < best->inflight))
			best = m;
	return best;
}

static void group_file(const struct q_group *g, char *buf, size_t cap, const char *suffix)
{
	snprintf(buf, cap, "%s/%s.group%s", ql_path(g->t), g->name, suffix);
}

static void group_load(struct q_group *g)
{
	char path[640];
	group_file(g, path, sizeof path, "");
	struct ql_stats st;
	ql_get_stats(g->t, &st);
	uint64_t c = st.first;
	FILE *f = fopen(path, "re");
	if (f) {
		unsigned long long v;
		if (fscanf(f, "%llu", &v) == 1)
			c = v;
		fclose(f);
	}
	g->committed = g->persisted = c;
	ql_reader_init(&g->rd, c);
	ql_reader_init(&g->rd2, c);
	g->loaded = true;
}

static void group_persist(struct q_group *g)
{
	char path[640], tmp[640];
	group_file(g, path, sizeof path, "");
	group_file(g, tmp, sizeof tmp, ".tmp");
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	char line[96];
	int n = snprintf(line, sizeof line, "%" PRIu64 "\n", g->committed);
	if (g->owner) /* the second line: who owns it (queue_owner.c) */
		n += qo_format(line + n, sizeof line - (size_t)n, g->owner, g->shared);
	if (write(fd, line, (size_t)n) != n || fdatasync(fd) != 0) {
		close(fd);
		goto fail;
	}
	close(fd);
	if (rename(tmp, path) != 0)
		goto fail;
	int dfd = open(ql_path(g->t), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	g->persisted = g->committed;
	g->owner_dirty = false;
	return;
fail:;
	static struct vlog_rl rl;
	vlog_limited(&rl, VLOG_WARN, "queue_group_persist topic=%s group=%s error=%s", g->topic,
		     g->name, strerror(errno));
}

static void ent_remove(struct q_group *g, int i)
{
	g->ents[i] = g->ents[--g->nents];
}

/* Pushes rec to m; true when m took it. */
static bool give(struct q_group *g, struct q_sub *m, const struct ql_record *rec,
		 struct dbuf *db)
{
	size_t n = qd_format_msg(db->msg, db->msg_cap, g->topic, rec);
	int prc = vconn_feed_push(m->feed, db->msg, n);
	if (prc == -ENOBUFS || prc == -ENOMEM) {
		m->full = true;
		return false;
	}
	if (prc < 0) {
		m->dropped = true;
		return false;
	}
	m->inflight++;
	return true;
}

/* Returns in how many ms the group wants to be looked at again (-1:
 * only when woken). */
static int64_t deliver_group(struct queue *q, struct q_group *g, struct dbuf *db)
{
	if (!g->t && !(g->t = qt_find(q, g->topic)))
		return -1;
	if (!g->loaded)
		group_load(g);
	if (g->owner_dirty) /* a new owner, or the owner shared it */
		group_persist(g);
	uint64_t now = mono_ms();
	/* members gone, deadlines passed: back to be delivered again */
	for (int i = 0; i < g->nents; i++) {
		struct q_entry *e = &g->ents[i];
		if (!e->m)
			continue;
		if (e->m->dead || e->m->dropped) {
			e->m = NULL;
			g->redelivered++;
		} else if (now >= e->deadline_ms) {
			e->m->inflight--;
			e->m = NULL;
			g->redelivered++;
		}
	}
	for (struct q_sub **pp = &g->members; *pp;) {
		struct q_sub *m = *pp;
		m->full = false;
		if (m->dead) {
			*pp = m->next;
			vconn_feed_release(m->feed);
			free(m);
			atomic_fetch_sub(&q->consumers, 1);
			continue;
		}
		pp = &m->next;
	}
	for (int i = 0; i < g->nents; i++) {
		struct q_entry *e = &g->ents[i];
		if (e->m)
			continue;
		struct q_sub *m = pick(g);
		if (!m)
			break;
		struct ql_record rec;
		g->rd2.off = e->off;
		g->rd2.lost = 0;
		int rc = ql_read(g->t, &g->rd2, db->rec, db->rec_cap, &rec);
		if (rc <= 0 || rec.off != e->off) {
			ent_remove(g, i--); /* deleted or unreadable: nothing to redeliver */
			continue;
		}
		if (give(g, m, &rec, db)) {
			e->m = m;
			e->deadline_ms = now + (uint64_t)q->set.ack_timeout_ms;
		} else {
			i--; /* try the next member */
		}
	}
	struct q_sub *m;
	while (g->nents < Q_GROUP_INFLIGHT && (m = pick(g))) {
		struct ql_record rec;
		int rc = ql_read(g->t, &g->rd, db->rec, db->rec_cap, &rec);
		if (rc == 0)
			break;
		if (rc < 0) {
			g->rd.off++; /* skip an unreadable record */
			continue;
		}
		if (!give(g, m, &rec, db)) {
			ql_reader_rewind(&g->rd, &rec);
			continue;
		}
		g->ents[g->nents++] = (struct q_entry){rec.off, m, now + (uint64_t)q->set.ack_timeout_ms};
	}
	uint64_t c = g->rd.off;
	for (int i = 0; i < g->nents; i++)
		if (g->ents[i].off < c)
			c = g->ents[i].off;
	g->committed = c;
	if (g->committed != g->persisted && now >= g->last_persist_ms + Q_PERSIST_MS) {
		group_persist(g);
		g->last_persist_ms = now;
	}
	/* when to look again: soon for a full feed, at the persist time for
	 * an unwritten commit, else at the earliest ack deadline */
	int64_t wait = -1;
	for (struct q_sub *k = g->members; k; k = k->next)
		if (k->full)
			wait = Q_POLL_MS;
	if (g->committed != g->persisted) {
		int64_t w = (int64_t)(g->last_persist_ms + Q_PERSIST_MS) - (int64_t)now;
		w = w < 1 ? 1 : w;
		wait = wait < 0 || w < wait ? w : wait;
	}
	for (int i = 0; i < g->nents; i++) {
		if (!g->ents[i].m)
			continue;
		int64_t w = (int64_t)g->ents[i].deadline_ms - (int64_t)now;
		w = w < 1 ? 1 : w;
		wait = wait < 0 || w < wait ? w : wait;
	}
	return wait;
}

static void *deliver_main(void *arg)
{
	struct queue *q = arg;
	struct dbuf db;
	db.rec_cap = q->set.max_record;
	db.msg_cap = q->set.max_record + 512;
	db.rec = malloc(db.rec_cap ? db.rec_cap : 1);
	db.msg = malloc(db.msg_cap);
	pthread_mutex_lock(&q->dmu);
	while (!q->dstop) {
		q->dwake = false;
		bool poll = false;
		int64_t wait = -1;
		for (struct q_sub **pp = &q->subs; *pp;) {
			struct q_sub *s = *pp;
			if (s->dead) {
				*pp = s->next;
				vconn_feed_release(s->feed);
				ql_reader_close(&s->rd);
				free(s);
				atomic_fetch_sub(&q->consumers, 1);
				continue;
			}
			s->full = false;
			if (db.rec && db.msg)
				deliver_sub(q, s, &db);
			poll |= s->full;
			pp = &s->next;
		}
		for (struct q_group **gp = &q->groups; *gp;) {
			struct q_group *g = *gp;
			if (db.rec && db.msg) {
				int64_t w = deliver_group(q, g, &db);
				if (w >= 0 && (wait < 0 || w < wait))
					wait = w;
			}
			if (!g->members && g->nents == 0 && g->committed == g->persisted &&
			    !g->owner_dirty) {
				*gp = g->next; /* idle: its state is on disk */
				ql_reader_close(&g->rd);
				ql_reader_close(&g->rd2);
				free(g->ents);
				free(g);
				continue;
			}
			gp = &g->next;
		}
		if (q->dwake || q->dstop)
			continue;
		if (poll && (wait < 0 || wait > Q_POLL_MS))
			wait = Q_POLL_MS;
		if (wait >= 0) {
			struct timespec ts;
			abstime_after_ms(CLOCK_MONOTONIC, (int)(wait > 60000 ? 60000 : wait), &ts);
			pthread_cond_timedwait(&q->dcond, &q->dmu, &ts);
		} else {
			pthread_cond_wait(&q->dcond, &q->dmu);
		}
	}
	for (struct q_group *g = q->groups; g; g = g->next)
		if (g->loaded && g->committed != g->persisted)
			group_persist(g);
	pthread_mutex_unlock(&q->dmu);
	free(db.rec);
	free(db.msg);
	return NULL;
}

int qd_start(struct queue *q)
{
	return q_thread_start(q, &q->deliverer, &q->deliverer_started, deliver_main,
			      "queue/deliver");
}

void qd_stop(struct queue *q)
{
	if (q->deliverer_started) {
		pthread_mutex_lock(&q->dmu);
		q->dstop = true;
		pthread_cond_signal(&q->dcond);
		pthread_mutex_unlock(&q->dmu);
		pthread_join(q->deliverer, NULL);
		q->deliverer_started = false;
	}
	/* connections are closed by now: free what is left */
	while (q->subs) {
		struct q_sub *s = q->subs;
		q->subs = s->next;
		vconn_feed_release(s->feed);
		ql_reader_close(&s->rd);
		free(s);
	}
	while (q->groups) {
		struct q_group *g = q->groups;
		q->groups = g->next;
		while (g->members) {
			struct q_sub *m = g->members;
			g->members = m->next;
			vconn_feed_release(m->feed);
			free(m);
		}
		ql_reader_close(&g->rd);
		ql_reader_close(&g->rd2);
		free(g->ents);
		free(g);
	}
}

int qd_sub_open(struct queue *q, struct vconn *c, const char *topic, bool from_end,
		uint64_t from, uint64_t *first, struct q_sub **out)
{
	struct ql_topic *t = qt_find(q, topic);
	if (t) {
		struct ql_stats st;
		ql_get_stats(t, &st);
		if (from_end)
			from = st.next;
		else if (from < st.first)
			from = st.first;
	} else if (from_end) {
		from = 0;
	}
	struct q_sub *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->feed = vconn_feed_new(c, (size_t)q->set.sub_buffer);
	if (!s->feed) {
		free(s);
		return -ENOMEM;
	}
	snprintf(s->topic, sizeof s->topic, "%s", topic);
	s->t = t;
	ql_reader_init(&s->rd, from);
	*first = from;
	atomic_fetch_add(&q->consumers, 1);
	pthread_mutex_lock(&q->dmu);
	s->next = q->subs;
	q->subs = s;
	q->dwake = true;
	pthread_cond_signal(&q->dcond);
	pthread_mutex_unlock(&q->dmu);
	*out = s;
	return 0;
}

void qd_sub_close(struct queue *q, struct q_sub *s)
{
	pthread_mutex_lock(&q->dmu);
	s->dead = true;
	q->dwake = true;
	pthread_cond_signal(&q->dcond);
	pthread_mutex_unlock(&q->dmu);
}

int qd_join(struct queue *q, struct vconn *c, const char *topic, const char *group,
	    int max_inflight, uint64_t ident, bool shared, bool admin, struct q_sub **out)
{
	struct q_sub *m = calloc(1, sizeof *m);
	if (!m)
		return -ENOMEM;
	m->feed = vconn_feed_new(c, (size_t)q->set.sub_buffer);
	if (!m->feed) {
		free(m);
		return -ENOMEM;
	}
	snprintf(m->topic, sizeof m->topic, "%s", topic);
	m->max_inflight = max_inflight;
	ql_reader_init(&m->rd, 0);
	pthread_mutex_lock(&q->dmu);
	bool is_shared, changed;
	int orc = qo_claim(q, topic, group, ident, shared, admin, &is_shared, &changed);
	if (orc) {
		pthread_mutex_unlock(&q->dmu);
		vconn_feed_release(m->feed);
		free(m);
		return orc;
	}
	struct q_group *g = q->groups;
	int ng = 0;
	for (; g; g = g->next, ng++)
		if (strcmp(g->topic, topic) == 0 && strcmp(g->name, group) == 0)
			break;
	if (!g && ng < Q_MAX_GROUPS && (g = calloc(1, sizeof *g))) {
		g->ents = calloc(Q_GROUP_INFLIGHT, sizeof *g->ents);
		if (!g->ents) {
			free(g);
			g = NULL;
		} else {
			snprintf(g->topic, sizeof g->topic, "%s", topic);
			snprintf(g->name, sizeof g->name, "%s", group);
			ql_reader_init(&g->rd, 0);
			ql_reader_init(&g->rd2, 0);
			g->next = q->groups;
			q->groups = g;
		}
	}
	if (!g) {
		pthread_mutex_unlock(&q->dmu);
		vconn_feed_release(m->feed);
		free(m);
		return ng >= Q_MAX_GROUPS ? -ENOSPC : -ENOMEM;
	}
	g->owner = qo_owner(q, topic, group);
	g->shared = is_shared;
	g->owner_dirty |= changed;
	m->g = g;
	m->next = g->members;
	g->members = m;
	atomic_fetch_add(&q->consumers, 1);
	q->dwake = true;
	pthread_cond_signal(&q->dcond);
	pthread_mutex_unlock(&q->dmu);
	*out = m;
	return 0;
}

int qd_ack(struct queue *q, struct q_sub *m, uint64_t offset)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&q->dmu);
	struct q_group *g = m->g;
	for (int i = 0; g && i < g->nents; i++) {
		if (g->ents[i].off == offset && g->ents[i].m == m) {
			ent_remove(g, i);
			m->inflight--;
			rc = 0;
			q->dwake = true;
			pthread_cond_signal(&q->dcond);
			break;
		}
	}
	pthread_mutex_unlock(&q->dmu);
	return rc;
}

void qd_topic_counts(struct queue *q, const char *topic, int *subs, int *groups,
		     uint64_t *redelivered)
{
	*subs = *groups = 0;
	*redelivered = 0;
	pthread_mutex_lock(&q->dmu);
	for (struct q_sub *s = q->subs; s; s = s->next)
		*subs += !s->dead && strcmp(s->topic, topic) == 0;
	for (struct q_group *g = q->groups; g; g = g->next) {
		if (strcmp(g->topic, topic) == 0) {
			(*groups)++;
			*redelivered += g->redelivered;
		}
	}
	pthread_mutex_unlock(&q->dmu);
}

void qd_group_lines(struct queue *q, const char *topic, struct evbuffer *out)
{
	pthread_mutex_lock(&q->dmu);
	for (struct q_group *g = q->groups; g; g = g->next) {
		if (strcmp(g->topic, topic) != 0)
			continue;
		int members = 0;
		for (struct q_sub *m = g->members; m; m = m->next)
			members += !m->dead;
		evbuffer_add_printf(out, "STAT group %s %" PRIu64 " %d %d %" PRIu64 "\r\n", g->name,
				    g->committed, g->nents, members, g->redelivered);
	}
	pthread_mutex_unlock(&q->dmu);
}
