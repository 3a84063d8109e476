/*
 * queue_handler.c - the node's own KingCobra handler (notes §897, §1017):
 * with queue_handler set, one thread of the node takes the default
 * topic's requests in order, runs the configured program once per request
 * (the payload on its standard input; VIRGO_QUEUE_TOPIC, _OFFSET and
 * _STAMP in its environment; killed after queue_handler_timeout_ms), or
 * calls the configured plugin function (`plugin <lib.so> <function>`, a
 * virgo_fn loaded as the cpupool loads its plugins; the payload as its
 * argument, its cancel flag set at the timeout and at shutdown), and
 * publishes REPLY#<client ip>#<sec>:<nsec>#<its output> on
 * <topic>.reply, the original's reply record.  Its position is the group
 * file <topic>/kingcobra-handler.group, written (fdatasync, rename) only
 * after the reply is durable: after a crash a request may run once more,
 * never be skipped (at least once).  A program that fails is logged and
 * its (partial) output published all the same: one bad request never
 * stops the queue.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../common/abstime.h"
#include "../../daemon/log.h"
#include "queue_int.h"

#define QH_ARGS 32
#define QH_GROUP "kingcobra-handler"

void qh_wake(struct queue *q)
{
	if (!q->hstarted)
		return;
	pthread_mutex_lock(&q->hmu);
	pthread_cond_signal(&q->hcond);
	pthread_mutex_unlock(&q->hmu);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits on hcond up to ms; false once stopping. */
static bool pause_ms(struct queue *q, int ms)
{
	pthread_mutex_lock(&q->hmu);
	if (!q->hstop) {
		struct timespec ts;
		abstime_after_ms(CLOCK_MONOTONIC, ms, &ts);
		pthread_cond_timedwait(&q->hcond, &q->hmu, &ts);
	}
	bool go = !q->hstop;
	pthread_mutex_unlock(&q->hmu);
	return go;
}

/* ---- publishing a reply and waiting until it is durable --------------- */
struct hwait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int err;
};

static void reply_done(struct q_batch *b)
{
	struct hwait *w = b->direct_arg;
	pthread_mutex_lock(&w->mu);
	w->done = true;
	w->err = b->recs[0].err;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	qc_batch_free(b);
}

static int publish(struct queue *q, const char *topic, uint8_t *data, size_t len)
{
	struct q_batch *b = calloc(1, sizeof *b);
	struct q_rec *r = calloc(1, sizeof *r);
	if (!b || !r) {
		free(b);
		free(r);
		free(data);
		return -ENOMEM;
	}
	b->recs = r;
	b->n = b->cap = 1;
	snprintf(r->topic, sizeof r->topic, "%s", topic);
	r->data = data;
	r->len = len;
	struct hwait w = {.done = false};
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	b->direct = reply_done;
	b->direct_arg = &w;
	qc_submit(q, b);
	pthread_mutex_lock(&w.mu);
	while (!w.done) /* the writer answers every batch, also at shutdown */
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return -w.err;
}

/* ---- running the program ------------------------------------------------ */
/* Runs argv with the record on stdin; its stdout (at most cap bytes kept)
 * into out.  Returns the exit status (128+signal; 124 at the deadline),
 * or -errno when it could not start. */
static int run(struct queue *q, char **argv, const struct ql_record *rec, const char *topic,
	       uint8_t *out, size_t cap, size_t *out_len)
{
	int in[2], op[2];
	*out_len = 0;
	if (pipe2(in, O_CLOEXEC) != 0)
		return -errno;
	if (pipe2(op, O_CLOEXEC) != 0) {
		close(in[0]);
		close(in[1]);
		return -errno;
	}
	char e_topic[96], e_off[48], e_stamp[160];
	snprintf(e_topic, sizeof e_topic, "VIRGO_QUEUE_TOPIC=%s", topic);
	snprintf(e_off, sizeof e_off, "VIRGO_QUEUE_OFFSET=%" PRIu64, rec->off);
	snprintf(e_stamp, sizeof e_stamp, "VIRGO_QUEUE_STAMP=%s:%" PRIu64 ".%09" PRIu64,
		 rec->peer[0] ? rec->peer : "-", rec->time_ns / 1000000000u,
		 rec->time_ns % 1000000000u);
	char *envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", e_topic, e_off, e_stamp, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	pid_t pid;
	int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(op[1]);
	if (rc != 0) {
		close(in[1]);
		close(op[0]);
		return -rc;
	}
	fcntl(in[1], F_SETFL, O_NONBLOCK);
	size_t sent = 0;
	int wfd = in[1];
	if (rec->len == 0) {
		close(wfd);
		wfd = -1;
	}
	int64_t deadline = mono_ms() + q->set.handler_timeout_ms;
	bool killed = false;
	for (;;) {
		struct pollfd pf[2] = {{.fd = op[0], .events = POLLIN}, {.fd = wfd, .events = POLLOUT}};
		int64_t left = deadline - mono_ms();
		if (left <= 0) {
			kill(pid, SIGKILL);
			killed = true;
			break;
		}
		if (poll(pf, wfd >= 0 ? 2 : 1, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR)
			break;
		if (wfd >= 0 && (pf[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(wfd, rec->data + sent, rec->len - sent);
			if (w > 0)
				sent += (size_t)w;
			if (w < 0 && errno != EAGAIN)
				sent = rec->len; /* it does not read its input: fine */
			if (sent == rec->len) {
				close(wfd);
				wfd = -1;
			}
		}
		if (pf[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t sink[4096];
			uint8_t *dst = *out_len < cap ? out + *out_len : sink;
			size_t room = *out_len < cap ? cap - *out_len : sizeof sink;
			ssize_t r = read(op[0], dst, room);
			if (r <= 0)
				break; /* EOF: the program closed its output */
			if (dst != sink)
				*out_len += (size_t)r;
		}
	}
	if (wfd >= 0)
		close(wfd);
	close(op[0]);
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (killed)
		return 124;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- calling the plugin function ---------------------------------------- */
/* The running function's cancel flag, and the deadline watcher: a thread
 * (plugin handlers only) that sets the flag when the armed call reaches
 * its deadline.  Static: a node has one queue, so one handler.  The
 * flag is set only under qh_wmu while the call is armed, so a call that
 * returned (and disarmed) is never cancelled late, nor is the next one.
 * (A POSIX timer with SIGEV_THREAD did this before: glibc runs its
 * callbacks on a helper thread made behind the sanitizers' back, which
 * crashed the ThreadSanitizer build at the first deadline.) */
static int qh_cancel;
static pthread_mutex_t qh_wmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qh_wcond;
static struct timespec qh_wdeadline; /* CLOCK_MONOTONIC */
static bool qh_warmed, qh_wstop;
static pthread_t qh_watcher;

static void *watch_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&qh_wmu);
	while (!qh_wstop) {
		if (!qh_warmed)
			pthread_cond_wait(&qh_wcond, &qh_wmu);
		else if (pthread_cond_timedwait(&qh_wcond, &qh_wmu, &qh_wdeadline) == ETIMEDOUT &&
			 qh_warmed) {
			__atomic_store_n(&qh_cancel, 1, __ATOMIC_RELEASE);
			qh_warmed = false;
		}
	}
	pthread_mutex_unlock(&qh_wmu);
	return NULL;
}

/* Arms the watcher for a call of ms milliseconds (ms > 0), or disarms it
 * (ms == 0). */
static void watch_set(long ms)
{
	pthread_mutex_lock(&qh_wmu);
	qh_warmed = ms > 0;
	if (qh_warmed) {
		clock_gettime(CLOCK_MONOTONIC, &qh_wdeadline);
		qh_wdeadline.tv_sec += ms / 1000;
		qh_wdeadline.tv_nsec += (ms % 1000) * 1000000L;
		if (qh_wdeadline.tv_nsec >= 1000000000L) {
			qh_wdeadline.tv_sec++;
			qh_wdeadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_cond_signal(&qh_wcond);
	pthread_mutex_unlock(&qh_wmu);
}

/* 0 or an errno. */
static int watch_start(void)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&qh_wcond, &ca);
	pthread_condattr_destroy(&ca);
	qh_wstop = qh_warmed = false;
	int rc = pthread_create(&qh_watcher, NULL, watch_main, NULL);
	if (rc)
		pthread_cond_destroy(&qh_wcond);
	else
		pthread_setname_np(qh_watcher, "queue/deadline");
	return rc;
}

static void watch_stop(void)
{
	pthread_mutex_lock(&qh_wmu);
	qh_wstop = true;
	pthread_cond_signal(&qh_wcond);
	pthread_mutex_unlock(&qh_wmu);
	pthread_join(qh_watcher, NULL);
	pthread_cond_destroy(&qh_wcond);
}

/* Calls the plugin function on the record; its result (at most cap bytes
 * kept) into out.  The cancel flag is set at the deadline by the watcher (a
 * function cannot be killed; one that ignores the flag holds the handler
 * up until it returns).  Returns 0, the function's negative errno, or 124
 * when it returned after its deadline. */
static int call(struct queue *q, const struct ql_record *rec, uint8_t *out, size_t cap,
		size_t *out_len)
{
	*out_len = 0;
	__atomic_store_n(&qh_cancel, 0, __ATOMIC_RELEASE);
	pthread_mutex_lock(&q->hmu);
	if (q->hstop)
		__atomic_store_n(&qh_cancel, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&q->hmu);
	watch_set(q->set.handler_timeout_ms); /* >= 1 (queue_settings.c) */
	void *res = NULL;
	size_t res_len = 0;
	int rc = q->hfn(rec->data, rec->len, &res, &res_len, &qh_cancel);
	watch_set(0);
	bool late = __atomic_load_n(&qh_cancel, __ATOMIC_ACQUIRE);
	if (res) {
		*out_len = res_len < cap ? res_len : cap;
		memcpy(out, res, *out_len);
		free(res);
	}
	if (rc == 0 && late)
		rc = 124; /* late: its output is published, the lateness logged */
	return rc > 0 && rc != 124 ? -rc : rc;
}

/* ---- the position ------------------------------------------------------ */
static uint64_t load_pos(struct ql_topic *t)
{
	char path[640];
	snprintf(path, sizeof path, "%s/" QH_GROUP ".group", ql_path(t));
	FILE *f = fopen(path, "re");
	unsigned long long v = 0;
	if (f) {
		if (fscanf(f, "%llu", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void save_pos(struct ql_topic *t, uint64_t pos)
{
	char path[640], tmp[660];
	snprintf(path, sizeof path, "%s/" QH_GROUP ".group", ql_path(t));
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		char line[32];
		int n = snprintf(line, sizeof line, "%" PRIu64 "\n", pos);
		bool ok = write(fd, line, (size_t)n) == n && fdatasync(fd) == 0;
		close(fd);
		if (ok && rename(tmp, path) == 0)
			return;
	}
	static struct vlog_rl rl;
	vlog_limited(&rl, VLOG_WARN, "queue_handler_position topic=%s error=%s", ql_name(t),
		     strerror(errno));
}

static void *handler_main(void *arg)
{
	struct queue *q = arg;
	char cmd[sizeof q->set.handler];
	snprintf(cmd, sizeof cmd, "%s", q->set.handler);
	char *argv[QH_ARGS + 1];
	int argc = 0;
	char *save = NULL;
	for (char *w = strtok_r(cmd, " \t", &save); w && argc < QH_ARGS; w = strtok_r(NULL, " \t", &save))
		argv[argc++] = w;
	argv[argc] = NULL;
	char reply_topic[QP_NAME_MAX + 1];
	snprintf(reply_topic, sizeof reply_topic, "%s.reply", q->set.default_topic);
	size_t cap = (size_t)q->set.max_record;
	uint8_t *buf = malloc(cap ? cap : 1), *out = malloc(cap ? cap : 1);
	struct ql_topic *t = NULL;
	while (!(t = qt_find(q, q->set.default_topic)))
		if (!pause_ms(q, 1000))
			goto done;
	struct ql_reader rd;
	ql_reader_init(&rd, load_pos(t));
	while (buf && out) {
		struct ql_record rec;
		int rc = ql_read(t, &rd, buf, cap, &rec);
		if (rc == 0) {
			if (!pause_ms(q, 1000))
				break;
			continue;
		}
		if (rc < 0) {
			rd.off++; /* unreadable: skip it (reported by ql_read) */
			continue;
		}
		size_t out_len = 0;
		int st = q->hfn ? call(q, &rec, out, cap, &out_len)
				: run(q, argv, &rec, q->set.default_topic, out, cap, &out_len);
		if (st != 0)
			log_warn("queue_handler_failed topic=%s offset=%" PRIu64 " program=%s status=%d",
				 q->set.default_topic, rec.off, q->hfn ? q->set.handler : argv[0],
				 st);
		char head[192];
		int hl = snprintf(head, sizeof head, "REPLY#%s#%" PRIu64 ":%09" PRIu64 "#",
				  rec.peer[0] ? rec.peer : "-", rec.time_ns / 1000000000u,
				  rec.time_ns % 1000000000u);
		size_t n = (size_t)hl + out_len;
		if (n > cap)
			n = cap;
		uint8_t *reply = malloc(n ? n : 1);
		if (reply) {
			memcpy(reply, head, (size_t)hl < n ? (size_t)hl : n);
			if (n > (size_t)hl)
				memcpy(reply + hl, out, n - (size_t)hl);
		}
		if (!reply || publish(q, reply_topic, reply, n) != 0) {
			/* not durable: try this request again later */
			ql_reader_close(&rd);
			ql_reader_init(&rd, rec.off);
			if (!pause_ms(q, 1000))
				break;
			continue;
		}
		save_pos(t, rec.off + 1);
		pthread_mutex_lock(&q->hmu);
		bool stop = q->hstop;
		pthread_mutex_unlock(&q->hmu);
		if (stop)
			break;
	}
	ql_reader_close(&rd);
done:
	free(buf);
	free(out);
	return NULL;
}

/* "plugin <lib> <function>": loads the function into q->hfn.  0 or -EINVAL
 * after saying why. */
static int load_plugin(struct queue *q)
{
	char lib[1024], fn[256], extra[2];
	if (sscanf(q->set.handler, "plugin %1023s %255s %1s", lib, fn, extra) != 2 ||
	    lib[0] != '/') {
		log_error("queue_handler = %s: want plugin /abs/lib.so <function>", q->set.handler);
		return -EINVAL;
	}
	if (cp_plugins_open(lib, &q->hplugins) != 0)
		return -EINVAL; /* logged */
	if (!(q->hfn = cp_plugins_find(q->hplugins, fn))) {
		log_error("queue_handler: %s has no callable function %s", lib, fn);
		cp_plugins_free(q->hplugins);
		q->hplugins = NULL;
		return -EINVAL;
	}
	return 0;
}

int qh_start(struct queue *q)
{
	if (!q->set.handler[0])
		return 0;
	if (strlen(q->set.default_topic) + 6 > QP_NAME_MAX) {
		log_error("queue_default_topic too long for its reply topic <topic>.reply");
		return -EINVAL;
	}
	if (strncmp(q->set.handler, "plugin ", 7) == 0) {
		int prc = load_plugin(q);
		if (prc)
			return prc;
	} else if (q->set.handler[0] != '/') {
		log_error("queue_handler = %s: want an absolute path (or plugin /abs/lib.so "
			  "<function>)",
			  q->set.handler);
		return -EINVAL;
	}
	pthread_mutex_init(&q->hmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->hcond, &ca);
	pthread_condattr_destroy(&ca);
	/* before any client: no wake (qh_wake) can come before hstarted */
	int rc = q->hfn ? -watch_start() : 0;
	if (!rc) {
		rc = q_thread_start(q, &q->handler, &q->hstarted, handler_main, "queue/handler");
		if (rc && q->hfn)
			watch_stop();
	}
	if (rc) {
		cp_plugins_free(q->hplugins);
		q->hplugins = NULL;
		q->hfn = NULL;
		return rc;
	}
	log_info("queue_handler topic=%s program=\"%s\" replies=%s.reply", q->set.default_topic,
		 q->set.handler, q->set.default_topic);
	return 0;
}

void qh_stop(struct queue *q)
{
	if (!q->hstarted)
		return;
	pthread_mutex_lock(&q->hmu);
	q->hstop = true;
	__atomic_store_n(&qh_cancel, 1, __ATOMIC_RELEASE); /* a running function */
	pthread_cond_signal(&q->hcond);
	pthread_mutex_unlock(&q->hmu);
	/* a program still running is waited for up to its deadline */
	pthread_join(q->handler, NULL);
	if (q->hfn)
		watch_stop();
	q->hstarted = false;
	cp_plugins_free(q->hplugins);
	q->hplugins = NULL;
	q->hfn = NULL;
	pthread_mutex_destroy(&q->hmu);
	pthread_cond_destroy(&q->hcond);
}
