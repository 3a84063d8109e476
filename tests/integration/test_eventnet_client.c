/*
 * test_eventnet_client.c - libvirgo's EventNet calls and the virgo
 * eventnet CLI against three real nodes: batched virgo_eventnet_log with
 * flush, causes on other nodes (the library carries their clocks), errors
 * reported by flush (a cycle), the cluster-wide why / before / dump, the
 * tail callback, and the exports: DOT drawn by graphviz's `dot -Tsvg`,
 * JSON read by python3, the ShiViz log's shape, the CLI's svg; and a
 * traced virgo_clone (VIRGO_TRACE=1) across two nodes, recorded by the
 * node that ran it when it traces itself (eventnet_trace = yes on nodes 1
 * and 2, not on node 3: nothing is recorded there); and a traced queue
 * push and cloudfs open, with the events they cause.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

static struct th_cluster cl;
static char tmp[300];

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof tmp, "%s", th_tmpdir());
	static char extra[3][400];
	const char *ne[3];
	for (int i = 0; i < 3; i++) {
		snprintf(extra[i], sizeof extra[i], "eventnet_dir = %s/ev%d\n%s", tmp, i + 1,
			 i < 2 ? "eventnet_trace = yes\n" : "");
		ne[i] = extra[i];
	}
	if (th_cluster_start_nodes(&cl, 3, "", ne, "") != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* Logs id on node i over the raw protocol. */
static void raw_log(int i, const char *line)
{
	int fd = th_connect(th_port(&cl, i, 20000));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, line, strlen(line)), 0);
	char buf[512];
	assert_true(th_recv_until(fd, buf, sizeof buf, "\r\n", 5000) > 0);
	if (strncmp(buf, "OK ", 3) != 0)
		fail_msg("%s -> %s", line, buf);
	close(fd);
}

static void batched_log_and_flush(void **state)
{
	(void)state;
	enum { N = 5000 };
	char id[32], prev[32] = "";
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "b%d", i);
		assert_int_equal(virgo_eventnet_log(id, "svc,db", "(query,ok)", i ? prev : NULL), 0);
		memcpy(prev, id, sizeof prev);
	}
	assert_int_equal(virgo_eventnet_flush(20000), 0);
	struct virgo_event *e;
	assert_int_equal(virgo_eventnet_get("b4999", &e), 0);
	assert_string_equal(e->causes, "b4998");
	assert_string_equal(e->partakers, "svc,db");
	assert_string_equal(e->conv, "(query,ok)");
	uint64_t seq = e->seq;
	virgo_events_free(e, 1);
	struct virgo_event *evs;
	size_t n;
	assert_int_equal(virgo_eventnet_why("b100", &evs, &n), 0);
	assert_int_equal(n, 101);
	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof id, "b%zu", i);
		assert_string_equal(evs[i].id, id);
	}
	virgo_events_free(evs, n);
	assert_true(seq >= N);
	/* bad arguments never reach a node */
	assert_int_equal(virgo_eventnet_log("a b", NULL, NULL, NULL), -EINVAL);
	assert_int_equal(virgo_eventnet_log("x", "p#q", NULL, NULL), -EINVAL);
	assert_int_equal(virgo_eventnet_log("x", NULL, "bad\nconv", NULL), -EINVAL);
	assert_int_equal(virgo_eventnet_log("x", NULL, NULL, "a,,b"), -EINVAL);
}

static void causes_on_other_nodes(void **state)
{
	(void)state;
	/* this process logs to its home node (pid modulo the node count);
	 * the causes and n3 go to the two others, so both causes are remote
	 * and n3 is concurrent with what the home node records */
	int home = (int)(getpid() % 3);
	raw_log((home + 1) % 3, "log n1 partakers=node1 conv=(clone,f)\n");
	raw_log((home + 2) % 3, "log n2 partakers=node2\n");
	raw_log((home + 1) % 3, "log n3\n");
	assert_int_equal(virgo_eventnet_log("joined", NULL, "(reply)", "n1,n2"), 0);
	assert_int_equal(virgo_eventnet_flush(10000), 0);
	assert_int_equal(virgo_eventnet_before("n1", "joined"), VIRGO_EV_BEFORE);
	assert_int_equal(virgo_eventnet_before("joined", "n2"), VIRGO_EV_AFTER);
	assert_int_equal(virgo_eventnet_before("n3", "joined"), VIRGO_EV_CONCURRENT);
	assert_int_equal(virgo_eventnet_before("n1", "n1"), VIRGO_EV_EQUAL);
	assert_int_equal(virgo_eventnet_before("n1", "nowhere"), -ENOENT);
	struct virgo_event *evs;
	size_t n;
	assert_int_equal(virgo_eventnet_why("joined", &evs, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(evs[2].id, "joined");
	assert_true(evs[0].lamport < evs[2].lamport && evs[1].lamport < evs[2].lamport);
	virgo_events_free(evs, n);
	/* a cause recorded nowhere: flush reports it */
	assert_int_equal(virgo_eventnet_log("orphan", NULL, NULL, "never-logged"), 0);
	assert_int_equal(virgo_eventnet_flush(10000), -ENOENT);
	/* a cycle: the node refuses, flush says why */
	assert_int_equal(virgo_eventnet_log("cyc", NULL, NULL, "cyc"), 0);
	int rc = virgo_eventnet_flush(10000);
	assert_int_equal(rc, -ELOOP);
	assert_non_null(strstr(virgo_last_error(), "cause itself"));
	assert_int_equal(virgo_eventnet_flush(1000), 0); /* reported once */
}

struct tail_arg {
	int seen;
};

static int tail_cb(const struct virgo_event *ev, void *arg)
{
	struct tail_arg *t = arg;
	if (strncmp(ev->id, "tl", 2) == 0)
		t->seen++;
	return strcmp(ev->id, "tl-end") == 0 ? 1 : 0;
}

static void *tail_thread(void *arg)
{
	return (void *)(intptr_t)virgo_eventnet_tail(tail_cb, arg);
}

static void tail_every_node(void **state)
{
	(void)state;
	struct tail_arg t = {0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, tail_thread, &t), 0);
	/* the subscriptions are in place once a node reports a subscriber */
	for (int i = 0; i < 3; i++) {
		int64_t deadline = th_now_ms() + 5000;
		for (;;) {
			int fd = th_connect(th_port(&cl, i, 20000));
			char buf[4096];
			assert_int_equal(th_send(fd, "stats\n", 6), 0);
			assert_true(th_recv_until(fd, buf, sizeof buf, "END\r\n", 5000) > 0);
			close(fd);
			if (strstr(buf, "STAT tail_subscribers 1\r\n"))
				break;
			assert_true(th_now_ms() < deadline);
			usleep(5000);
		}
	}
	raw_log(0, "log tl1\n");
	raw_log(1, "log tl2\n");
	raw_log(2, "log tl-end\n");
	void *ret;
	assert_int_equal(pthread_join(th, &ret), 0);
	assert_int_equal((intptr_t)ret, 0);
	assert_int_equal(t.seen, 3);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void exports(void **state)
{
	(void)state;
	/* names DOT and JSON must escape */
	raw_log(0, "log q\"uote partakers=a\\b conv=say \"hi\" \\o/\n");
	assert_int_equal(virgo_eventnet_log("after-quote", NULL, NULL, "q\"uote"), 0);
	assert_int_equal(virgo_eventnet_flush(10000), 0);
	struct virgo_event *evs;
	size_t n;
	assert_int_equal(virgo_eventnet_dump(&evs, &n), 0);
	assert_true(n > 5000);
	for (size_t i = 1; i < n; i++)
		assert_true(evs[i - 1].lamport <= evs[i].lamport);
	char *text;
	size_t len;
	char path[400], out[4096];

	/* graphviz lays out thousands of nodes slowly: draw a part, with the
	 * quoted names (a shallow copy: the strings stay evs') */
	struct virgo_event part[300];
	size_t np = 0;
	for (size_t i = 0; i < n && np < 300; i++)
		if (i < 250 || strchr(evs[i].id, '"') || strcmp(evs[i].id, "after-quote") == 0)
			part[np++] = evs[i];
	assert_int_equal(virgo_eventnet_export(part, np, VIRGO_EV_DOT, &text, &len), 0);
	assert_non_null(strstr(text, "\"q\\\"uote\" -> \"after-quote\";"));
	snprintf(path, sizeof path, "%s/g.dot", tmp);
	write_file(path, text, len);
	free(text);
	if (access("/usr/bin/dot", X_OK) == 0) {
		const char *argv[] = {"/usr/bin/dot", "-Tsvg", "-o", "/dev/null", path, NULL};
		int rc = th_run(argv, out, sizeof out, 60000);
		if (rc != 0)
			fail_msg("dot -Tsvg: %d %s", rc, out);
	}

	assert_int_equal(virgo_eventnet_export(evs, n, VIRGO_EV_JSON, &text, &len), 0);
	snprintf(path, sizeof path, "%s/g.json", tmp);
	write_file(path, text, len);
	free(text);
	if (access("/usr/bin/python3", X_OK) == 0) {
		char prog[600];
		snprintf(prog, sizeof prog,
			 "import json; d = json.load(open('%s')); "
			 "e = [x for x in d['events'] if x['id'] == 'q\"uote'][0]; "
			 "assert e['conversations'] == 'say \"hi\" \\\\o/', e; "
			 "assert e['partakers'] == ['a\\\\b']; print(len(d['events']))",
			 path);
		const char *argv[] = {"/usr/bin/python3", "-c", prog, NULL};
		int rc = th_run(argv, out, sizeof out, 30000);
		if (rc != 0)
			fail_msg("python3 json: %d %s", rc, out);
	}

	assert_int_equal(virgo_eventnet_export(evs, n, VIRGO_EV_SHIVIZ, &text, &len), 0);
	assert_memory_equal(text, "(?<host>\\S*) (?<clock>{.*})\\n(?<event>.*)\n\n", 41);
	assert_non_null(strstr(text, "\nnode1 {\"node1\":1}\n"));
	free(text);
	virgo_events_free(evs, n);

	/* the CLI's svg, through graphviz */
	char virgo[600];
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	if (access("/usr/bin/dot", X_OK) == 0 && access(virgo, X_OK) == 0) {
		static char big[1 << 16];
		const char *argv[] = {virgo, "eventnet", "svg", "joined", NULL};
		int rc = th_run(argv, big, sizeof big, 30000);
		assert_int_equal(rc, 0);
		assert_non_null(strstr(big, "<svg"));
		assert_non_null(strstr(big, "joined"));
		const char *why[] = {virgo, "eventnet", "why", "joined", NULL};
		assert_int_equal(th_run(why, big, sizeof big, 30000), 0);
		assert_non_null(strstr(big, "=> "));
		const char *bef[] = {virgo, "eventnet", "before", "n3", "joined", NULL};
		assert_int_equal(th_run(bef, big, sizeof big, 30000), 0);
		assert_string_equal(big, "n3 and joined are concurrent\n");
	} else {
		skip();
	}
}

/* One request to node i's port base + offset; the reply up to needle. */
static void raw_call(int i, int base, const char *line, char *buf, size_t cap, const char *needle)
{
	int fd = th_connect(th_port(&cl, i, base));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, line, strlen(line)), 0);
	assert_true(th_recv_until(fd, buf, cap, needle, 5000) > 0);
	close(fd);
}

/* A STAT value of node i's eventnet port. */
static long long stat_of(int i, const char *name)
{
	char buf[4096], key[64];
	raw_call(i, 20000, "stats\r\n", buf, sizeof buf, "END\r\n");
	snprintf(key, sizeof key, "STAT %s ", name);
	const char *p = strstr(buf, key);
	assert_non_null(p);
	return atoll(p + strlen(key));
}

/* VIRGO_TRACE=1 clone of fn on node index t: checks the chain submit
 * (home) -> run (node t) -> reply (home), each after the previous one by
 * its clock; run's partakers say who recorded it. */
static void traced_clone_on(int t, int nth, const char *run_partakers)
{
	int home = (int)(getpid() % 3);
	struct virgo_call_opts o = {.node_id = cl.nodes[t].id};
	void *out = NULL;
	size_t n = 0;
	unsigned ran = 0;
	setenv("VIRGO_TRACE", "1", 1);
	int rc = virgo_clone_ex("virgo_cloud_test", "traced", 6, &o, &out, &n, &ran);
	unsetenv("VIRGO_TRACE");
	assert_int_equal(rc, 0);
	free(out);
	assert_int_equal(ran, o.node_id);
	char id[3][64];
	const char *step[3] = {"submit", "run", "reply"};
	for (int i = 0; i < 3; i++)
		snprintf(id[i], sizeof id[i], "clone-%d-%d-%s", (int)getpid(), nth, step[i]);
	struct virgo_event *evs;
	size_t k;
	assert_int_equal(virgo_eventnet_why(id[2], &evs, &k), 0);
	assert_int_equal(k, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(evs[i].id, id[i]);
	assert_int_equal(evs[0].node, cl.nodes[home].id);
	assert_int_equal(evs[1].node, o.node_id);
	assert_int_equal(evs[2].node, cl.nodes[home].id);
	assert_string_equal(evs[1].partakers, run_partakers);
	assert_true(evs[0].lamport < evs[1].lamport && evs[1].lamport < evs[2].lamport);
	assert_int_equal(virgo_eventnet_compare(&evs[0], &evs[1]), VIRGO_EV_BEFORE);
	assert_int_equal(virgo_eventnet_compare(&evs[1], &evs[2]), VIRGO_EV_BEFORE);
	virgo_events_free(evs, k);
}

/* A virgo_clone on another node than this process's home node, which
 * traces itself: the node records the run step (partakers
 * node<id>,cpupool) after the client's submit, with its clock.  Then one
 * on node 3, which does not: the library logs the run step there itself
 * and node 3 records nothing of its own. */
static void traced_clone_across_nodes(void **state)
{
	(void)state;
	int home = (int)(getpid() % 3);
	int t = home == 0 ? 1 : 0; /* traces itself, not home */
	long long before = stat_of(t, "traced");
	char who[48];
	snprintf(who, sizeof who, "node%u,cpupool", cl.nodes[t].id);
	traced_clone_on(t, 1, who);
	assert_int_equal(stat_of(t, "traced"), before + 1);

	snprintf(who, sizeof who, "node%u", cl.nodes[2].id);
	traced_clone_on(2, 2, who);
	assert_int_equal(stat_of(2, "traced"), 0);

	/* a mempool malloc is a node event where tracing is on, only there */
	for (int i = 0; i < 3; i += 2) {
		long long was = stat_of(i, "traced");
		char buf[128];
		raw_call(i, 30000, "malloc 16\r\n", buf, sizeof buf, "\r\n");
		assert_int_equal(strncmp(buf, "OK ", 3), 0);
		assert_int_equal(stat_of(i, "traced"), i == 0 ? was + 1 : 0);
	}
}

/* The id of the first EVENT line of node i's events from cursor on whose
 * id starts with prefix, into id (cap bytes); fails when none. */
static void find_event(int i, long long cursor, const char *prefix, char *id, size_t cap)
{
	static char buf[1 << 16];
	char req[64];
	snprintf(req, sizeof req, "dump %lld 1000\r\n", cursor);
	raw_call(i, 20000, req, buf, sizeof buf, "END\r\n");
	char needle[96];
	snprintf(needle, sizeof needle, "EVENT %s", prefix);
	const char *p = strstr(buf, needle);
	if (!p)
		fail_msg("node %d: no event %s* after %lld in:\n%s", i, prefix, cursor, buf);
	p += 6;
	size_t n = strcspn(p, " ");
	assert_true(n < cap);
	memcpy(id, p, n);
	id[n] = '\0';
}

/* With eventnet_trace = yes, a queue push and a cloudfs open are node
 * events: recorded by the node that served them (partakers
 * node<id>,<service>, conversation (push,) / (open,)), after what that
 * node recorded before (clocks), with no causes of their own (they carry
 * no client context, unlike a traced clone); an event logged after them
 * has them as its causes and `why` lists them in causal order before it.  A node
 * that does not trace itself records nothing. */
static void traced_push_and_open(void **state)
{
	(void)state;
	int i = 1; /* traces itself */
	unsigned node = cl.nodes[i].id;
	char buf[512], line[256];
	long long cursor = stat_of(i, "events"), traced = stat_of(i, "traced");
	snprintf(line, sizeof line, "log tp-before-%d conv=(start)\n", (int)getpid());
	raw_log(i, line);
	raw_call(i, 60000, "push evtrace 5\r\nhello\r\n", buf, sizeof buf, "\r\n");
	assert_int_equal(strncmp(buf, "OK", 2), 0);
	raw_call(i, 50000, "open /evtrace.txt rwc\r\n", buf, sizeof buf, "\r\n");
	assert_int_equal(strncmp(buf, "OK ", 3), 0);
	assert_int_equal(stat_of(i, "traced"), traced + 2);

	char push[160], open[160], pre[64];
	snprintf(pre, sizeof pre, "queue-push-n%u-", node);
	find_event(i, cursor, pre, push, sizeof push);
	snprintf(pre, sizeof pre, "cloudfs-open-n%u-", node);
	find_event(i, cursor, pre, open, sizeof open);

	char who[48];
	struct virgo_event *b, *p, *o;
	snprintf(line, sizeof line, "tp-before-%d", (int)getpid());
	assert_int_equal(virgo_eventnet_get(line, &b), 0);
	assert_int_equal(virgo_eventnet_get(push, &p), 0);
	assert_int_equal(virgo_eventnet_get(open, &o), 0);
	snprintf(who, sizeof who, "node%u,queue", node);
	assert_string_equal(p->partakers, who);
	assert_string_equal(p->conv, "(push,)");
	assert_string_equal(p->causes, "");
	snprintf(who, sizeof who, "node%u,cloudfs", node);
	assert_string_equal(o->partakers, who);
	assert_string_equal(o->conv, "(open,)");
	assert_string_equal(o->causes, "");
	assert_int_equal(p->node, node);
	assert_int_equal(o->node, node);
	/* the node's order: before -> push -> open, by both clocks */
	assert_int_equal(virgo_eventnet_compare(b, p), VIRGO_EV_BEFORE);
	assert_int_equal(virgo_eventnet_compare(p, o), VIRGO_EV_BEFORE);
	assert_true(b->lamport < p->lamport && p->lamport < o->lamport);

	/* an event caused by both: its causes, and why walks to them */
	char after[400];
	snprintf(after, sizeof after, "log tp-after-%d after=%s,%s conv=(done)\n", (int)getpid(),
		 push, open);
	raw_log(i, after);
	snprintf(line, sizeof line, "tp-after-%d", (int)getpid());
	struct virgo_event *a, *evs;
	size_t k;
	assert_int_equal(virgo_eventnet_get(line, &a), 0);
	snprintf(after, sizeof after, "%s,%s", push, open);
	assert_string_equal(a->causes, after);
	assert_int_equal(virgo_eventnet_compare(o, a), VIRGO_EV_BEFORE);
	assert_int_equal(virgo_eventnet_why(line, &evs, &k), 0);
	assert_int_equal(k, 3); /* its ancestors, then itself */
	assert_string_equal(evs[0].id, push);
	assert_string_equal(evs[1].id, open);
	assert_string_equal(evs[2].id, line);
	virgo_events_free(evs, k);
	virgo_events_free(a, 1);
	virgo_events_free(b, 1);
	virgo_events_free(p, 1);
	virgo_events_free(o, 1);

	/* node 3 does not trace itself: a push and an open record nothing */
	raw_call(2, 60000, "push evtrace 5\r\nhello\r\n", buf, sizeof buf, "\r\n");
	assert_int_equal(strncmp(buf, "OK", 2), 0);
	raw_call(2, 50000, "open /evtrace.txt rwc\r\n", buf, sizeof buf, "\r\n");
	assert_int_equal(strncmp(buf, "OK ", 3), 0);
	assert_int_equal(stat_of(2, "traced"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(batched_log_and_flush),
		cmocka_unit_test(causes_on_other_nodes),
		cmocka_unit_test(tail_every_node),
		cmocka_unit_test(exports),
		cmocka_unit_test(traced_clone_across_nodes),
		cmocka_unit_test(traced_push_and_open),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
