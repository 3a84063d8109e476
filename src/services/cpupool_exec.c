/*
 * cpupool_exec.c - fork/exec of an allowed program with captured output
 * (cpupool_exec.h).
 *
 * fork rather than posix_spawn because the child must set resource limits,
 * its own process group and a clean signal state before exec, and only
 * async-signal-safe calls run between fork and exec (argv, envp and limits
 * are all prepared before the fork).  A CLOEXEC pipe carries exec's errno
 * back, so "no such program" is an error reply rather than exit code 127.
 *
 * Between the node and the program stands a shepherd process: a child
 * subreaper (PR_SET_CHILD_SUBREAPER) that forks the program and waits.
 * Whatever the program starts, even in a new session (setsid) or process
 * group, stays a descendant of the shepherd when its parent dies, so when
 * the program exits, or the node asks (SIGTERM at the deadline or on
 * cancel), the shepherd kills and reaps all of them (its children from
 * /proc/self/task/<tid>/children, SIGKILL, reap, again until none is
 * left), then sends the program's wait status on a pipe and exits.  Where
 * a pids cgroup can be made (cpupool_cgroup.c) the shepherd joins it
 * before forking, which caps how many processes the job may have.
 * The parent polls stdout, stderr, the cancel fd and a pidfd (shepherd
 * exit) against the deadline.
 */
#include "cpupool_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cpupool_cgroup.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct capture {
	uint8_t *buf;
	size_t len, cap;
	bool open, truncated;
};

/* Reads what is available from fd into c (up to limit, the rest dropped).
 * Returns 0, or -ENOMEM. */
static int capture_read(int fd, struct capture *c, uint64_t limit)
{
	for (;;) {
		uint8_t tmp[16384];
		ssize_t r = read(fd, tmp, sizeof tmp);
		if (r == 0) {
			c->open = false;
			return 0;
		}
		if (r < 0) {
			if (errno != EINTR && errno != EAGAIN)
				c->open = false; /* a broken pipe: nothing more will come */
			return 0;
		}
		size_t room = limit > c->len ? (size_t)(limit - c->len) : 0;
		size_t take = (size_t)r < room ? (size_t)r : room;
		if (take < (size_t)r)
			c->truncated = true;
		if (take) {
			if (c->len + take > c->cap) {
				size_t nc = c->cap ? c->cap * 2 : 4096;
				while (nc < c->len + take)
					nc *= 2;
				uint8_t *nb = realloc(c->buf, nc);
				if (!nb)
					return -ENOMEM;
				c->buf = nb;
				c->cap = nc;
			}
			memcpy(c->buf + c->len, tmp, take);
			c->len += take;
		}
	}
}

static void child_exec(const char *path, char *const argv[], const struct cp_exec_limits *lim,
		       int devnull, int out_w, int err_w, int errpipe_w)
{
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	if (dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		goto fail;
	syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
	struct rlimit rl = {0, 0};
	setrlimit(RLIMIT_CORE, &rl);
	if (lim->mem_limit) {
		rl.rlim_cur = rl.rlim_max = lim->mem_limit;
		setrlimit(RLIMIT_AS, &rl);
	}
	rl.rlim_cur = rl.rlim_max = 1024;
	setrlimit(RLIMIT_NOFILE, &rl);
	int64_t left = lim->deadline_ms - now_ms();
	rl.rlim_cur = rl.rlim_max = (rlim_t)(left > 0 ? left / 1000 + 2 : 2);
	setrlimit(RLIMIT_CPU, &rl);
	static char *const envp[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C", NULL};
	/* lim->env was built before fork, with PATH and LC_ALL first */
	execve(path, argv, lim->env ? lim->env : envp);
fail:;
	int e = errno;
	ssize_t w = write(errpipe_w, &e, sizeof e);
	(void)w;
	_exit(127);
}

/* Async-signal-safe decimal of a non-negative number; returns the end. */
static char *put_uint(char *p, unsigned long v)
{
	char tmp[24];
	int n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) > 0);
	while (n > 0)
		*p++ = tmp[--n];
	*p = '\0';
	return p;
}

/* Shepherd: SIGKILLs every child (descendants re-parent to us as their
 * parents die, so repeat) and reaps them all.  Only async-signal-safe
 * calls: this runs in a child of a threaded process. */
static void shepherd_kill_all(pid_t prog)
{
	char path[64] = "/proc/self/task/";
	memcpy(put_uint(path + strlen(path), (unsigned long)getpid()), "/children", 10);
	kill(-prog, SIGKILL); /* the program's own group, at once */
	for (;;) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			char buf[8192];
			ssize_t n = read(fd, buf, sizeof buf - 1);
			close(fd);
			if (n == (ssize_t)sizeof buf - 1) /* the last number may be cut */
				while (n > 0 && buf[n - 1] != ' ')
					n--;
			unsigned long pid = 0;
			bool digits = false;
			for (ssize_t i = 0; i < n; i++) {
				if (buf[i] >= '0' && buf[i] <= '9') {
					pid = pid * 10 + (unsigned long)(buf[i] - '0');
					digits = true;
				} else {
					if (digits && pid > 1)
						kill((pid_t)pid, SIGKILL);
					pid = 0;
					digits = false;
				}
			}
		}
		int st;
		/* without /proc nothing is known to be dead: don't block */
		pid_t r = waitpid(-1, &st, fd >= 0 ? 0 : WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return; /* ECHILD: nobody left */
	}
}

struct shepherd_io {
	int devnull, out_w, err_w, errpipe_w, status_w, cg_procs;
};

/* The shepherd process (see the top of the file).  SIGTERM and SIGCHLD
 * arrive blocked (the parent blocked them around fork) and are taken with
 * sigwaitinfo. */
static void shepherd_main(const char *path, char *const argv[], const struct cp_exec_limits *lim,
			  const struct shepherd_io *io)
{
	signal(SIGCHLD, SIG_DFL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	prctl(PR_SET_PDEATHSIG, SIGTERM); /* the node died: clean up too */
	setpgid(0, 0);
	if (io->cg_procs >= 0) { /* join the job's cgroup: the program inherits it */
		char num[24];
		char *e = put_uint(num, (unsigned long)getpid());
		ssize_t w = write(io->cg_procs, num, (size_t)(e - num));
		(void)w;
		close(io->cg_procs);
	}
	/* vfork: the shepherd has nothing to do until the program runs, and
	 * child_exec never returns (exec or _exit) */
	pid_t prog = vfork();
	if (prog < 0) {
		int e = errno;
		ssize_t w = write(io->errpipe_w, &e, sizeof e);
		(void)w;
		_exit(127);
	}
	if (prog == 0)
		child_exec(path, argv, lim, io->devnull, io->out_w, io->err_w, io->errpipe_w);
	setpgid(prog, prog);
	close(io->devnull);
	close(io->out_w);
	close(io->err_w);
	close(io->errpipe_w);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	int status = 0;
	for (;;) {
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig == SIGTERM) { /* deadline or cancel */
			shepherd_kill_all(prog);
			_exit(0);
		}
		if (sig != SIGCHLD)
			continue;
		bool done = false;
		int st;
		pid_t r;
		while ((r = waitpid(-1, &st, WNOHANG)) > 0) {
			if (r == prog) {
				status = st;
				done = true;
			}
		}
		if (done)
			break;
	}
	/* the program is gone: nothing it started may outlive it (nor keep
	 * the output pipes open) */
	shepherd_kill_all(prog);
	ssize_t w = write(io->status_w, &status, sizeof status);
	(void)w;
	_exit(0);
}

/* Reaps the shepherd, waiting as long as it takes (it exits promptly
 * once asked; SIGKILL after 2 s as a last resort). */
static void reap(pid_t pid, bool ask)
{
	if (ask)
		kill(pid, SIGTERM);
	int64_t until = now_ms() + 2000;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, ask ? WNOHANG : 0);
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		if (r == 0) {
			if (now_ms() > until) {
				kill(pid, SIGKILL);
				ask = false;
			} else {
				struct timespec ts = {0, 2 * 1000 * 1000};
				nanosleep(&ts, NULL);
			}
		}
	}
}

int cp_exec_run(const char *path, char *const argv[], const struct cp_exec_limits *lim,
		int cancel_fd, struct cp_exec_result *res)
{
	memset(res, 0, sizeof *res);
	int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, errpipe[2] = {-1, -1}, stp[2] = {-1, -1};
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int cg_procs;
	int cg_slot = cp_cgroup_job_take(lim->cg, &cg_procs);
	int rc = 0;
	if (devnull < 0 || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) ||
	    pipe2(errpipe, O_CLOEXEC) || pipe2(stp, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	pid_t pid = fork();
	if (pid == 0) {
		struct shepherd_io io = {devnull, out_p[1], err_p[1], errpipe[1], stp[1], cg_procs};
		shepherd_main(path, argv, lim, &io);
	}
	int fork_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (pid < 0) {
		rc = -fork_errno;
		goto out;
	}
	close(out_p[1]);
	close(err_p[1]);
	close(errpipe[1]);
	close(stp[1]);
	out_p[1] = err_p[1] = errpipe[1] = stp[1] = -1;
	int exec_errno = 0;
	ssize_t er;
	do
		er = read(errpipe[0], &exec_errno, sizeof exec_errno);
	while (er < 0 && errno == EINTR);
	if (er == (ssize_t)sizeof exec_errno) { /* exec failed; the shepherd ends */
		reap(pid, false);
		rc = -(exec_errno ? exec_errno : ENOEXEC);
		goto out;
	}
	fcntl(out_p[0], F_SETFL, O_NONBLOCK);
	fcntl(err_p[0], F_SETFL, O_NONBLOCK);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct capture cap[2] = {{.open = true}, {.open = true}};
	int fds[2] = {out_p[0], err_p[0]};
	bool exited = false;
	for (;;) {
		struct pollfd p[4];
		int np = 0, idx[2] = {-1, -1};
		for (int i = 0; i < 2; i++) {
			if (cap[i].open) {
				idx[i] = np;
				p[np++] = (struct pollfd){.fd = fds[i], .events = POLLIN};
			}
		}
		int ci = np;
		p[np++] = (struct pollfd){.fd = cancel_fd, .events = POLLIN};
		int pi = -1;
		if (pidfd >= 0) {
			pi = np;
			p[np++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		}
		int64_t left = lim->deadline_ms - now_ms();
		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		/* without a pidfd, look at the shepherd every 20 ms */
		int wait = pidfd >= 0 ? (int)left : (left < 20 ? (int)left : 20);
		int r = poll(p, (nfds_t)np, wait);
		if (r < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (cancel_fd >= 0 && r > 0 && p[ci].revents) {
			rc = -ECANCELED;
			break;
		}
		for (int i = 0; i < 2 && r > 0; i++) {
			if (idx[i] >= 0 && p[idx[i]].revents && (rc = capture_read(fds[i], &cap[i], lim->output_cap)))
				break;
		}
		if (rc)
			break;
		bool done = false;
		if (pi >= 0 ? (r > 0 && p[pi].revents) : true) {
			siginfo_t si = {0};
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
				done = true;
		}
		if (done) {
			/* the program and all it started are gone (the
			 * shepherd saw to it): collect what is buffered */
			for (int i = 0; i < 2; i++)
				if (cap[i].open && capture_read(fds[i], &cap[i], lim->output_cap))
					rc = -ENOMEM;
			reap(pid, false);
			exited = true;
			break;
		}
	}
	if (!exited)
		reap(pid, true);
	if (pidfd >= 0)
		close(pidfd);
	int status = 0;
	if (rc == 0) {
		do
			er = read(stp[0], &status, sizeof status);
		while (er < 0 && errno == EINTR);
		if (er != (ssize_t)sizeof status)
			rc = -ECHILD; /* the shepherd was killed from outside */
	}
	if (rc == 0) {
		res->signaled = WIFSIGNALED(status);
		res->code = WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status);
		res->out = cap[0].buf;
		res->out_len = cap[0].len;
		res->err = cap[1].buf;
		res->err_len = cap[1].len;
		res->truncated = cap[0].truncated || cap[1].truncated;
	} else {
		free(cap[0].buf);
		free(cap[1].buf);
	}
out:
	for (int i = 0; i < 2; i++) {
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
		if (errpipe[i] >= 0)
			close(errpipe[i]);
		if (stp[i] >= 0)
			close(stp[i]);
	}
	if (devnull >= 0)
		close(devnull);
	if (cg_procs >= 0)
		close(cg_procs);
	cp_cgroup_job_put(lim->cg, cg_slot); /* everyone in it was reaped */
	return rc;
}

void cp_exec_result_free(struct cp_exec_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}
