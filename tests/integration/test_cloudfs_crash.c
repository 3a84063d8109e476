/*
 * test_cloudfs_crash.c - durability in the manner of JuiceFS's crash
 * tests: a writer creates files of random sizes through libvirgo and
 * records one as done only after fsync of the file and of its directory;
 * the node is killed with SIGKILL in the middle of the writes, restarted,
 * and every recorded file must be there with its size and checksum.  A
 * second round does the same while other clients write concurrently to
 * the other two nodes.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"
#include "virgo.h"

#define MAX_FILES 4096

static struct th_cluster cl;

struct rec {
	char path[64];
	size_t size;
	uint64_t sum;
};

struct writer {
	unsigned node;
	int round;
	struct rec *recs;
	_Atomic int done; /* records complete (fsync'd file and directory) */
	_Atomic int stop;
	int failed_at; /* the error that ended it */
};

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 7;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

static int setup(void **state)
{
	(void)state;
	const char *base = th_tmpdir();
	static char extra[3][400];
	const char *per[3];
	for (int i = 0; i < 3; i++) {
		snprintf(extra[i], sizeof extra[i], "cloudfs_export_root = %s/export%d\n", base, i + 1);
		per[i] = extra[i];
	}
	if (th_cluster_start_nodes(&cl, 3, "", per, "timeout_ms = 3000\n") != 0)
		return -1;
	return th_cluster_client(&cl);
}

static int teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint8_t *buf = malloc(3u << 20);
	char dir[48];
	snprintf(dir, sizeof dir, "node%u:/r%d", w->node, w->round);
	int rc = virgo_mkdir(dir, 0755);
	if (rc && rc != -EEXIST) {
		w->failed_at = rc;
		free(buf);
		return NULL;
	}
	for (int i = 0; i < MAX_FILES && !atomic_load(&w->stop); i++) {
		struct rec *r = &w->recs[i];
		snprintf(r->path, sizeof r->path, "%s/f%04d", dir, i);
		uint64_t seed = (uint64_t)w->round * 100000 + (uint64_t)w->node * 10000 + (uint64_t)i;
		r->size = (size_t)((seed * 2654435761u) % (3u << 20)); /* 0 .. 3 MiB */
		fill(buf, r->size, seed);
		r->sum = fnv(buf, r->size, 0xcbf29ce484222325ULL);
		virgo_fd_t fd;
		rc = virgo_open_ex(r->path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd);
		if (rc == 0) {
			ssize_t n = virgo_write(fd, buf, r->size, 0);
			rc = n < 0 ? (int)n : 0;
			if (rc == 0)
				rc = virgo_fsync(fd);
			virgo_close(fd);
		}
		/* the directory entry too: then the file is recorded as done */
		if (rc == 0) {
			if ((rc = virgo_open_ex(dir, O_RDONLY, 0, &fd)) == 0) {
				rc = virgo_fsync(fd);
				virgo_close(fd);
			}
		}
		if (rc) {
			w->failed_at = rc;
			break;
		}
		atomic_store(&w->done, i + 1);
	}
	free(buf);
	return NULL;
}

static void verify(struct writer *w)
{
	uint8_t *buf = malloc(3u << 20);
	int n = atomic_load(&w->done);
	for (int i = 0; i < n; i++) {
		struct rec *r = &w->recs[i];
		virgo_fd_t fd;
		int rc = virgo_open_ex(r->path, O_RDONLY, 0, &fd);
		if (rc)
			fail_msg("%s: recorded as done, open after restart: %s", r->path,
				 virgo_strerror(rc));
		struct virgo_stat st;
		assert_int_equal(virgo_fstat(fd, &st), 0);
		if (st.size != r->size)
			fail_msg("%s: size %llu, recorded %zu", r->path, (unsigned long long)st.size,
				 r->size);
		ssize_t got = virgo_read(fd, buf, r->size, 0);
		assert_int_equal(got, (ssize_t)r->size);
		assert_true(fnv(buf, r->size, 0xcbf29ce484222325ULL) == r->sum);
		virgo_close(fd);
	}
	free(buf);
}

/* Waits until the writer has recorded at least `want` files. */
static void wait_records(struct writer *w, int want)
{
	int64_t end = th_now_ms() + 20000;
	while (atomic_load(&w->done) < want && !w->failed_at && th_now_ms() < end)
		usleep(2000);
	assert_true(atomic_load(&w->done) >= want);
}

static void crash_round(int round, bool others)
{
	struct writer w[3];
	pthread_t th[3];
	int nw = others ? 3 : 1;
	for (int k = 0; k < nw; k++) {
		w[k] = (struct writer){.node = (unsigned)k + 1, .round = round};
		w[k].recs = calloc(MAX_FILES, sizeof *w[k].recs);
		assert_int_equal(pthread_create(&th[k], NULL, writer_main, &w[k]), 0);
	}
	wait_records(&w[0], 12);
	th_node_signal(&cl, 0, SIGKILL); /* mid-write: the writer is in its loop */
	pthread_join(th[0], NULL);
	printf("round %d: node 1 killed after %d recorded files (writer stopped with %s)\n", round,
	       atomic_load(&w[0].done), virgo_strerror(w[0].failed_at));
	assert_int_not_equal(w[0].failed_at, 0);
	for (int k = 1; k < nw; k++) {
		atomic_store(&w[k].stop, 1);
		pthread_join(th[k], NULL);
		assert_int_equal(w[k].failed_at, 0);
		assert_true(atomic_load(&w[k].done) > 0);
	}
	assert_int_equal(th_node_start(&cl, 0), 0);
	for (int k = 0; k < nw; k++) {
		verify(&w[k]);
		free(w[k].recs);
	}
}

static void kill9_mid_write(void **state)
{
	(void)state;
	crash_round(1, false);
}

static void kill9_with_concurrent_writers(void **state)
{
	(void)state;
	crash_round(2, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(kill9_mid_write),
		cmocka_unit_test(kill9_with_concurrent_writers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
