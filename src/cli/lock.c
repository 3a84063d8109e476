/*
 * lock.c - `virgo lock [--wait T] [--ttl T] NAME -- cmd...` and
 * `virgo lock ls [NAME]`: flock(1) for the cluster (cloudsync).
 *
 * The command runs while this process holds the lock; a thread renews the
 * lease every third of its TTL.  If a renewal fails the hold is gone (the
 * node has released it or will not confirm it), so the command must stop
 * touching what the lock protects: it gets SIGTERM, then SIGKILL after a
 * grace period, and we say why.  VIRGO_LOCK_TOKEN and VIRGO_LOCK_NAME are
 * exported so the command can fence its writes.  SIGINT, SIGTERM and
 * SIGHUP sent to us are passed to the command, and we keep holding the
 * lock until it has exited (dying first would release the lock under a
 * still-running command).  Exit status: the command's (128+N if killed by
 * signal N), 1 if the lock was not taken, 2 usage, 126/127 not runnable.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define LOCK_GRACE_MS 5000 /* SIGTERM -> SIGKILL when the lease is lost */

static volatile sig_atomic_t child_pid;

static void forward_signal(int sig)
{
	if (child_pid > 0)
		kill((pid_t)child_pid, sig);
}

struct renewer {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool stop, lost;
	virgo_lock_t *lock;
	uint64_t ttl_ms;
	pid_t pid;
	pthread_t th;
};

static void deadline_in(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Waits up to ms unless stopped; true if stopped. */
static bool renewer_sleep(struct renewer *r, uint64_t ms)
{
	struct timespec ts;
	deadline_in(&ts, ms);
	pthread_mutex_lock(&r->mu);
	while (!r->stop && pthread_cond_timedwait(&r->cond, &r->mu, &ts) != ETIMEDOUT)
		;
	bool stop = r->stop;
	pthread_mutex_unlock(&r->mu);
	return stop;
}

static void *renewer_main(void *arg)
{
	struct renewer *r = arg;
	uint64_t every = r->ttl_ms / 3 ? r->ttl_ms / 3 : 1;
	while (!renewer_sleep(r, every)) {
		int rc = virgo_lock_renew(r->lock);
		if (rc == 0 && virgo_lock_left_ms(r->lock) > 0)
			continue;
		const char *why = rc ? virgo_last_error() : "lease ran out before the renewal came back";
		fprintf(stderr,
			"virgo lock: lost the lock '%s' (token %" PRIu64 "): %s; stopping the command "
			"(SIGTERM to pid %d, SIGKILL in %d s)\n",
			virgo_lock_name(r->lock), virgo_lock_token(r->lock),
			why && *why ? why : virgo_strerror(rc), (int)r->pid, LOCK_GRACE_MS / 1000);
		pthread_mutex_lock(&r->mu);
		r->lost = true;
		pthread_mutex_unlock(&r->mu);
		kill(r->pid, SIGTERM);
		if (!renewer_sleep(r, LOCK_GRACE_MS)) {
			fprintf(stderr, "virgo lock: pid %d still running: SIGKILL\n", (int)r->pid);
			kill(r->pid, SIGKILL);
		}
		break;
	}
	return NULL;
}

static int lock_ls(int argc, char **argv)
{
	const char *name = argc > 2 ? argv[2] : NULL;
	if (argc > 3)
		return cli_usage("lock", "ls takes at most one lock name");
	int n = virgo_node_count();
	if (n < 0)
		return cli_fail("lock ls", n);
	int failed = 0;
	printf("%-6s %-24s %-16s %-22s %9s %7s\n", "NODE", "LOCK", "TOKEN", "HOLDER", "LEASE_MS",
	       "WAITERS");
	for (int i = 0; i < n; i++) {
		if (name && virgo_lock_home(name) != i)
			continue;
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		char *text = NULL;
		int rc = virgo_lock_ls(i, name, &text);
		if (rc) {
			cli_fail("lock ls", rc);
			failed = 1;
			continue;
		}
		char *save = NULL;
		for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
			char lk[160], holder[80], left[32], waiters[16], token[32];
			if (sscanf(line, "lock %159s %31s %79s %31s %15s", lk, token, holder, left,
				   waiters) == 5)
				printf("node%-2u %-24s %-16s %-22s %9s %7s\n", ni.id, lk, token, holder,
				       left, waiters);
			else if (strncmp(line, "waiter ", 7) == 0)
				printf("       %s\n", line);
			else if (strncmp(line, "more ", 5) == 0)
				printf("       ... %s more\n", line + 5);
		}
		free(text);
	}
	return failed;
}

int cmd_lock(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "ls") == 0)
		return lock_ls(argc, argv);
	struct virgo_lock_opts o = {0};
	bool try = false;
	const char *name = NULL;
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if ((strcmp(argv[i], "--wait") == 0 || strcmp(argv[i], "--ttl") == 0) && i + 1 < argc) {
			bool wait = strcmp(argv[i], "--wait") == 0;
			uint64_t ms = 0;
			if (wait && strcmp(argv[i + 1], "0") == 0)
				try = true;
			else if (cli_parse_ttl(argv[i + 1], &ms) != 0)
				return 2;
			if (wait)
				o.wait_ms = (int64_t)ms;
			else
				o.ttl_ms = ms;
			i++;
		} else if (argv[i][0] == '-') {
			return cli_usage("lock", "unknown option '%s'", argv[i]);
		} else if (!name) {
			name = argv[i];
		} else {
			return cli_usage("lock", "put '--' before the command");
		}
	}
	if (!name)
		return cli_usage("lock", "a lock name is needed");
	if (i >= argc)
		return cli_usage("lock", "a command to run is needed after '--'");
	if (o.ttl_ms > 86400000 || o.wait_ms > 86400000)
		return cli_usage("lock", "--ttl and --wait are at most 1d");
	if (o.ttl_ms == 0)
		o.ttl_ms = 30000;
	if (o.ttl_ms < 300)
		return cli_usage("lock", "--ttl must be at least 300ms (it is renewed every third)");

	virgo_lock_t *l = NULL;
	int rc = try ? virgo_trylock(name, &o, &l) : virgo_lock(name, &o, &l);
	if (rc == -EBUSY || rc == -ETIMEDOUT) {
		fprintf(stderr, "virgo lock: '%s' is held by someone else%s\n", name,
			rc == -ETIMEDOUT ? " (gave up waiting)" : "");
		return 1;
	}
	if (rc)
		return cli_fail("lock", rc);
	char tok[32];
	snprintf(tok, sizeof tok, "%" PRIu64, virgo_lock_token(l));
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		perror("virgo lock: fork");
		virgo_unlock(l);
		return 125;
	}
	if (pid == 0) {
		setenv("VIRGO_LOCK_TOKEN", tok, 1);
		setenv("VIRGO_LOCK_NAME", name, 1);
		execvp(argv[i], argv + i);
		int e = errno;
		fprintf(stderr, "virgo lock: cannot run %s: %s\n", argv[i], strerror(e));
		_exit(e == ENOENT ? 127 : 126);
	}
	child_pid = pid;
	struct sigaction sa = {0};
	sa.sa_handler = forward_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	struct renewer r = {.lock = l, .ttl_ms = o.ttl_ms, .pid = pid};
	pthread_mutex_init(&r.mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r.cond, &ca);
	pthread_condattr_destroy(&ca);
	bool renewing = pthread_create(&r.th, NULL, renewer_main, &r) == 0;
	if (!renewing)
		fprintf(stderr, "virgo lock: cannot start the renewal thread: the lease is not renewed\n");

	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	child_pid = 0;
	pthread_mutex_lock(&r.mu);
	r.stop = true;
	pthread_cond_signal(&r.cond);
	pthread_mutex_unlock(&r.mu);
	if (renewing)
		pthread_join(r.th, NULL);
	rc = virgo_unlock(l);
	if (rc && !r.lost)
		cli_fail("unlock", rc);
	pthread_cond_destroy(&r.cond);
	pthread_mutex_destroy(&r.mu);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
