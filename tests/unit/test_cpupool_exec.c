/*
 * test_cpupool_exec.c - cp_exec_run in-process: argv passes through
 * untouched (spaces, quotes, newlines), stdout/stderr/exit status/signal,
 * the output cap, the deadline kill, cancel, exec failure, descendants in
 * another session; and after each, no child process (or zombie) of this
 * process is left.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

#include "../../src/services/cpupool_exec.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct cp_exec_limits lim(int ms, uint64_t cap)
{
	struct cp_exec_limits l = {.output_cap = cap, .mem_limit = 1u << 30,
				   .deadline_ms = now_ms() + ms};
	return l;
}

static void argv_is_passed_verbatim(void **s)
{
	(void)s;
	char *argv[] = {"sh", "-c", "printf '%s|' \"$@\"; echo oops >&2; exit 7", "x", "a b",
			"'q\"", "l1\nl2", "", NULL};
	struct cp_exec_limits l = lim(5000, 4096);
	struct cp_exec_result r;
	assert_int_equal(cp_exec_run("/bin/sh", argv, &l, -1, &r), 0);
	assert_false(r.signaled);
	assert_int_equal(r.code, 7);
	const char want[] = "a b|'q\"|l1\nl2||";
	assert_int_equal(r.out_len, sizeof want - 1);
	assert_memory_equal(r.out, want, sizeof want - 1);
	assert_int_equal(r.err_len, 5);
	assert_memory_equal(r.err, "oops\n", 5);
	assert_false(r.truncated);
	cp_exec_result_free(&r);
	assert_int_equal(th_children(getpid()), 0);
}

static void signal_is_reported(void **s)
{
	(void)s;
	char *argv[] = {"sh", "-c", "kill -9 $$", NULL};
	struct cp_exec_limits l = lim(5000, 4096);
	struct cp_exec_result r;
	assert_int_equal(cp_exec_run("/bin/sh", argv, &l, -1, &r), 0);
	assert_true(r.signaled);
	assert_int_equal(r.code, 9);
	cp_exec_result_free(&r);
}

static void output_is_capped(void **s)
{
	(void)s;
	char *argv[] = {"sh", "-c", "head -c 300000 /dev/zero; head -c 10 /dev/zero >&2", NULL};
	struct cp_exec_limits l = lim(5000, 1000);
	struct cp_exec_result r;
	assert_int_equal(cp_exec_run("/bin/sh", argv, &l, -1, &r), 0);
	assert_int_equal(r.code, 0);
	assert_int_equal(r.out_len, 1000);
	assert_int_equal(r.err_len, 10);
	assert_true(r.truncated);
	cp_exec_result_free(&r);
}

static void deadline_kills_the_group_no_zombie(void **s)
{
	(void)s;
	/* a background grandchild holds the pipes open too */
	char *argv[] = {"sh", "-c", "sleep 30 & sleep 30", NULL};
	struct cp_exec_limits l = lim(300, 4096);
	struct cp_exec_result r;
	int64_t t0 = now_ms();
	assert_int_equal(cp_exec_run("/bin/sh", argv, &l, -1, &r), -ETIMEDOUT);
	int64_t took = now_ms() - t0;
	assert_true(took >= 290 && took < 3000);
	assert_int_equal(th_children(getpid()), 0);
}

static void cancel_kills(void **s)
{
	(void)s;
	int p[2];
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "x", 1), 1); /* cancelled before it starts */
	char *argv[] = {"sleep", "30", NULL};
	struct cp_exec_limits l = lim(10000, 4096);
	struct cp_exec_result r;
	int64_t t0 = now_ms();
	assert_int_equal(cp_exec_run("/bin/sleep", argv, &l, p[0], &r), -ECANCELED);
	assert_true(now_ms() - t0 < 2000);
	assert_int_equal(th_children(getpid()), 0);
	close(p[0]);
	close(p[1]);
}

static void exec_failure_is_an_error(void **s)
{
	(void)s;
	char *argv[] = {"nope", NULL};
	struct cp_exec_limits l = lim(2000, 4096);
	struct cp_exec_result r;
	assert_int_equal(cp_exec_run("/nonexistent/nope", argv, &l, -1, &r), -ENOENT);
	assert_int_equal(cp_exec_run("/etc/passwd", argv, &l, -1, &r), -EACCES);
	assert_int_equal(th_children(getpid()), 0);
}

static void daemonized_grandchild_does_not_hang(void **s)
{
	(void)s;
	/* the child exits at once, its grandchild keeps stdout open */
	char *argv[] = {"sh", "-c", "echo hi; (sleep 30 &) ; exit 0", NULL};
	struct cp_exec_limits l = lim(5000, 4096);
	struct cp_exec_result r;
	int64_t t0 = now_ms();
	assert_int_equal(cp_exec_run("/bin/sh", argv, &l, -1, &r), 0);
	assert_true(now_ms() - t0 < 4000);
	assert_int_equal(r.code, 0);
	assert_memory_equal(r.out, "hi\n", 3);
	cp_exec_result_free(&r);
}

/* Processes whose command line is `sleep <len>`. */
static int sleepers(const char *len)
{
	DIR *d = opendir("/proc");
	assert_non_null(d);
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		char path[300], buf[256];
		snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
		FILE *f = e->d_name[0] >= '0' && e->d_name[0] <= '9' ? fopen(path, "r") : NULL;
		if (!f)
			continue;
		size_t r = fread(buf, 1, sizeof buf - 1, f);
		fclose(f);
		buf[r] = '\0';
		n += r > 6 && strcmp(buf, "sleep") == 0 && strcmp(buf + 6, len) == 0;
	}
	closedir(d);
	return n;
}

/* issue 14 #13: a descendant in a new session (setsid) outlived its job,
 * when the program exited and when it was killed at the deadline.  When
 * cp_exec_run returns, nothing the program started is left (the shepherd
 * kills and reaps it before it exits). */
static void setsid_descendants_do_not_survive(void **s)
{
	(void)s;
	char *argv[] = {"sh", "-c", "setsid sleep 1234.91 & sleep 0.3; echo done", NULL};
	struct cp_exec_limits l = lim(5000, 4096);
	struct cp_exec_result r;
	assert_int_equal(cp_exec_run("/bin/sh", argv, &l, -1, &r), 0);
	assert_int_equal(r.code, 0);
	assert_memory_equal(r.out, "done\n", 5);
	cp_exec_result_free(&r);
	assert_int_equal(sleepers("1234.91"), 0);
	char *argv2[] = {"sh", "-c", "setsid sleep 1234.92 & sleep 30", NULL};
	l = lim(700, 4096);
	assert_int_equal(cp_exec_run("/bin/sh", argv2, &l, -1, &r), -ETIMEDOUT);
	assert_int_equal(sleepers("1234.92"), 0);
	assert_int_equal(th_children(getpid()), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(argv_is_passed_verbatim),
		cmocka_unit_test(signal_is_reported),
		cmocka_unit_test(output_is_capped),
		cmocka_unit_test(deadline_kills_the_group_no_zombie),
		cmocka_unit_test(cancel_kills),
		cmocka_unit_test(exec_failure_is_an_error),
		cmocka_unit_test(daemonized_grandchild_does_not_hang),
		cmocka_unit_test(setsid_descendants_do_not_survive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
