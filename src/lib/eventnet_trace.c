/*
 * eventnet_trace.c - libvirgo tracing its own calls into EventNet (off by
 * default: VIRGO_TRACE=1 in the environment, as the notes guarded
 * virgo_eventnet_log calls because they cost network round trips, §994).
 *
 * A traced virgo_clone records three events, each after the previous one
 * and carrying its clock: clone-<pid>-<n>-submit on this process's home
 * node, clone-<pid>-<n>-run on the node that ran the job, and
 * clone-<pid>-<n>-reply back on the home node.  So `virgo eventnet why
 * clone-<pid>-<n>-reply` shows the request's path through the cluster in
 * causal order whatever the machines' clocks say.  The clone request
 * carries the submit event's clock (trace=<context>): a node with
 * eventnet_trace = yes records the run step itself when the job has run
 * (the library then only reads that event's clock for the reply step);
 * on other nodes the library logs it.  Steps are logged
 * synchronously (in order, one round trip each) and a failure to log
 * never fails the traced call.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "eventnet_int.h"

bool ven_tracing(void)
{
	const char *t = getenv("VIRGO_TRACE");
	return t && t[0] == '1';
}

static _Atomic unsigned trace_seq;

void ven_trace_begin(struct ven_trace *t)
{
	memset(t, 0, sizeof *t);
	snprintf(t->base, sizeof t->base, "clone-%d-%u", (int)getpid(),
		 atomic_fetch_add(&trace_seq, 1) + 1);
	t->home = -1;
}

/* Sends one request line to node idx and takes the event in the reply
 * ("<word> <id> <node> <seq> <lamport> <vc> ...") as the previous step.
 * 0, or -ENOENT (another reply) / -ENOMEM. */
static int trace_call(struct ven_trace *t, int idx, const char *line, const char *word)
{
	struct ven_conn *k = malloc(sizeof *k);
	if (!k)
		return -ENOMEM;
	char *rep;
	size_t len, wl = strlen(word);
	int rc = -ENOENT;
	if (ven_open(idx, 5000, k) == 0 && ven_send(k, line, strlen(line)) == 0 &&
	    ven_readline(k, &rep, &len) == 0 && strncmp(rep, word, wl) == 0 && rep[wl] == ' ') {
		char id[160], vc[sizeof t->clock];
		unsigned node;
		unsigned long long seq, lam;
		if (sscanf(rep + wl, " %159s %u %llu %llu %1700s", id, &node, &seq, &lam, vc) == 5) {
			snprintf(t->prev, sizeof t->prev, "%s", id);
			snprintf(t->clock, sizeof t->clock, "%s", vc);
			t->lamport = lam;
			rc = 0;
		}
	}
	ven_close(k);
	free(k);
	return rc;
}

/* Logs <base>-<step> on node idx (-1: the home node) after the previous
 * step, with its clock; remembers this step's clock for the next. */
void ven_trace_step(struct ven_trace *t, int idx, const char *step, const char *partakers,
		    const char *conv)
{
	int n = virgo_node_count();
	if (n <= 0)
		return;
	if (idx < 0)
		idx = (int)(getpid() % n);
	char line[1024];
	int l = snprintf(line, sizeof line, "log %s-%s partakers=%s", t->base, step, partakers);
	if (t->prev[0])
		l += snprintf(line + l, sizeof line - (size_t)l, " after=%s clock=%s lamport=%llu",
			      t->prev, t->clock, (unsigned long long)t->lamport);
	snprintf(line + l, sizeof line - (size_t)l, " conv=%s\n", conv);
	trace_call(t, idx, line, "OK"); /* OK <id> <node> <seq> <lamport> <vc> */
}

size_t ven_trace_context(const struct ven_trace *t, const char *step, char *buf, size_t cap)
{
	if (!t->prev[0])
		return 0;
	int n = snprintf(buf, cap, " trace=%s-%s@%s@%llu@%s", t->base, step, t->prev,
			 (unsigned long long)t->lamport, t->clock);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

int ven_trace_adopt(struct ven_trace *t, int idx, const char *step)
{
	char line[200];
	snprintf(line, sizeof line, "get %s-%s\n", t->base, step);
	return trace_call(t, idx, line, "EVENT"); /* EVENT <id> <node> <seq> <lamport> <vc> ... */
}
