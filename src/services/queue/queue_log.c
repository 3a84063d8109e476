/*
 * queue_log.c - a topic's segment files: append, sync, publish, read,
 * recover, retain (queue_log.h).
 *
 * The topic mutex guards the segment list, each segment's published size,
 * its sparse index (one (offset, position) pair every QL_IDX_EVERY
 * records) and its list of skipped bad regions; readers hold it for the
 * whole of one ql_read (page-cache preads), the writer only for index and
 * list updates, never across write() or fdatasync().  Records are stored
 * little-endian.
 *
 * The active segment is preallocated: zeros are written ahead of its
 * records, a chunk (QL_PREALLOC, at most the segment size) at a time, and
 * records are then written over them with pwrite().  Overwriting blocks
 * that exist leaves the sync only the data to flush; an append would also
 * make it commit the file's new size and blocks to the journal, on every
 * sync (appending managed 0.4-0.8 times the syncs per second here).
 * Zeros are not records: recovery treats a tail of zeros as the end of a
 * segment, not as damage, and a rolled or closed segment is cut back to
 * its records.
 *
 * Who writes the zeros: the writer itself, after a flush (the default,
 * and what the unit tests drive), or, once ql_zero_by_helper() is set,
 * another thread calling ql_zero_ahead() when ql_wants_zeros() says so
 * (queue_zero.c): it writes and fdatasync()s the next chunk while the
 * writer goes on committing, so a commit never pays for 1 MiB of zeros.
 * The two never write the same bytes: under t->zmu the helper reserves
 * [zfrom, zto), which starts past everything the writer has claimed
 * (wclaim), and a writer that must write into a reservation waits for it
 * (the helper fell a whole chunk behind).  ql_flush_sync() makes the
 * records durable with a write that syncs only its own range
 * (pwritev2 RWF_DSYNC), so a commit never waits for the helper's zeros
 * either, only for its own bytes.
 */
#include "queue_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../../daemon/log.h"
#include "queue_crc.h"

#define QL_IDX_EVERY 64
#define QL_PREALLOC (UINT64_C(1) << 20)
#define QL_PATH 512

struct ql_idx {
	uint64_t off, pos;
};

struct ql_bad {
	uint64_t start, end;
};

struct ql_seg {
	uint64_t base; /* offset of its first record (its file name) */
	uint64_t size; /* published bytes (readers) */
	uint64_t wsize; /* written bytes (writer) */
	uint64_t nrec; /* records in it */
	uint64_t last_ns; /* time of its newest record */
	uint64_t alloc; /* recovery: its file's size, zeros included */
	struct ql_idx *idx;
	size_t nidx, cidx;
	struct ql_bad *bad;
	size_t nbad;
};

struct ql_topic {
	pthread_mutex_t mu;
	char name[68];
	char path[QL_PATH];
	struct ql_seg **segs;
	size_t nsegs, csegs;
	int afd; /* the active (last) segment, writer's */
	/* zero-fill ahead (see the top), under zmu: the active segment's
	 * zeros end at zero_end (its file size when that passes the
	 * records); the writer has written or is writing up to wclaim; the
	 * helper is writing zeros at [zfrom, zto) while zbusy */
	pthread_mutex_t zmu;
	pthread_cond_t zcond;
	uint64_t zero_end, wclaim, zfrom, zto;
	bool zbusy, zhelper;
	bool no_dsync; /* pwritev2(RWF_DSYNC) refused: write + fdatasync */
	int dfd; /* the directory, for fsync after a roll */
	uint8_t *wbuf;
	size_t wlen, wcap;
	uint64_t next_off; /* writer: the next offset to assign */
	uint64_t pub_next; /* readers: one past the last published record */
	uint64_t seg_bytes, max_record;
	_Atomic bool failed;
	bool dir_dirty;
	_Atomic int inflight; /* staged writes not yet finished (changed under zmu) */
	struct ql_stats st; /* corrupt, truncated_bytes, deleted_segments, max_lamport */
};

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static size_t encode_hdr(uint8_t *hdr, const uint8_t *data, size_t len, const char *peer,
			 uint64_t off, uint64_t lamport, uint64_t time_ns, uint8_t flags)
{
	size_t pl = peer ? strnlen(peer, QL_PEER_MAX) : 0;
	put32(hdr, QL_MAGIC);
	put32(hdr + 8, (uint32_t)len);
	hdr[12] = (uint8_t)pl;
	hdr[13] = flags;
	hdr[14] = hdr[15] = 0;
	put64(hdr + 16, off);
	put64(hdr + 24, lamport);
	put64(hdr + 32, time_ns);
	if (pl)
		memcpy(hdr + QL_HDR, peer, pl);
	uint32_t crc = qcrc32c(0, hdr + 8, QL_HDR - 8 + pl);
	crc = qcrc32c(crc, data, len);
	put32(hdr + 4, crc);
	return QL_HDR + pl;
}

size_t ql_encode_hdr(uint8_t *hdr, const uint8_t *data, size_t len, const char *peer,
		     uint64_t off, uint64_t lamport, uint64_t time_ns)
{
	return encode_hdr(hdr, data, len, peer, off, lamport, time_ns, 0);
}

/* Header fields valid (lengths within bounds)?  Total size or 0. */
static size_t hdr_total(const uint8_t *h, uint64_t max_record)
{
	if (get32(h) != QL_MAGIC || (h[13] & ~QL_F_OVERLAP) || h[14] || h[15])
		return 0;
	uint32_t len = get32(h + 8);
	if (len > max_record || h[12] > QL_PEER_MAX)
		return 0;
	return QL_HDR + (size_t)h[12] + len;
}

size_t ql_check(const uint8_t *p, size_t n, uint64_t max_record)
{
	if (n < QL_HDR)
		return 0;
	size_t tot = hdr_total(p, max_record);
	if (tot == 0 || tot > n)
		return 0;
	return qcrc32c(0, p + 8, tot - 8) == get32(p + 4) ? tot : 0;
}

const char *ql_name(const struct ql_topic *t)
{
	return t->name;
}

const char *ql_path(const struct ql_topic *t)
{
	return t->path;
}

static int seg_path(const struct ql_topic *t, uint64_t base, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "%s/%020" PRIu64 ".seg", t->path, base);
	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

static struct ql_seg *seg_add(struct ql_topic *t, uint64_t base)
{
	if (t->nsegs == t->csegs) {
		size_t nc = t->csegs ? 2 * t->csegs : 8;
		struct ql_seg **ns = realloc(t->segs, nc * sizeof *ns);
		if (!ns)
			return NULL;
		t->segs = ns;
		t->csegs = nc;
	}
	struct ql_seg *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->base = base;
	t->segs[t->nsegs++] = s;
	return s;
}

static void seg_free(struct ql_seg *s)
{
	free(s->idx);
	free(s->bad);
	free(s);
}

static int idx_add(struct ql_seg *s, uint64_t off, uint64_t pos)
{
	if (s->nidx == s->cidx) {
		size_t nc = s->cidx ? 2 * s->cidx : 16;
		struct ql_idx *ni = realloc(s->idx, nc * sizeof *ni);
		if (!ni)
			return -ENOMEM;
		s->idx = ni;
		s->cidx = nc;
	}
	s->idx[s->nidx++] = (struct ql_idx){off, pos};
	return 0;
}

static int bad_add(struct ql_seg *s, uint64_t start, uint64_t end)
{
	struct ql_bad *nb = realloc(s->bad, (s->nbad + 1) * sizeof *nb);
	if (!nb)
		return -ENOMEM;
	s->bad = nb;
	s->bad[s->nbad++] = (struct ql_bad){start, end};
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The next valid record after a bad one: its position, or size. */
static uint64_t resync(const uint8_t *p, uint64_t from, uint64_t size, uint64_t expect,
		       uint64_t max_record)
{
	static const uint8_t magic[4] = {QL_MAGIC & 0xff, (QL_MAGIC >> 8) & 0xff,
					 (QL_MAGIC >> 16) & 0xff, QL_MAGIC >> 24};
	uint64_t q = from;
	while (q + QL_HDR <= size) {
		const uint8_t *m = memmem(p + q, size - q, magic, 4);
		if (!m)
			break;
		q = (uint64_t)(m - p);
		if (ql_check(p + q, size - q, max_record) && get64(p + q + 16) >= expect)
			return q;
		q++;
	}
	return size;
}

static bool all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* Scans one segment file; last: it is the active one (a bad tail is cut). */
static int seg_recover(struct ql_topic *t, struct ql_seg *s, uint64_t expect, bool last,
		       uint64_t *next)
{
	char path[QL_PATH];
	int rc = seg_path(t, s->base, path, sizeof path);
	if (rc)
		return rc;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	struct stat sb;
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	uint64_t size = (uint64_t)sb.st_size;
	const uint8_t *p = NULL;
	if (size > 0) {
		p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (p == MAP_FAILED) {
			rc = -errno;
			close(fd);
			return rc;
		}
	}
	if (expect < s->base)
		expect = s->base;
	uint64_t pos = 0;
	while (pos < size) {
		size_t tot = ql_check(p + pos, size - pos, t->max_record);
		uint64_t off = tot ? get64(p + pos + 16) : 0;
		if (tot && off >= expect) {
			if (s->nrec % QL_IDX_EVERY == 0 && idx_add(s, off, pos) != 0) {
				rc = -ENOMEM;
				break;
			}
			s->nrec++;
			uint64_t lam = get64(p + pos + 24);
			if (lam > t->st.max_lamport)
				t->st.max_lamport = lam;
			s->last_ns = get64(p + pos + 32);
			expect = off + 1;
			pos += tot;
			continue;
		}
		if (all_zero(p + pos, size - pos)) {
			/* preallocated space (or a kill -9 before it was
			 * used): no record was ever there */
			s->alloc = size;
			size = pos;
			break;
		}
		uint64_t q = resync(p, pos + 1, size, expect, t->max_record);
		const char *why = "torn";
		if (q < size && last && (p[q + 13] & QL_F_OVERLAP)) {
			/* a later round's write reached the disk and an earlier
			 * one's did not (a hole): nothing from here on was
			 * acknowledged, and nothing after it is served */
			why = "hole";
			q = size;
		}
		if (q < size) {
			log_warn("queue_corrupt topic=%s segment=%020" PRIu64 " pos=%" PRIu64
				 " bytes=%" PRIu64 " lost_from=%" PRIu64 " lost_to=%" PRIu64
				 " action=skipped",
				 t->name, s->base, pos, q - pos, expect, get64(p + q + 16) - 1);
			t->st.corrupt++;
			if (bad_add(s, pos, q) != 0) {
				rc = -ENOMEM;
				break;
			}
			pos = q;
			continue;
		}
		if (last) {
			log_warn("queue_torn_tail topic=%s segment=%020" PRIu64 " pos=%" PRIu64
				 " bytes=%" PRIu64 " reason=%s action=truncated",
				 t->name, s->base, pos, size - pos, why);
			if (ftruncate(fd, (off_t)pos) != 0 || fdatasync(fd) != 0) {
				rc = -errno;
				break;
			}
			t->st.truncated_bytes += size - pos;
			size = pos;
		} else {
			log_warn("queue_corrupt topic=%s segment=%020" PRIu64 " pos=%" PRIu64
				 " bytes=%" PRIu64 " lost_from=%" PRIu64 " action=skipped_to_next_segment",
				 t->name, s->base, pos, size - pos, expect);
			t->st.corrupt++;
			if (bad_add(s, pos, size) != 0)
				rc = -ENOMEM;
		}
		break;
	}
	if (p)
		munmap((void *)p, (size_t)sb.st_size);
	s->size = s->wsize = size;
	if (s->alloc < size)
		s->alloc = size;
	close(fd);
	*next = expect;
	return rc;
}

static int topic_load(struct ql_topic *t)
{
	DIR *d = opendir(t->path);
	if (!d)
		return -errno;
	uint64_t *bases = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		char *end;
		size_t l = strlen(de->d_name);
		if (l != 24 || strcmp(de->d_name + 20, ".seg") != 0)
			continue;
		uint64_t b = strtoull(de->d_name, &end, 10);
		if (end != de->d_name + 20)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			uint64_t *nb = realloc(bases, cap * sizeof *nb);
			if (!nb) {
				rc = -ENOMEM;
				break;
			}
			bases = nb;
		}
		bases[n++] = b;
	}
	closedir(d);
	if (rc == 0 && n)
		qsort(bases, n, sizeof *bases, cmp_u64);
	uint64_t next = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct ql_seg *s = seg_add(t, bases[i]);
		if (!s)
			rc = -ENOMEM;
		else
			rc = seg_recover(t, s, next, i + 1 == n, &next);
	}
	free(bases);
	if (rc)
		return rc;
	if (t->nsegs == 0) {
		char path[QL_PATH];
		if ((rc = seg_path(t, 0, path, sizeof path)) != 0)
			return rc;
		int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return -errno;
		close(fd);
		if (!seg_add(t, 0))
			return -ENOMEM;
		t->dir_dirty = true;
	}
	struct ql_seg *a = t->segs[t->nsegs - 1];
	if (next < a->base)
		next = a->base;
	t->next_off = t->pub_next = next;
	char path[QL_PATH];
	if ((rc = seg_path(t, a->base, path, sizeof path)) != 0)
		return rc;
	t->afd = open(path, O_WRONLY | O_CLOEXEC);
	t->zero_end = a->alloc;
	t->wclaim = a->wsize;
	return t->afd < 0 ? -errno : 0;
}

int ql_open(const char *dir, const char *name, uint64_t segment_bytes, uint64_t max_record,
	    bool create, struct ql_topic **out)
{
	struct ql_topic *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	pthread_mutex_init(&t->zmu, NULL);
	pthread_cond_init(&t->zcond, NULL);
	t->afd = t->dfd = -1;
	snprintf(t->name, sizeof t->name, "%s", name);
	int n = snprintf(t->path, sizeof t->path, "%s/%s", dir, name);
	int rc = 0;
	if (n <= 0 || (size_t)n >= sizeof t->path)
		rc = -ENAMETOOLONG;
	t->seg_bytes = segment_bytes;
	t->max_record = max_record;
	struct stat sb;
	if (rc == 0 && !create && stat(t->path, &sb) != 0)
		rc = -ENOENT;
	if (rc == 0 && mkdir(t->path, 0755) != 0 && errno != EEXIST)
		rc = -errno;
	if (rc == 0) {
		t->dfd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (t->dfd < 0)
			rc = -errno;
	}
	if (rc == 0)
		rc = topic_load(t);
	if (rc == 0 && t->dir_dirty) {
		if (fsync(t->dfd) != 0)
			rc = -errno;
		t->dir_dirty = false;
	}
	if (rc) {
		ql_close(t);
		return rc;
	}
	*out = t;
	return 0;
}

void ql_close(struct ql_topic *t)
{
	if (!t)
		return;
	if (t->afd >= 0) {
		/* give back the preallocated zeros (recovery would skip them) */
		if (t->nsegs && t->zero_end > t->segs[t->nsegs - 1]->wsize &&
		    ftruncate(t->afd, (off_t)t->segs[t->nsegs - 1]->wsize) != 0)
			log_warn("queue_truncate topic=%s error=%s", t->name, strerror(errno));
		close(t->afd);
	}
	if (t->dfd >= 0)
		close(t->dfd);
	for (size_t i = 0; i < t->nsegs; i++)
		seg_free(t->segs[i]);
	free(t->segs);
	free(t->wbuf);
	pthread_mutex_destroy(&t->mu);
	pthread_mutex_destroy(&t->zmu);
	pthread_cond_destroy(&t->zcond);
	free(t);
}

static int fail(struct ql_topic *t, int err)
{
	if (!t->failed)
		log_error("queue_log_failed topic=%s error=%s (no more appends until restart)",
			  t->name, strerror(err));
	t->failed = true;
	return -err;
}

/* Waits until no staged write is in flight (writer). */
static void wait_idle(struct ql_topic *t)
{
	pthread_mutex_lock(&t->zmu);
	while (t->inflight)
		pthread_cond_wait(&t->zcond, &t->zmu);
	pthread_mutex_unlock(&t->zmu);
}

static int roll(struct ql_topic *t)
{
	wait_idle(t);
	int rc = ql_flush(t);
	if (rc)
		return rc;
	/* the finished segment keeps only its records (one sync for both);
	 * the helper is done with it first (zmu held until the switch) */
	uint64_t end = t->segs[t->nsegs - 1]->wsize;
	pthread_mutex_lock(&t->zmu);
	while (t->zbusy)
		pthread_cond_wait(&t->zcond, &t->zmu);
	if ((t->zero_end > end && ftruncate(t->afd, (off_t)end) != 0) || fdatasync(t->afd) != 0) {
		int err = errno;
		pthread_mutex_unlock(&t->zmu);
		return fail(t, err);
	}
	pthread_mutex_lock(&t->mu);
	t->st.syncs++;
	pthread_mutex_unlock(&t->mu);
	char path[QL_PATH];
	if ((rc = seg_path(t, t->next_off, path, sizeof path)) != 0)
		return fail(t, -rc);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		int err = errno;
		pthread_mutex_unlock(&t->zmu);
		return fail(t, err);
	}
	pthread_mutex_lock(&t->mu);
	struct ql_seg *old = t->segs[t->nsegs - 1];
	old->size = old->wsize; /* synced above */
	struct ql_seg *s = seg_add(t, t->next_off);
	pthread_mutex_unlock(&t->mu);
	if (!s) {
		pthread_mutex_unlock(&t->zmu);
		close(fd);
		unlink(path);
		return fail(t, ENOMEM);
	}
	close(t->afd);
	t->afd = fd;
	t->zero_end = t->wclaim = 0;
	pthread_mutex_unlock(&t->zmu);
	t->dir_dirty = true;
	return 0;
}

int ql_append(struct ql_topic *t, const uint8_t *data, size_t len, const char *peer,
	      uint64_t lamport, uint64_t time_ns, uint64_t *off)
{
	if (t->failed)
		return -EIO;
	if (len > t->max_record)
		return -E2BIG;
	struct ql_seg *a = t->segs[t->nsegs - 1];
	size_t total = QL_HDR + (peer ? strnlen(peer, QL_PEER_MAX) : 0) + len;
	if (a->wsize + t->wlen > 0 && a->wsize + t->wlen + total > t->seg_bytes) {
		int rc = roll(t);
		if (rc)
			return rc;
		a = t->segs[t->nsegs - 1];
	}
	if (t->wlen + total > t->wcap) {
		size_t nc = t->wcap ? t->wcap : 65536;
		while (nc < t->wlen + total)
			nc *= 2;
		uint8_t *nb = realloc(t->wbuf, nc);
		if (!nb)
			return -ENOMEM; /* nothing written: not a log failure */
		t->wbuf = nb;
		t->wcap = nc;
	}
	uint64_t pos = a->wsize + t->wlen;
	uint8_t flags = atomic_load(&t->inflight) ? QL_F_OVERLAP : 0;
	size_t h = encode_hdr(t->wbuf + t->wlen, data, len, peer, t->next_off, lamport, time_ns, flags);
	memcpy(t->wbuf + t->wlen + h, data, len);
	/* the index, counters and stats are read by other threads */
	pthread_mutex_lock(&t->mu);
	int rc = a->nrec % QL_IDX_EVERY == 0 ? idx_add(a, t->next_off, pos) : 0;
	if (rc == 0) {
		a->nrec++;
		a->last_ns = time_ns;
		if (lamport > t->st.max_lamport)
			t->st.max_lamport = lamport;
	}
	pthread_mutex_unlock(&t->mu);
	if (rc)
		return rc;
	t->wlen += h + len;
	*off = t->next_off++;
	return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t at)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = pwrite(fd, p + done, n - done, (off_t)(at + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		done += (size_t)w;
	}
	return 0;
}

/* Zeros from the records' end `end` up to the next chunk boundary (at most
 * the segment size), when the records have reached the zeros' end.  Best
 * effort: without them the records are appended, just as durably. */
static uint64_t zero_chunk(const struct ql_topic *t)
{
	uint64_t chunk = t->seg_bytes < QL_PREALLOC ? t->seg_bytes : QL_PREALLOC;
	return chunk < 4096 ? 0 : chunk;
}

/* Writes zeros at [at, to); the end reached. */
static uint64_t write_zeros(int fd, uint64_t at, uint64_t to)
{
	static const uint8_t zeros[65536];
	while (at < to) {
		size_t n = to - at < sizeof zeros ? (size_t)(to - at) : sizeof zeros;
		if (pwrite_all(fd, zeros, n, at) != 0)
			break;
		at += n;
	}
	return at;
}

/* Inline zero-fill (no helper): zeros from the records' end `end` up to
 * the next chunk boundary (at most the segment size), when the records
 * have reached the zeros' end.  Best effort: without them the records are
 * appended, just as durably. */
static void prealloc(struct ql_topic *t, uint64_t end)
{
	uint64_t chunk = zero_chunk(t);
	pthread_mutex_lock(&t->zmu);
	if (chunk && end >= t->zero_end) {
		uint64_t to = (end / chunk + 1) * chunk;
		t->zero_end = write_zeros(t->afd, end, to > t->seg_bytes ? t->seg_bytes : to);
	}
	pthread_mutex_unlock(&t->zmu);
}

void ql_zero_by_helper(struct ql_topic *t, bool on)
{
	pthread_mutex_lock(&t->zmu);
	t->zhelper = on;
	pthread_mutex_unlock(&t->zmu);
}

bool ql_wants_zeros(struct ql_topic *t)
{
	uint64_t chunk = zero_chunk(t);
	pthread_mutex_lock(&t->zmu);
	bool want = t->zhelper && chunk && !t->zbusy && t->zero_end < t->seg_bytes &&
		    t->zero_end < t->wclaim + chunk;
	pthread_mutex_unlock(&t->zmu);
	return want;
}

int ql_zero_ahead(struct ql_topic *t)
{
	uint64_t chunk = zero_chunk(t);
	if (!chunk)
		return 0;
	pthread_mutex_lock(&t->zmu);
	uint64_t from = t->zero_end > t->wclaim ? t->zero_end : t->wclaim;
	uint64_t to = (t->wclaim / chunk + 2) * chunk;
	if (to > t->seg_bytes)
		to = t->seg_bytes;
	if (t->zbusy || from >= to) {
		pthread_mutex_unlock(&t->zmu);
		return 0;
	}
	t->zbusy = true;
	t->zfrom = from;
	t->zto = to;
	int fd = t->afd; /* stays open: a roll waits for !zbusy */
	pthread_mutex_unlock(&t->zmu);
	/* written and synced before the writer gets there: its syncs then
	 * find blocks that exist and nothing of ours dirty */
	uint64_t at = write_zeros(fd, from, to);
	int rc = at < to ? -EIO : fdatasync(fd) != 0 ? -errno : 0;
	pthread_mutex_lock(&t->zmu);
	t->zbusy = false;
	if (at > from)
		t->zero_end = at;
	pthread_cond_broadcast(&t->zcond);
	pthread_mutex_unlock(&t->zmu);
	return rc;
}

/* Claims [.., end) for the writer: waits while the helper writes zeros
 * there. */
static void claim(struct ql_topic *t, uint64_t end)
{
	pthread_mutex_lock(&t->zmu);
	while (t->zbusy && end > t->zfrom)
		pthread_cond_wait(&t->zcond, &t->zmu);
	if (end > t->wclaim)
		t->wclaim = end;
	pthread_mutex_unlock(&t->zmu);
}

static void written(struct ql_topic *t)
{
	pthread_mutex_lock(&t->mu);
	t->segs[t->nsegs - 1]->wsize += t->wlen;
	pthread_mutex_unlock(&t->mu);
	t->wlen = 0;
}

int ql_flush(struct ql_topic *t)
{
	if (t->failed)
		return -EIO;
	uint64_t at = t->segs[t->nsegs - 1]->wsize;
	claim(t, at + t->wlen);
	int err = pwrite_all(t->afd, t->wbuf, t->wlen, at);
	if (err)
		return fail(t, err);
	if (t->wlen && !t->zhelper)
		prealloc(t, at + t->wlen);
	written(t);
	return 0;
}

/* One write that is durable when it returns (RWF_DSYNC: only its own
 * range is flushed).  0, -EOPNOTSUPP (not supported here) or -errno. */
static int pwrite_dsync(int fd, const uint8_t *p, size_t n, uint64_t at)
{
#ifdef RWF_DSYNC
	size_t done = 0;
	while (done < n) {
		struct iovec iov = {(void *)(p + done), n - done};
		ssize_t w = pwritev2(fd, &iov, 1, (off_t)(at + done), RWF_DSYNC);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && done == 0 && (errno == EOPNOTSUPP || errno == EINVAL || errno == ENOSYS))
			return -EOPNOTSUPP;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		done += (size_t)w;
	}
	return 0;
#else
	(void)fd, (void)p, (void)n, (void)at;
	return -EOPNOTSUPP;
#endif
}

int ql_flush_sync(struct ql_topic *t)
{
	if (t->failed)
		return -EIO;
	/* inline zeros are synced with the records, as before */
	if (t->wlen == 0 || t->no_dsync || !t->zhelper) {
		int rc = ql_flush(t);
		return rc ? rc : ql_sync(t);
	}
	uint64_t at = t->segs[t->nsegs - 1]->wsize;
	claim(t, at + t->wlen);
	int rc = pwrite_dsync(t->afd, t->wbuf, t->wlen, at);
	if (rc == -EOPNOTSUPP) {
		t->no_dsync = true;
		return ql_flush_sync(t);
	}
	if (rc)
		return fail(t, -rc);
	written(t);
	pthread_mutex_lock(&t->mu);
	t->st.syncs++;
	pthread_mutex_unlock(&t->mu);
	if (t->dir_dirty) {
		if (fsync(t->dfd) != 0)
			return fail(t, errno);
		t->dir_dirty = false;
	}
	return 0;
}

int ql_stage(struct ql_topic *t, struct ql_stage *w)
{
	w->len = 0;
	w->dir = w->done = w->held = false;
	w->rc = 0;
	if (t->failed)
		return -EIO;
	if (t->wlen == 0 || t->no_dsync || !t->zhelper) {
		/* the serial path (no range sync here): after the others */
		wait_idle(t);
		w->rc = ql_flush_sync(t);
		w->done = true;
	} else {
		struct ql_seg *a = t->segs[t->nsegs - 1];
		w->at = a->wsize;
		w->len = t->wlen;
		w->fd = t->afd; /* stays open: a roll waits for !inflight */
		claim(t, w->at + w->len);
		uint8_t *b = t->wbuf;
		size_t c = t->wcap;
		t->wbuf = w->buf;
		t->wcap = w->cap;
		w->buf = b;
		w->cap = c;
		written(t);
		w->dir = t->dir_dirty;
		t->dir_dirty = false;
	}
	if (w->rc)
		return w->rc;
	w->end_pos = t->segs[t->nsegs - 1]->wsize;
	w->end_off = t->next_off;
	pthread_mutex_lock(&t->zmu);
	t->inflight++;
	pthread_mutex_unlock(&t->zmu);
	w->held = true;
	return 0;
}

int ql_stage_write(struct ql_topic *t, struct ql_stage *w)
{
	if (w->done)
		return w->rc;
	int rc = pwrite_dsync(w->fd, w->buf, w->len, w->at);
	if (rc == -EOPNOTSUPP) {
		rc = -pwrite_all(w->fd, w->buf, w->len, w->at);
		if (rc == 0 && fdatasync(w->fd) != 0)
			rc = -errno;
	}
	if (rc)
		return fail(t, -rc);
	pthread_mutex_lock(&t->mu);
	t->st.syncs++;
	pthread_mutex_unlock(&t->mu);
	if (w->dir && fsync(t->dfd) != 0)
		return fail(t, errno);
	return 0;
}

int ql_stage_finish(struct ql_topic *t, struct ql_stage *w, int rc)
{
	if (rc == 0 && t->failed)
		rc = -EIO; /* an earlier round's write failed: not durable in order */
	if (rc == 0) {
		pthread_mutex_lock(&t->mu);
		t->segs[t->nsegs - 1]->size = w->end_pos;
		t->pub_next = w->end_off;
		pthread_mutex_unlock(&t->mu);
	}
	if (w->held) {
		pthread_mutex_lock(&t->zmu);
		t->inflight--;
		pthread_cond_broadcast(&t->zcond);
		pthread_mutex_unlock(&t->zmu);
		w->held = false;
	}
	return rc;
}

int ql_sync(struct ql_topic *t)
{
	if (t->failed)
		return -EIO;
	if (fdatasync(t->afd) != 0)
		return fail(t, errno);
	pthread_mutex_lock(&t->mu);
	t->st.syncs++;
	pthread_mutex_unlock(&t->mu);
	if (t->dir_dirty) {
		if (fsync(t->dfd) != 0)
			return fail(t, errno);
		t->dir_dirty = false;
	}
	return 0;
}

void ql_publish(struct ql_topic *t)
{
	pthread_mutex_lock(&t->mu);
	struct ql_seg *a = t->segs[t->nsegs - 1];
	a->size = a->wsize;
	t->pub_next = t->next_off;
	pthread_mutex_unlock(&t->mu);
}

int ql_retain(struct ql_topic *t, uint64_t max_bytes, int64_t max_age_s, uint64_t now_ns)
{
	int deleted = 0;
	pthread_mutex_lock(&t->mu);
	uint64_t total = 0;
	for (size_t i = 0; i < t->nsegs; i++)
		total += t->segs[i]->wsize;
	while (t->nsegs > 1) {
		struct ql_seg *s = t->segs[0];
		bool big = max_bytes && total > max_bytes;
		bool old = max_age_s > 0 && s->last_ns &&
			   now_ns > s->last_ns + (uint64_t)max_age_s * UINT64_C(1000000000);
		if (!big && !old)
			break;
		char path[QL_PATH];
		if (seg_path(t, s->base, path, sizeof path) == 0 && unlink(path) != 0 &&
		    errno != ENOENT) {
			log_warn("queue_retention topic=%s segment=%020" PRIu64 " unlink failed: %s",
				 t->name, s->base, strerror(errno));
			break;
		}
		log_info("queue_retention topic=%s segment=%020" PRIu64 " bytes=%" PRIu64
			 " reason=%s", t->name, s->base, s->wsize, big ? "size" : "age");
		total -= s->wsize;
		seg_free(s);
		memmove(t->segs, t->segs + 1, (t->nsegs - 1) * sizeof *t->segs);
		t->nsegs--;
		t->st.deleted_segments++;
		deleted++;
	}
	pthread_mutex_unlock(&t->mu);
	return deleted;
}

void ql_reader_init(struct ql_reader *r, uint64_t off)
{
	memset(r, 0, sizeof *r);
	r->off = off;
	r->fd = -1;
	r->pos_for = UINT64_MAX;
}

void ql_reader_close(struct ql_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	r->pos_for = UINT64_MAX;
}

void ql_reader_rewind(struct ql_reader *r, const struct ql_record *rec)
{
	r->off = rec->off;
	if (r->fd >= 0 && r->seg == rec->seg) {
		r->pos = rec->pos;
		r->pos_for = rec->off;
	} else {
		r->pos_for = UINT64_MAX;
	}
}

static int pread_all(int fd, void *buf, size_t n, uint64_t pos)
{
	size_t done = 0;
	while (done < n) {
		ssize_t g = pread(fd, (uint8_t *)buf + done, n - done, (off_t)(pos + done));
		if (g < 0 && errno == EINTR)
			continue;
		if (g <= 0)
			return -EIO;
		done += (size_t)g;
	}
	return 0;
}

static int read_locked(struct ql_topic *t, struct ql_reader *r, uint8_t *buf, size_t cap,
		       struct ql_record *rec)
{
	for (;;) {
		uint64_t first = t->segs[0]->base;
		if (r->off < first) {
			r->lost += first - r->off;
			r->off = first;
			r->pos_for = UINT64_MAX;
		}
		if (r->off >= t->pub_next)
			return 0;
		size_t lo = 0, hi = t->nsegs; /* last seg with base <= off */
		while (hi - lo > 1) {
			size_t mid = (lo + hi) / 2;
			if (t->segs[mid]->base <= r->off)
				lo = mid;
			else
				hi = mid;
		}
		struct ql_seg *s = t->segs[lo];
		uint64_t pos;
		if (r->fd >= 0 && r->seg == s->base && r->pos_for == r->off) {
			pos = r->pos;
		} else {
			if (r->fd >= 0 && r->seg != s->base)
				ql_reader_close(r);
			if (r->fd < 0) {
				char path[QL_PATH];
				if (seg_path(t, s->base, path, sizeof path) != 0)
					return -EIO;
				r->fd = open(path, O_RDONLY | O_CLOEXEC);
				if (r->fd < 0)
					return -EIO;
				r->seg = s->base;
			}
			pos = 0;
			size_t a = 0, b = s->nidx; /* last index entry with off <= r->off */
			while (b > a) {
				size_t mid = (a + b) / 2;
				if (s->idx[mid].off <= r->off) {
					pos = s->idx[mid].pos;
					a = mid + 1;
				} else {
					b = mid;
				}
			}
		}
		for (;;) {
			for (size_t i = 0; i < s->nbad; i++)
				if (pos >= s->bad[i].start && pos < s->bad[i].end)
					pos = s->bad[i].end;
			if (pos + QL_HDR > s->size) {
				if (lo + 1 < t->nsegs) {
					uint64_t nb = t->segs[lo + 1]->base;
					r->off = r->off < nb ? nb : r->off;
					ql_reader_close(r);
					break; /* retry in the next segment */
				}
				return 0;
			}
			uint8_t h[QL_HDR];
			if (pread_all(r->fd, h, QL_HDR, pos) != 0)
				return -EIO;
			size_t tot = hdr_total(h, t->max_record);
			if (tot == 0 || pos + tot > s->size)
				return -EIO;
			uint64_t off = get64(h + 16);
			if (off < r->off) {
				pos += tot;
				continue;
			}
			size_t pl = h[12], len = get32(h + 8);
			if (len > cap)
				return -E2BIG;
			if (pread_all(r->fd, rec->peer, pl, pos + QL_HDR) != 0 ||
			    pread_all(r->fd, buf, len, pos + QL_HDR + pl) != 0)
				return -EIO;
			uint32_t crc = qcrc32c(0, h + 8, QL_HDR - 8);
			crc = qcrc32c(crc, rec->peer, pl);
			crc = qcrc32c(crc, buf, len);
			if (crc != get32(h + 4))
				return -EIO;
			rec->peer[pl] = '\0';
			rec->off = off;
			rec->lamport = get64(h + 24);
			rec->time_ns = get64(h + 32);
			rec->data = buf;
			rec->len = len;
			rec->pos = pos;
			rec->seg = s->base;
			r->pos = pos + tot;
			r->off = off + 1;
			r->pos_for = r->off;
			return 1;
		}
	}
}

int ql_read(struct ql_topic *t, struct ql_reader *r, uint8_t *buf, size_t cap,
	    struct ql_record *rec)
{
	pthread_mutex_lock(&t->mu);
	int rc = read_locked(t, r, buf, cap, rec);
	pthread_mutex_unlock(&t->mu);
	if (rc == -EIO) {
		static struct vlog_rl rl;
		vlog_limited(&rl, VLOG_WARN, "queue_read_corrupt topic=%s offset=%" PRIu64, t->name,
			     r->off);
	}
	return rc;
}

void ql_get_stats(struct ql_topic *t, struct ql_stats *out)
{
	pthread_mutex_lock(&t->mu);
	*out = t->st;
	out->first = t->segs[0]->base;
	out->next = t->pub_next;
	out->segments = t->nsegs;
	out->bytes = 0;
	out->records = 0;
	for (size_t i = 0; i < t->nsegs; i++) {
		out->bytes += t->segs[i]->size;
		out->records += t->segs[i]->nrec;
	}
	pthread_mutex_unlock(&t->mu);
}
