/*
 * job.c - the async form of virgo_clone/virgo_run: submit returns a job id
 * at once and a library thread makes the (blocking) call; poll/wait
 * collect the result.  A fixed table of VJ_MAX slots bounds the threads a
 * process can start this way.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/abstime.h"
#include "client.h"

#define VJ_MAX 1024

struct vjob {
	virgo_job_t id; /* 0: free slot */
	bool done, is_run;
	char *fn;
	void *arg;
	size_t arg_len;
	char **argv;
	struct virgo_call_opts opts;
	int rc;
	struct virgo_run_result res;
	char detail[512]; /* the job thread's virgo_last_error() */
};

static pthread_mutex_t vj_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t vj_cv = PTHREAD_COND_INITIALIZER;
static struct vjob vj_slots[VJ_MAX];
static virgo_job_t vj_next = 1;

static void *vj_main(void *arg)
{
	struct vjob *j = arg;
	struct virgo_run_result res;
	memset(&res, 0, sizeof res);
	int rc;
	if (j->is_run) {
		rc = virgo_run_ex((const char *const *)j->argv, &j->opts, &res);
	} else {
		void *out = NULL;
		size_t n = 0;
		rc = virgo_clone_ex(j->fn, j->arg, j->arg_len, &j->opts, &out, &n, &res.node_id);
		res.out = out;
		res.out_len = n;
	}
	pthread_mutex_lock(&vj_lock);
	snprintf(j->detail, sizeof j->detail, "%s", rc < 0 ? virgo_last_error() : "");
	j->rc = rc;
	j->res = res;
	j->done = true;
	pthread_cond_broadcast(&vj_cv);
	pthread_mutex_unlock(&vj_lock);
	return NULL;
}

void vj_wait_running(void)
{
	pthread_mutex_lock(&vj_lock);
	for (;;) {
		bool running = false;
		for (int i = 0; i < VJ_MAX && !running; i++)
			running = vj_slots[i].id != 0 && !vj_slots[i].done;
		if (!running)
			break;
		pthread_cond_wait(&vj_cv, &vj_lock);
	}
	pthread_mutex_unlock(&vj_lock);
}

static void vj_release(struct vjob *j)
{
	free(j->fn);
	free(j->arg);
	if (j->argv)
		for (char **a = j->argv; *a; a++)
			free(*a);
	free(j->argv);
	memset(j, 0, sizeof *j);
}

/* Takes a slot (lock held); NULL when all are in use. */
static struct vjob *vj_take(void)
{
	for (int i = 0; i < VJ_MAX; i++)
		if (vj_slots[i].id == 0)
			return &vj_slots[i];
	return NULL;
}

static int vj_launch(struct vjob *proto, virgo_job_t *job)
{
	pthread_mutex_lock(&vj_lock);
	struct vjob *j = vj_take();
	if (!j) {
		pthread_mutex_unlock(&vj_lock);
		return -EAGAIN;
	}
	*j = *proto;
	j->id = vj_next++;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int e = pthread_create(&(pthread_t){0}, &at, vj_main, j);
	pthread_attr_destroy(&at);
	if (e) {
		j->id = 0;
		pthread_mutex_unlock(&vj_lock);
		return -e;
	}
	*job = j->id;
	pthread_mutex_unlock(&vj_lock);
	return 0;
}

/* Runs proto (with opts, if any) on a job slot of its own; on failure
 * proto's memory is released here. */
static int vj_start(struct vjob *proto, const struct virgo_call_opts *opts, virgo_job_t *job)
{
	if (opts)
		proto->opts = *opts;
	int rc = vj_launch(proto, job);
	if (rc)
		vj_release(proto);
	return rc;
}

int virgo_clone_submit(const char *fn, const void *arg, size_t arg_len,
		       const struct virgo_call_opts *opts, virgo_job_t *job)
{
	struct vjob p;
	memset(&p, 0, sizeof p);
	if (!fn)
		return -EINVAL;
	p.fn = strdup(fn);
	p.arg = malloc(arg_len ? arg_len : 1);
	if (!p.fn || !p.arg) {
		vj_release(&p);
		return -ENOMEM;
	}
	if (arg_len)
		memcpy(p.arg, arg, arg_len);
	p.arg_len = arg_len;
	return vj_start(&p, opts, job);
}

int virgo_run_submit(const char *const argv[], const struct virgo_call_opts *opts,
		     virgo_job_t *job)
{
	struct vjob p;
	memset(&p, 0, sizeof p);
	if (!argv || !argv[0])
		return -EINVAL;
	int argc = 0;
	while (argv[argc])
		argc++;
	p.is_run = true;
	p.argv = calloc((size_t)argc + 1, sizeof *p.argv);
	if (!p.argv)
		return -ENOMEM;
	for (int i = 0; i < argc; i++) {
		if (!(p.argv[i] = strdup(argv[i]))) {
			vj_release(&p);
			return -ENOMEM;
		}
	}
	return vj_start(&p, opts, job);
}

static struct vjob *vj_find(virgo_job_t id)
{
	for (int i = 0; id && i < VJ_MAX; i++)
		if (vj_slots[i].id == id)
			return &vj_slots[i];
	return NULL;
}

int virgo_job_poll(virgo_job_t job)
{
	pthread_mutex_lock(&vj_lock);
	struct vjob *j = vj_find(job);
	int r = j ? (j->done ? 1 : 0) : -ENOENT;
	pthread_mutex_unlock(&vj_lock);
	return r;
}

int virgo_job_wait(virgo_job_t job, int timeout_ms, struct virgo_run_result *res)
{
	struct timespec dl;
	abstime_after_ms(CLOCK_REALTIME, timeout_ms >= 0 ? timeout_ms : 0, &dl);
	pthread_mutex_lock(&vj_lock);
	struct vjob *j = vj_find(job);
	while (j && !j->done) {
		if (timeout_ms < 0)
			pthread_cond_wait(&vj_cv, &vj_lock);
		else if (pthread_cond_timedwait(&vj_cv, &vj_lock, &dl) == ETIMEDOUT)
			break;
	}
	int rc;
	if (!j) {
		rc = -ENOENT;
	} else if (!j->done) {
		rc = -ETIMEDOUT;
	} else {
		rc = j->rc;
		vc_err_set(j->detail);
		if (res)
			*res = j->res;
		else
			virgo_run_result_free(&j->res);
		vj_release(j);
	}
	pthread_mutex_unlock(&vj_lock);
	return rc;
}
