/*
 * queue_log.h - one topic's durable log: append-only segment files of
 * checksummed records, recovered at open.
 *
 * A topic is a directory <queue_dir>/<topic>/ of segments named by the
 * offset of their first record (%020llu.seg).  A record is a 40-byte
 * header (magic, CRC32C of everything after the CRC, payload length, peer
 * length, flags (QL_F_OVERLAP), offset, Lamport timestamp, time in ns),
 * the peer's address ("ip", the notes' stamp) and the payload.  One thread appends (the
 * writer, queue_commit.c): ql_append encodes into a buffer, ql_flush
 * writes it, ql_sync makes it durable, ql_publish makes it visible to
 * readers.  Readers (any thread) see only published records.  At open a
 * torn or corrupt tail of the last segment is reported and truncated; a
 * bad record with valid ones after it is reported and skipped (a hole).
 * Retention deletes whole segments, never the active one.
 */
#ifndef VIRGO_QUEUE_LOG_H
#define VIRGO_QUEUE_LOG_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QL_HDR 40
#define QL_PEER_MAX 64
#define QL_MAGIC 0x31525156u /* "VQR1" little-endian */
/* Header byte 13, flags: the record was encoded while an earlier commit
 * round's write to its topic was still in flight (ql_stage), so it may be
 * on disk without the bytes before it.  Recovery that finds such a record
 * just after a bad or missing region of the last segment cuts the tail
 * there (a torn tail, not mid-segment corruption). */
#define QL_F_OVERLAP 0x01

struct ql_record {
	uint64_t off, lamport, time_ns;
	char peer[QL_PEER_MAX + 1]; /* NUL-terminated */
	const uint8_t *data; /* points into the caller's buffer */
	size_t len;
	uint64_t pos; /* where it starts in its segment (for ql_reader_rewind) */
	uint64_t seg; /* its segment's base offset */
};

/* What one topic's recovery found (also kept for stat). */
struct ql_stats {
	uint64_t first, next; /* readable offsets: [first, next) */
	uint64_t bytes; /* of all segments */
	uint64_t segments;
	uint64_t records; /* present (holes and deleted ones excluded) */
	uint64_t corrupt; /* bad regions found mid-segment (skipped) */
	uint64_t truncated_bytes; /* torn tail cut at open */
	uint64_t deleted_segments; /* by retention */
	uint64_t syncs; /* syncs of its log since start (group commit: < pushes) */
	uint64_t max_lamport;
};

struct ql_topic;

/* Opens (creating dir/name if create) and recovers a topic; logs what it
 * found.  0 and *out (free with ql_close), -ENOENT (absent, !create), or
 * -errno. */
int ql_open(const char *dir, const char *name, uint64_t segment_bytes, uint64_t max_record,
	    bool create, struct ql_topic **out);
void ql_close(struct ql_topic *t);
const char *ql_name(const struct ql_topic *t);
const char *ql_path(const struct ql_topic *t); /* its directory */

/* ---- the writer thread only -------------------------------------------- */
/* Encodes one record at the end (rolling to a new segment when the active
 * one would pass segment_bytes); *off gets its offset.  0 or -errno (the
 * topic is then failed: every later append fails with -EIO). */
int ql_append(struct ql_topic *t, const uint8_t *data, size_t len, const char *peer,
	      uint64_t lamport, uint64_t time_ns, uint64_t *off);
/* write()s what ql_append encoded.  0 or -errno (failed as above). */
int ql_flush(struct ql_topic *t);
/* fdatasync()s the active segment (and the directory after a roll). */
int ql_sync(struct ql_topic *t);
/* ql_flush + ql_sync in one: writes what ql_append encoded with a write
 * that syncs only those bytes (the helper's zeros elsewhere in the file
 * are not waited for), then the directory after a roll.  0 or -errno. */
int ql_flush_sync(struct ql_topic *t);
/* Two commit rounds' writes in flight at once (queue_commit.c): the
 * writer, in log order, detaches what ql_append encoded (ql_stage); any
 * thread then writes it with a write that syncs only its bytes
 * (ql_stage_write), several rounds' at once; in log order again,
 * ql_stage_finish publishes it, unless that write or an earlier one
 * failed.  A roll waits until no staged write is in flight. */
struct ql_stage {
	uint8_t *buf; /* owned: swapped with the topic's encode buffer */
	size_t len, cap;
	uint64_t at, end_pos, end_off;
	int fd;
	bool dir; /* fsync the directory too (after a roll) */
	bool done; /* written and synced in ql_stage already (rc) */
	bool held; /* counted in flight until ql_stage_finish */
	int rc;
};
/* Writer, in log order.  0 or -errno (the topic failed). */
int ql_stage(struct ql_topic *t, struct ql_stage *w);
/* Any thread, concurrently with other rounds' writes and the next
 * ql_stage.  0 or -errno (the topic is failed). */
int ql_stage_write(struct ql_topic *t, struct ql_stage *w);
/* In log order, after every earlier round's finish: publishes w's records
 * when rc is 0 and the topic has not failed (an earlier round's failed
 * write fails every later one).  Returns rc, or -EIO. */
int ql_stage_finish(struct ql_topic *t, struct ql_stage *w, int rc);
/* Zero-fill ahead by another thread (queue_log.c's top): on, ql_flush no
 * longer writes zeros itself; the writer asks ql_wants_zeros() after its
 * flushes and has the helper call ql_zero_ahead(). */
void ql_zero_by_helper(struct ql_topic *t, bool on);
bool ql_wants_zeros(struct ql_topic *t);
/* Helper thread: writes and fdatasync()s zeros ahead of the writer (about
 * a chunk past what it has written).  0 or -errno (nothing lost: the
 * writer then appends). */
int ql_zero_ahead(struct ql_topic *t);
/* Makes what was flushed visible to readers. */
void ql_publish(struct ql_topic *t);
/* Deletes whole old segments while the topic holds more than max_bytes
 * (0: no limit) or the segment's newest record is older than max_age_s
 * (0: no limit).  Returns segments deleted. */
int ql_retain(struct ql_topic *t, uint64_t max_bytes, int64_t max_age_s, uint64_t now_ns);

/* ---- readers (any thread) ---------------------------------------------- */
struct ql_reader {
	uint64_t off; /* next offset wanted; set it to seek */
	uint64_t lost; /* records skipped because retention deleted them */
	int fd; /* -1 or the open segment (ql_reader_init sets -1) */
	uint64_t seg, pos, pos_for; /* cached position of offset pos_for */
};
void ql_reader_init(struct ql_reader *r, uint64_t off);
void ql_reader_close(struct ql_reader *r);
/* Back to record rec (re-read it next). */
void ql_reader_rewind(struct ql_reader *r, const struct ql_record *rec);
/* Next published record with offset >= r->off into buf[0..cap): 1 and
 * *rec, 0 none yet, -E2BIG (cap too small), -EIO (corrupt on disk). */
int ql_read(struct ql_topic *t, struct ql_reader *r, uint8_t *buf, size_t cap,
	    struct ql_record *rec);
void ql_get_stats(struct ql_topic *t, struct ql_stats *out);

/* Pure, for tests and recovery: checks the record at p[0..n) (n bytes
 * available).  Its total size, or 0 when it is not a valid record. */
size_t ql_check(const uint8_t *p, size_t n, uint64_t max_record);
/* Pure: encodes a record header + peer into hdr (QL_HDR + QL_PEER_MAX
 * bytes), CRC over the payload too; returns the header+peer length. */
size_t ql_encode_hdr(uint8_t *hdr, const uint8_t *data, size_t len, const char *peer,
		     uint64_t off, uint64_t lamport, uint64_t time_ns);

#endif
