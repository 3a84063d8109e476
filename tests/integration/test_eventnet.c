/*
 * test_eventnet.c - the EventNet port end to end on real virgod nodes:
 * every message form of the notes and the original (answered "EventNet
 * updated", then closed, as `nc` expects), the text files' exact format,
 * pipelined native logging, cycle refusal on the wire, clocks carried by
 * the client across three nodes, the tail feed, the files of a node that
 * acknowledges before writing (eventnet_ack = queued), and a crash
 * (SIGKILL) with a torn journal tail repaired at restart, two
 * connections logging at once whose journal replays causes first, 16
 * connections killed mid-burst keeping every acknowledged event in the
 * journal exactly once, and a
 * bounded graph (eventnet_max_events) taking 3x its bound, evicting the
 * oldest from memory and keeping every event in its files, across a
 * restart.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/common/evclock.h"
#include "../harness.h"

static struct th_cluster cl;
static char evdir[3][400];

static int setup(void **state)
{
	(void)state;
	const char *tmp = th_tmpdir();
	static char extra[3][500];
	const char *node_extra[3];
	for (int i = 0; i < 3; i++) {
		snprintf(evdir[i], sizeof evdir[i], "%s/eventnet%d", tmp, i + 1);
		/* node 2 acknowledges before writing (eventnet_ack = queued) */
		snprintf(extra[i], sizeof extra[i], "eventnet_dir = %s\n%s", evdir[i],
			 i == 1 ? "eventnet_ack = queued\n" : "");
		node_extra[i] = extra[i];
	}
	return th_cluster_start_nodes(&cl, 3, "eventnet_sync_ms = 200\n", node_extra, "");
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_stop(&cl) == 0 ? 0 : -1;
}

static int conn(int node)
{
	int fd = th_connect(th_port(&cl, node, 20000));
	assert_true(fd >= 0);
	return fd;
}

static char rbuf[1 << 21];

/* Sends req on fd and reads until needle; returns the text read. */
static const char *xchg(int fd, const char *req, const char *needle)
{
	assert_int_equal(th_send(fd, req, strlen(req)), 0);
	ssize_t n = th_recv_until(fd, rbuf, sizeof rbuf, needle, 5000);
	if (n < 0 || !strstr(rbuf, needle))
		fail_msg("sent %.80s: wanted %s, got '%s'", req, needle, n >= 0 ? rbuf : "(nothing)");
	return rbuf;
}

/* One message in the notes' style: one connection, reply, then EOF. */
static void legacy(int node, const char *msg, const char *want)
{
	int fd = conn(node);
	assert_int_equal(th_send(fd, msg, strlen(msg)), 0);
	char buf[512];
	size_t got = 0;
	int64_t deadline = th_now_ms() + 5000;
	for (;;) { /* read to EOF: the node closes after answering */
		ssize_t r = recv(fd, buf + got, sizeof buf - 1 - got, MSG_DONTWAIT);
		if (r == 0)
			break;
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (th_now_ms() > deadline)
			fail_msg("%s: no EOF after '%.*s'", msg, (int)got, buf);
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	buf[got] = '\0';
	if (strcmp(buf, want) != 0)
		fail_msg("%s: got '%s', want '%s'", msg, buf, want);
	close(fd);
}

static char *slurp(const char *dir, const char *name)
{
	static char buf[1 << 18];
	char path[600];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && strcmp(s + n - t, tail) == 0;
}

/* Polls (with a deadline) until dir/name holds exactly want (or, when
 * suffix, ends with it). */
static void file_is(const char *dir, const char *name, const char *want, bool suffix)
{
	int64_t deadline = th_now_ms() + 5000;
	const char *got;
	while (!(got = slurp(dir, name)) ||
	       (suffix ? !ends_with(got, want) : strcmp(got, want) != 0)) {
		if (th_now_ms() > deadline)
			fail_msg("%s: got '%s', want '%s'", name, got ? got : "(missing)", want);
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
}

#define file_becomes(dir, name, want) file_is(dir, name, want, false)

static void every_message_form_and_the_files(void **state)
{
	(void)state;
	const char *ok = "EventNet updated\r\n";
	legacy(0, "eventnet_vertexmsg#1-alice,bob-(hello,hi)\n", ok); /* the example */
	legacy(0, "eventnet_edgemsg#3#1#2\n", ok); /* 3 fields: creates 2 */
	legacy(0, "eventnet_edgemsg#2#4#\n", ok); /* the original's 2 fields + '#' */
	legacy(0, "eventnet_edgemsg#4#5\n", ok);
	legacy(0, "eventnet_vertextmsg#6-carol-(x,y)\n", ok); /* misspelt */
	legacy(0, "eventnet_vertexmsg#7#dave,eve#(a,b)#(c,d)\n", ok); /* '#' separators */
	legacy(0, "eventnet_vertexmsg#1-alice,bob-(bye,ciao)\n", ok); /* appends to vertex 1 */
	char pad[256] = "eventnet_edgemsg#9#6#7"; /* NUL-padded like the kernel clients */
	int fd = conn(0);
	assert_int_equal(th_send(fd, pad, sizeof pad), 0);
	xchg(fd, "", ok);
	close(fd);
	legacy(0, "eventnet_edgemsg#5#1\n",
	       "ERR ELOOP the cause was recorded after the event: the edge would make a cycle\r\n");
	legacy(0, "eventnet_vertexmsg#nosep\n",
	       "ERR EINVAL vertex message: want eventnet_vertexmsg#<id>-<partakers>-<conversations>\r\n");

	file_becomes(evdir[0], "EventNetVertices.txt",
		     "1 - alice,bob - (hello,hi)#(bye,ciao)\n"
		     "2 -  - \n"
		     "4 -  - \n"
		     "5 -  - \n"
		     "6 - carol - (x,y)\n"
		     "7 - dave,eve - (a,b)#(c,d)\n");
	file_becomes(evdir[0], "EventNetEdges.txt", "1,2\n2,4\n4,5\n6,7\n");
}

static void native_pipelined_and_queries(void **state)
{
	(void)state;
	enum { N = 3000 };
	static char req[N * 64];
	size_t n = 0;
	/* a chain p0 -> p1 -> ... in one write: the replies come back in order */
	n += (size_t)sprintf(req + n, "log p0 after=1 conv=(op,0)\n");
	for (int i = 1; i < N; i++)
		n += (size_t)sprintf(req + n, "log p%d partakers=w%d after=p%d conv=(op,%d)\n", i,
				     i % 7, i - 1, i);
	int fd = conn(0);
	const char *r = xchg(fd, req, "OK p2999 ");
	int oks = 0;
	for (const char *p = r; (p = strstr(p, "OK p")); p++)
		oks++;
	assert_int_equal(oks, N);
	r = xchg(fd, "why p10 3\n", "END\r\n");
	assert_non_null(strstr(r, "ANCESTORS 11 3\r\nEVENT p7 "));
	assert_non_null(strstr(r, "EVENT p9 "));
	r = xchg(fd, "before p1 p2000\n", "\r\n");
	assert_string_equal(r, "ORDER before\r\n");
	r = xchg(fd, "before p2000 p1\n", "\r\n");
	assert_string_equal(r, "ORDER after\r\n");
	r = xchg(fd, "edge p2999 p0\n", "\r\n");
	assert_non_null(strstr(r, "ERR ELOOP"));
	r = xchg(fd, "log p5 after=p9\n", "\r\n");
	assert_non_null(strstr(r, "ERR ELOOP"));
	r = xchg(fd, "get nosuch\n", "\r\n");
	assert_non_null(strstr(r, "ERR ENOENT"));
	r = xchg(fd, "dump 0 2\n", "END\r\n");
	assert_non_null(strstr(r, "EVENT 1 1 1 1 1:1 alice,bob - (hello,hi)#(bye,ciao)\r\n"));
	assert_non_null(strstr(r, "NEXT 2\r\n"));
	r = xchg(fd, "ping\n", "\r\n");
	assert_string_equal(r, "PONG 1\r\n");
	/* a query sent while a change is being written is answered after it */
	for (int i = 0; i < 50; i++) {
		char a[64], b[64];
		snprintf(a, sizeof a, "log ord%d\n", i);
		snprintf(b, sizeof b, "get ord%d\nping\n", i);
		assert_int_equal(th_send(fd, a, strlen(a)), 0);
		r = xchg(fd, b, "PONG 1\r\n");
		snprintf(a, sizeof a, "OK ord%d 1 ", i);
		snprintf(b, sizeof b, "\r\nEVENT ord%d 1 ", i);
		if (strncmp(r, a, strlen(a)) != 0 || !strstr(r, b))
			fail_msg("out of order: %s", r);
	}
	close(fd);
}

/* "OK <id> <node> <seq> <lamport> <vc>" -> lamport and clock */
static void parse_ok(const char *r, uint64_t *lam, struct evc *vc)
{
	char id[200], v[EVC_TEXT_MAX + 1];
	unsigned node;
	unsigned long long seq, l;
	if (sscanf(r, "OK %199s %u %llu %llu %1700s", id, &node, &seq, &l, v) != 5)
		fail_msg("bad OK line '%s'", r);
	*lam = l;
	assert_int_equal(evc_parse(vc, v, strlen(v)), 0);
}

static void clocks_cross_nodes(void **state)
{
	(void)state;
	int f1 = conn(0), f2 = conn(1), f3 = conn(2);
	uint64_t la, lb, lc, ld;
	struct evc va, vb, vc, vd;
	parse_ok(xchg(f1, "log req1 partakers=client conv=(clone,f)\n", "\r\n"), &la, &va);
	char line[4000], vtext[EVC_TEXT_MAX + 1];
	evc_format(&va, vtext);
	snprintf(line, sizeof line, "log run1 after=req1 clock=%s lamport=%llu partakers=node2\n",
		 vtext, (unsigned long long)la);
	parse_ok(xchg(f2, line, "\r\n"), &lb, &vb);
	parse_ok(xchg(f3, "log other partakers=node3\n", "\r\n"), &lc, &vc);
	evc_format(&vb, vtext);
	snprintf(line, sizeof line, "log reply1 after=run1 clock=%s lamport=%llu\n", vtext,
		 (unsigned long long)lb);
	parse_ok(xchg(f1, line, "\r\n"), &ld, &vd);
	assert_true(la < lb && lb < ld);
	assert_int_equal(evc_compare(&va, &vb), EVC_BEFORE);
	assert_int_equal(evc_compare(&vb, &vd), EVC_BEFORE);
	assert_int_equal(evc_compare(&vc, &vb), EVC_CONCURRENT);
	assert_int_equal(evc_compare(&vc, &vd), EVC_CONCURRENT);
	/* node 2 keeps the remote cause by name; why reports it */
	const char *r = xchg(f2, "why run1\n", "END\r\n");
	assert_non_null(strstr(r, "ANCESTORS 0 0\r\nREMOTE req1\r\nEND\r\n"));
	/* a clock naming node 2's future is refused */
	r = xchg(f2, "log bad clock=2:999999\n", "\r\n");
	assert_non_null(strstr(r, "ERR EINVAL"));
	close(f1);
	close(f2);
	close(f3);
}


/* Random causal histories over the three real nodes: each event goes to a
 * random node after up to three random earlier events; causes recorded
 * elsewhere travel as the client's clock= and lamport= (as libvirgo sends
 * them).  For every pair: a -> b (node order and causes, transitively)
 * implies L(a) < L(b) and V(a) < V(b); no path either way: concurrent. */
#define PN 90
static void clock_property_over_three_nodes(void **state)
{
	(void)state;
	int fd[3] = {conn(0), conn(1), conn(2)};
	static struct evc vc[PN];
	static uint64_t lam[PN];
	static uint64_t anc[PN][2];
	int node[PN], last[3] = {-1, -1, -1};
	srand(4242);
	for (int i = 0; i < PN; i++) {
		int nd = rand() % 3, causes[3], nc = 0;
		char after[256] = "", line[4096], vtext[EVC_TEXT_MAX + 1];
		struct evc carried = {0};
		uint64_t clam = 0;
		bool remote = false;
		for (int k = i ? rand() % 4 : 0; k > 0; k--) {
			int p = rand() % i;
			bool dup = false;
			for (int q = 0; q < nc; q++)
				dup |= causes[q] == p;
			if (dup)
				continue;
			causes[nc++] = p;
			size_t al = strlen(after);
			snprintf(after + al, sizeof after - al, "%sq%d", al ? "," : "", p);
			if (node[p] != nd) {
				evc_merge(&carried, &vc[p]);
				if (lam[p] > clam)
					clam = lam[p];
				remote = true;
			}
		}
		int n = snprintf(line, sizeof line, "log q%d", i);
		if (nc)
			n += snprintf(line + n, sizeof line - (size_t)n, " after=%s", after);
		if (remote) {
			evc_format(&carried, vtext);
			n += snprintf(line + n, sizeof line - (size_t)n, " clock=%s lamport=%llu", vtext,
				      (unsigned long long)clam);
		}
		snprintf(line + n, sizeof line - (size_t)n, "\n");
		parse_ok(xchg(fd[nd], line, "\r\n"), &lam[i], &vc[i]);
		node[i] = nd;
		int preds[4], np = 0;
		if (last[nd] >= 0)
			preds[np++] = last[nd];
		for (int q = 0; q < nc; q++)
			preds[np++] = causes[q];
		for (int q = 0; q < np; q++) {
			anc[i][0] |= anc[preds[q]][0];
			anc[i][1] |= anc[preds[q]][1];
			anc[i][preds[q] / 64] |= UINT64_C(1) << (preds[q] % 64);
		}
		last[nd] = i;
	}
	int concurrent = 0;
	for (int a = 0; a < PN; a++) {
		for (int b = 0; b < PN; b++) {
			if (a == b)
				continue;
			bool ab = (anc[b][a / 64] >> (a % 64)) & 1, ba = (anc[a][b / 64] >> (b % 64)) & 1;
			enum evc_order o = evc_compare(&vc[a], &vc[b]);
			if (ab && (lam[a] >= lam[b] || o != EVC_BEFORE))
				fail_msg("q%d -> q%d but L %llu/%llu, %s", a, b, (unsigned long long)lam[a],
					 (unsigned long long)lam[b], evc_order_name(o));
			if (!ab && !ba) {
				concurrent++;
				if (o != EVC_CONCURRENT)
					fail_msg("q%d || q%d but %s", a, b, evc_order_name(o));
			}
		}
	}
	assert_true(concurrent > 0);
	for (int i = 0; i < 3; i++)
		close(fd[i]);
}

static void tail_follows_new_events(void **state)
{
	(void)state;
	int t = conn(1), w = conn(1);
	xchg(t, "tail\n", "OK tail\r\n");
	xchg(w, "log tailed0\nlog tailed1 conv=(x)\nlog tailed2 after=tailed1\n", "OK tailed2");
	const char *r = xchg(t, "", "EVENT tailed2 ");
	assert_non_null(strstr(r, "EVENT tailed1 2 "));
	assert_non_null(strstr(r, " tailed1 \r\n"));
	/* a re-logged vertex (the notes' appended conversation, a cause
	 * added) comes again, whole; a re-log that changes nothing does not */
	xchg(w, "log tailed1\nlog tailed1 conv=(y)\n", "OK tailed1");
	r = xchg(t, "", "(x)#(y)\r\n");
	const char *first = strstr(r, "EVENT tailed1 2 ");
	assert_non_null(first);
	assert_null(strstr(first + 1, "EVENT tailed1 ")); /* the no-op re-log: nothing */
	legacy(1, "eventnet_vertexmsg#tailed2-carol-(z)\n", "EventNet updated\r\n");
	r = xchg(t, "", " tailed1 (z)\r\n");
	assert_non_null(strstr(r, "EVENT tailed2 2 "));
	xchg(w, "log tailed2 after=tailed0\n", "OK tailed2");
	r = xchg(t, "", " tailed1,tailed0 (z)\r\n");
	assert_non_null(strstr(r, "EVENT tailed2 2 "));
	close(t);
	close(w);
	/* node 2 replied before writing: the files still get the events */
	file_is(evdir[1], "EventNetEdges.txt", "\ntailed1,tailed2\ntailed0,tailed2\n", true);
	file_is(evdir[1], "EventNetVertices.txt",
		"\ntailed0 -  - \ntailed1 -  - (x)#(y)\ntailed2 -  - (z)\n", true);
}

static void crash_with_torn_tail(void **state)
{
	(void)state;
	int fd = conn(2);
	xchg(fd, "log c1\nlog c2 after=c1 conv=(z)\n", "OK c2 ");
	close(fd);
	th_node_signal(&cl, 2, SIGKILL);
	char path[600];
	snprintf(path, sizeof path, "%s/eventnet.journal", evdir[2]);
	int j = open(path, O_WRONLY | O_APPEND);
	assert_true(j >= 0);
	assert_int_equal(write(j, "E 3 9 9 3:9 half", 16), 16);
	close(j);
	assert_int_equal(th_node_start(&cl, 2), 0);
	fd = conn(2);
	const char *r = xchg(fd, "stats\n", "END\r\n");
	assert_non_null(strstr(r, "STAT repaired_bytes 16\r\n"));
	r = xchg(fd, "get c2\n", "\r\n");
	assert_non_null(strstr(r, "EVENT c2 3 "));
	assert_non_null(strstr(r, " c1 (z)\r\n"));
	r = xchg(fd, "get half\n", "\r\n");
	assert_non_null(strstr(r, "ERR ENOENT"));
	r = xchg(fd, "log c3 after=c2\n", "\r\n");
	assert_non_null(strstr(r, "OK c3 3 "));
	close(fd);
	file_is(evdir[2], "EventNetEdges.txt", "\nc1,c2\nc2,c3\n", true);
}

/* Two connections log at once on the node that acknowledges writes,
 * each event naming an event of the other connection as its cause (found
 * or not: a missing one is refused).  Their rounds run on both worker
 * threads and their journal lines are formatted outside the graph lock:
 * after a SIGKILL the replayed journal must still have every
 * acknowledged event, each cause recorded before its effect (a cause
 * replayed after it would turn into a REMOTE one). */
#define RACE_N 4096
struct racer {
	char me, other;
	int fd, ok, bad;
	char why[128]; /* the first unexpected reply */
	bool created[RACE_N];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	static __thread char buf[1 << 16];
	for (int i = 0; i < RACE_N; i += 64) {
		char req[64 * 48 + 8];
		size_t n = 0;
		/* the other's event of a window before: being run meanwhile,
		 * or not yet (refused), or recorded */
		for (int k = i; k < i + 64; k++)
			n += k >= 64 ? (size_t)snprintf(req + n, sizeof req - n, "log r%c%d after=r%c%d\n",
							r->me, k, r->other, k - 64)
				     : (size_t)snprintf(req + n, sizeof req - n, "log r%c%d\n", r->me, k);
		n += (size_t)snprintf(req + n, sizeof req - n, "ping\n");
		if (th_send(r->fd, req, n) != 0 || th_recv_until(r->fd, buf, sizeof buf, "PONG ", 10000) < 0) {
			snprintf(r->why, sizeof r->why, "no reply");
			r->bad++;
			return NULL;
		}
		const char *l = buf;
		for (int k = i; k < i + 64; k++) {
			if (strncmp(l, "OK ", 3) == 0) {
				r->created[k] = true;
				r->ok++;
			} else if (strncmp(l, "ERR ENOENT ", 11) != 0) {
				if (!r->bad)
					snprintf(r->why, sizeof r->why, "%.120s", l);
				r->bad++;
			}
			l = strstr(l, "\r\n");
			if (!l)
				break;
			l += 2;
		}
	}
	return NULL;
}

static void concurrent_rounds_replay_in_order(void **state)
{
	(void)state;
	static struct racer ra = {.me = 'a', .other = 'b'}, rb = {.me = 'b', .other = 'a'};
	ra.fd = conn(2);
	rb.fd = conn(2);
	pthread_t ta, tb;
	assert_int_equal(pthread_create(&ta, NULL, race, &ra), 0);
	assert_int_equal(pthread_create(&tb, NULL, race, &rb), 0);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	close(ra.fd);
	close(rb.fd);
	if (ra.bad + rb.bad)
		fail_msg("unexpected replies: %s / %s", ra.why, rb.why);
	assert_true(ra.ok + rb.ok >= 128); /* the first windows name no cause */
	th_node_signal(&cl, 2, SIGKILL);
	assert_int_equal(th_node_start(&cl, 2), 0);
	int fd = conn(2);
	struct racer *rs[2] = {&ra, &rb};
	for (int w = 0; w < 2; w++) {
		int last = -1;
		for (int k = 0; k < RACE_N; k++) {
			if (!rs[w]->created[k])
				continue;
			char q[64];
			snprintf(q, sizeof q, "get r%c%d\n", rs[w]->me, k);
			const char *r = xchg(fd, q, "\r\n");
			if (strncmp(r, "EVENT ", 6) != 0)
				fail_msg("r%c%d acknowledged, lost after the restart: %s", rs[w]->me, k, r);
			last = k;
		}
		if (last < 0)
			continue;
		char q[64];
		snprintf(q, sizeof q, "why r%c%d 0\n", rs[w]->me, last);
		const char *r = xchg(fd, q, "END\r\n");
		if (strstr(r, "REMOTE "))
			fail_msg("a cause replayed after its effect: %s", r);
	}
	close(fd);
}

/* 16 connections pipelining windows of 64 logs at once on the node that
 * acknowledges writes (their rounds group-committed by whichever worker
 * writes, waiting for each other's writes), killed (SIGKILL) while they
 * are still sending: every event acknowledged before the kill is in the
 * journal, and no event is in it twice. */
#define BURST_CONNS 16
#define BURST_MAX 40000 /* events per connection at most */
struct burster {
	int t, fd;
	int acked; /* its events k<t>-0 .. k<t>-(acked - 1) were acknowledged */
	bool cut; /* its connection failed: it was still sending at the kill */
	bool bad; /* a reply other than OK */
	char why[128]; /* then the replies */
};
static atomic_int burst_total;
static atomic_bool burst_stop;

static void *burst(void *arg)
{
	struct burster *b = arg;
	static __thread char buf[1 << 16];
	while (!atomic_load(&burst_stop) && b->acked + 64 <= BURST_MAX) {
		char req[64 * 64 + 8];
		size_t n = 0;
		for (int k = b->acked; k < b->acked + 64; k++)
			n += (size_t)snprintf(req + n, sizeof req - n,
					      "log k%d-%d conv=abcdefghijklmnopqrstuvwxyz012345\n", b->t, k);
		n += (size_t)snprintf(req + n, sizeof req - n, "ping\n");
		/* (at the kill: EOF, a reset or a failed send, maybe after a
		 * part of the replies) */
		if (th_send(b->fd, req, n) != 0 || th_recv_until(b->fd, buf, sizeof buf, "PONG ", 10000) < 0 ||
		    !strstr(buf, "PONG ")) {
			b->cut = true;
			return NULL;
		}
		int ok = 0;
		for (const char *l = buf; strncmp(l, "OK k", 4) == 0 && ok < 64; ok++) {
			l = strstr(l, "\r\n");
			if (!l)
				break;
			l += 2;
		}
		if (ok != 64) { /* (in order: a window is acknowledged whole) */
			snprintf(b->why, sizeof b->why, "%.120s", buf);
			b->bad = true;
			return NULL;
		}
		b->acked += 64;
		atomic_fetch_add(&burst_total, 64);
	}
	return NULL;
}

/* Counts the E records of burst events (k<t>-<k>) in evdir[2]/name into
 * seen; returns how many were seen before (duplicates). */
static int count_burst_records(const char *name, unsigned char seen[][BURST_MAX])
{
	static char line[4096];
	char path[700];
	snprintf(path, sizeof path, "%s/%s", evdir[2], name);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int dup = 0;
	while (fgets(line, sizeof line, f)) {
		/* E <node> <seq> <lamport> <vc> <id> ... */
		char id[140];
		int t, k;
		if (line[0] != 'E' || sscanf(line, "E %*s %*s %*s %*s %139s", id) != 1 ||
		    sscanf(id, "k%d-%d", &t, &k) != 2 || t < 0 || t >= BURST_CONNS || k < 0 ||
		    k >= BURST_MAX)
			continue;
		if (seen[t][k]++)
			dup++;
	}
	fclose(f);
	return dup;
}

static void written_acks_survive_a_kill_mid_burst(void **state)
{
	(void)state;
	static struct burster bs[BURST_CONNS];
	pthread_t th[BURST_CONNS];
	atomic_store(&burst_total, 0);
	atomic_store(&burst_stop, false);
	for (int t = 0; t < BURST_CONNS; t++) {
		bs[t] = (struct burster){.t = t, .fd = conn(2)};
		assert_int_equal(pthread_create(&th[t], NULL, burst, &bs[t]), 0);
	}
	/* mid-burst: once 16,384 events are acknowledged (the connections
	 * go on sending until they fail) */
	int64_t deadline = th_now_ms() + 30000;
	while (atomic_load(&burst_total) < 16384 && th_now_ms() < deadline)
		usleep(1000);
	assert_true(atomic_load(&burst_total) >= 16384);
	th_node_signal(&cl, 2, SIGKILL);
	atomic_store(&burst_stop, true); /* (a connection not cut stops at its next window) */
	int cut = 0, acked = 0;
	for (int t = 0; t < BURST_CONNS; t++) {
		pthread_join(th[t], NULL);
		close(bs[t].fd);
		cut += bs[t].cut;
		acked += bs[t].acked;
		if (bs[t].bad)
			fail_msg("connection %d: unexpected replies: %s", t, bs[t].why);
	}
	assert_true(cut > 0); /* the kill did land mid-burst */
	assert_int_equal(th_node_start(&cl, 2), 0);

	/* count each burst event's E records in the journal (after the
	 * restart's repair of a torn tail), and in any rotated one */
	static unsigned char seen[BURST_CONNS][BURST_MAX];
	memset(seen, 0, sizeof seen);
	int dup = 0, files = 0;
	DIR *dir = opendir(evdir[2]);
	assert_non_null(dir);
	struct dirent *de;
	while ((de = readdir(dir)))
		if (strncmp(de->d_name, "eventnet.journal", 16) == 0) {
			dup += count_burst_records(de->d_name, seen);
			files++;
		}
	closedir(dir);
	assert_true(files >= 1);
	assert_int_equal(dup, 0);
	for (int t = 0; t < BURST_CONNS; t++)
		for (int k = 0; k < bs[t].acked; k++)
			if (seen[t][k] != 1)
				fail_msg("k%d-%d was acknowledged and is in the journal %d times", t, k,
					 seen[t][k]);
	print_message("%d events acknowledged before the kill, %d connections cut\n", acked, cut);
	/* and the node serves them */
	int fd = conn(2);
	for (int t = 0; t < BURST_CONNS; t++) {
		if (!bs[t].acked)
			continue;
		char q[64];
		snprintf(q, sizeof q, "get k%d-%d\n", t, bs[t].acked - 1);
		const char *r = xchg(fd, q, "\r\n");
		if (strncmp(r, "EVENT ", 6) != 0)
			fail_msg("k%d-%d acknowledged, lost after the restart: %s", t, bs[t].acked - 1, r);
	}
	close(fd);
}

/* The whole of a small file into buf (cap bytes, NUL-terminated). */
static void read_file(const char *path, char *buf, size_t cap)
{
	int f = open(path, O_RDONLY);
	assert_true(f >= 0);
	ssize_t n = read(f, buf, cap - 1);
	close(f);
	assert_true(n >= 0);
	buf[n] = '\0';
}

/* The text files of the chain f0..f(n-1) (partakers p, conversation
 * (c<i>), f5 and f3000 with "#(more)" appended), then extra. */
static void want_files(int n, const char *extra, char *v, size_t vcap, char *e, size_t ecap)
{
	size_t o = 0, q = 0;
	for (int i = 0; i < n; i++) {
		o += (size_t)snprintf(v + o, vcap - o, "f%d - p - (c%d)%s\n", i, i,
				      i == 5 || i == 3000 ? "#(more)" : "");
		if (i)
			q += (size_t)snprintf(e + q, ecap - q, "f%d,f%d\n", i - 1, i);
	}
	snprintf(v + o, vcap - o, "%s", extra);
}

static uint64_t stat_of(const char *stats, const char *name)
{
	char key[64];
	snprintf(key, sizeof key, "STAT %s ", name);
	const char *p = strstr(stats, key);
	assert_non_null(p);
	return strtoull(p + strlen(key), NULL, 10);
}

/* eventnet_max_events = 1K on a node of its own takes 3x that: every
 * event is answered, the oldest leave memory (STAT events and bytes stay
 * within the bound), the text files have every one in the exact format
 * (appended conversations too, one of an event evicted since), why on a
 * recent event says where its history is truncated, queries on an
 * evicted one say so (also through the CLI); a restart replays within
 * the bound (cutting nothing) and takes new events after it. */
static void bounded_graph_evicts_oldest(void **state)
{
	(void)state;
	static struct th_cluster c2;
	static char req[1 << 18], log[1 << 16], dir[600], vwant[1 << 18], ewant[1 << 17];
	char extra[600];
	snprintf(dir, sizeof dir, "%s/evbound", th_tmpdir());
	snprintf(extra, sizeof extra, "eventnet_dir = %s\neventnet_max_events = 1K\n", dir);
	assert_int_equal(th_cluster_start(&c2, 1, extra, ""), 0);
	int fd = th_connect(th_port(&c2, 0, 20000));
	assert_true(fd >= 0);
	for (int part = 0; part < 3; part++) {
		size_t n = 0;
		for (int i = part * 1024; i < (part + 1) * 1024; i++) {
			if (i)
				n += (size_t)snprintf(req + n, sizeof req - n,
						      "log f%d partakers=p after=f%d conv=(c%d)\n", i,
						      i - 1, i);
			else
				n += (size_t)snprintf(req + n, sizeof req - n,
						      "log f0 partakers=p conv=(c0)\n");
			if (i == 10) /* f5 gets a conversation before it leaves memory */
				n += (size_t)snprintf(req + n, sizeof req - n, "log f5 conv=(more)\n");
		}
		char last[32];
		snprintf(last, sizeof last, "OK f%d ", (part + 1) * 1024 - 1);
		const char *r = xchg(fd, req, last);
		int oks = 0;
		for (const char *p = r; (p = strstr(p, "OK f")); p++)
			oks++;
		/* every one answered OK (xchg read up to the last: nothing else) */
		assert_int_equal(oks, 1024 + (part == 0));
		assert_null(strstr(r, "ERR"));
	}
	xchg(fd, "log f3000 conv=(more)\n", "OK f3000 ");
	const char *st = xchg(fd, "stats\n", "END\r\n");
	assert_true(stat_of(st, "events") <= 1024);
	assert_true(stat_of(st, "evicted") >= 2048);
	assert_int_equal(stat_of(st, "events") + stat_of(st, "evicted"), 3072);
	assert_true(stat_of(st, "bytes") <= stat_of(st, "max_bytes"));
	assert_true(stat_of(st, "journal_rotations") >= 2);
	/* why on the newest: ancestors in memory, truncated at an evicted one */
	static char w[1 << 17];
	snprintf(w, sizeof w, "%s", xchg(fd, "why f3071\n", "END\r\n"));
	assert_non_null(strstr(w, "ANCESTORS "));
	const char *tr = strstr(w, "TRUNCATED f");
	assert_non_null(tr);
	uint64_t evicted = stat_of(xchg(fd, "stats\n", "END\r\n"), "evicted");
	char want[64];
	snprintf(want, sizeof want, "TRUNCATED f%d\r\n", (int)evicted - 1);
	assert_non_null(strstr(w, want));
	assert_non_null(strstr(xchg(fd, "get f0\n", "\r\n"), "ERR ENOENT"));
	assert_non_null(strstr(rbuf, "evicted"));
	assert_non_null(strstr(xchg(fd, "before f0 f3071\n", "\r\n"), "ERR ENOENT"));
	xchg(fd, "get f3071\n", "EVENT f3071 ");
	/* every event in the files, in the exact format */
	want_files(3072, "", vwant, sizeof vwant, ewant, sizeof ewant);
	file_becomes(dir, "EventNetVertices.txt", vwant);
	file_becomes(dir, "EventNetEdges.txt", ewant);
	close(fd);

	/* a restart: the newest within the bound, nothing cut, new events taken */
	th_node_signal(&c2, 0, SIGTERM);
	assert_int_equal(th_node_start(&c2, 0), 0);
	fd = th_connect(th_port(&c2, 0, 20000));
	assert_true(fd >= 0);
	st = xchg(fd, "stats\n", "END\r\n");
	assert_true(stat_of(st, "events") <= 1024);
	assert_true(stat_of(st, "events") > 512);
	assert_int_equal(stat_of(st, "events") + stat_of(st, "evicted"), 3072);
	assert_int_equal(stat_of(st, "repaired_bytes"), 0);
	/* the replay read at most two journals of 1024 events (and causes) */
	assert_true(stat_of(st, "replayed") <= 2 * 2048 + 2);
	assert_non_null(strstr(xchg(fd, "get f3000\n", "\r\n"), "(c3000)#(more)"));
	assert_non_null(strstr(xchg(fd, "get f0\n", "\r\n"), "ERR ENOENT"));
	size_t n = 0;
	for (int i = 3072; i < 3072 + 1500; i++)
		n += (size_t)snprintf(req + n, sizeof req - n,
				      "log f%d partakers=p after=f%d conv=(c%d)\n", i, i - 1, i);
	const char *r = xchg(fd, req, "OK f4571 ");
	assert_null(strstr(r, "ERR"));
	assert_true(stat_of(xchg(fd, "stats\n", "END\r\n"), "events") <= 1024);
	want_files(4572, "", vwant, sizeof vwant, ewant, sizeof ewant);
	file_becomes(dir, "EventNetEdges.txt", ewant);
	file_becomes(dir, "EventNetVertices.txt", vwant);
	close(fd);
	read_file(c2.nodes[0].log, log, sizeof log);
	assert_non_null(strstr(log, "eventnet_replay_evicted"));
	/* the CLI says where a history stops, and that a missing event may
	 * have been evicted (not "recorded nowhere") */
	static char cli_out[1 << 18];
	char virgo[600];
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	const char *why[] = {virgo, "-c", c2.client_conf, "eventnet", "why", "f4571", NULL};
	assert_int_equal(th_run(why, cli_out, sizeof cli_out, 20000), 0);
	assert_non_null(strstr(cli_out, "=> "));
	const char *stop = strstr(cli_out, "# the history stops at f");
	if (!stop)
		fail_msg("no truncation note in:\n%.2000s", cli_out + strlen(cli_out) - 400);
	assert_non_null(strstr(stop, "evicted from its node's memory"));
	const char *get[] = {virgo, "-c", c2.client_conf, "eventnet", "get", "f0", NULL};
	assert_int_equal(th_run(get, cli_out, sizeof cli_out, 20000), 1);
	assert_non_null(strstr(cli_out, "evicted"));
	assert_null(strstr(cli_out, "on any node"));
	/* a drawing of the whole graph says how many it leaves out */
	const char *dot[] = {virgo, "-c", c2.client_conf, "eventnet", "dot", NULL};
	assert_int_equal(th_run(dot, cli_out, sizeof cli_out, 20000), 0);
	assert_non_null(strstr(cli_out, "digraph"));
	fd = th_connect(th_port(&c2, 0, 20000));
	assert_true(fd >= 0);
	char note[160];
	snprintf(note, sizeof note, "# %llu older events evicted from the nodes' memory",
		 (unsigned long long)stat_of(xchg(fd, "stats\n", "END\r\n"), "evicted"));
	close(fd);
	if (!strstr(cli_out, note))
		fail_msg("no '%s' at the dot output's end:\n%s", note,
			 cli_out + (strlen(cli_out) > 400 ? strlen(cli_out) - 400 : 0));
	assert_int_equal(th_cluster_stop(&c2), 0);
	setenv("VIRGO_CLIENT_CONF", cl.client_conf, 1);
}

/* eventnet_max_bytes (its minimum, 16M) on a node of its own: three
 * times what it holds (~110,000 small events) are all taken, STAT bytes
 * stays within the bound all along, the newest are in memory. */
static void bytes_bound_evicts_oldest(void **state)
{
	(void)state;
	static struct th_cluster c3;
	static char req[1 << 21];
	char extra[600];
	snprintf(extra, sizeof extra,
		 "eventnet_dir = %s/evbytes\neventnet_max_bytes = 16M\neventnet_ack = queued\n",
		 th_tmpdir());
	assert_int_equal(th_cluster_start(&c3, 1, extra, ""), 0);
	int fd = th_connect(th_port(&c3, 0, 20000));
	assert_true(fd >= 0);
	const int batch = 20000, total = 360000;
	for (int from = 0; from < total; from += batch) {
		size_t n = 0;
		for (int i = from; i < from + batch; i++)
			n += (size_t)snprintf(req + n, sizeof req - n,
					      "log b%d partakers=node1,queue conv=(push,t-%d)\n", i, i);
		char last[32];
		snprintf(last, sizeof last, "OK b%d ", from + batch - 1);
		const char *r = xchg(fd, req, last);
		assert_null(strstr(r, "ERR"));
		const char *st = xchg(fd, "stats\n", "END\r\n");
		assert_true(stat_of(st, "bytes") <= stat_of(st, "max_bytes"));
		assert_int_equal(stat_of(st, "events") + stat_of(st, "evicted"), from + batch);
	}
	const char *st = xchg(fd, "stats\n", "END\r\n");
	assert_true(stat_of(st, "evicted") > total / 2);
	xchg(fd, "get b359999\n", "EVENT b359999 ");
	assert_non_null(strstr(xchg(fd, "get b0\n", "\r\n"), "ERR ENOENT"));
	close(fd);
	assert_int_equal(th_cluster_stop(&c3), 0);
	setenv("VIRGO_CLIENT_CONF", cl.client_conf, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_message_form_and_the_files),
		cmocka_unit_test(native_pipelined_and_queries),
		cmocka_unit_test(clocks_cross_nodes),
		cmocka_unit_test(clock_property_over_three_nodes),
		cmocka_unit_test(tail_follows_new_events),
		cmocka_unit_test(crash_with_torn_tail),
		cmocka_unit_test(concurrent_rounds_replay_in_order),
		cmocka_unit_test(written_acks_survive_a_kill_mid_burst),
		cmocka_unit_test(bounded_graph_evicts_oldest),
		cmocka_unit_test(bytes_bound_evicts_oldest),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
