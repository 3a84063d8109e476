/*
 * cpupool.c - the CPU pooling service (port 10000, notes §888-§890, §937).
 *
 * Glue between the pure parser (cpupool_proto.c), the bounded worker pool
 * (cpupool_pool.c) and the three kinds of work: built-ins
 * (cpupool_builtin.c), plugin functions (cpupool_plugin.c) and allow-listed
 * executables (cpupool_exec.c).  A request becomes a job on the pool, never
 * work on the event loop; the connection waits (VSVC_WAIT) with a ticket
 * that the pool thread posts back (vconn_async.c), and the reply is written
 * on the connection's own loop.  One job per connection at a time keeps
 * pipelined replies in order.  A native client that disconnects cancels
 * its job (the child is killed, the plugin's cancel flag set); the notes'
 * one-shot call syntax tolerates a half-close and still gets its reply,
 * but a half-close cannot be told from a client that left for good, so
 * each client address may have only CP_DETACHED_PER_CLIENT such jobs
 * running after its EOF (fire-and-forget calls cannot pin every worker).
 * Plugin functions cannot be killed, so a loop-side timer answers
 * ETIMEDOUT at the deadline and abandons the job (its thread stays busy
 * until the function returns), and at shutdown the node exits after
 * drain_timeout_ms without waiting for such a thread.  Nothing on the
 * loop touches the file system: a program named by another path than its
 * allow_exec entry is resolved (stat) on the pool thread.
 */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/errcode.h"
#include "../common/idpolicy.h"
#include "../daemon/config.h"
#include "../daemon/knob.h"
#include "../daemon/log.h"
#include "../daemon/service.h"
#include "cpupool_builtin.h"
#include "cpupool_cgroup.h"
#include "cpupool_exec.h"
#include "cpupool_knobs.h"
#include "cpupool_load.h"
#include "cpupool_plugin.h"
#include "cpupool_pool.h"
#include "cpupool_proto.h"
#include "cpupool_settings.h"
#include "eventnet/eventnet_trace.h"
#include "queue/queue_route.h"

#define CP_MAX_ALLOW 64
#define CP_SAFE_PATH "/usr/local/bin:/usr/bin:/bin"
/* Call-syntax jobs a client address may keep running after its EOF. */
#define CP_DETACHED_PER_CLIENT 1

/* A client address with call-syntax jobs running after its EOF. */
struct cp_detached {
	char addr[64];
	int n;
};

struct cp_allow {
	char name[128]; /* as configured: a bare name or an absolute path */
	char path[256]; /* absolute path executed */
	dev_t dev; /* the file, for requests that name it by another path */
	ino_t ino;
};

struct cpupool {
	unsigned node_id;
	bool kingcobra; /* use_as_kingcobra_service: clone calls go to the queue */
	struct cp_limits lim;
	_Atomic int job_timeout_ms; /* reloadable (SIGHUP) */
	uint64_t output_cap, mem_limit;
	struct cp_allow allow[CP_MAX_ALLOW];
	int nallow;
	struct cp_plugins *plugins;
	struct cp_pool *pool;
	int drain_timeout_ms;
	struct cp_cgroup *cg; /* NULL: no pids cgroup here */
	int max_procs;
	char identities[1024]; /* cpupool_identities: who may run jobs ("" all) */
	char programs[CP_PROGRAMS_MAX]; /* cpupool_programs: what each may run (idpolicy.h) */
	long arg_strlen_max; /* the kernel's MAX_ARG_STRLEN: 32 pages, NUL included */
	_Atomic uint64_t done, failed, rejected, cancelled;
	pthread_mutex_t det_mu; /* guards det (connections of every loop) */
	struct cp_detached *det;
	int ndet; /* slots: one per job the pool can hold */
	struct cp_knobs *knobs; /* live knobs and learnt run times (analytics) */
};

enum cp_kind { CP_K_BUILTIN, CP_K_PLUGIN, CP_K_EXEC };

struct cp_job {
	struct cpupool *cp;
	enum cp_kind kind;
	bool legacy;
	cp_builtin_fn builtin;
	virgo_fn plugin;
	char path[256];
	char peer[64]; /* the client's "ip:port", for the log */
	char name[100]; /* what it runs, as requested (vlog_quote'd), for the log */
	char **argv; /* exec: pointers into arg */
	bool resolve; /* exec: path is the client's; find_allow_stat on the pool */
	const char *msg; /* static error sentence set by the pool thread */
	uint8_t *arg; /* argument bytes, or the argv block */
	size_t arg_len;
	int64_t deadline_ms;
	int64_t timeout_ms; /* what the deadline allows, for the log */
	volatile int cancel; /* set with __atomic_store_n */
	int cancel_pipe[2];
	struct vconn_ticket *ticket;
	struct event *timer; /* plugin jobs: loop-side deadline */
	/* result */
	int rc;
	uint8_t *out;
	size_t out_len;
	struct cp_exec_result xr;
	char *trace; /* the request's trace context (eventnet_trace = yes), or NULL */
	size_t trace_len;
};

struct cpupool_conn {
	struct frame_state fs;
	uint64_t need;
	bool legacy_close;
	bool detached; /* job is a call-syntax one whose client sent EOF */
	struct cp_job *job; /* running or queued for this connection */
	bool routed; /* use_as_kingcobra_service: waiting for the queue */
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- allow-list ----------------------------------------------------------- */

static int resolve_exec(const char *name, char *path, size_t cap)
{
	if (name[0] == '/') {
		snprintf(path, cap, "%s", name);
		return access(path, X_OK) == 0 ? 0 : -1;
	}
	char dirs[] = CP_SAFE_PATH, *save = NULL;
	for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(path, cap, "%s/%s", d, name);
		if (access(path, X_OK) == 0)
			return 0;
	}
	return -1;
}

static int load_allow(struct cpupool *cp, const char *list)
{
	char buf[4096], *save = NULL;
	snprintf(buf, sizeof buf, "%s", list);
	for (char *t = strtok_r(buf, ", \t", &save); t; t = strtok_r(NULL, ", \t", &save)) {
		if (cp->nallow == CP_MAX_ALLOW || strlen(t) >= sizeof cp->allow[0].name) {
			log_error("allow_exec: too many entries or name too long: %s", t);
			return -1;
		}
		if ((t[0] != '/' && strchr(t, '/')) || cp_path_traverses(t)) {
			log_error("allow_exec: '%s' must be a bare name or an absolute path", t);
			return -1;
		}
		struct cp_allow *a = &cp->allow[cp->nallow];
		snprintf(a->name, sizeof a->name, "%s", t);
		struct stat st;
		if (resolve_exec(t, a->path, sizeof a->path) != 0 || stat(a->path, &st) != 0) {
			log_warn("allow_exec: '%s' not found (or not executable); skipped", t);
			continue;
		}
		a->dev = st.st_dev;
		a->ino = st.st_ino;
		cp->nallow++;
	}
	return 0;
}

/* The allowed program a request names exactly: a configured name or its
 * resolved path; else NULL.  No file system access (event loop). */
static const struct cp_allow *find_allow(struct cpupool *cp, const char *name)
{
	for (int i = 0; i < cp->nallow; i++)
		if (strcmp(cp->allow[i].name, name) == 0 || strcmp(cp->allow[i].path, name) == 0)
			return &cp->allow[i];
	return NULL;
}

/* Pool thread (stat may block): an absolute path to the same file as an
 * allowed program (/bin/sh for an allowed /usr/bin/sh), or NULL.  Bare
 * names are never looked up beyond the list.  The list is read-only
 * after init, so no lock. */
static const struct cp_allow *find_allow_stat(struct cpupool *cp, const char *name)
{
	struct stat st;
	if (name[0] != '/' || stat(name, &st) != 0)
		return NULL;
	for (int i = 0; i < cp->nallow; i++)
		if (cp->allow[i].dev == st.st_dev && cp->allow[i].ino == st.st_ino)
			return &cp->allow[i];
	return NULL;
}

/* ---- call-syntax jobs after their client's EOF --------------------------- */

static void peer_addr(struct vconn *c, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s", vconn_peer(c));
	char *colon = strrchr(buf, ':'); /* "ip:port": one count per address */
	if (colon)
		*colon = '\0';
}

/* Takes one of the client address's slots; false when it has none left. */
static bool detached_take(struct cpupool *cp, struct vconn *c)
{
	char addr[64];
	peer_addr(c, addr, sizeof addr);
	bool ok = false;
	pthread_mutex_lock(&cp->det_mu);
	struct cp_detached *free_slot = NULL, *d = NULL;
	for (int i = 0; i < cp->ndet; i++) {
		if (cp->det[i].n > 0 && strcmp(cp->det[i].addr, addr) == 0)
			d = &cp->det[i];
		else if (cp->det[i].n == 0 && !free_slot)
			free_slot = &cp->det[i];
	}
	if (!d && free_slot) {
		d = free_slot;
		snprintf(d->addr, sizeof d->addr, "%s", addr);
	}
	if (d && d->n < CP_DETACHED_PER_CLIENT) {
		d->n++;
		ok = true;
	}
	pthread_mutex_unlock(&cp->det_mu);
	return ok;
}

static void detached_put(struct cpupool *cp, struct vconn *c)
{
	char addr[64];
	peer_addr(c, addr, sizeof addr);
	pthread_mutex_lock(&cp->det_mu);
	for (int i = 0; i < cp->ndet; i++) {
		if (cp->det[i].n > 0 && strcmp(cp->det[i].addr, addr) == 0) {
			cp->det[i].n--;
			break;
		}
	}
	pthread_mutex_unlock(&cp->det_mu);
}

/* Loop thread: the connection no longer waits for its job. */
static void conn_job_clear(struct vconn *c, struct cpupool_conn *cc)
{
	cc->job = NULL;
	if (cc->detached) {
		cc->detached = false;
		detached_put(vconn_svc(c), c);
	}
}

/* ---- service life ------------------------------------------------------- */

static void job_free(struct cp_job *j)
{
	if (j->timer)
		event_free(j->timer);
	for (int i = 0; i < 2; i++)
		if (j->cancel_pipe[i] >= 0)
			close(j->cancel_pipe[i]);
	free(j->argv);
	free(j->arg);
	free(j->out);
	cp_exec_result_free(&j->xr);
	free(j->trace);
	free(j);
}

static void load_fill(struct cpupool *cp, struct cp_load *l)
{
	memset(l, 0, sizeof *l);
	cp_load_sample(l);
	struct cp_pool_counts pc;
	cp_pool_counts(cp->pool, &pc);
	l->node_id = cp->node_id;
	l->running = pc.running;
	l->queued = pc.queued;
	l->workers = pc.workers;
	l->queue_max = pc.queue_max;
	l->jobs_done = cp->done;
	l->jobs_failed = cp->failed;
	l->jobs_rejected = cp->rejected;
	l->jobs_cancelled = cp->cancelled;
	l->weight = vknob_weight();
}

static char *load_text(void *arg)
{
	struct cp_load l;
	load_fill(arg, &l);
	size_t n = cp_load_format(&l, "", "\n", NULL, 0) + 1;
	char *t = malloc(n);
	if (t)
		cp_load_format(&l, "", "\n", t, n);
	return t;
}

static void job_done(struct vconn *c, void *arg);

/* Pool thread: run one job, then post it back to its connection. */
static void job_run(void *arg)
{
	struct cp_job *j = arg;
	struct cpupool *cp = j->cp;
	const struct cp_allow *a = NULL;
	int64_t started = now_ms();
	if (j->resolve && !(a = find_allow_stat(cp, j->path))) {
		j->rc = -EACCES;
		j->msg = "program not in this node's allow_exec list";
		log_warn_every("job_refused peer=%s program=%s reason=not_in_allow_exec", j->peer,
			       j->name);
	} else if (a) {
		/* another path to an allowed file runs under the allowed
		 * path as argv[0] too: a multi-call binary (busybox) must
		 * not pick its personality from a client-chosen name */
		snprintf(j->path, sizeof j->path, "%s", a->path);
		j->argv[0] = j->path;
	}
	if (j->rc != 0) {
		/* refused above */
	} else if (__atomic_load_n(&j->cancel, __ATOMIC_ACQUIRE))
		j->rc = -ECANCELED;
	else if (now_ms() >= j->deadline_ms)
		j->rc = -ETIMEDOUT;
	else if (j->kind == CP_K_BUILTIN) {
		struct cp_builtin_ctx ctx = {j->cancel_pipe[0], j->deadline_ms, load_text, cp};
		j->rc = j->builtin(&ctx, j->arg, j->arg_len, &j->out, &j->out_len);
	} else if (j->kind == CP_K_PLUGIN) {
		void *out = NULL;
		size_t out_len = 0;
		j->rc = j->plugin(j->arg, j->arg_len, &out, &out_len, &j->cancel);
		if (j->rc > 0)
			j->rc = -EIO; /* the signature says 0 or negative */
		j->out = out;
		j->out_len = out ? out_len : 0;
		if (j->rc != 0) {
			free(j->out);
			j->out = NULL;
			j->out_len = 0;
		}
	} else {
		struct cp_exec_limits lim = {cp->output_cap, cp->mem_limit, j->deadline_ms, cp->cg,
					     NULL};
		char **env = cp_knobs_env(); /* the analytics snapshot (may be NULL) */
		lim.env = env;
		j->rc = cp_exec_run(j->path, j->argv, &lim, j->cancel_pipe[0], &j->xr);
		free(env);
		if (j->rc == -E2BIG)
			j->msg = "argument list longer than the kernel's limit for exec (ARG_MAX)";
	}
	if (j->rc == 0 && j->out_len > cp->output_cap)
		j->rc = -E2BIG;
	if (j->rc == -ETIMEDOUT && !j->msg)
		log_warn_every("job_deadline peer=%s program=%s timeout_ms=%lld", j->peer, j->name,
			       (long long)j->timeout_ms);
	if (j->rc == 0) {
		atomic_fetch_add(&cp->done, 1);
		cp_knobs_learn(cp->knobs, j->name, (double)(now_ms() - started));
	} else if (j->rc == -ECANCELED)
		atomic_fetch_add(&cp->cancelled, 1);
	else
		atomic_fetch_add(&cp->failed, 1);
	vconn_ticket_post(j->ticket, job_done, j);
}

static void job_drop(void *arg)
{
	struct cp_job *j = arg;
	j->rc = -ECANCELED;
	vconn_ticket_drop(j->ticket);
	job_free(j);
}

static void reply_err(struct evbuffer *out, int code, const char *msg)
{
	evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(code), msg);
}

static const char *job_err_msg(int err)
{
	switch (err) {
	case ETIMEDOUT: return "job killed at its deadline (job_timeout_ms)";
	case ECANCELED: return "job cancelled";
	case E2BIG: return "result larger than output_cap";
	case ENOENT: return "no such program";
	case EACCES: return "permission denied executing the program";
	case EINVAL: return "the function rejected its argument";
	case ENOMEM: return "out of memory";
	default: return "the job failed";
	}
}

static void write_result(struct cp_job *j, struct evbuffer *out)
{
	if (j->rc != 0) {
		reply_err(out, -j->rc, j->msg ? j->msg : job_err_msg(-j->rc));
		return;
	}
	if (j->kind != CP_K_EXEC) {
		if (!j->legacy)
			evbuffer_add_printf(out, "VALUE %zu\r\n", j->out_len);
		evbuffer_add(out, j->out, j->out_len);
		evbuffer_add(out, "\r\n", 2);
		return;
	}
	struct cp_exec_result *x = &j->xr;
	if (!j->legacy)
		evbuffer_add_printf(out, "VALUE %zu %s %d %zu %d\r\n", x->out_len + x->err_len,
				    x->signaled ? "signal" : "exit", x->code, x->out_len,
				    x->truncated ? 1 : 0);
	evbuffer_add(out, x->out, x->out_len);
	if (!j->legacy)
		evbuffer_add(out, x->err, x->err_len);
	evbuffer_add(out, "\r\n", 2);
}

/* Loop thread: the job is back (c NULL if its connection is gone). */
static void job_done(struct vconn *c, void *arg)
{
	struct cp_job *j = arg;
	struct cpupool_conn *cc = c ? vconn_state(c) : NULL;
	if (!cc || cc->job != j) { /* gone, or abandoned at its deadline */
		job_free(j);
		return;
	}
	conn_job_clear(c, cc);
	evn_trace_caused((const uint8_t *)j->trace, j->trace_len, "cpupool",
			 j->rc ? "(run,failed)" : "(run,ok)"); /* eventnet_trace = yes */
	write_result(j, vconn_out(c));
	job_free(j);
	vconn_resume(c);
}

static void job_cancel(struct cp_job *j)
{
	__atomic_store_n(&j->cancel, 1, __ATOMIC_RELEASE);
	ssize_t w = write(j->cancel_pipe[1], "x", 1);
	(void)w;
}

/* Loop thread: a plugin job reached its deadline. */
static void plugin_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct vconn *c = arg;
	struct cpupool_conn *cc = vconn_state(c);
	struct cp_job *j = cc->job;
	if (!j)
		return;
	event_free(j->timer);
	j->timer = NULL;
	job_cancel(j);
	log_warn_every("job_deadline peer=%s program=%s timeout_ms=%lld abandoned=1", j->peer,
		       j->name, (long long)j->timeout_ms);
	conn_job_clear(c, cc); /* abandoned: job_done will just free it */
	reply_err(vconn_out(c), ETIMEDOUT,
		  "job still running at its deadline (job_timeout_ms); cancel flag set");
	vconn_resume(c);
}

static struct cp_job *job_new(struct cpupool *cp, const struct cp_req *r)
{
	struct cp_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->cp = cp;
	j->legacy = r->legacy;
	j->cancel_pipe[0] = j->cancel_pipe[1] = -1;
	if (pipe2(j->cancel_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(j);
		return NULL;
	}
	uint64_t node_ms = (uint64_t)atomic_load(&cp->job_timeout_ms);
	uint64_t t = r->timeout_ms && r->timeout_ms < node_ms
			     ? r->timeout_ms
			     : node_ms;
	j->timeout_ms = (int64_t)t;
	j->deadline_ms = now_ms() + (int64_t)t;
	return j;
}

/* Sets the job's argv from a NUL-separated block it owns. */
static int job_set_argv(struct cp_job *j, int argc)
{
	j->argv = calloc((size_t)argc + 1, sizeof *j->argv);
	if (!j->argv)
		return -ENOMEM;
	size_t off = 0;
	for (int i = 0; i < argc; i++) {
		j->argv[i] = (char *)j->arg + off;
		off += strlen(j->argv[i]) + 1;
	}
	return 0;
}

/* Resolves what the request names; fills the job's kind.  0 or -errno
 * with *msg. */
static int job_resolve(struct cpupool *cp, struct cp_job *j, const struct cp_req *r,
		       const char **msg)
{
	char name[CP_NAME_MAX + 1];
	if (r->op == CP_OP_RUN) {
		snprintf(name, sizeof name, "%.*s", (int)strnlen((const char *)r->data, CP_NAME_MAX),
			 (const char *)r->data);
	} else {
		memcpy(name, r->name, r->name_len);
		name[r->name_len] = '\0';
	}
	vlog_quote(j->name, sizeof j->name, name, strlen(name));
	if (r->op != CP_OP_RUN) {
		if ((j->builtin = cp_builtin_find(name))) {
			j->kind = CP_K_BUILTIN;
			return 0;
		}
		if (cp_fn_name_ok(r->name, r->name_len) && (j->plugin = cp_plugins_find(cp->plugins, name))) {
			j->kind = CP_K_PLUGIN;
			return 0;
		}
	}
	if (cp_path_traverses(name)) {
		*msg = "path traversal refused";
		return -EACCES;
	}
	const struct cp_allow *a = find_allow(cp, name);
	if (!a && name[0] == '/' && r->op != CP_OP_CLONE) {
		/* perhaps another path to an allowed file: the pool thread
		 * decides (stat), never the event loop */
		j->kind = CP_K_EXEC;
		j->resolve = true;
		snprintf(j->path, sizeof j->path, "%s", name);
		return 0;
	}
	if (!a) {
		if (r->op == CP_OP_CLONE ||
		    (r->op == CP_OP_CALL && !strchr(name, '/') && cp_fn_name_ok(r->name, r->name_len))) {
			*msg = "no such function (not a built-in, not in a plugin library)";
			return -ENOENT;
		}
		*msg = "program not in this node's allow_exec list";
		return -EACCES;
	}
	if (r->op == CP_OP_CLONE) {
		*msg = "an executable: use run";
		return -EINVAL;
	}
	j->kind = CP_K_EXEC;
	snprintf(j->path, sizeof j->path, "%s", a->path);
	return 0;
}

/* Builds and submits a job for a clone/run/call request. */
static void start_job(struct cpupool *cp, struct vconn *c, const struct cp_req *r)
{
	struct evbuffer *out = vconn_out(c);
	struct cpupool_conn *cc = vconn_state(c);
	struct cp_job *j = job_new(cp, r);
	const char *msg = "out of memory";
	int rc = j ? 0 : -ENOMEM;
	if (rc == 0 && r->trace && evn_trace_enabled() &&
	    (j->trace = strndup((const char *)r->trace, r->trace_len)))
		j->trace_len = r->trace_len; /* recorded when the job has run */
	if (rc == 0) {
		snprintf(j->peer, sizeof j->peer, "%s", vconn_peer(c));
		rc = job_resolve(cp, j, r, &msg);
		if (rc == -EACCES)
			log_warn_every("job_refused peer=%s program=%s reason=%s", j->peer, j->name,
				       strstr(msg, "traversal") ? "path_traversal"
							       : "not_in_allow_exec");
	}
	if (rc == 0) {
		size_t extra = j->kind == CP_K_EXEC && r->op == CP_OP_CALL ? r->name_len + 2 : 0;
		j->arg = malloc(r->data_len + extra + 1);
		if (!j->arg)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		if (j->kind == CP_K_EXEC && r->op == CP_OP_CALL) {
			/* notes' form: the argument (if any) is argv[1] */
			memcpy(j->arg, r->name, r->name_len);
			j->arg[r->name_len] = '\0';
			size_t o = r->name_len + 1;
			int argc = 1;
			if (r->data_len) {
				if (memchr(r->data, '\0', r->data_len)) {
					rc = -EINVAL;
					msg = "a program argument cannot hold a NUL byte";
				}
				memcpy(j->arg + o, r->data, r->data_len);
				j->arg[o + r->data_len] = '\0';
				o += r->data_len + 1;
				argc = 2;
			}
			j->arg_len = o;
			if (rc == 0)
				rc = job_set_argv(j, argc);
		} else {
			if (r->data_len)
				memcpy(j->arg, r->data, r->data_len);
			j->arg_len = r->data_len;
			if (j->kind == CP_K_EXEC) {
				const char *why;
				rc = job_set_argv(j, cp_argv_check(j->arg, j->arg_len, &why));
			}
		}
	}
	char why[112];
	for (int i = 0; rc == 0 && j->kind == CP_K_EXEC && j->argv[i]; i++) {
		if (strlen(j->argv[i]) + 1 > (size_t)cp->arg_strlen_max) {
			/* exec would say E2BIG; say which and why */
			snprintf(why, sizeof why,
				 "argument %d longer than the kernel's %ld-byte limit (NUL included)", i,
				 cp->arg_strlen_max);
			msg = why;
			rc = -E2BIG;
		}
	}
	if (rc == 0 && !(j->ticket = vconn_ticket_new(c)))
		rc = -ENOMEM;
	if (rc == 0 && j->kind == CP_K_PLUGIN) {
		j->timer = evtimer_new(vconn_base(c), plugin_timer_cb, c);
		int64_t left = j->deadline_ms - now_ms();
		struct timeval tv = {left / 1000, (left % 1000) * 1000};
		if (!j->timer || evtimer_add(j->timer, &tv) != 0)
			rc = -ENOMEM;
	}
	if (rc == 0) {
		cc->job = j;
		rc = cp_pool_submit(cp->pool, j);
		if (rc == 0)
			return;
		conn_job_clear(c, cc);
		atomic_fetch_add(&cp->rejected, 1);
		log_warn_every("job_rejected peer=%s program=%s reason=queue_full", j->peer,
			       j->name);
		msg = "every worker is busy and the job queue is full (cpu_workers, cpu_queue)";
	}
	if (j) {
		if (j->ticket)
			vconn_ticket_drop(j->ticket);
		job_free(j);
	}
	reply_err(out, -rc, msg);
}

static const char cpupool_help[] =
	"HELP clone <function> <nbytes> [<timeout_ms>] + bytes + CRLF -> VALUE <n> + result\r\n"
	"HELP run <nbytes> [<timeout_ms>] + argv (NUL-terminated strings) + CRLF\r\n"
	"HELP      -> VALUE <n> exit|signal <code> <stdout bytes> <truncated 0|1> + stdout+stderr\r\n"
	"HELP load | stats | ping | help | quit\r\n"
	"HELP virgo_clone(<function>,<argument>) or a bare <function> -> bare result, close\r\n"
	"HELP built-ins: virgo_cloud_test (echo), virgo_sleep (<ms>), virgo_load\r\n"
	"END\r\n";

/* May the connection's identity run this request's program or function?
 * cpupool_identities: who may run anything ("" everyone);
 * cpupool_programs: per identity, which of the allowed names (idpolicy.h:
 * an identity it does not name keeps the whole allow-list).  NULL, or the
 * refusal's sentence (*key: the key that refused). */
static const char *identity_refusal(const struct cpupool *cp, struct vconn *c,
				    const struct cp_req *r, const char **key)
{
	const char *id = vconn_identity(c);
	*key = "cpupool_identities";
	if (cp->identities[0] && !idpol_list_has(cp->identities, id))
		return "this identity may not run jobs on this node (cpupool_identities)";
	const char *name = (const char *)r->name;
	size_t len = r->name_len;
	if (r->op == CP_OP_RUN) {
		name = (const char *)r->data;
		len = strnlen(name, r->data_len);
		const char *slash = memrchr(name, '/', len); /* /usr/bin/echo is echo */
		if (slash) {
			len -= (size_t)(slash + 1 - name);
			name = slash + 1;
		}
	}
	*key = "cpupool_programs";
	if (!idpol_map_allows(cp->programs, id, name, len, false))
		return "this identity may not run that program or function on this node "
		       "(cpupool_programs)";
	return NULL;
}

/* ---- use_as_kingcobra_service (notes §976, §1017) -------------------------
 * A clone call is not run: "<function> <argument>" is appended to the
 * queue's default topic for KingCobra's workers (virgo queue work), and
 * the caller gets "QUEUED <topic> <offset>" as its result once durable;
 * the real result arrives on the workers' reply topic. */
static void routed_done(struct vconn *c, void *arg, int err, const char *topic, uint64_t off)
{
	bool legacy = arg != NULL;
	if (!c)
		return;
	struct cpupool_conn *cc = vconn_state(c);
	cc->routed = false;
	struct evbuffer *out = vconn_out(c);
	if (err) {
		reply_err(out, err, "use_as_kingcobra_service: the request could not be queued");
	} else {
		char res[128];
		int n = snprintf(res, sizeof res, "QUEUED %s %" PRIu64, topic, off);
		if (legacy)
			evbuffer_add_printf(out, "%s\r\n", res);
		else
			evbuffer_add_printf(out, "VALUE %d\r\n%s\r\n", n, res);
	}
	vconn_resume(c);
}

static void route_request(struct vconn *c, const struct cp_req *r)
{
	struct cpupool_conn *cc = vconn_state(c);
	size_t n = r->name_len + 1 + r->data_len;
	char *buf = malloc(n);
	int rc = -ENOMEM;
	if (buf) {
		memcpy(buf, r->name, r->name_len);
		buf[r->name_len] = ' ';
		if (r->data_len)
			memcpy(buf + r->name_len + 1, r->data, r->data_len);
		rc = queue_route(c, buf, n, routed_done, r->legacy ? (void *)1 : NULL);
		free(buf);
	}
	if (rc == 0) {
		cc->routed = true;
		return;
	}
	reply_err(vconn_out(c), rc == -ENOSYS ? ENOSYS : -rc,
		  rc == -ENOSYS ? "use_as_kingcobra_service: this node runs no queue service"
				: "use_as_kingcobra_service: the request could not be queued");
}

static int cpupool_exec(struct cpupool *cp, struct vconn *c, const struct cp_req *r)
{
	struct evbuffer *out = vconn_out(c);
	const char *why, *key;
	switch (r->op) {
	case CP_OP_CLONE:
	case CP_OP_RUN:
	case CP_OP_CALL:
		if ((why = identity_refusal(cp, c, r, &key)) != NULL) {
			log_info_every("job_refused peer=%s identity=%s reason=%s", vconn_peer(c),
				       vconn_identity(c)[0] ? vconn_identity(c) : "-", key);
			reply_err(out, EACCES, why);
			return r->legacy ? VSVC_CLOSE : VSVC_KEEP;
		}
		if (cp->kingcobra && r->op != CP_OP_RUN) {
			route_request(c, r);
			return VSVC_KEEP;
		}
		start_job(cp, c, r);
		return VSVC_KEEP;
	case CP_OP_LOAD: {
		struct cp_load l;
		load_fill(cp, &l);
		char buf[1024];
		cp_load_format(&l, "STAT ", "\r\n", buf, sizeof buf);
		evbuffer_add_printf(out, "%sEND\r\n", buf);
		return VSVC_KEEP;
	}
	case CP_OP_PING:
		evbuffer_add_printf(out, "PONG %u\r\n", cp->node_id);
		return VSVC_KEEP;
	case CP_OP_HELP:
		evbuffer_add(out, cpupool_help, sizeof cpupool_help - 1);
		return VSVC_KEEP;
	case CP_OP_QUIT:
	default:
		return VSVC_CLOSE;
	}
}

static int cpupool_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	struct cpupool *cp = vconn_svc(c);
	struct cpupool_conn *cc = vconn_state(c);
	for (;;) {
		if (cc->routed)
			return VSVC_WAIT; /* routed_done resumes */
		if (cc->job) {
			/* a native client that closes while its job runs is
			 * gone: closing cancels the job (conn_close) */
			if (eof && !cc->job->legacy)
				return VSVC_CLOSE;
			if (eof && !cc->detached && !detached_take(cp, c)) {
				/* this address already has a job running
				 * with nobody perhaps waiting for it */
				job_cancel(cc->job);
				log_info_every("job_cancelled peer=%s program=%s "
					       "reason=detached_limit",
					       cc->job->peer, cc->job->name);
				conn_job_clear(c, cc);
				reply_err(vconn_out(c), ECANCELED,
					  "another call-syntax job of this client address is running "
					  "after its EOF (one at a time)");
				return VSVC_CLOSE;
			}
			if (eof)
				cc->detached = true;
			return VSVC_WAIT;
		}
		/* replies pile up (a client pipelining and not reading):
		 * go on once they are written */
		if (vconn_out_full(c))
			return VSVC_MORE;
		size_t len = evbuffer_get_length(in);
		if (len == 0 || (!eof && cc->need && len < cc->need))
			break;
		const uint8_t *buf = evbuffer_pullup(in, -1);
		struct cp_req req;
		size_t used;
		int code;
		const char *msg;
		enum cp_parse_result pr =
			cp_parse(&cc->fs, buf, len, eof, &cp->lim, &req, &used, &cc->need, &code, &msg);
		int rc = VSVC_KEEP;
		if (pr == CP_REQ) {
			rc = cpupool_exec(cp, c, &req);
			cc->legacy_close = req.legacy;
		} else if (pr == CP_ERROR) {
			reply_err(vconn_out(c), code, msg);
			/* a bad call-syntax request ends its connection like
			 * a call that fails */
			if (req.legacy)
				cc->legacy_close = true;
		}
		evbuffer_drain(in, used);
		if (rc == VSVC_CLOSE)
			return VSVC_CLOSE;
		if (pr == CP_MORE && (eof || used == 0))
			break;
	}
	/* like the original, a call-syntax request is one per connection:
	 * close once everything that arrived is answered */
	if (cc->legacy_close && evbuffer_get_length(in) == 0)
		return VSVC_CLOSE;
	return VSVC_KEEP;
}

static void cpupool_conn_close(struct vconn *c)
{
	struct cpupool_conn *cc = vconn_state(c);
	struct cp_job *j = cc->job;
	if (!j)
		return;
	conn_job_clear(c, cc);
	if (j->timer) {
		event_free(j->timer);
		j->timer = NULL;
	}
	job_cancel(j); /* its completion arrives with c == NULL and frees it */
	log_info_every("job_cancelled peer=%s program=%s reason=conn_closed", j->peer, j->name);
}

static int cpupool_init(const struct vd_node *node, void **out)
{
	const struct vd_config *cfg = node->cfg;
	const struct cp_settings *st = node->settings;
	struct cpupool *cp = calloc(1, sizeof *cp);
	if (!cp)
		return -ENOMEM;
	cp->node_id = cfg->node_id;
	cp->lim.max_line = cfg->max_line;
	cp->lim.max_arg = cfg->max_value;
	atomic_store(&cp->job_timeout_ms, st->job_timeout_ms);
	cp->output_cap = st->output_cap;
	cp->mem_limit = st->job_mem_limit;
	cp->drain_timeout_ms = cfg->drain_timeout_ms;
	cp->max_procs = st->job_max_procs;
	snprintf(cp->identities, sizeof cp->identities, "%s", st->identities);
	snprintf(cp->programs, sizeof cp->programs, "%s", st->programs);
	char why[256];
	if (idpol_map_check(cp->programs, why, sizeof why) != 0) {
		log_error("cpupool_programs: %s", why);
		free(cp);
		return -EINVAL;
	}
	cp->kingcobra = st->use_as_kingcobra_service;
	long page = sysconf(_SC_PAGESIZE);
	cp->arg_strlen_max = 32 * (page > 0 ? page : 4096);
	pthread_mutex_init(&cp->det_mu, NULL);
	if (load_allow(cp, st->allow_exec) != 0 || cp_plugins_open(st->plugins, &cp->plugins) != 0) {
		cp_plugins_free(cp->plugins);
		free(cp);
		return -EINVAL;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int workers = st->cpu_workers > 0 ? st->cpu_workers : (ncpu > 0 ? (int)ncpu : 1);
	cp->pool = cp_pool_new(workers, st->cpu_queue, job_run, job_drop);
	cp->ndet = workers + (st->cpu_queue > 0 ? st->cpu_queue : 0);
	cp->det = calloc((size_t)cp->ndet, sizeof *cp->det);
	if (!cp->pool || !cp->det) {
		cp_pool_free(cp->pool, -1);
		free(cp->det);
		cp_plugins_free(cp->plugins);
		free(cp);
		return -ENOMEM;
	}
	if (cp->nallow > 0)
		cp->cg = cp_cgroup_open(workers, cp->max_procs);
	cp->knobs = cp_knobs_new(cp->pool, &cp->job_timeout_ms);
	log_info("cpupool: %d workers, queue %d, %d allowed programs, job timeout %d ms", workers,
		 st->cpu_queue, cp->nallow, atomic_load(&cp->job_timeout_ms));
	*out = cp;
	return 0;
}

/* A cpupool whose workers were still busy at shutdown: kept (reachable,
 * never freed) because those threads still run plugin code and use it. */
static struct cpupool *cp_abandoned;

static void cpupool_fini(void *svc)
{
	struct cpupool *cp = svc;
	cp_knobs_free(cp->knobs); /* before the pool its knobs resize */
	cp->knobs = NULL;
	/* connections are closed: running jobs are cancelled.  A plugin
	 * function that ignores its cancel flag gets drain_timeout_ms, then
	 * the node exits without it */
	if (cp_pool_free(cp->pool, cp->drain_timeout_ms) != 0) {
		log_warn("cpupool: a plugin function still runs %d ms after shutdown began "
			 "(it ignores its cancel flag); exiting without waiting for it",
			 cp->drain_timeout_ms);
		cp_abandoned = cp;
		cp_cgroup_abandon(cp->cg);
		return;
	}
	cp_plugins_free(cp->plugins);
	cp_cgroup_close(cp->cg);
	pthread_mutex_destroy(&cp->det_mu);
	free(cp->det);
	free(cp);
}

/* SIGHUP: job_timeout_ms applies to jobs accepted from now on (the
 * other keys change on restart). */
static int cpupool_reload(void *svc, const void *settings)
{
	struct cpupool *cp = svc;
	const struct cp_settings *st = settings;
	int was = atomic_exchange(&cp->job_timeout_ms, st->job_timeout_ms);
	if (was != st->job_timeout_ms)
		log_info("cpupool: job_timeout_ms %d -> %d", was, st->job_timeout_ms);
	return 0;
}

const struct vsvc cpupool_service = {
	.name = "cpupool",
	.base_port = 10000,
	.conn_size = sizeof(struct cpupool_conn),
	.keys = cp_settings_keys,
	.settings_size = sizeof(struct cp_settings),
	.settings_defaults = cp_settings_defaults,
	.needs = cp_settings_needs,
	.init = cpupool_init,
	.reload = cpupool_reload,
	.fini = cpupool_fini,
	.on_input = cpupool_on_input,
	.conn_close = cpupool_conn_close,
};
