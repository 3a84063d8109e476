/*
 * jobs.c - background jobs of the virgo command: `virgo clone --bg` and
 * `virgo run --bg` print a job id at once, `virgo jobs` lists them,
 * `virgo wait <job>` prints a job's result and exits as the foreground
 * command would have, `virgo cancel <job>` stops it.
 *
 * libvirgo's async jobs (virgo_clone_submit) live in the process that
 * submitted them, and a node cancels a job whose client connection
 * closes, so a one-shot CLI cannot hand a job to a later invocation by id
 * alone.  Instead each background job is held by a small detached virgo
 * process (its own session, stdio on /dev/null) that makes the blocking
 * call and leaves the result in a per-user job directory:
 * $XDG_RUNTIME_DIR/virgo-jobs, else /tmp/virgo-jobs-<uid> (mode 0700,
 * refused unless the user owns it).  Each job is a numbered directory:
 * `cmd` (what ran, for the listing), `pid` (holder pid, its start time
 * in clock ticks, the wall-clock start), and once finished `out`, `err`
 * and `status` (renamed into place last).  Cancelling kills the holder:
 * its connection closes and the node cancels the job (kills the program,
 * drops it from the queue, sets a plugin's cancel flag).  A result stays
 * until `virgo wait` (or `cancel`) collects it.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define JOBS_CMD_MAX 200
#define JOBS_MAX_ID 999999999L

/* The job directory (created when create is true): 0, or -1 after
 * printing why. */
static int jobs_dir(char *buf, size_t cap, bool create)
{
	const char *x = getenv("XDG_RUNTIME_DIR");
	if (x && x[0] == '/')
		snprintf(buf, cap, "%s/virgo-jobs", x);
	else
		snprintf(buf, cap, "/tmp/virgo-jobs-%ld", (long)getuid());
	if (create && mkdir(buf, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "virgo: cannot create the job directory %s: %s\n", buf,
			strerror(errno));
		return -1;
	}
	struct stat st;
	if (lstat(buf, &st) != 0) {
		if (errno == ENOENT && !create)
			return 1; /* no job was ever started */
		fprintf(stderr, "virgo: job directory %s: %s\n", buf, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
		fprintf(stderr,
			"virgo: job directory %s is not a private directory of this user "
			"(mode 0700); refusing to use it\n",
			buf);
		return -1;
	}
	return 0;
}

/* A process's start time in clock ticks (field 22 of /proc/<pid>/stat),
 * 0 if it is gone: with the pid it names one process for good. */
static unsigned long long jobs_proc_start(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the name may hold spaces */
	if (!p)
		return 0;
	char state = 0;
	unsigned long long start = 0;
	/* after ")": state, then fields 4..21, then starttime (22) */
	if (sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
			  "%*s %*s %llu",
		   &state, &start) != 2 ||
	    state == 'Z' || state == 'X')
		return 0;
	return start;
}

/* Writes len bytes to dir/name (0600); 0 or -1. */
static int jobs_write(const char *dir, const char *name, const void *data, size_t len)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	const char *p = data;
	while (len) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			close(fd);
			return -1;
		}
		p += w;
		len -= (size_t)w;
	}
	return close(fd);
}

/* All of dir/name, malloc'd and NUL-terminated (caller frees); NULL if
 * it is not there. */
static char *jobs_read(const char *dir, const char *name, size_t *len)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	while (b) {
		if (n + 1 >= cap) {
			char *nb = realloc(b, cap * 2);
			if (!nb) {
				free(b);
				b = NULL;
				break;
			}
			b = nb;
			cap *= 2;
		}
		size_t r = fread(b + n, 1, cap - 1 - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	if (b)
		b[n] = '\0';
	if (len)
		*len = n;
	return b;
}

/* Removes a job's directory and its files. */
static void jobs_remove(const char *jdir)
{
	static const char *const files[] = {"cmd", "pid", "out", "err", "status", "status.tmp"};
	char path[600];
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(path, sizeof path, "%s/%s", jdir, files[i]);
		unlink(path);
	}
	rmdir(jdir);
}

/* What a job directory says. */
enum job_state { JOB_RUNNING, JOB_DONE, JOB_LOST };
struct job_info {
	long id;
	char dir[560];
	char cmd[JOBS_CMD_MAX + 1];
	pid_t pid;
	unsigned long long start_ticks;
	long long started; /* wall clock, seconds */
	enum job_state state;
	/* status (JOB_DONE): the call's rc, then the run result */
	int rc, exit_code, signaled, term_signal, truncated, is_run;
	unsigned node;
	char detail[512];
};

/* Reads job id's directory: 0, 1 when there is no such job, -1 after
 * printing why. */
static int jobs_load(const char *base, long id, struct job_info *j)
{
	memset(j, 0, sizeof *j);
	j->id = id;
	snprintf(j->dir, sizeof j->dir, "%s/%ld", base, id);
	char *pid = jobs_read(j->dir, "pid", NULL);
	if (!pid)
		return 1;
	long p = 0;
	sscanf(pid, "%ld %llu %lld", &p, &j->start_ticks, &j->started);
	free(pid);
	j->pid = (pid_t)p;
	char *cmd = jobs_read(j->dir, "cmd", NULL);
	if (cmd) {
		snprintf(j->cmd, sizeof j->cmd, "%s", cmd);
		free(cmd);
	}
	char *st = jobs_read(j->dir, "status", NULL);
	if (st) {
		j->state = JOB_DONE;
		int n = 0;
		sscanf(st, "%d %d %d %d %d %u %d %n", &j->rc, &j->exit_code, &j->signaled,
		       &j->term_signal, &j->truncated, &j->node, &j->is_run, &n);
		if (n > 0) {
			snprintf(j->detail, sizeof j->detail, "%s", st + n);
			j->detail[strcspn(j->detail, "\n")] = '\0';
		}
		free(st);
	} else if (j->pid <= 0 || jobs_proc_start(j->pid) != j->start_ticks) {
		j->state = JOB_LOST; /* its holder died without a result */
	}
	return 0;
}

/* A job id operand: "3" or "%3" (the shell's habit). */
static int jobs_parse_id(const char *cmd, const char *s, long *id)
{
	unsigned long v;
	if (*s == '%')
		s++;
	if (cli_parse_uint(cmd, s, 1, JOBS_MAX_ID, &v))
		return -1;
	*id = (long)v;
	return 0;
}

/* The command line of a job for the listing: words joined by spaces,
 * control bytes as '?', cut at JOBS_CMD_MAX. */
static void jobs_cmdline(char *buf, const char *kind, char *const *words, int n)
{
	size_t len = (size_t)snprintf(buf, JOBS_CMD_MAX + 1, "%s", kind);
	for (int i = 0; i < n && len < JOBS_CMD_MAX; i++) {
		buf[len++] = ' ';
		for (const char *w = words[i]; *w && len < JOBS_CMD_MAX; w++)
			buf[len++] = (unsigned char)*w < 0x20 || *w == 0x7f ? '?' : *w;
	}
	buf[len] = '\0';
}

/* The holder: makes the call, leaves the result, exits. */
static void jobs_hold(const char *jdir, const struct cli_bg_call *call)
{
	struct virgo_run_result r;
	memset(&r, 0, sizeof r);
	int rc;
	if (call->is_run) {
		rc = virgo_run_ex(call->argv, &call->opts, &r);
	} else {
		void *o = NULL;
		size_t n = 0;
		rc = virgo_clone_ex(call->fn, call->arg, call->arg_len, &call->opts, &o, &n,
				    &r.node_id);
		r.out = o;
		r.out_len = n;
	}
	char detail[512];
	snprintf(detail, sizeof detail, "%s", rc ? virgo_last_error() : "");
	for (char *d = detail; *d; d++)
		if (*d == '\n' || *d == '\r')
			*d = ' ';
	jobs_write(jdir, "out", r.out ? r.out : "", r.out_len);
	jobs_write(jdir, "err", r.err ? r.err : "", r.err_len);
	char st[700];
	int n = snprintf(st, sizeof st, "%d %d %d %d %d %u %d %s\n", rc, r.exit_code, r.signaled,
			 r.term_signal, r.truncated, r.node_id, call->is_run, detail);
	jobs_write(jdir, "status.tmp", st, (size_t)n);
	char a[600], b[600];
	snprintf(a, sizeof a, "%s/status.tmp", jdir);
	snprintf(b, sizeof b, "%s/status", jdir);
	rename(a, b);
	virgo_run_result_free(&r);
}

int cli_bg_start(const struct cli_bg_call *call, char *const *words, int nwords)
{
	char base[512];
	if (jobs_dir(base, sizeof base, true))
		return 1;
	/* the next free number: one past the highest present */
	long id = 0;
	DIR *d = opendir(base);
	if (d) {
		for (struct dirent *e; (e = readdir(d));) {
			char *end;
			long v = strtol(e->d_name, &end, 10);
			if (*end == '\0' && v > id && v < JOBS_MAX_ID)
				id = v;
		}
		closedir(d);
	}
	char jdir[600];
	for (;;) {
		if (++id > JOBS_MAX_ID) {
			fprintf(stderr, "virgo: no free job number in %s\n", base);
			return 1;
		}
		snprintf(jdir, sizeof jdir, "%s/%ld", base, id);
		if (mkdir(jdir, 0700) == 0)
			break;
		if (errno != EEXIST) {
			fprintf(stderr, "virgo: cannot create %s: %s\n", jdir, strerror(errno));
			return 1;
		}
	}
	char cmd[JOBS_CMD_MAX + 1];
	jobs_cmdline(cmd, call->is_run ? "run --" : "clone", words, nwords);
	jobs_write(jdir, "cmd", cmd, strlen(cmd));
	fflush(NULL);
	/* double fork: the holder is in a session of its own and nobody's
	 * child here, so the shell neither waits for nor signals it */
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "virgo: fork: %s\n", strerror(errno));
		jobs_remove(jdir);
		return 1;
	}
	if (child == 0) {
		setsid();
		int sync[2];
		if (pipe(sync) != 0)
			_exit(1);
		pid_t holder = fork();
		if (holder < 0)
			_exit(1);
		if (holder == 0) {
			close(sync[0]);
			int nul = open("/dev/null", O_RDWR);
			if (nul >= 0) {
				dup2(nul, 0);
				dup2(nul, 1);
				dup2(nul, 2);
				if (nul > 2)
					close(nul);
			}
			signal(SIGHUP, SIG_IGN);
			signal(SIGPIPE, SIG_IGN);
			char pid[96];
			int n = snprintf(pid, sizeof pid, "%ld %llu %lld\n", (long)getpid(),
					 jobs_proc_start(getpid()), (long long)time(NULL));
			jobs_write(jdir, "pid", pid, (size_t)n);
			close(sync[1]); /* the pid file is there */
			jobs_hold(jdir, call);
			_exit(0);
		}
		close(sync[1]);
		char c;
		while (read(sync[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "virgo: could not start the background job\n");
		jobs_remove(jdir);
		return 1;
	}
	printf("%ld\n", id);
	return 0;
}

static const char *jobs_state_name(const struct job_info *j, char *buf, size_t cap)
{
	if (j->state == JOB_RUNNING)
		return "running";
	if (j->state == JOB_LOST)
		return "lost";
	if (j->rc == -ETIMEDOUT)
		return "deadline";
	if (j->rc)
		return "failed";
	if (j->is_run && j->exit_code) {
		snprintf(buf, cap, "exit %d", j->exit_code);
		return buf;
	}
	return "done";
}

static int jobs_cmp(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return (x > y) - (x < y);
}

int cmd_jobs(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return cli_usage("jobs", "takes no arguments");
	char base[512];
	int r = jobs_dir(base, sizeof base, false);
	if (r < 0)
		return 1;
	printf("%-6s %-9s %-5s %-8s %-6s %s\n", "JOB", "STATE", "NODE", "PID", "AGE", "COMMAND");
	if (r > 0)
		return 0;
	DIR *d = opendir(base);
	if (!d)
		return 0;
	size_t n = 0, cap = 64;
	long *ids = malloc(cap * sizeof *ids);
	for (struct dirent *e; ids && (e = readdir(d));) {
		char *end;
		long v = strtol(e->d_name, &end, 10);
		if (*end || v <= 0)
			continue;
		if (n == cap) {
			long *ni = realloc(ids, cap * 2 * sizeof *ids);
			if (!ni)
				break;
			ids = ni;
			cap *= 2;
		}
		ids[n++] = v;
	}
	closedir(d);
	if (!ids)
		return cli_fail("jobs", -ENOMEM);
	qsort(ids, n, sizeof *ids, jobs_cmp);
	long long now = (long long)time(NULL);
	for (size_t i = 0; i < n; i++) {
		struct job_info j;
		if (jobs_load(base, ids[i], &j) != 0)
			continue; /* being created, or not a job */
		char sb[32], node[16] = "-", age[24];
		if (j.state == JOB_DONE && j.node)
			snprintf(node, sizeof node, "%u", j.node);
		long long a = j.started ? now - j.started : 0;
		if (a < 120)
			snprintf(age, sizeof age, "%llds", a);
		else if (a < 7200)
			snprintf(age, sizeof age, "%lldm", a / 60);
		else
			snprintf(age, sizeof age, "%lldh", a / 3600);
		printf("%-6ld %-9s %-5s %-8ld %-6s %s\n", j.id, jobs_state_name(&j, sb, sizeof sb),
		       node, (long)j.pid, age, j.cmd);
	}
	free(ids);
	return 0;
}

/* Prints a finished job's result as the foreground command would and
 * returns its exit status. */
static int jobs_report(const struct job_info *j)
{
	size_t ol = 0, el = 0;
	char *o = jobs_read(j->dir, "out", &ol), *e = jobs_read(j->dir, "err", &el);
	int code;
	if (j->rc) {
		fprintf(stderr, "virgo: job %ld (%s): %s\n", j->id, j->cmd,
			j->detail[0] ? j->detail : virgo_strerror(j->rc));
		/* as run: 124 killed at the deadline, 125 not run; clone: 1 */
		code = j->is_run ? (j->rc == -ETIMEDOUT ? 124 : 125) : 1;
	} else {
		fflush(stdout);
		if (ol)
			fwrite(o, 1, ol, stdout);
		if (!j->is_run && isatty(STDOUT_FILENO) && (ol == 0 || o[ol - 1] != '\n'))
			putchar('\n');
		fflush(stdout);
		if (el)
			fwrite(e, 1, el, stderr);
		if (j->truncated)
			fprintf(stderr, "virgo: output truncated at the node's output_cap\n");
		code = j->is_run ? j->exit_code : 0;
	}
	free(o);
	free(e);
	return code;
}

int cmd_wait(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("wait", "wants one job id (see virgo jobs)");
	long id;
	if (jobs_parse_id("wait", argv[1], &id))
		return 2;
	char base[512];
	int r = jobs_dir(base, sizeof base, false);
	if (r < 0)
		return 1;
	struct job_info j;
	for (int waited_ms = 0;; waited_ms += 50) {
		if (r > 0 || jobs_load(base, id, &j) != 0) {
			fprintf(stderr, "virgo: no job %ld (see virgo jobs)\n", id);
			return 1;
		}
		if (j.state != JOB_RUNNING)
			break;
		struct timespec ts = {0, (waited_ms < 1000 ? 20 : 100) * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (j.state == JOB_LOST) {
		fprintf(stderr,
			"virgo: job %ld (%s): its holder process %ld ended without a result "
			"(killed, or the machine restarted); the node cancelled the job\n",
			id, j.cmd, (long)j.pid);
		jobs_remove(j.dir);
		return 125;
	}
	int code = jobs_report(&j);
	jobs_remove(j.dir);
	return code;
}

int cmd_cancel(int argc, char **argv)
{
	if (argc != 2)
		return cli_usage("cancel", "wants one job id (see virgo jobs)");
	long id;
	if (jobs_parse_id("cancel", argv[1], &id))
		return 2;
	char base[512];
	int r = jobs_dir(base, sizeof base, false);
	struct job_info j;
	if (r < 0)
		return 1;
	if (r > 0 || jobs_load(base, id, &j) != 0) {
		fprintf(stderr, "virgo: no job %ld (see virgo jobs)\n", id);
		return 1;
	}
	if (j.state == JOB_RUNNING) {
		kill(j.pid, SIGTERM);
		/* gone once its start time no longer matches (reaped by init) */
		for (int i = 0; i < 250 && jobs_proc_start(j.pid) == j.start_ticks; i++) {
			struct timespec ts = {0, 20 * 1000000L};
			nanosleep(&ts, NULL);
		}
		if (jobs_proc_start(j.pid) == j.start_ticks)
			kill(j.pid, SIGKILL);
		/* it may have finished meanwhile: then say so */
		struct job_info again;
		if (jobs_load(base, id, &again) == 0 && again.state == JOB_DONE) {
			printf("job %ld had finished; result discarded\n", id);
		} else {
			printf("job %ld cancelled\n", id);
		}
	} else {
		printf("job %ld had %s; result discarded\n", id,
		       j.state == JOB_LOST ? "lost its holder" : "finished");
	}
	jobs_remove(j.dir);
	return 0;
}
