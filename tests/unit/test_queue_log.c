/*
 * test_queue_log.c - a topic's segment log without a daemon: append, sync,
 * read back across segment rolls, reopen, a torn tail cut at open, a
 * flipped byte mid-segment reported and skipped while the rest is
 * served, retention deleting whole old segments only, zeros written ahead
 * by a helper thread while records are committed (never served, never
 * taken for damage, whether the node is killed or closed), two commit
 * rounds' writes in flight (publication in order, a hole left by a crash
 * cut as a torn tail, a failed earlier write failing the later round),
 * and the CRC32C check value.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/services/queue/queue_crc.h"
#include "../../src/services/queue/queue_log.h"
#include "../../src/daemon/log.h"
#include "../harness.h"

#define SEG 4096
#define MAXREC 2048

static char dir[300];

static void fresh_dir(const char *name)
{
	snprintf(dir, sizeof dir, "%s/%s", th_tmpdir(), name);
	mkdir(dir, 0755);
}

/* payload of record i: i's decimal digits repeated, with binary bytes */
static size_t payload(uint64_t i, uint8_t *buf)
{
	size_t n = 20 + (size_t)(i * 37 % 300);
	for (size_t k = 0; k < n; k++)
		buf[k] = (uint8_t)(i * 7 + k);
	return n;
}

static void append_only(struct ql_topic *t, uint64_t first, uint64_t n)
{
	uint8_t buf[400];
	for (uint64_t i = first; i < first + n; i++) {
		uint64_t off;
		size_t len = payload(i, buf);
		assert_int_equal(ql_append(t, buf, len, "127.0.0.1", i + 1, 1000 + i, &off), 0);
		assert_int_equal(off, i);
	}
}

static void append_n(struct ql_topic *t, uint64_t first, uint64_t n)
{
	for (uint64_t i = first; i < first + n; i++) {
		append_only(t, i, 1);
		if (i % 10 == 9) {
			assert_int_equal(ql_flush(t), 0);
			assert_int_equal(ql_sync(t), 0);
			ql_publish(t);
		}
	}
	assert_int_equal(ql_flush(t), 0);
	assert_int_equal(ql_sync(t), 0);
	ql_publish(t);
}

/* Reads everything from `from`; returns the count, checks payloads;
 * missing gets the offsets not seen (up to 8). */
static uint64_t read_all(struct ql_topic *t, uint64_t from, uint64_t *seen_last)
{
	struct ql_reader r;
	ql_reader_init(&r, from);
	uint8_t buf[MAXREC], want[400];
	struct ql_record rec;
	uint64_t n = 0;
	int rc;
	while ((rc = ql_read(t, &r, buf, sizeof buf, &rec)) == 1) {
		size_t len = payload(rec.off, want);
		assert_int_equal(rec.len, len);
		assert_memory_equal(rec.data, want, len);
		assert_string_equal(rec.peer, "127.0.0.1");
		assert_int_equal(rec.lamport, rec.off + 1);
		*seen_last = rec.off;
		n++;
	}
	assert_int_equal(rc, 0);
	ql_reader_close(&r);
	return n;
}

static void crc_check_value(void **state)
{
	(void)state;
	assert_int_equal(qcrc32c(0, "123456789", 9), 0xE3069283u);
	assert_int_equal(qcrc32c(qcrc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
	/* whichever version this CPU runs agrees with the table on every
	 * length and alignment, chained or not */
	qcrc32c_init();
	assert_int_equal(qcrc32c_sw(0, "123456789", 9), 0xE3069283u);
	static uint8_t b[4200];
	for (size_t i = 0; i < sizeof b; i++)
		b[i] = (uint8_t)(i * 131 + (i >> 7));
	for (size_t at = 0; at < 9; at++)
		for (size_t n = 0; n + at <= sizeof b; n += n < 64 ? 1 : 397) {
			uint32_t want = qcrc32c_sw(0, b + at, n);
			assert_int_equal(qcrc32c(0, b + at, n), want);
			size_t h = n / 3;
			assert_int_equal(qcrc32c(qcrc32c(0, b + at, h), b + at + h, n - h), want);
		}
}

static void append_read_reopen(void **state)
{
	(void)state;
	fresh_dir("q1");
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", SEG, MAXREC, true, &t), 0);
	append_n(t, 0, 500);
	struct ql_stats st;
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 500);
	assert_true(st.segments > 10);
	uint64_t last = 0;
	assert_int_equal(read_all(t, 0, &last), 500);
	assert_int_equal(last, 499);
	/* seek into the middle */
	assert_int_equal(read_all(t, 321, &last), 500 - 321);
	ql_close(t);
	assert_int_equal(ql_open(dir, "t", SEG, MAXREC, false, &t), 0);
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 500);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(st.truncated_bytes, 0);
	append_n(t, 500, 20);
	assert_int_equal(read_all(t, 0, &last), 520);
	ql_close(t);
	assert_int_equal(ql_open(dir, "absent", SEG, MAXREC, false, &t), -ENOENT);
}

static void last_segment(char *path, size_t cap, const char *topic)
{
	char d[400];
	snprintf(d, sizeof d, "%s/%s", dir, topic);
	DIR *dd = opendir(d);
	assert_non_null(dd);
	char best[64] = "";
	struct dirent *de;
	while ((de = readdir(dd)))
		if (strstr(de->d_name, ".seg") && strcmp(de->d_name, best) > 0)
			snprintf(best, sizeof best, "%s", de->d_name);
	closedir(dd);
	snprintf(path, cap, "%s/%s", d, best);
}

static void torn_tail_truncated(void **state)
{
	(void)state;
	fresh_dir("q2");
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", 1 << 20, MAXREC, true, &t), 0);
	append_n(t, 0, 50);
	ql_close(t);
	char path[600];
	last_segment(path, sizeof path, "t");
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	/* a record half written: cut 7 bytes off the last one */
	assert_int_equal(truncate(path, sb.st_size - 7), 0);
	assert_int_equal(ql_open(dir, "t", 1 << 20, MAXREC, false, &t), 0);
	struct ql_stats st;
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 49);
	assert_true(st.truncated_bytes > 0);
	uint64_t last = 0;
	assert_int_equal(read_all(t, 0, &last), 49);
	/* appends go on from the cut */
	append_n(t, 49, 5);
	assert_int_equal(read_all(t, 0, &last), 54);
	ql_close(t);
	/* zeros after the last record: preallocated space a kill -9 left
	 * (or a crash that grew the file before its data landed); no record
	 * was there, nothing is reported, appends go on after the records */
	assert_int_equal(stat(path, &sb), 0);
	off_t records_end = sb.st_size; /* ql_close cut the zeros */
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	static const uint8_t zeros[100];
	assert_int_equal(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
	close(fd);
	assert_int_equal(ql_open(dir, "t", 1 << 20, MAXREC, false, &t), 0);
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 54);
	assert_int_equal(st.truncated_bytes, 0);
	append_n(t, 54, 1);
	assert_int_equal(read_all(t, 0, &last), 55);
	ql_close(t);
	assert_int_equal(stat(path, &sb), 0);
	uint8_t one[400];
	assert_int_equal(sb.st_size, records_end + QL_HDR + 9 + (off_t)payload(54, one));
	/* garbage after the last record (a torn write): reported and cut */
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	uint8_t junk[100];
	memset(junk, 0xa5, sizeof junk);
	assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
	assert_int_equal(write(fd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
	close(fd);
	assert_int_equal(ql_open(dir, "t", 1 << 20, MAXREC, false, &t), 0);
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 55);
	assert_int_equal(st.truncated_bytes, 200);
	assert_int_equal(read_all(t, 0, &last), 55);
	ql_close(t);
}

/* The active segment is preallocated with zeros ahead of its records;
 * records land on them, a roll cuts the finished segment to its records,
 * and a node killed with zeros on disk recovers every record. */
static void preallocated_segments(void **state)
{
	(void)state;
	fresh_dir("q6");
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", SEG, MAXREC, true, &t), 0);
	append_n(t, 0, 3);
	char path[600];
	last_segment(path, sizeof path, "t");
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, SEG); /* zeros up to the segment size */
	/* what a kill -9 leaves: copy the files as they are now */
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "rm -rf %s/k && mkdir -p %s/k && cp -r %s/t %s/k/", dir, dir, dir,
		 dir);
	assert_int_equal(system(cmd), 0);
	append_n(t, 3, 500); /* rolls */
	struct ql_stats st;
	ql_get_stats(t, &st);
	assert_true(st.segments > 2);
	ql_close(t);
	/* every segment but the active one holds only its records */
	assert_int_equal(ql_open(dir, "t", SEG, MAXREC, false, &t), 0);
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 503);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.corrupt, 0);
	uint64_t last = 0;
	assert_int_equal(read_all(t, 0, &last), 503);
	ql_close(t);
	char kdir[600];
	snprintf(kdir, sizeof kdir, "%s/k", dir);
	assert_int_equal(ql_open(kdir, "t", SEG, MAXREC, false, &t), 0);
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 3);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.corrupt, 0);
	append_n(t, 3, 2);
	assert_int_equal(read_all(t, 0, &last), 5);
	assert_int_equal(last, 4);
	ql_close(t);
}

/* the zero-fill helper (queue_zero.c's loop, without the daemon) */
struct zhelp {
	struct ql_topic *t;
	atomic_int stop;
	int runs, errors;
};

static void *zhelp_main(void *arg)
{
	struct zhelp *z = arg;
	while (!atomic_load(&z->stop)) {
		if (ql_wants_zeros(z->t)) {
			z->runs++;
			z->errors += ql_zero_ahead(z->t) != 0;
		} else {
			usleep(50);
		}
	}
	return NULL;
}

/* append_only, synced and published after each record whose offset is
 * a multiple of per minus 1, and after the last. */
static void append_sync_n(struct ql_topic *t, uint64_t first, uint64_t n, uint64_t per)
{
	for (uint64_t i = first; i < first + n;) {
		uint64_t k = per - i % per;
		if (k > first + n - i)
			k = first + n - i;
		append_only(t, i, k);
		i += k;
		assert_int_equal(ql_flush_sync(t), 0);
		ql_publish(t);
	}
}

/* Reopens topic t under d: no damage reported, next offset `next`. */
static struct ql_topic *reopen_clean(const char *d, uint64_t seg, uint64_t next)
{
	struct ql_topic *t;
	struct ql_stats st;
	assert_int_equal(ql_open(d, "t", seg, MAXREC, false, &t), 0);
	ql_get_stats(t, &st);
	assert_int_equal(st.next, next);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.corrupt, 0);
	return t;
}

static uint64_t file_size(const char *path)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	return (uint64_t)sb.st_size;
}

/* Zeros written ahead by another thread while the writer commits with
 * ql_flush_sync: the writer writes no zeros itself, the helper keeps a
 * chunk ahead across rolls, every record reads back, and a copy taken
 * mid-run (what kill -9 or a power cut after the syncs leaves: records,
 * then zeros) recovers exactly the committed records, reporting no
 * damage; its zero tail is then written over by new records. */
static void zero_ahead_by_helper(void **state)
{
	(void)state;
	fresh_dir("q9");
	const uint64_t seg = UINT64_C(3) << 20; /* 1 MiB chunks, 3 per segment */
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", seg, MAXREC, true, &t), 0);
	ql_zero_by_helper(t, true);
	append_sync_n(t, 0, 3, 16);
	char path[600];
	last_segment(path, sizeof path, "t");
	uint64_t recs = file_size(path);
	assert_true(recs > 0 && recs < 4096); /* the writer wrote no zeros */
	assert_true(ql_wants_zeros(t));
	assert_int_equal(ql_zero_ahead(t), 0);
	assert_int_equal(file_size(path), UINT64_C(2) << 20); /* two chunks */
	assert_false(ql_wants_zeros(t));

	struct zhelp z = {.t = t};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, zhelp_main, &z), 0);
	append_sync_n(t, 3, 8000, 16); /* about 1.4 MiB */
	/* wait for the helper to get ahead again (bounded) */
	for (int i = 0; i < 2000 && ql_wants_zeros(t); i++)
		usleep(1000);
	last_segment(path, sizeof path, "t");
	uint64_t ahead = file_size(path);
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "rm -rf %s/k && mkdir -p %s/k && cp -r %s/t %s/k/", dir, dir, dir,
		 dir);
	assert_int_equal(system(cmd), 0);
	append_sync_n(t, 8003, 30000, 16); /* rolls twice or more */
	atomic_store(&z.stop, 1);
	pthread_join(th, NULL);
	assert_int_equal(z.errors, 0);
	assert_true(z.runs >= 3);
	struct ql_stats st;
	ql_get_stats(t, &st);
	assert_true(st.segments >= 3);
	uint64_t last = 0;
	assert_int_equal(read_all(t, 0, &last), 38003);
	ql_close(t);

	/* closed: reopened whole, the active segment cut back to records */
	t = reopen_clean(dir, seg, 38003);
	assert_int_equal(read_all(t, 0, &last), 38003);
	assert_int_equal(last, 38002);
	ql_close(t);

	/* killed mid-run: the zeros ahead are neither served nor damage */
	char kdir[600];
	snprintf(kdir, sizeof kdir, "%s/k", dir);
	snprintf(path, sizeof path, "%s/t/00000000000000000000.seg", kdir);
	assert_int_equal(file_size(path), ahead);
	assert_true(ahead >= (UINT64_C(2) << 20)); /* zeros well past the records */
	t = reopen_clean(kdir, seg, 8003);
	ql_zero_by_helper(t, true);
	assert_int_equal(read_all(t, 0, &last), 8003);
	append_sync_n(t, 8003, 5, 16); /* over the zeros */
	assert_int_equal(read_all(t, 0, &last), 8008);
	assert_int_equal(last, 8007);
	ql_close(t);
	ql_close(reopen_clean(kdir, seg, 8008));
}

static void flipped_byte_mid_segment(void **state)
{
	(void)state;
	fresh_dir("q3");
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", 1 << 20, MAXREC, true, &t), 0);
	append_n(t, 0, 100);
	ql_close(t);
	char path[600];
	last_segment(path, sizeof path, "t");
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	off_t at = sb.st_size / 2;
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, at), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, at), 1);
	close(fd);
	assert_int_equal(ql_open(dir, "t", 1 << 20, MAXREC, false, &t), 0);
	struct ql_stats st;
	ql_get_stats(t, &st);
	assert_int_equal(st.corrupt, 1);
	assert_int_equal(st.truncated_bytes, 0);
	assert_int_equal(st.next, 100);
	uint64_t last = 0;
	assert_int_equal(read_all(t, 0, &last), 99); /* one record lost, the rest served */
	assert_int_equal(last, 99);
	ql_close(t);
}

static int count_segments(const char *topic)
{
	char d[400];
	snprintf(d, sizeof d, "%s/%s", dir, topic);
	DIR *dd = opendir(d);
	int n = 0;
	struct dirent *de;
	while ((de = readdir(dd)))
		n += strstr(de->d_name, ".seg") != NULL;
	closedir(dd);
	return n;
}

static void retention_whole_segments(void **state)
{
	(void)state;
	fresh_dir("q4");
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", SEG, MAXREC, true, &t), 0);
	append_n(t, 0, 400);
	struct ql_stats before, after;
	ql_get_stats(t, &before);
	int deleted = ql_retain(t, 5 * SEG, 0, 0);
	assert_true(deleted > 0);
	ql_get_stats(t, &after);
	assert_int_equal(after.segments, before.segments - (uint64_t)deleted);
	assert_int_equal(count_segments("t"), (int)after.segments);
	assert_true(after.bytes <= 5 * SEG);
	assert_int_equal(after.next, 400);
	/* what is left starts at a segment boundary and is whole */
	uint64_t last = 0;
	assert_int_equal(read_all(t, 0, &last), 400 - after.first);
	/* a reader behind retention is told how much it lost */
	struct ql_reader r;
	ql_reader_init(&r, 0);
	uint8_t buf[MAXREC];
	struct ql_record rec;
	assert_int_equal(ql_read(t, &r, buf, sizeof buf, &rec), 1);
	assert_int_equal(r.lost, after.first);
	ql_reader_close(&r);
	/* never the active segment, whatever the limits */
	ql_retain(t, 1, 1, UINT64_MAX / 2);
	ql_get_stats(t, &after);
	assert_int_equal(after.segments, 1);
	ql_close(t);
}

static void retention_by_age(void **state)
{
	(void)state;
	fresh_dir("q5");
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", SEG, MAXREC, true, &t), 0);
	uint8_t buf[400];
	uint64_t off;
	/* 200 old records (t = 1 s), then 200 new ones (t = 100 s) */
	for (uint64_t i = 0; i < 400; i++) {
		size_t len = payload(i, buf);
		uint64_t ns = (i < 200 ? 1 : 100) * UINT64_C(1000000000) + i;
		assert_int_equal(ql_append(t, buf, len, "127.0.0.1", i + 1, ns, &off), 0);
	}
	assert_int_equal(ql_flush(t), 0);
	ql_publish(t);
	/* at t = 110 s with a 60 s limit: every segment whose newest record
	 * is old goes; one holding a new record stays whole */
	int deleted = ql_retain(t, 0, 60, UINT64_C(110) * 1000000000);
	assert_true(deleted > 0);
	struct ql_stats st;
	ql_get_stats(t, &st);
	assert_true(st.first > 0 && st.first <= 200);
	uint64_t last = 0;
	assert_int_equal(read_all(t, st.first, &last), 400 - st.first);
	/* nothing more is old enough */
	assert_int_equal(ql_retain(t, 0, 60, UINT64_C(110) * 1000000000), 0);
	ql_close(t);
}

/* Two commit rounds' writes in flight (ql_stage, queue_commit.c): the
 * later round's write lands first, yet readers see nothing of either
 * until the earlier one finishes, then exactly the earlier one; a copy
 * taken then (a crash with the later round on disk and a hole of zeros
 * where the earlier one goes) recovers only the clean prefix, reports the
 * cut as a torn tail and serves nothing after the hole, and the next
 * append takes the hole's first offset; and a failed earlier write fails
 * the later round although its own write succeeded. */
static void overlap_rounds_hole(void **state)
{
	(void)state;
	fresh_dir("q10");
	const uint64_t seg = UINT64_C(1) << 20;
	struct ql_topic *t;
	assert_int_equal(ql_open(dir, "t", seg, MAXREC, true, &t), 0);
	ql_zero_by_helper(t, true);
	append_sync_n(t, 0, 10, 16);
	assert_int_equal(ql_zero_ahead(t), 0); /* zeros to the segment's end */
	struct ql_stage a, b, c, d;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	memset(&c, 0, sizeof c);
	memset(&d, 0, sizeof d);
	append_only(t, 10, 10);
	assert_int_equal(ql_stage(t, &a), 0);
	append_only(t, 20, 10); /* encoded while a is in flight */
	assert_int_equal(ql_stage(t, &b), 0);
	assert_int_equal(ql_stage_write(t, &b), 0); /* the later one first */
	uint64_t last = 0;
	assert_int_equal(read_all(t, 0, &last), 10);
	char cmd[1400];
	snprintf(cmd, sizeof cmd, "rm -rf %s/k && mkdir -p %s/k && cp -r %s/t %s/k/", dir, dir, dir,
		 dir);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ql_stage_write(t, &a), 0);
	assert_int_equal(ql_stage_finish(t, &a, 0), 0);
	assert_int_equal(read_all(t, 0, &last), 20);
	assert_int_equal(last, 19);
	assert_int_equal(ql_stage_finish(t, &b, 0), 0);
	assert_int_equal(read_all(t, 0, &last), 30);
	assert_int_equal(last, 29);

	/* c's write fails after d's succeeded: both fail, nothing published */
	append_only(t, 30, 10);
	assert_int_equal(ql_stage(t, &c), 0);
	append_only(t, 40, 10);
	assert_int_equal(ql_stage(t, &d), 0);
	int drc = ql_stage_write(t, &d);
	assert_int_equal(drc, 0);
	int cfd = c.fd;
	c.fd = -1; /* the write fails */
	int crc = ql_stage_write(t, &c);
	assert_true(crc < 0);
	c.fd = cfd;
	assert_true(ql_stage_finish(t, &c, crc) < 0);
	assert_int_equal(ql_stage_finish(t, &d, drc), -EIO);
	assert_int_equal(read_all(t, 0, &last), 30);
	uint64_t off;
	assert_int_equal(ql_append(t, (const uint8_t *)"x", 1, "127.0.0.1", 99, 99, &off), -EIO);
	ql_close(t);
	free(a.buf);
	free(b.buf);
	free(c.buf);
	free(d.buf);

	/* the crash image: records 0-9, zeros, then 20-29 */
	char kdir[600];
	snprintf(kdir, sizeof kdir, "%s/k", dir);
	assert_int_equal(ql_open(kdir, "t", seg, MAXREC, false, &t), 0);
	struct ql_stats st;
	ql_get_stats(t, &st);
	assert_int_equal(st.next, 10);
	assert_true(st.truncated_bytes > 0);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(read_all(t, 0, &last), 10);
	assert_int_equal(last, 9);
	append_sync_n(t, 10, 5, 16); /* the hole's offsets are taken anew */
	assert_int_equal(read_all(t, 0, &last), 15);
	ql_close(t);
	ql_close(reopen_clean(kdir, seg, 15));
}

static void check_rejects_garbage(void **state)
{
	(void)state;
	uint8_t rec[QL_HDR + QL_PEER_MAX + 16];
	size_t h = ql_encode_hdr(rec, (const uint8_t *)"payload!", 8, "10.0.0.1", 5, 6, 7);
	memcpy(rec + h, "payload!", 8);
	assert_int_equal(ql_check(rec, h + 8, 100), h + 8);
	assert_int_equal(ql_check(rec, h + 7, 100), 0); /* short */
	assert_int_equal(ql_check(rec, h + 8, 4), 0); /* over max_record */
	rec[h + 3] ^= 1;
	assert_int_equal(ql_check(rec, h + 8, 100), 0); /* CRC */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(crc_check_value),
		cmocka_unit_test(append_read_reopen),
		cmocka_unit_test(torn_tail_truncated),
		cmocka_unit_test(preallocated_segments),
		cmocka_unit_test(zero_ahead_by_helper),
		cmocka_unit_test(overlap_rounds_hole),
		cmocka_unit_test(flipped_byte_mid_segment),
		cmocka_unit_test(retention_whole_segments),
		cmocka_unit_test(retention_by_age),
		cmocka_unit_test(check_rejects_garbage),
	};
	vlog_set_level(VLOG_ERROR); /* the reports are expected here */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
