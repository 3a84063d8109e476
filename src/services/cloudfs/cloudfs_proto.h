/*
 * cloudfs_proto.h - the cloudfs wire protocol parser (port 50000).
 *
 * Pure: bytes in, one request (or one error) out, no I/O and no
 * allocation.  Two syntaxes share the port: native commands (open, read,
 * pread, write, pwrite, close, stat, readdir, ...; length-prefixed
 * binary-safe payloads, pipelining; paths as one token each with %XX
 * escapes for bytes that cannot appear in a token) and the notes' call
 * syntax, virgo_cloud_open(<path>) and friends (§902, COMPAT.md), whose
 * replies keep the original's shape.  docs/PROTOCOL.md is the reference.
 */
#ifndef VIRGO_CLOUDFS_PROTO_H
#define VIRGO_CLOUDFS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../common/frame.h"

#define CFS_PATH_MAX 4095 /* bytes of a decoded path (PATH_MAX - 1) */
#define CFS_READDIR_DEFAULT 256 /* entries per readdir page when no count is given */
#define CFS_READDIR_MAX 4096 /* most entries one readdir page may ask for */

enum cfs_op {
	CFS_OP_OPEN = 1, /* open <path> [<flags> [<mode>]] */
	CFS_OP_READ, /* read <fd> <count> */
	CFS_OP_PREAD, /* pread <fd> <count> <offset> */
	CFS_OP_WRITE, /* write <fd> <n> + payload */
	CFS_OP_PWRITE, /* pwrite <fd> <n> <offset> + payload */
	CFS_OP_CLOSE, /* close <fd> */
	CFS_OP_FSYNC, /* fsync <fd> */
	CFS_OP_FDATASYNC, /* fdatasync <fd> */
	CFS_OP_FSTAT, /* fstat <fd> */
	CFS_OP_FTRUNCATE, /* ftruncate <fd> <size> */
	CFS_OP_STAT, /* stat <path> (follows a final symlink inside the export) */
	CFS_OP_LSTAT, /* lstat <path> */
	CFS_OP_TRUNCATE, /* truncate <path> <size> */
	CFS_OP_UNLINK, /* unlink <path> */
	CFS_OP_RENAME, /* rename <from> <to> */
	CFS_OP_MKDIR, /* mkdir <path> [<mode> [s]] */
	CFS_OP_RMDIR, /* rmdir <path> */
	CFS_OP_READDIR, /* readdir <path> [<cursor> [<count> [s|t]]] */
	CFS_OP_READLINK, /* readlink <path> */
	CFS_OP_SYMLINK, /* symlink <target> <linkpath> */
	CFS_OP_CHMOD, /* chmod <path> <mode> */
	CFS_OP_UTIMENS, /* utimens <path> <atime_ns|now|omit> <mtime_ns|now|omit> */
	CFS_OP_STATFS, /* statfs */
	CFS_OP_FSYNCDIR, /* fsyncdir <path> */
	CFS_OP_STATS,
	CFS_OP_PING,
	CFS_OP_HELP,
	CFS_OP_QUIT,
};

/* open flags (the letters of the flags token) */
#define CFS_O_READ 0x01 /* r */
#define CFS_O_WRITE 0x02 /* w */
#define CFS_O_CREAT 0x04 /* c */
#define CFS_O_TRUNC 0x08 /* t */
#define CFS_O_EXCL 0x10 /* x */
#define CFS_O_APPEND 0x20 /* a */
#define CFS_O_STAT 0x40 /* s: the reply carries the open file's fstat */
#define CFS_O_PARENT 0x80 /* p: ... and its directory's ctime before and after */
#define CFS_O_NAMES 0x100 /* readdir t: names and types only, no lstat per entry */

/* utimens: besides nanoseconds since the epoch */
#define CFS_TIME_NOW (-1)
#define CFS_TIME_OMIT (-2)

struct cfs_req {
	enum cfs_op op;
	bool legacy; /* notes' call syntax: answer in the original's shape */
	uint64_t fd; /* VIRGO descriptor */
	uint64_t count; /* read/pread: bytes asked; write/pwrite: payload bytes */
	uint64_t offset; /* pread/pwrite position; truncate size; readdir cursor */
	bool has_offset; /* legacy read/write: a position was given */
	unsigned flags; /* open: CFS_O_*; pwrite, mkdir: CFS_O_STAT or 0; readdir: that or CFS_O_NAMES */
	unsigned mode; /* open/mkdir/chmod */
	int64_t atime_ns, mtime_ns; /* utimens (or CFS_TIME_NOW / CFS_TIME_OMIT) */
	uint64_t max; /* readdir entries asked for */
	const uint8_t *data; /* write payload; points into the parsed buffer */
	size_t data_len;
	size_t path_len, path2_len;
	char path[CFS_PATH_MAX + 1]; /* decoded, NUL-terminated (no NUL inside) */
	char path2[CFS_PATH_MAX + 1]; /* rename target, symlink link path */
};

struct cfs_limits {
	size_t max_line; /* longest request line */
	uint64_t max_io; /* largest write payload */
};

enum cfs_parse_result {
	CFS_MORE = 0, /* need more bytes (at least *need in total, if set) */
	CFS_REQ, /* *req holds a request */
	CFS_ERROR, /* *err_code (positive errno) and *err_msg describe it */
};

/* Parses at most one request from buf[0..len).  *consumed is always set:
 * the caller drops that many bytes (also on CFS_MORE).  On CFS_MORE,
 * *need (if non-zero) is the buffered length worth waiting for (a write's
 * payload).  req->data points into buf, valid until the bytes are dropped. */
enum cfs_parse_result cfs_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
				const struct cfs_limits *lim, struct cfs_req *req, size_t *consumed,
				uint64_t *need, int *err_code, const char **err_msg);

#endif
