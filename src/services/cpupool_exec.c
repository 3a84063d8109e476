/*
 * cpupool_exec.c - fork/exec of an allowed program with captured output
 * (cpupool_exec.h).
 *
 * fork rather than posix_spawn because the child must set resource limits,
 * its own process group and a clean signal state before exec, and only
 * async-signal-safe calls run between fork and exec (argv, envp and limits
 * are all prepared before the fork).  A CLOEXEC pipe carries exec's errno
 * back, so "no such program" is an error reply rather than exit code 127.
 * The parent polls stdout, stderr, the cancel fd and a pidfd (child exit)
 * against the deadline; when the child exits, the rest of its group is
 * killed (a background grandchild must not keep the pipes open) and it is
 * reaped.  On timeout or cancel the whole group gets SIGKILL, then reaped.
 */
#include "cpupool_exec.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

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
	execve(path, argv, envp);
fail:;
	int e = errno;
	ssize_t w = write(errpipe_w, &e, sizeof e);
	(void)w;
	_exit(127);
}

/* Kills the group and reaps the child, waiting as long as it takes (a
 * SIGKILLed process exits promptly). */
static int reap(pid_t pid, bool kill_group, int *status)
{
	if (kill_group)
		kill(-pid, SIGKILL);
	for (;;) {
		pid_t r = waitpid(pid, status, 0);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

int cp_exec_run(const char *path, char *const argv[], const struct cp_exec_limits *lim,
		int cancel_fd, struct cp_exec_result *res)
{
	memset(res, 0, sizeof *res);
	int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, errpipe[2] = {-1, -1};
	int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int rc = 0;
	if (devnull < 0 || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) ||
	    pipe2(errpipe, O_CLOEXEC)) {
		rc = -errno;
		goto out;
	}
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0)
		child_exec(path, argv, lim, devnull, out_p[1], err_p[1], errpipe[1]);
	setpgid(pid, pid); /* also in the parent: no race with kill(-pid) */
	close(out_p[1]);
	close(err_p[1]);
	close(errpipe[1]);
	out_p[1] = err_p[1] = errpipe[1] = -1;
	int exec_errno = 0;
	ssize_t er;
	do
		er = read(errpipe[0], &exec_errno, sizeof exec_errno);
	while (er < 0 && errno == EINTR);
	if (er == (ssize_t)sizeof exec_errno) { /* exec failed; child exits 127 */
		int st;
		reap(pid, false, &st);
		rc = -(exec_errno ? exec_errno : ENOEXEC);
		goto out;
	}
	fcntl(out_p[0], F_SETFL, O_NONBLOCK);
	fcntl(err_p[0], F_SETFL, O_NONBLOCK);
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	struct capture cap[2] = {{.open = true}, {.open = true}};
	int fds[2] = {out_p[0], err_p[0]};
	bool exited = false;
	int status = 0;
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
		/* without a pidfd, look at the child every 20 ms */
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
		bool child_done = false;
		if (pi >= 0 ? (r > 0 && p[pi].revents) : true) {
			siginfo_t si = {0};
			if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid)
				child_done = true;
		}
		if (child_done) {
			/* the child is gone: collect what is buffered, kill any
			 * grandchildren that hold the pipes, then reap */
			kill(-pid, SIGKILL);
			for (int i = 0; i < 2; i++)
				if (cap[i].open && capture_read(fds[i], &cap[i], lim->output_cap))
					rc = -ENOMEM;
			reap(pid, false, &status);
			exited = true;
			break;
		}
	}
	if (!exited)
		reap(pid, true, &status);
	if (pidfd >= 0)
		close(pidfd);
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
	}
	if (devnull >= 0)
		close(devnull);
	return rc;
}

void cp_exec_result_free(struct cp_exec_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}
