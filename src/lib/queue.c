/*
 * queue.c - libvirgo's durable queue calls (virgo_queue_*, include/virgo.h).
 *
 * A push is one pooled request, never re-sent once any of it left (it may
 * have been stored: VC_IDEMPOTENT is not set).  Replays, subscriptions and
 * group memberships use a dedicated connection each (vc_stream_*, vc_conn_free), because
 * their replies are streams of MSG records rather than one reply.  A topic
 * lives on the node virgo_key_owner(topic) names unless the _ex forms give
 * a node index.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/errcode.h"
#include "client.h"

#define VQ_NAME_MAX 64

struct virgo_queue_sub {
	struct vc_client *c;
	struct vc_conn *k;
	int idx;
	const char *verb; /* "sub" or "join": names the stream in errors */
};

static bool name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > VQ_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

/* -EINVAL, with a detail saying what a name may be (what: "topic"/"group") */
static int bad_name(const char *what, const char *s)
{
	char t[200];
	snprintf(t, sizeof t,
		 "'%.64s%s' is not a %s name (1-64 characters of A-Z a-z 0-9 . _ -, "
		 "not starting with '.')",
		 s ? s : "", s && strlen(s) > 64 ? "..." : "", what);
	vc_err_set(t);
	return -EINVAL;
}

static int owner_of(const char *topic)
{
	vc_err_clear();
	if (!name_ok(topic))
		return bad_name("topic", topic);
	return virgo_key_owner(topic, strlen(topic));
}

void virgo_queue_msg_free(struct virgo_queue_msg *m)
{
	if (!m)
		return;
	free(m->data);
	m->data = NULL;
	m->len = 0;
}

void virgo_queue_msgs_free(struct virgo_queue_msg *msgs, size_t n)
{
	if (!msgs)
		return;
	for (size_t i = 0; i < n; i++)
		free(msgs[i].data);
	free(msgs);
}

/* "ERR <CODE> <sentence>" from node idx, answering request hdr ->
 * -errno (or -VIRGO_EBADREPLY), the detail naming the node and request. */
static int err_of(struct vc_client *c, int idx, const char *hdr, const char *line)
{
	if (strncmp(line, "ERR ", 4) != 0)
		return -VIRGO_EBADREPLY;
	const char *code = line + 4;
	size_t n = strcspn(code, " ");
	int e = ec_from_name(code, n);
	int rc = e > 0 ? -e : -VIRGO_EBADREPLY;
	vc_err_node(c, idx, VC_SVC_QUEUE, hdr, rc, code[n] == ' ' ? code + n + 1 : NULL);
	return rc;
}

/* After a "MSG ..." line: its fields, then payload + CRLF. */
static int read_msg(struct vc_conn *k, const char *line, struct virgo_queue_msg *m,
		    int64_t deadline)
{
	memset(m, 0, sizeof *m);
	char topic[80], stamp[128];
	uint64_t len;
	if (sscanf(line, "MSG %79s %" SCNu64 " %" SCNu64 " %127s %" SCNu64, topic, &m->offset,
		   &m->lamport, stamp, &len) != 5 ||
	    strlen(topic) >= sizeof m->topic || strlen(stamp) >= sizeof m->stamp ||
	    len > (UINT64_C(1) << 30))
		return -VIRGO_EBADREPLY;
	snprintf(m->topic, sizeof m->topic, "%s", topic);
	snprintf(m->stamp, sizeof m->stamp, "%s", stamp);
	m->data = malloc((size_t)len + 2);
	if (!m->data)
		return -ENOMEM;
	int rc = vc_stream_bytes(k, m->data, (size_t)len + 2, deadline);
	if (rc) {
		virgo_queue_msg_free(m);
		return rc;
	}
	m->len = (size_t)len;
	((char *)m->data)[len] = '\0'; /* a convenience for text payloads */
	return 0;
}

static int do_push(int idx, const char *topic, const void *data, size_t len, uint64_t *offset,
		   uint64_t *lamport)
{
	if (!name_ok(topic))
		return bad_name("topic", topic);
	if (!data && len)
		return -EINVAL;
	struct vc_client *c;
	int rc = vc_get_node(idx, &c);
	if (rc)
		return rc;
	char hdr[128];
	int hl = snprintf(hdr, sizeof hdr, "push %s %zu\r\n", topic, len);
	struct vc_reply rep;
	rc = vc_call_svc(c, idx, VC_SVC_QUEUE, hdr, (size_t)hl, data ? data : "", len, 0, &rep);
	free(rep.data);
	if (rc)
		return rc;
	char t[80];
	uint64_t off, lam;
	if (sscanf(rep.line, "OK %79s %" SCNu64 " %" SCNu64, t, &off, &lam) != 3)
		return -VIRGO_EBADREPLY;
	if (offset)
		*offset = off;
	if (lamport)
		*lamport = lam;
	return 0;
}

int virgo_queue_push_ex(int idx, const char *topic, const void *data, size_t len,
			uint64_t *offset, uint64_t *lamport)
{
	vc_err_clear();
	return vc_err_done("queue push", do_push(idx, topic, data, len, offset, lamport));
}

int virgo_queue_push(const char *topic, const void *data, size_t len, uint64_t *offset)
{
	int idx = owner_of(topic);
	if (idx < 0)
		return vc_err_done("queue push", idx);
	return virgo_queue_push_ex(idx, topic, data, len, offset, NULL);
}

static int stream_cmd(int idx, const char *hdr, size_t hl, struct vc_client **cp,
		      struct vc_conn **kp, char *line, size_t cap)
{
	int rc = vc_get_node(idx, cp);
	if (rc)
		return rc;
	rc = vc_stream_open(*cp, idx, VC_SVC_QUEUE, kp);
	if (rc) {
		vc_node_failed(*cp, idx, VC_SVC_QUEUE);
		return rc;
	}
	int64_t deadline = vc_now_ms() + (*cp)->cfg.timeout_ms;
	rc = vc_stream_send(*kp, hdr, hl, NULL, 0, deadline);
	if (rc == 0 && line)
		rc = vc_stream_line(*kp, line, cap, deadline);
	if (rc) {
		vc_conn_free(*kp);
		*kp = NULL;
	}
	return rc;
}

static int do_read(int idx, const char *topic, uint64_t from, size_t max,
		   struct virgo_queue_msg **msgs, size_t *n, uint64_t *next)
{
	*msgs = NULL;
	*n = 0;
	if (!name_ok(topic))
		return bad_name("topic", topic);
	if (max == 0 || max > 10000)
		return -EINVAL;
	char hdr[160], line[512];
	int hl = snprintf(hdr, sizeof hdr, "read %s %" PRIu64 " %zu\r\n", topic, from, max);
	struct vc_client *c;
	struct vc_conn *k;
	int rc = stream_cmd(idx, hdr, (size_t)hl, &c, &k, line, sizeof line);
	if (rc)
		return rc;
	int64_t deadline = vc_now_ms() + c->cfg.timeout_ms;
	struct virgo_queue_msg *arr = calloc(max, sizeof *arr);
	size_t got = 0;
	if (!arr)
		rc = -ENOMEM;
	while (rc == 0) {
		if (strncmp(line, "END ", 4) == 0) {
			if (next)
				*next = strtoull(line + 4, NULL, 10);
			break;
		}
		if (strncmp(line, "MSG ", 4) != 0) {
			rc = err_of(c, idx, hdr, line);
			break;
		}
		if (got == max) {
			rc = -VIRGO_EBADREPLY;
			break;
		}
		rc = read_msg(k, line, &arr[got], deadline);
		if (rc)
			break;
		got++;
		rc = vc_stream_line(k, line, sizeof line, deadline);
	}
	vc_conn_free(k);
	if (rc) {
		virgo_queue_msgs_free(arr, got);
		return rc;
	}
	*msgs = arr;
	*n = got;
	return 0;
}

int virgo_queue_read_ex(int idx, const char *topic, uint64_t from, size_t max,
			struct virgo_queue_msg **msgs, size_t *n, uint64_t *next)
{
	vc_err_clear();
	return vc_err_done("queue read", do_read(idx, topic, from, max, msgs, n, next));
}

int virgo_queue_read(const char *topic, uint64_t from, size_t max, struct virgo_queue_msg **msgs,
		     size_t *n, uint64_t *next)
{
	int idx = owner_of(topic);
	if (idx < 0) {
		*msgs = NULL;
		*n = 0;
		return vc_err_done("queue read", idx);
	}
	return virgo_queue_read_ex(idx, topic, from, max, msgs, n, next);
}

static int open_sub(int idx, const char *hdr, size_t hl, const char *want,
		    struct virgo_queue_sub **out)
{
	*out = NULL;
	struct virgo_queue_sub *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	char line[512];
	int rc = stream_cmd(idx, hdr, hl, &s->c, &s->k, line, sizeof line);
	if (rc == 0 && strncmp(line, want, strlen(want)) != 0) {
		rc = err_of(s->c, idx, hdr, line);
		vc_conn_free(s->k);
	}
	if (rc) {
		free(s);
		return rc;
	}
	s->idx = idx;
	s->verb = hdr[0] == 'j' ? "join" : "sub";
	*out = s;
	return 0;
}

int virgo_queue_sub_ex(int idx, const char *topic, uint64_t from, struct virgo_queue_sub **out)
{
	vc_err_clear();
	if (!name_ok(topic))
		return vc_err_done("queue sub", bad_name("topic", topic));
	char hdr[160];
	int hl = from == VIRGO_QUEUE_END
			 ? snprintf(hdr, sizeof hdr, "sub %s end\r\n", topic)
			 : snprintf(hdr, sizeof hdr, "sub %s %" PRIu64 "\r\n", topic, from);
	return vc_err_done("queue sub", open_sub(idx, hdr, (size_t)hl, "OK", out));
}

int virgo_queue_sub(const char *topic, uint64_t from, struct virgo_queue_sub **out)
{
	int idx = owner_of(topic);
	if (idx < 0)
		return vc_err_done("queue sub", idx);
	return virgo_queue_sub_ex(idx, topic, from, out);
}

int virgo_queue_join_ex(int idx, const char *topic, const char *group, int max_inflight,
			struct virgo_queue_sub **out)
{
	vc_err_clear();
	if (!name_ok(topic))
		return vc_err_done("queue join", bad_name("topic", topic));
	if (!name_ok(group))
		return vc_err_done("queue join", bad_name("group", group));
	if (max_inflight < 0 || max_inflight > 1024)
		return vc_err_done("queue join", -EINVAL);
	char hdr[200];
	int hl = snprintf(hdr, sizeof hdr, "join %s %s %d\r\n", topic, group,
			  max_inflight ? max_inflight : 16);
	return vc_err_done("queue join", open_sub(idx, hdr, (size_t)hl, "OK", out));
}

int virgo_queue_join(const char *topic, const char *group, int max_inflight,
		     struct virgo_queue_sub **out)
{
	int idx = owner_of(topic);
	if (idx < 0)
		return vc_err_done("queue join", idx);
	return virgo_queue_join_ex(idx, topic, group, max_inflight, out);
}

int virgo_queue_next(struct virgo_queue_sub *s, int timeout_ms, struct virgo_queue_msg *msg)
{
	vc_err_clear();
	if (!s || !msg)
		return -EINVAL;
	int64_t deadline = timeout_ms < 0 ? INT64_MAX / 2 : vc_now_ms() + timeout_ms;
	char line[512];
	int rc = vc_stream_line(s->k, line, sizeof line, deadline);
	if (rc == 0) {
		if (strncmp(line, "MSG ", 4) == 0)
			/* the record's bytes follow at once */
			rc = read_msg(s->k, line, msg, vc_now_ms() + s->c->cfg.timeout_ms);
		else
			rc = err_of(s->c, s->idx, s->verb, line);
	}
	if (rc == -ETIMEDOUT)
		return rc; /* not an error of the node: nothing came */
	return vc_err_done("queue next", rc);
}

int virgo_queue_ack(struct virgo_queue_sub *s, uint64_t offset)
{
	if (!s)
		return -EINVAL;
	char hdr[64];
	int hl = snprintf(hdr, sizeof hdr, "ack %" PRIu64 "\r\n", offset);
	return vc_stream_send(s->k, hdr, (size_t)hl, NULL, 0, vc_now_ms() + s->c->cfg.timeout_ms);
}

int virgo_queue_fd(const struct virgo_queue_sub *s)
{
	return s ? s->k->fd : -1;
}

void virgo_queue_close(struct virgo_queue_sub *s)
{
	if (!s)
		return;
	vc_conn_free(s->k);
	free(s);
}

static int do_stat(int idx, const char *topic, char **text)
{
	*text = NULL;
	if (topic && !name_ok(topic))
		return bad_name("topic", topic);
	struct vc_client *c;
	int rc = vc_get_node(idx, &c);
	if (rc)
		return rc;
	char hdr[128];
	int hl = topic ? snprintf(hdr, sizeof hdr, "stat %s\r\n", topic)
		       : snprintf(hdr, sizeof hdr, "ls\r\n");
	struct vc_reply rep;
	rc = vc_call_svc(c, idx, VC_SVC_QUEUE, hdr, (size_t)hl, NULL, 0, VC_IDEMPOTENT, &rep);
	if (rc) {
		free(rep.data);
		return rc;
	}
	*text = rep.data ? (char *)rep.data : strdup("");
	return *text ? 0 : -ENOMEM;
}

int virgo_queue_stat_ex(int idx, const char *topic, char **text)
{
	vc_err_clear();
	return vc_err_done("queue stat", do_stat(idx, topic, text));
}

int virgo_queue_stat(const char *topic, char **text)
{
	int idx = topic ? owner_of(topic) : 0;
	if (idx < 0) {
		*text = NULL;
		return vc_err_done("queue stat", idx);
	}
	return virgo_queue_stat_ex(idx, topic, text);
}

char *virgo_queue_kingcobra_line(const struct virgo_queue_msg *m)
{
	if (!m)
		return NULL;
	/* stamp "<ip>:<sec>.<nsec>" -> ip, sec:nsec */
	char ip[96] = "-", ts[64] = "0:0";
	const char *colon = strrchr(m->stamp, ':');
	if (colon) {
		snprintf(ip, sizeof ip, "%.*s", (int)(colon - m->stamp), m->stamp);
		snprintf(ts, sizeof ts, "%s", colon + 1);
		char *dot = strchr(ts, '.');
		if (dot)
			*dot = ':';
	}
	size_t cap = strlen(ip) + strlen(ts) + m->len + 32;
	char *out = malloc(cap);
	if (!out)
		return NULL;
	int n = snprintf(out, cap, "REQUEST#%s#%s#", ip, ts);
	memcpy(out + n, m->data, m->len);
	memcpy(out + n + m->len, " $$", 4);
	return out;
}
