/*
 * test_queue.c - the queue service end to end against a real virgod:
 * push/sub/read with binary payloads, the telnet path, offsets and the
 * Lamport clock surviving a restart, consumer-group redelivery (a member that dies without
 * acking, a passed ack deadline) and committed offsets surviving a
 * restart, group commit (16 producers share fdatasyncs), kill -9 during
 * a burst of 16 producers and during a lone producer's pushes (which the
 * event loop commits itself) joined by 15 more (every acknowledged
 * request present exactly once, in order per producer), a flipped byte
 * mid-segment detected and the rest served, retention deleting whole
 * segments, and a subscriber that never reads not growing the node.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

static struct th_cluster cl;
static char qdir[300];
static int port;

/* ---- a small buffered client ------------------------------------------ */
struct qc {
	int fd;
	size_t len;
	char buf[1 << 17];
};

static struct qc *qc_open_port(int p)
{
	struct qc *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->fd = th_connect(p);
	assert_true(c->fd >= 0);
	return c;
}

static struct qc *qc_open(void)
{
	return qc_open_port(port);
}

static void qc_close(struct qc *c)
{
	close(c->fd);
	free(c);
}

/* Reads more into the buffer: 1, 0 at EOF, -1 on timeout. */
static int qc_fill(struct qc *c, int64_t deadline)
{
	int64_t left = deadline - th_now_ms();
	if (left <= 0 || c->len == sizeof c->buf)
		return -1;
	struct pollfd pf = {.fd = c->fd, .events = POLLIN};
	if (poll(&pf, 1, (int)left) <= 0)
		return -1;
	ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
	if (r <= 0)
		return 0;
	c->len += (size_t)r;
	return 1;
}

/* One reply line (without CRLF) into line; 0, or -1 (EOF/timeout). */
static int qc_line(struct qc *c, char *line, size_t cap, int timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			size_t k = n && c->buf[n - 1] == '\r' ? n - 1 : n;
			if (k >= cap)
				k = cap - 1;
			memcpy(line, c->buf, k);
			line[k] = '\0';
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return 0;
		}
		if (qc_fill(c, deadline) <= 0)
			return -1;
	}
}

/* n payload bytes + CRLF. */
static int qc_bytes(struct qc *c, void *out, size_t n, int timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	while (c->len < n + 2)
		if (qc_fill(c, deadline) <= 0)
			return -1;
	memcpy(out, c->buf, n);
	memmove(c->buf, c->buf + n + 2, c->len - n - 2);
	c->len -= n + 2;
	return 0;
}

static void qc_sendf(struct qc *c, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b, sizeof b, fmt, ap);
	va_end(ap);
	assert_int_equal(th_send(c->fd, b, (size_t)n), 0);
}

static void qc_push_send(struct qc *c, const char *topic, const void *data, size_t n)
{
	char h[128];
	int hl = snprintf(h, sizeof h, "push %s %zu\r\n", topic, n);
	assert_int_equal(th_send(c->fd, h, (size_t)hl), 0);
	if (n)
		assert_int_equal(th_send(c->fd, data, n), 0);
	assert_int_equal(th_send(c->fd, "\r\n", 2), 0);
}

/* push and wait for its OK; returns the offset */
static uint64_t qc_push(struct qc *c, const char *topic, const void *data, size_t n)
{
	qc_push_send(c, topic, data, n);
	char line[256], t[80];
	assert_int_equal(qc_line(c, line, sizeof line, 5000), 0);
	uint64_t off, lam;
	if (sscanf(line, "OK %79s %" SCNu64 " %" SCNu64, t, &off, &lam) != 3)
		fail_msg("push: %s", line);
	assert_string_equal(t, topic);
	return off;
}

struct msg {
	char topic[80];
	uint64_t off, lamport;
	char stamp[128];
	size_t len;
	uint8_t data[70000];
};

/* Next MSG (or -1); other lines into other if given. */
static int qc_msg(struct qc *c, struct msg *m, int timeout_ms)
{
	char line[512];
	if (qc_line(c, line, sizeof line, timeout_ms) != 0)
		return -1;
	if (sscanf(line, "MSG %79s %" SCNu64 " %" SCNu64 " %127s %zu", m->topic, &m->off,
		   &m->lamport, m->stamp, &m->len) != 5) {
		fprintf(stderr, "not a MSG: %s\n", line);
		return -1;
	}
	assert_true(m->len <= sizeof m->data);
	return qc_bytes(c, m->data, m->len, timeout_ms);
}

/* read <topic> from `from` to the end: calls fn per record. */
static uint64_t read_topic(const char *topic, uint64_t from, void (*fn)(struct msg *, void *),
			   void *arg)
{
	struct qc *c = qc_open();
	static struct msg m;
	uint64_t n = 0;
	for (;;) {
		qc_sendf(c, "read %s %" PRIu64 " 10000\r\n", topic, from);
		uint64_t next = from;
		for (;;) {
			char line[512];
			/* peek: MSG or END */
			int64_t deadline = th_now_ms() + 5000;
			while (!memchr(c->buf, '\n', c->len))
				assert_int_equal(qc_fill(c, deadline), 1);
			if (strncmp(c->buf, "END ", 4) == 0) {
				assert_int_equal(qc_line(c, line, sizeof line, 1000), 0);
				next = strtoull(line + 4, NULL, 10);
				break;
			}
			if (strncmp(c->buf, "MSG ", 4) != 0) {
				assert_int_equal(qc_line(c, line, sizeof line, 1000), 0);
				fail_msg("read %s: %s", topic, line);
			}
			assert_int_equal(qc_msg(c, &m, 5000), 0);
			if (fn)
				fn(&m, arg);
			n++;
		}
		if (next == from)
			break;
		from = next;
	}
	qc_close(c);
	return n;
}

static void stat_value(const char *topic, const char *key, uint64_t *out)
{
	struct qc *c = qc_open();
	qc_sendf(c, "stat %s\r\n", topic);
	char line[512], want[128];
	snprintf(want, sizeof want, "STAT %s ", key);
	*out = UINT64_MAX;
	for (;;) {
		assert_int_equal(qc_line(c, line, sizeof line, 5000), 0);
		if (strcmp(line, "END") == 0 || strncmp(line, "ERR", 3) == 0)
			break;
		if (strncmp(line, want, strlen(want)) == 0)
			*out = strtoull(line + strlen(want), NULL, 10);
	}
	qc_close(c);
}

static int restart(int sig)
{
	th_node_signal(&cl, 0, sig);
	return th_node_start(&cl, 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(qdir, sizeof qdir, "%s/q", th_tmpdir());
	char extra[1024];
	snprintf(extra, sizeof extra,
		 "queue_dir = %s\nqueue_segment_bytes = 64K\nqueue_retention_bytes = 1M\n"
		 "queue_ack_timeout_ms = 400\nqueue_sub_buffer = 64K\nqueue_max_record = 64K\n"
		 "use_as_kingcobra_service = yes\nmempool_use_as_kingcobra_service = yes\n"
		 "queue_handler = /usr/bin/tr a-z A-Z\n",
		 qdir);
	if (th_cluster_start(&cl, 1, extra, "") != 0)
		return -1;
	port = th_port(&cl, 0, 60000);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* ---- tests ------------------------------------------------------------- */

static void push_sub_read_binary(void **state)
{
	(void)state;
	struct qc *sub = qc_open();
	qc_sendf(sub, "sub bin 0\r\n");
	char line[256];
	assert_int_equal(qc_line(sub, line, sizeof line, 5000), 0);
	assert_string_equal(line, "OK 0");
	struct qc *p = qc_open();
	uint8_t data[3][300];
	size_t lens[3] = {0, 300, 5};
	for (int i = 0; i < 3; i++)
		for (size_t k = 0; k < lens[i]; k++)
			data[i][k] = (uint8_t)(k * 31 + (size_t)i); /* NUL, CR, LF among them */
	memcpy(data[2], "\r\n\0\r\n", 5);
	for (int i = 0; i < 3; i++)
		assert_int_equal(qc_push(p, "bin", data[i], lens[i]), (uint64_t)i);
	static struct msg m;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(qc_msg(sub, &m, 5000), 0);
		assert_string_equal(m.topic, "bin");
		assert_int_equal(m.off, (uint64_t)i);
		assert_int_equal(m.len, lens[i]);
		assert_memory_equal(m.data, data[i], lens[i]);
		assert_true(strncmp(m.stamp, "127.0.0.1:", 10) == 0);
	}
	/* replay: read from offset 1 gives 1 and 2 */
	qc_sendf(p, "read bin 1\r\n");
	assert_int_equal(qc_msg(p, &m, 5000), 0);
	assert_int_equal(m.off, 1);
	assert_memory_equal(m.data, data[1], lens[1]);
	assert_int_equal(qc_msg(p, &m, 5000), 0);
	assert_int_equal(m.off, 2);
	assert_int_equal(qc_line(p, line, sizeof line, 5000), 0);
	assert_string_equal(line, "END 3");
	/* pipelined pushes: replies in order */
	for (int i = 0; i < 50; i++)
		qc_push_send(p, "bin", "x", 1);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(qc_line(p, line, sizeof line, 5000), 0);
		char want[64];
		snprintf(want, sizeof want, "OK bin %d ", 3 + i);
		assert_true(strncmp(line, want, strlen(want)) == 0);
	}
	qc_sendf(p, "read nosuch 0\r\n");
	assert_int_equal(qc_line(p, line, sizeof line, 5000), 0);
	assert_true(strncmp(line, "ERR ENOENT", 10) == 0);
	qc_close(p);
	qc_close(sub);
}

static void telnet_path(void **state)
{
	(void)state;
	struct qc *c = qc_open();
	qc_sendf(c, "hello kingcobra\n");
	char line[256];
	assert_int_equal(qc_line(c, line, sizeof line, 5000), 0);
	uint64_t off;
	assert_int_equal(sscanf(line, "OK kingcobra %" SCNu64, &off), 1);
	/* the connection closes once answered (the original's one request) */
	assert_int_equal(qc_fill(c, th_now_ms() + 5000), 0);
	qc_close(c);
	c = qc_open();
	qc_sendf(c, "read kingcobra %" PRIu64 " 1\r\n", off);
	static struct msg m;
	assert_int_equal(qc_msg(c, &m, 5000), 0);
	assert_int_equal(m.len, 15);
	assert_memory_equal(m.data, "hello kingcobra", 15);
	assert_true(strncmp(m.stamp, "127.0.0.1:", 10) == 0);
	qc_close(c);
}

/* push (optionally with the client's ts=) and wait: the OK's lamport */
static uint64_t qc_push_lamport(struct qc *c, const char *topic, const char *data,
				uint64_t ts)
{
	if (ts)
		qc_sendf(c, "push %s %zu ts=%" PRIu64 "\r\n%s\r\n", topic, strlen(data), ts, data);
	else
		qc_sendf(c, "push %s %zu\r\n%s\r\n", topic, strlen(data), data);
	char line[256], t[80];
	uint64_t off, lam;
	assert_int_equal(qc_line(c, line, sizeof line, 5000), 0);
	if (sscanf(line, "OK %79s %" SCNu64 " %" SCNu64, t, &off, &lam) != 3)
		fail_msg("push: %s", line);
	return lam;
}

/* The Lamport timestamp: past the client's ts=, growing on every push
 * (any topic), and still growing after kill -9 (recovered from the log) */
static void lamport_clock(void **state)
{
	(void)state;
	struct qc *c = qc_open();
	uint64_t a = qc_push_lamport(c, "lamA", "one", 0);
	uint64_t b = qc_push_lamport(c, "lamB", "two", 0);
	assert_true(b > a);
	uint64_t d = qc_push_lamport(c, "lamA", "three", b + 1000);
	assert_true(d > b + 1000);
	uint64_t e = qc_push_lamport(c, "lamB", "four", 5); /* an old ts: no step back */
	assert_true(e > d);
	qc_close(c);
	assert_int_equal(restart(SIGKILL), 0);
	c = qc_open();
	uint64_t f = qc_push_lamport(c, "lamA", "five", 0);
	qc_close(c);
	assert_true(f > e);
}

static void offsets_survive_restart(void **state)
{
	(void)state;
	struct qc *c = qc_open();
	for (int i = 0; i < 10; i++)
		assert_int_equal(qc_push(c, "persist", "before", 6), (uint64_t)i);
	qc_close(c);
	assert_int_equal(restart(SIGTERM), 0);
	c = qc_open();
	assert_int_equal(qc_push(c, "persist", "after", 5), 10);
	qc_close(c);
	assert_int_equal(read_topic("persist", 0, NULL, NULL), 11);
	assert_int_equal(restart(SIGKILL), 0);
	c = qc_open();
	assert_int_equal(qc_push(c, "persist", "killed", 6), 11);
	qc_close(c);
}

static void group_redelivery(void **state)
{
	(void)state;
	struct qc *p = qc_open();
	for (int i = 0; i < 4; i++)
		qc_push(p, "work", "job", 3);
	/* member A takes all four, acks two, dies */
	struct qc *a = qc_open();
	qc_sendf(a, "join work billing 4\r\n");
	char line[256];
	assert_int_equal(qc_line(a, line, sizeof line, 5000), 0);
	assert_string_equal(line, "OK");
	static struct msg m;
	uint64_t got[4];
	for (int i = 0; i < 4; i++) {
		assert_int_equal(qc_msg(a, &m, 5000), 0);
		got[i] = m.off;
	}
	qc_sendf(a, "ack %" PRIu64 "\r\nack %" PRIu64 "\r\n", got[0], got[1]);
	/* the acks are in before A dies: a ping on another connection
	 * cannot order them, so wait for the committed offset */
	uint64_t committed = 0;
	int64_t deadline = th_now_ms() + 5000;
	for (;;) {
		struct qc *s = qc_open();
		qc_sendf(s, "stat work\r\n");
		committed = UINT64_MAX;
		while (qc_line(s, line, sizeof line, 5000) == 0 && strcmp(line, "END") != 0) {
			unsigned long long c0;
			if (sscanf(line, "STAT group billing %llu", &c0) == 1)
				committed = c0;
		}
		qc_close(s);
		if (committed == 2 || th_now_ms() > deadline)
			break;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(committed, 2);
	qc_close(a);
	/* B gets exactly the two A never acked */
	struct qc *b = qc_open();
	qc_sendf(b, "join work billing 4\r\n");
	assert_int_equal(qc_line(b, line, sizeof line, 5000), 0);
	uint64_t r[2];
	for (int i = 0; i < 2; i++) {
		assert_int_equal(qc_msg(b, &m, 5000), 0);
		r[i] = m.off;
	}
	assert_true((r[0] == got[2] && r[1] == got[3]) || (r[0] == got[3] && r[1] == got[2]));
	/* B acks one and sits on the other: after the deadline (400 ms)
	 * it comes again */
	qc_sendf(b, "ack %" PRIu64 "\r\n", r[0]);
	assert_int_equal(qc_msg(b, &m, 5000), 0);
	assert_int_equal(m.off, r[1]);
	qc_sendf(b, "ack %" PRIu64 "\r\n", r[1]);
	/* committed 4 reaches the disk and survives a restart: a new
	 * member gets only what is pushed after */
	deadline = th_now_ms() + 5000;
	uint64_t v = 0;
	while (th_now_ms() < deadline) {
		stat_value("work", "redelivered", &v);
		struct qc *s = qc_open();
		qc_sendf(s, "stat work\r\n");
		committed = 0;
		while (qc_line(s, line, sizeof line, 5000) == 0 && strcmp(line, "END") != 0) {
			unsigned long long c0;
			if (sscanf(line, "STAT group billing %llu", &c0) == 1)
				committed = c0;
		}
		qc_close(s);
		if (committed == 4)
			break;
	}
	assert_int_equal(committed, 4);
	assert_true(v >= 3);
	qc_close(b);
	qc_close(p);
	assert_int_equal(restart(SIGTERM), 0);
	p = qc_open();
	assert_int_equal(qc_push(p, "work", "new", 3), 4);
	b = qc_open();
	qc_sendf(b, "join work billing\r\n");
	assert_int_equal(qc_line(b, line, sizeof line, 5000), 0);
	assert_int_equal(qc_msg(b, &m, 5000), 0);
	assert_int_equal(m.off, 4);
	qc_close(b);
	qc_close(p);
}

/* ---- kill -9 during a burst of 16 producers ---------------------------- */
#define PRODUCERS 16
#define PER_MAX 4000

static const char *burst_topic = "burst"; /* the producers push to it */

struct producer {
	int id;
	pthread_t th;
	int acked; /* sequence numbers 0..acked-1 were acknowledged */
	_Atomic int *go;
};

static void *producer_main(void *arg)
{
	struct producer *p = arg;
	int fd = th_connect(port);
	if (fd < 0)
		return NULL;
	char buf[256];
	size_t have = 0;
	for (int seq = 0; seq < PER_MAX; seq++) {
		char payload[64];
		int n = snprintf(payload, sizeof payload, "p%02d-%06d-xxxxxxxxxxxxxxxxxxxxxxxx", p->id, seq);
		char req[160];
		int rl = snprintf(req, sizeof req, "push %s %d\r\n%s\r\n", burst_topic, n, payload);
		if (th_send(fd, req, (size_t)rl) != 0)
			break;
		/* wait for this push's reply line */
		char *nl;
		while (!(nl = memchr(buf, '\n', have))) {
			struct pollfd pf = {.fd = fd, .events = POLLIN};
			if (poll(&pf, 1, 5000) <= 0)
				goto out;
			ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
			if (r <= 0)
				goto out;
			have += (size_t)r;
		}
		char ok[32];
		int okl = snprintf(ok, sizeof ok, "OK %s ", burst_topic);
		if (strncmp(buf, ok, (size_t)okl) != 0)
			goto out;
		__atomic_store_n(&p->acked, seq + 1, __ATOMIC_RELAXED);
		size_t used = (size_t)(nl - buf) + 1;
		memmove(buf, buf + used, have - used);
		have -= used;
	}
out:
	close(fd);
	return NULL;
}

struct burst_check {
	int next_seq[PRODUCERS]; /* every seq seen so far, in order */
	int count[PRODUCERS];
	bool bad;
};

static void burst_record(struct msg *m, void *arg)
{
	struct burst_check *bc = arg;
	int id, seq;
	if (m->len < 10 || sscanf((const char *)m->data, "p%d-%d-", &id, &seq) != 2 || id < 0 ||
	    id >= PRODUCERS) {
		bc->bad = true;
		return;
	}
	/* exactly once, in order: the next record of a producer has the
	 * next sequence number */
	if (seq != bc->next_seq[id]) {
		fprintf(stderr, "producer %d: seq %d after %d\n", id, seq, bc->next_seq[id] - 1);
		bc->bad = true;
	}
	bc->next_seq[id] = seq + 1;
	bc->count[id]++;
}

static int acked_total(struct producer *ps, int n)
{
	int total = 0;
	for (int i = 0; i < n; i++)
		total += __atomic_load_n(&ps[i].acked, __ATOMIC_RELAXED);
	return total;
}

/* Waits (10 s at most) until the first n producers have `want` acks. */
static void wait_acked(struct producer *ps, int n, int want)
{
	int64_t deadline = th_now_ms() + 10000;
	while (acked_total(ps, n) < want && th_now_ms() <= deadline) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Producers 0..lone-1 run alone until `lone_acks` pushes are
 * acknowledged, then the rest join; kill -9 once `total_acks` are in;
 * after the restart every acknowledged push of topic `burst` is in the
 * log exactly once, in order per producer. */
static void kill9_check(int lone, int lone_acks, int total_acks)
{
	static struct producer ps[PRODUCERS];
	for (int i = 0; i < PRODUCERS; i++) {
		ps[i].id = i;
		ps[i].acked = 0;
	}
	for (int i = 0; i < lone; i++)
		assert_int_equal(pthread_create(&ps[i].th, NULL, producer_main, &ps[i]), 0);
	wait_acked(ps, lone, lone_acks);
	for (int i = lone; i < PRODUCERS; i++)
		assert_int_equal(pthread_create(&ps[i].th, NULL, producer_main, &ps[i]), 0);
	/* let the burst run until a good number are acknowledged */
	wait_acked(ps, PRODUCERS, total_acks);
	th_node_signal(&cl, 0, SIGKILL);
	int acked[PRODUCERS], total = 0;
	for (int i = 0; i < PRODUCERS; i++) {
		pthread_join(ps[i].th, NULL);
		acked[i] = ps[i].acked;
		total += acked[i];
	}
	print_message("acknowledged before kill -9: %d (%d by the first %d alone)\n", total,
		      lone_acks, lone);
	assert_true(total >= 100);
	assert_int_equal(th_node_start(&cl, 0), 0);
	static struct burst_check bc;
	memset(&bc, 0, sizeof bc);
	read_topic(burst_topic, 0, burst_record, &bc);
	assert_false(bc.bad);
	for (int i = 0; i < PRODUCERS; i++) {
		/* every acknowledged one is there; at most the one in
		 * flight at the kill beyond */
		if (bc.count[i] < acked[i] || bc.count[i] > acked[i] + 1)
			fail_msg("producer %d: %d acked, %d in the log", i, acked[i], bc.count[i]);
	}
}

static void kill9_during_burst(void **state)
{
	(void)state;
	kill9_check(PRODUCERS, 0, 1500);
}

/* A lone producer's rounds are run by the event loop itself
 * (queue_commit.c); then 15 more producers join, so rounds go back to
 * the writer threads while the loop may still be running one, and
 * kill -9 hits the mix: the same guarantees (on a topic of its own). */
static void kill9_lone_producer_then_burst(void **state)
{
	(void)state;
	burst_topic = "lone";
	kill9_check(1, 400, 1500);
	burst_topic = "burst";
}

static void flipped_byte_detected(void **state)
{
	(void)state;
	struct qc *c = qc_open();
	char payload[100];
	memset(payload, 'f', sizeof payload);
	for (int i = 0; i < 100; i++)
		qc_push(c, "flip", payload, sizeof payload);
	qc_close(c);
	th_node_signal(&cl, 0, SIGTERM);
	char path[600];
	snprintf(path, sizeof path, "%s/flip/00000000000000000000.seg", qdir);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	off_t at = sb.st_size / 2;
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
	assert_int_equal(th_node_start(&cl, 0), 0);
	uint64_t v;
	stat_value("flip", "corrupt", &v);
	assert_int_equal(v, 1);
	stat_value("flip", "next", &v);
	assert_int_equal(v, 100);
	assert_int_equal(read_topic("flip", 0, NULL, NULL), 99);
	/* reported in the node's log */
	FILE *f = fopen(cl.nodes[0].log, "r");
	assert_non_null(f);
	char line[1024];
	bool seen = false;
	while (fgets(line, sizeof line, f))
		seen |= strstr(line, "queue_corrupt topic=flip") != NULL;
	fclose(f);
	assert_true(seen);
	/* and the topic takes new pushes */
	c = qc_open();
	assert_int_equal(qc_push(c, "flip", "ok", 2), 100);
	qc_close(c);
}

static uint64_t min_segment(const char *topic, int *count)
{
	char d[400];
	snprintf(d, sizeof d, "%s/%s", qdir, topic);
	DIR *dd = opendir(d);
	assert_non_null(dd);
	uint64_t best = UINT64_MAX;
	*count = 0;
	struct dirent *de;
	while ((de = readdir(dd))) {
		if (!strstr(de->d_name, ".seg"))
			continue;
		(*count)++;
		uint64_t b = strtoull(de->d_name, NULL, 10);
		if (b < best)
			best = b;
	}
	closedir(dd);
	return best;
}

struct seq_check {
	uint64_t expect;
	bool bad;
};

static void consecutive(struct msg *m, void *arg)
{
	struct seq_check *s = arg;
	if (m->off != s->expect)
		s->bad = true;
	s->expect = m->off + 1;
}

static void retention_whole_segments(void **state)
{
	(void)state;
	struct qc *c = qc_open();
	static char payload[4000];
	memset(payload, 'r', sizeof payload);
	for (int i = 0; i < 400; i++) /* 1.6 MB > queue_retention_bytes */
		qc_push_send(c, "ret", payload, sizeof payload);
	char line[256];
	for (int i = 0; i < 400; i++)
		assert_int_equal(qc_line(c, line, sizeof line, 10000), 0);
	qc_close(c);
	uint64_t deleted = 0;
	int64_t deadline = th_now_ms() + 5000;
	while (th_now_ms() < deadline) {
		stat_value("ret", "deleted_segments", &deleted);
		if (deleted > 0)
			break;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_true(deleted > 0);
	uint64_t first, bytes;
	stat_value("ret", "first", &first);
	stat_value("ret", "bytes", &bytes);
	assert_true(bytes <= 1024 * 1024);
	int nseg;
	assert_int_equal(min_segment("ret", &nseg), first); /* whole segments went */
	struct seq_check sc = {first, false};
	assert_int_equal(read_topic("ret", 0, consecutive, &sc), 400 - first);
	assert_false(sc.bad);
}

static void slow_subscriber_bounded(void **state)
{
	(void)state;
	/* a subscriber that never reads, from the start of a topic that
	 * grows by 48 MB: the node's peak memory must not follow */
	int sfd = th_connect(port);
	assert_true(sfd >= 0);
	/* (no tiny SO_RCVBUF: set after connect on loopback it stalls TCP
	 * itself, the window never reaching a segment) */
	assert_int_equal(th_send(sfd, "sub slow 0\r\n", 12), 0);
	struct qc *c = qc_open();
	/* the subscriber is registered before the pushes start */
	qc_push(c, "slow", "x", 1);
	long before = th_proc_kb(cl.nodes[0].pid, "VmHWM");
	static char payload[60000];
	memset(payload, 's', sizeof payload);
	char line[256];
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 16; i++)
			qc_push_send(c, "slow", payload, sizeof payload);
		for (int i = 0; i < 16; i++)
			assert_int_equal(qc_line(c, line, sizeof line, 10000), 0);
	}
	qc_close(c);
	assert_int_equal(th_peak_growth_ok(cl.nodes[0].pid, before, 24 * 1024), 0);
	/* retention (1M) deletes what it had not read (on the node's tick):
	 * wait for that before reading, or a fast reader may get there first */
	uint64_t deleted = 0;
	int64_t ret_deadline = th_now_ms() + 5000;
	while (th_now_ms() < ret_deadline) {
		stat_value("slow", "deleted_segments", &deleted);
		if (deleted > 0)
			break;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_true(deleted > 0);
	/* once it reads, it is told why nothing more comes */
	static char rbuf[1 << 16];
	size_t keep = 0;
	bool told = false;
	size_t total_rx = 0;
	int64_t deadline = th_now_ms() + 10000;
	while (!told && th_now_ms() < deadline) {
		struct pollfd pf = {.fd = sfd, .events = POLLIN};
		if (poll(&pf, 1, 1000) <= 0)
			continue;
		ssize_t r = recv(sfd, rbuf + keep, sizeof rbuf - keep - 1, 0);
		if (r <= 0) {
			print_message("subscriber: %s after %.200s\n", r == 0 ? "EOF" : "error", rbuf);
			break;
		}
		keep += (size_t)r;
		total_rx += (size_t)r;
		rbuf[keep] = '\0';
		told = memmem(rbuf, keep, "ERR ERANGE subscriber fell behind retention", 43) != NULL;
		/* keep a tail that may hold the start of the line */
		if (keep > 256) {
			memmove(rbuf, rbuf + keep - 256, 256);
			keep = 256;
		}
	}
	if (!told)
		print_message("subscriber: %zu bytes, no reason; tail %.200s\n", total_rx, rbuf);
	assert_true(told);
	close(sfd);
}


static void libvirgo_calls(void **state)
{
	(void)state;
	assert_int_equal(th_cluster_client(&cl), 0);
	uint64_t off = 99;
	static const uint8_t bin[] = {0, 1, '\r', '\n', 0xff};
	assert_int_equal(virgo_queue_push("lib", bin, sizeof bin, &off), 0);
	assert_int_equal(off, 0);
	assert_int_equal(virgo_queue_push("lib", "two", 3, &off), 0);
	assert_int_equal(off, 1);
	assert_int_equal(virgo_queue_push("bad/name", "x", 1, &off), -EINVAL);
	struct virgo_queue_msg *m;
	size_t n;
	uint64_t next;
	assert_int_equal(virgo_queue_read("lib", 0, 10, &m, &n, &next), 0);
	assert_int_equal(n, 2);
	assert_int_equal(next, 2);
	assert_int_equal(m[0].len, sizeof bin);
	assert_memory_equal(m[0].data, bin, sizeof bin);
	assert_string_equal(m[1].topic, "lib");
	char *kc = virgo_queue_kingcobra_line(&m[1]);
	assert_non_null(kc);
	assert_true(strncmp(kc, "REQUEST#127.0.0.1#", 18) == 0);
	assert_non_null(strstr(kc, "#two $$"));
	free(kc);
	virgo_queue_msgs_free(m, n);
	/* a subscriber from the end sees only what comes after */
	struct virgo_queue_sub *s;
	assert_int_equal(virgo_queue_sub("lib", VIRGO_QUEUE_END, &s), 0);
	struct virgo_queue_msg one;
	assert_int_equal(virgo_queue_next(s, 100, &one), -ETIMEDOUT);
	assert_int_equal(virgo_queue_push("lib", "three", 5, &off), 0);
	assert_int_equal(virgo_queue_next(s, 5000, &one), 0);
	assert_int_equal(one.offset, 2);
	assert_int_equal(one.len, 5);
	virgo_queue_msg_free(&one);
	virgo_queue_close(s);
	/* a group member: ack, and an unacked one comes again */
	assert_int_equal(virgo_queue_join("lib", "g", 1, &s), 0);
	assert_int_equal(virgo_queue_next(s, 5000, &one), 0);
	assert_int_equal(one.offset, 0);
	assert_int_equal(virgo_queue_ack(s, one.offset), 0);
	virgo_queue_msg_free(&one);
	assert_int_equal(virgo_queue_next(s, 5000, &one), 0);
	assert_int_equal(one.offset, 1);
	virgo_queue_msg_free(&one); /* not acked: the deadline passes */
	assert_int_equal(virgo_queue_next(s, 5000, &one), 0);
	assert_int_equal(one.offset, 1);
	virgo_queue_msg_free(&one);
	virgo_queue_close(s);
	char *text;
	assert_int_equal(virgo_queue_stat("lib", &text), 0);
	assert_non_null(strstr(text, "next 3"));
	free(text);
	assert_int_equal(virgo_queue_stat(NULL, &text), 0);
	assert_non_null(strstr(text, "topic lib 0 3"));
	free(text);
}

static void cli_push_read(void **state)
{
	(void)state;
	char virgo[400], out[8192];
	snprintf(virgo, sizeof virgo, "%s/../virgo", th_build_dir());
	const char *push[] = {virgo, "-c", cl.client_conf, "queue", "push", "clitopic", "{\"id\":1}",
			      NULL};
	assert_int_equal(th_run(push, out, sizeof out, 10000), 0);
	assert_string_equal(out, "clitopic 0\n");
	const char *rd[] = {virgo, "-c", cl.client_conf, "queue", "read", "clitopic",
			    "--from", "0", "--format", "kingcobra", NULL};
	assert_int_equal(th_run(rd, out, sizeof out, 10000), 0);
	assert_true(strncmp(out, "REQUEST#127.0.0.1#", 18) == 0);
	assert_non_null(strstr(out, "#{\"id\":1} $$\n"));
	/* a worker: runs the program per record, acks on exit 0 and
	 * publishes its output as the reply */
	const char *work[] = {virgo, "-c", cl.client_conf, "queue", "work", "clitopic",
			      "--group", "w", "--reply", "clireply", "--count", "1", "--",
			      "tr", "a-z", "A-Z", NULL};
	assert_int_equal(th_run(work, out, sizeof out, 10000), 0);
	const char *rr[] = {virgo, "-c", cl.client_conf, "queue", "read", "clireply", "--format",
			    "raw", NULL};
	assert_int_equal(th_run(rr, out, sizeof out, 10000), 0);
	assert_true(strncmp(out, "REPLY#127.0.0.1#", 16) == 0);
	assert_non_null(strstr(out, "#{\"ID\":1}"));
}

/* Group commit: 16 producers, each with one push outstanding at a time
 * (sent together, then all 16 acknowledgements read), share fdatasyncs:
 * the topic's log is synced fewer times than it got pushes. */
static void group_commit_shares_fdatasync(void **state)
{
	(void)state;
	enum { NP = 16, ROUNDS = 20 };
	struct qc *c[NP];
	for (int i = 0; i < NP; i++)
		c[i] = qc_open();
	qc_push(c[0], "gcommit", "first", 5); /* the topic exists */
	uint64_t before, after;
	stat_value("gcommit", "syncs", &before);
	assert_true(before != UINT64_MAX);
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < NP; i++)
			qc_push_send(c[i], "gcommit", "0123456789abcdef", 16);
		for (int i = 0; i < NP; i++) {
			char line[256];
			assert_int_equal(qc_line(c[i], line, sizeof line, 10000), 0);
			assert_true(strncmp(line, "OK gcommit ", 11) == 0);
		}
	}
	for (int i = 0; i < NP; i++)
		qc_close(c[i]);
	stat_value("gcommit", "syncs", &after);
	print_message("%d pushes took %" PRIu64 " fdatasyncs\n", NP * ROUNDS, after - before);
	assert_true(after > before);
	/* ext4 here: ~27; tmpfs (no-op fdatasync, shortest rounds): ~33 */
	assert_true((after - before) * 2 < (uint64_t)(NP * ROUNDS));
}

/* Pipelined pushes on one connection (sent in one go, more than one
 * batch holds, with a bad request among them): every one is answered, in
 * request order, with consecutive offsets, and they share a handful of
 * syncs (one per batch, not one per push). */
static void pipelined_batch_acks(void **state)
{
	(void)state;
	enum { N = 600, BAD = 300 };
	struct qc *c = qc_open();
	uint64_t first = qc_push(c, "pipe", "first", 5);
	uint64_t before, after;
	stat_value("pipe", "syncs", &before);
	static char buf[N * 48];
	size_t len = 0;
	for (int i = 0; i < N; i++)
		len += (size_t)(i == BAD ? snprintf(buf + len, sizeof buf - len, "push bad/topic 2\r\nxx\r\n")
					 : snprintf(buf + len, sizeof buf - len, "push pipe 6\r\np%05d\r\n", i));
	assert_int_equal(th_send(c->fd, buf, len), 0);
	uint64_t want = first + 1;
	for (int i = 0; i < N; i++) {
		char line[256], t[80];
		uint64_t off, lam;
		assert_int_equal(qc_line(c, line, sizeof line, 10000), 0);
		if (i == BAD) {
			assert_true(strncmp(line, "ERR ", 4) == 0);
			continue;
		}
		if (sscanf(line, "OK %79s %" SCNu64 " %" SCNu64, t, &off, &lam) != 3)
			fail_msg("push %d: %s", i, line);
		assert_string_equal(t, "pipe");
		assert_int_equal(off, want);
		want++;
	}
	qc_sendf(c, "ping\r\n"); /* nothing more was answered */
	char line[256];
	assert_int_equal(qc_line(c, line, sizeof line, 5000), 0);
	assert_true(strncmp(line, "PONG ", 5) == 0);
	qc_close(c);
	stat_value("pipe", "syncs", &after);
	print_message("%d pipelined pushes took %" PRIu64 " syncs\n", N - 1, after - before);
	assert_true(after > before);
	assert_true(after - before <= 8);
}

/* Polls topic's stat key until it equals want (5 s). */
static void stat_until(const char *topic, const char *key, uint64_t want)
{
	uint64_t v = UINT64_MAX;
	int64_t end = th_now_ms() + 5000;
	do {
		stat_value(topic, key, &v);
		if (v == want)
			return;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	} while (th_now_ms() < end);
	assert_int_equal(v, want);
}

/* What a user at the shell meets: ls and stat, clear errors for a bad
 * topic name and for a worker program that cannot run (refused before
 * joining, not failed on every record), and `sub` ended by Ctrl-C
 * cleanly (exit 0, the node's subscriber gone). */
static void cli_errors_and_ctrl_c(void **state)
{
	(void)state;
	char virgo[400], out[8192];
	snprintf(virgo, sizeof virgo, "%s/../virgo", th_build_dir());
	const char *push[] = {virgo, "-c", cl.client_conf, "queue", "push", "clisub", "one", NULL};
	assert_int_equal(th_run(push, out, sizeof out, 10000), 0);
	const char *ls[] = {virgo, "-c", cl.client_conf, "queue", "ls", NULL};
	assert_int_equal(th_run(ls, out, sizeof out, 10000), 0);
	assert_non_null(strstr(out, "clisub"));
	const char *st[] = {virgo, "-c", cl.client_conf, "queue", "stat", "clisub", NULL};
	assert_int_equal(th_run(st, out, sizeof out, 10000), 0);
	assert_non_null(strstr(out, "fsync always"));

	const char *bad[] = {virgo, "-c", cl.client_conf, "queue", "push", "no/such", "x", NULL};
	assert_int_equal(th_run(bad, out, sizeof out, 10000), 1);
	assert_non_null(strstr(out, "'no/such' is not a topic name"));
	const char *nr[] = {virgo, "-c", cl.client_conf, "queue", "read", "nosuchtopic", NULL};
	assert_int_equal(th_run(nr, out, sizeof out, 10000), 1);
	assert_non_null(strstr(out, "read: no such topic"));
	const char *wk[] = {virgo, "-c", cl.client_conf, "queue", "work", "clisub", "--group",
			    "nowork", "--", "/nonexistent/handler", NULL};
	assert_int_equal(th_run(wk, out, sizeof out, 10000), 127);
	assert_non_null(strstr(out, "/nonexistent/handler: No such file"));
	uint64_t groups;
	stat_value("clisub", "groups", &groups);
	assert_int_equal(groups, 0);

	/* sub, then Ctrl-C */
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(pfd[1], 1);
		close(pfd[0]);
		close(pfd[1]);
		execl(virgo, virgo, "-c", cl.client_conf, "queue", "sub", "clisub", (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	stat_until("clisub", "subscribers", 1);
	struct qc *c = qc_open();
	qc_push(c, "clisub", "live one", 8);
	qc_close(c);
	char got[512] = "";
	size_t gl = 0;
	int64_t end = th_now_ms() + 5000;
	while (!strstr(got, "live one\n") && th_now_ms() < end && gl < sizeof got - 1) {
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (poll(&p, 1, 100) == 1) {
			ssize_t r = read(pfd[0], got + gl, sizeof got - 1 - gl);
			if (r <= 0)
				break;
			gl += (size_t)r;
			got[gl] = '\0';
		}
	}
	assert_non_null(strstr(got, "\t127.0.0.1:"));
	assert_non_null(strstr(got, "live one\n"));
	kill(pid, SIGINT);
	int status = -1;
	end = th_now_ms() + 5000;
	while (waitpid(pid, &status, WNOHANG) == 0 && th_now_ms() < end) {
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		fail_msg("virgo queue sub did not exit on SIGINT");
	}
	assert_int_equal(WEXITSTATUS(status), 0);
	close(pfd[0]);
	stat_until("clisub", "subscribers", 0);
}

/* use_as_kingcobra_service: the cpupool enqueues a clone call instead of
 * running it; a KingCobra worker (virgo queue work) runs it and its
 * result comes back on the reply topic */
static void routed_clone_comes_back_on_reply_topic(void **state)
{
	(void)state;
	assert_int_equal(th_cluster_client(&cl), 0);
	void *out = NULL;
	size_t out_len = 0;
	assert_int_equal(virgo_clone("virgo_cloud_test", "routed hello", 12, &out, &out_len), 0);
	char res[128];
	snprintf(res, sizeof res, "%.*s", (int)out_len, (char *)out);
	free(out);
	unsigned long long off;
	if (sscanf(res, "QUEUED kingcobra %llu", &off) != 1)
		fail_msg("clone result: %s", res);
	char virgo[400], count[32], text[8192];
	snprintf(virgo, sizeof virgo, "%s/../virgo", th_build_dir());
	snprintf(count, sizeof count, "%llu", off + 1); /* every record up to it */
	const char *work[] = {virgo, "-c", cl.client_conf, "queue", "work", "kingcobra", "--group",
			      "kc", "--reply", "kingcobra.reply", "--count", count, "--", "cat", NULL};
	assert_int_equal(th_run(work, text, sizeof text, 10000), 0);
	const char *rd[] = {virgo, "-c", cl.client_conf, "queue", "read", "kingcobra.reply", "--format",
			    "raw", NULL};
	assert_int_equal(th_run(rd, text, sizeof text, 10000), 0);
	assert_non_null(strstr(text, "REPLY#127.0.0.1#"));
	assert_non_null(strstr(text, "#virgo_cloud_test routed hello"));
}

/* mempool_use_as_kingcobra_service: the mempool enqueues a request (its
 * line and a set's payload) instead of serving it and answers QUEUED once
 * it is durable; a KingCobra worker runs it and its result comes back on
 * the reply topic.  Call syntax: the same answer, then the close the
 * original's clients wait for.  ping is still answered here. */
static void routed_mempool_comes_back_on_reply_topic(void **state)
{
	(void)state;
	struct qc *m = qc_open_port(th_port(&cl, 0, 30000));
	char line[256];
	qc_sendf(m, "ping\r\n");
	assert_int_equal(qc_line(m, line, sizeof line, 5000), 0);
	assert_true(strncmp(line, "PONG ", 5) == 0);
	qc_sendf(m, "malloc 4242\r\n");
	assert_int_equal(qc_line(m, line, sizeof line, 5000), 0);
	unsigned long long off1, off2, off3;
	if (sscanf(line, "QUEUED kingcobra %llu", &off1) != 1)
		fail_msg("malloc answered: %s", line);
	/* a set with a binary payload, pipelined behind a get: in order */
	static const char set[] = "set 1000000000001f 6\r\nab\0\ncd\r\nget 1000000000001f\r\n";
	assert_int_equal(send(m->fd, set, sizeof set - 1, 0), (ssize_t)(sizeof set - 1));
	assert_int_equal(qc_line(m, line, sizeof line, 5000), 0);
	if (sscanf(line, "QUEUED kingcobra %llu", &off2) != 1)
		fail_msg("set answered: %s", line);
	assert_int_equal(qc_line(m, line, sizeof line, 5000), 0);
	assert_int_equal(sscanf(line, "QUEUED kingcobra %llu", &off3), 1);
	assert_true(off1 < off2 && off2 < off3);
	qc_close(m);
	m = qc_open_port(th_port(&cl, 0, 30000));
	qc_sendf(m, "virgo_cloud_malloc(77)\n");
	assert_int_equal(qc_line(m, line, sizeof line, 5000), 0);
	unsigned long long off4;
	assert_int_equal(sscanf(line, "QUEUED kingcobra %llu", &off4), 1);
	assert_true(off4 > off3);
	assert_int_equal(qc_line(m, line, sizeof line, 5000), -1); /* closed */
	qc_close(m);
	/* the records as they arrived, stamped with the caller's address */
	struct qc *r = qc_open();
	qc_sendf(r, "read kingcobra %llu 1\r\n", off2);
	static struct msg g;
	assert_int_equal(qc_msg(r, &g, 5000), 0);
	if (g.len != 28)
		fail_msg("record (%zu): %.*s", g.len, (int)g.len, (char *)g.data);
	assert_memory_equal(g.data, "set 1000000000001f 6\r\nab\0\ncd", 28);
	assert_true(strncmp(g.stamp, "127.0.0.1:", 10) == 0);
	qc_close(r);
	/* a worker of its own group: every record up to the last one */
	char virgo[400], count[32], text[8192];
	snprintf(virgo, sizeof virgo, "%s/../virgo", th_build_dir());
	snprintf(count, sizeof count, "%llu", off4 + 1);
	const char *work[] = {virgo, "-c", cl.client_conf, "queue", "work", "kingcobra", "--group",
			      "kcm", "--reply", "mempool.reply", "--count", count, "--", "cat", NULL};
	assert_int_equal(th_run(work, text, sizeof text, 10000), 0);
	const char *rd[] = {virgo, "-c", cl.client_conf, "queue", "read", "mempool.reply", "--format",
			    "raw", NULL};
	memset(text, 0, sizeof text); /* the set's reply holds a NUL: search it all */
	assert_int_equal(th_run(rd, text, sizeof text, 10000), 0);
	static const char *const want[] = {"REPLY#127.0.0.1#", "#malloc 4242",
					   "#set 1000000000001f 6\r\nab\0\ncd",
					   "#get 1000000000001f", "#virgo_cloud_malloc(77)"};
	static const size_t want_len[] = {16, 12, 29, 19, 23};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++)
		if (!memmem(text, sizeof text, want[i], want_len[i]))
			fail_msg("reply topic lacks %s", want[i]);
}

/* the node's own KingCobra handler (queue_handler) runs its program per
 * request of the default topic and publishes REPLY#... on <topic>.reply */
struct find_ctx {
	const char *needle;
	bool found;
};

static void find_reply(struct msg *m, void *arg)
{
	struct find_ctx *f = arg;
	if (m->len > 6 && memcmp(m->data, "REPLY#", 6) == 0 &&
	    memmem(m->data, m->len, f->needle, strlen(f->needle)))
		f->found = true;
}

/* Sends request as a telnet-path line (to the node on `port`) and waits
 * up to timeout_ms for a reply containing needle on kingcobra.reply. */
static bool handled(const char *request, const char *needle, int timeout_ms)
{
	struct qc *c = qc_open();
	qc_sendf(c, "%s\n", request);
	char line[256];
	assert_int_equal(qc_line(c, line, sizeof line, 5000), 0);
	assert_true(strncmp(line, "OK kingcobra ", 13) == 0);
	qc_close(c);
	struct find_ctx g = {needle, false};
	int64_t deadline = th_now_ms() + timeout_ms;
	while (!g.found && th_now_ms() < deadline) {
		struct qc *s = qc_open();
		qc_sendf(s, "stat kingcobra.reply\r\n");
		assert_int_equal(qc_line(s, line, sizeof line, 5000), 0);
		qc_close(s);
		if (strncmp(line, "STAT", 4) == 0)
			read_topic("kingcobra.reply", 0, find_reply, &g);
		if (!g.found) {
			struct timespec ts = {0, 50 * 1000 * 1000};
			nanosleep(&ts, NULL);
		}
	}
	return g.found;
}

static void node_handler_replies(void **state)
{
	(void)state;
	/* the reply carries the request's stamp and the program's output */
	assert_true(handled("please handle me", "#PLEASE HANDLE ME", 10000));
}

/* A node of its own (raw sockets only) whose handler is the test plugin's
 * function fn: a request, then a reply containing needle on
 * kingcobra.reply within 5 s. */
static void plugin_node_replies(const char *fn, const char *extra_conf, const char *request,
				const char *needle)
{
	static struct th_cluster c2;
	char extra[1024];
	snprintf(extra, sizeof extra,
		 "queue_dir = %s/q2\nqueue_handler = plugin %s/libvtp_fast.so %s\n%s",
		 th_tmpdir(), th_build_dir(), fn, extra_conf);
	assert_int_equal(th_cluster_start(&c2, 1, extra, ""), 0);
	int saved = port;
	port = th_port(&c2, 0, 60000);
	bool found = handled(request, needle, 5000);
	port = saved;
	assert_int_equal(th_cluster_stop(&c2), 0);
	setenv("VIRGO_CLIENT_CONF", cl.client_conf, 1);
	assert_true(found);
}

/* queue_handler = plugin <lib> <function>: the node calls a plugin
 * function (a virgo_fn, as the cpupool's) per request and publishes its
 * result on the reply topic; at queue_handler_timeout_ms the function's
 * cancel flag is set (tp_spin runs until cancelled, up to 60 s) and the
 * reply is published */
static void node_handler_plugin(void **state)
{
	(void)state;
	plugin_node_replies("tp_reverse", "", "olleh nigulp", "#plugin hello");
	plugin_node_replies("tp_spin", "queue_handler_timeout_ms = 300\n", "spin", "REPLY#127.0.0.1#");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(push_sub_read_binary),
		cmocka_unit_test(telnet_path),
		cmocka_unit_test(libvirgo_calls),
		cmocka_unit_test(cli_push_read),
		cmocka_unit_test(cli_errors_and_ctrl_c),
		cmocka_unit_test(routed_clone_comes_back_on_reply_topic),
		cmocka_unit_test(routed_mempool_comes_back_on_reply_topic),
		cmocka_unit_test(node_handler_replies),
		cmocka_unit_test(node_handler_plugin),
		cmocka_unit_test(offsets_survive_restart),
		cmocka_unit_test(lamport_clock),
		cmocka_unit_test(group_redelivery),
		cmocka_unit_test(group_commit_shares_fdatasync),
		cmocka_unit_test(pipelined_batch_acks),
		cmocka_unit_test(kill9_during_burst),
		cmocka_unit_test(kill9_lone_producer_then_burst),
		cmocka_unit_test(flipped_byte_detected),
		cmocka_unit_test(retention_whole_segments),
		cmocka_unit_test(slow_subscriber_bounded),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
