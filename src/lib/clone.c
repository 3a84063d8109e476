/*
 * clone.c - virgo_clone / virgo_run: CPU pooling across the cluster, and
 * virgo_load (a node's load report).
 *
 * A call picks a node (explicit, or by the placement policy), sends
 * `clone <fn> <n> [<timeout_ms>]` or `run <n> [<timeout_ms>]` with the
 * argument bytes / argv block to its cpupool, and reads one reply.  Only
 * failures that prove the job never started move it to another node: the
 * node refused the connection (dead) or answered EBUSY (full).  A node
 * that dies or hangs mid-job is an error for the caller, never a silent
 * second run elsewhere; the back-off in vc_call_svc then keeps the
 * balancer away from it until it answers again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer.h"
#include "client.h"
#include "eventnet_int.h"

static const char *const policy_names[] = {
	[VIRGO_POLICY_RANDOM] = "random",
	[VIRGO_POLICY_ROUND_ROBIN] = "round_robin",
	[VIRGO_POLICY_LEAST_LOADED] = "least_loaded",
	[VIRGO_POLICY_POWER_OF_TWO] = "power_of_two",
	[VIRGO_POLICY_LEARNED] = "learned",
};

const char *virgo_policy_name(int policy)
{
	if (policy <= 0 || policy >= (int)(sizeof policy_names / sizeof policy_names[0]))
		return NULL;
	return policy_names[policy];
}

int virgo_policy_parse(const char *name)
{
	for (int i = 1; i < (int)(sizeof policy_names / sizeof policy_names[0]); i++)
		if (strcmp(policy_names[i], name) == 0)
			return i;
	return -EINVAL;
}

static bool never_started(int rc)
{
	return rc == -ECONNREFUSED || rc == -EHOSTUNREACH || rc == -ENETUNREACH ||
	       rc == -EBUSY || rc == -EADDRNOTAVAIL || rc == -EPROTO;
}

/* Sends one cpupool request to a node chosen per opts; rep holds the
 * reply.  key names the work for the learned policy. */
static int cpu_call(struct vc_client *c, const struct virgo_call_opts *o, const char *key,
		    const char *hdr, size_t hl, const void *payload, size_t plen,
		    struct vc_reply *rep, unsigned *ran_on)
{
	memset(rep, 0, sizeof *rep);
	int timeout = o && o->timeout_ms > 0 ? o->timeout_ms + 2000 : c->cfg.clone_timeout_ms;
	enum vc_policy pol = o && o->policy > 0 ? (enum vc_policy)o->policy : c->cfg.clone_policy;
	if (o && o->policy > VIRGO_POLICY_LEARNED)
		return -EINVAL;
	uint64_t tried[VC_MAX_NODES / 64] = {0};
	int last = -VIRGO_ENONODE;
	for (;;) {
		int idx;
		if (o && o->node_id) {
			idx = vc_node_index(c, o->node_id);
			if (idx < 0) {
				char t[400];
				snprintf(t, sizeof t, "no node %u in the client config (%s)", o->node_id,
					 c->cfg.source[0] ? c->cfg.source : "built-in: nodes 1..3");
				vc_err_set(t);
				return -VIRGO_ENONODE;
			}
		} else {
			idx = lb_pick_cpu(c, pol, key, tried);
			if (idx < 0)
				return last;
		}
		tried[idx / 64] |= UINT64_C(1) << (idx % 64);
		int rc = vc_node_check_id(c, idx, VC_SVC_CPUPOOL, hdr);
		if (rc) { /* another node than configured, or unreachable */
			if (!never_started(rc) || (o && o->node_id))
				return rc;
			last = rc;
			continue;
		}
		atomic_fetch_add(&c->inflight[idx], 1);
		int64_t t0 = vc_now_ms();
		rc = vc_call_svc_t(c, idx, VC_SVC_CPUPOOL, hdr, hl, payload, plen, timeout,
				       0 /* a job must never run twice */, rep);
		double ms = (double)(vc_now_ms() - t0);
		atomic_fetch_sub(&c->inflight[idx], 1);
		if (rc == 0) {
			lb_learn(c, key, idx, ms);
			if (ran_on)
				*ran_on = c->cfg.nodes[idx].id;
			return 0;
		}
		free(rep->data);
		memset(rep, 0, sizeof *rep);
		if (!never_started(rc) || (o && o->node_id))
			return rc;
		last = rc;
	}
}

static int clone_ex(const char *fn, const void *arg, size_t arg_len,
		    const struct virgo_call_opts *opts, void **out, size_t *out_len, unsigned *ran_on)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	*out = NULL;
	*out_len = 0;
	size_t fl = fn ? strlen(fn) : 0;
	if (fl == 0 || fl > 255 || strpbrk(fn, " \t\r\n"))
		return -EINVAL;
	char hdr[320 + 2100]; /* room for a trace context */
	int hl = opts && opts->timeout_ms > 0
			 ? snprintf(hdr, sizeof hdr, "clone %s %zu %d", fn, arg_len, opts->timeout_ms)
			 : snprintf(hdr, sizeof hdr, "clone %s %zu", fn, arg_len);
	struct vc_reply rep;
	struct ven_trace *tr = ven_tracing() ? malloc(sizeof *tr) : NULL; /* VIRGO_TRACE=1 */
	char tconv[320];
	unsigned on = 0;
	if (tr) {
		ven_trace_begin(tr);
		snprintf(tconv, sizeof tconv, "(clone,%s,%zu bytes)", fn, arg_len);
		ven_trace_step(tr, -1, "submit", "client", tconv);
		hl += (int)ven_trace_context(tr, "run", hdr + hl, sizeof hdr - (size_t)hl - 2);
	}
	hdr[hl++] = '\r';
	hdr[hl++] = '\n';
	int rc = cpu_call(c, opts, fn, hdr, (size_t)hl, arg ? arg : "", arg_len, &rep, &on);
	if (ran_on)
		*ran_on = on;
	if (rc == 0 && strncmp(rep.line, "VALUE ", 6) != 0)
		rc = -VIRGO_EBADREPLY;
	if (tr) {
		char who[32];
		snprintf(who, sizeof who, "node%u", on);
		snprintf(tconv, sizeof tconv, "(run,%s,%s)", fn, rc ? "failed" : "ok");
		/* a node tracing itself recorded the run step (trace=) */
		if (on && ven_trace_adopt(tr, vc_node_index(c, on), "run") != 0)
			ven_trace_step(tr, vc_node_index(c, on), "run", who, tconv);
		snprintf(tconv, sizeof tconv, "(reply,%d,%zu bytes)", rc, rc ? (size_t)0 : rep.data_len);
		ven_trace_step(tr, -1, "reply", "client", tconv);
		free(tr);
	}
	if (rc) {
		free(rep.data);
		return rc;
	}
	*out = rep.data;
	*out_len = rep.data_len;
	if (*out_len == 0) {
		free(rep.data);
		*out = NULL;
	}
	return 0;
}

int virgo_clone_ex(const char *fn, const void *arg, size_t arg_len,
		   const struct virgo_call_opts *opts, void **out, size_t *out_len, unsigned *ran_on)
{
	return vc_err_done("clone", clone_ex(fn, arg, arg_len, opts, out, out_len, ran_on));
}

int virgo_clone(const char *fn, const void *arg, size_t arg_len, void **out, size_t *out_len)
{
	return virgo_clone_ex(fn, arg, arg_len, NULL, out, out_len, NULL);
}

static int run_ex(const char *const argv[], const struct virgo_call_opts *opts,
		  struct virgo_run_result *res)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (!c)
		return err;
	memset(res, 0, sizeof *res);
	if (!argv || !argv[0] || !argv[0][0])
		return -EINVAL;
	size_t total = 0;
	int argc = 0;
	for (; argv[argc]; argc++)
		total += strlen(argv[argc]) + 1;
	if (argc > 256)
		return -E2BIG;
	char *blk = malloc(total);
	if (!blk)
		return -ENOMEM;
	size_t o = 0;
	for (int i = 0; i < argc; i++) {
		size_t l = strlen(argv[i]) + 1;
		memcpy(blk + o, argv[i], l);
		o += l;
	}
	char hdr[64];
	int hl = opts && opts->timeout_ms > 0
			 ? snprintf(hdr, sizeof hdr, "run %zu %d\r\n", total, opts->timeout_ms)
			 : snprintf(hdr, sizeof hdr, "run %zu\r\n", total);
	struct vc_reply rep;
	int rc = cpu_call(c, opts, argv[0], hdr, (size_t)hl, blk, total, &rep, &res->node_id);
	free(blk);
	if (rc)
		return rc;
	char how[16];
	int code, trunc;
	size_t n, outn;
	if (sscanf(rep.line, "VALUE %zu %15s %d %zu %d", &n, how, &code, &outn, &trunc) != 5 ||
	    outn > rep.data_len || (strcmp(how, "exit") != 0 && strcmp(how, "signal") != 0)) {
		free(rep.data);
		return -VIRGO_EBADREPLY;
	}
	res->signaled = how[0] == 's';
	res->term_signal = res->signaled ? code : 0;
	res->exit_code = res->signaled ? 128 + code : code;
	res->truncated = trunc != 0;
	res->out_len = outn;
	res->err_len = rep.data_len - outn;
	if (outn) {
		res->out = malloc(outn);
		if (res->out)
			memcpy(res->out, rep.data, outn);
	}
	if (res->err_len) {
		res->err = malloc(res->err_len);
		if (res->err)
			memcpy(res->err, rep.data + outn, res->err_len);
	}
	free(rep.data);
	if ((outn && !res->out) || (res->err_len && !res->err)) {
		virgo_run_result_free(res);
		return -ENOMEM;
	}
	return 0;
}

int virgo_run_ex(const char *const argv[], const struct virgo_call_opts *opts,
		 struct virgo_run_result *res)
{
	return vc_err_done("run", run_ex(argv, opts, res));
}

int virgo_run(const char *const argv[], struct virgo_run_result *res)
{
	return virgo_run_ex(argv, NULL, res);
}

void virgo_run_result_free(struct virgo_run_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
	res->out_len = res->err_len = 0;
}

int virgo_load(int idx, struct virgo_load *load)
{
	struct vc_client *c;
	int err = vc_get_node(idx, &c);
	if (err)
		return vc_err_done("load", err);
	return vc_err_done("load", lb_load_fetch(c, idx, load));
}
