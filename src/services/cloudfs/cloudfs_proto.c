/*
 * cloudfs_proto.c - parser for the cloudfs protocol (cloudfs_proto.h).
 *
 * The call syntax follows COMPAT.md ("Cloud FS"): the path of
 * virgo_cloud_open is everything between the parentheses (blanks and one
 * pair of quotes trimmed), the data of virgo_cloud_write runs from the
 * first comma to the second-last comma (so it may contain commas and
 * parentheses), and descriptors are decimal.  Native paths are one token
 * with %XX escapes, so any file name (spaces, newlines) travels.  A native
 * write whose payload is too large still has its payload skipped, so one
 * bad request never turns its payload into a stream of bogus commands.
 */
#include "cloudfs_proto.h"

#include "../../common/pathcodec.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define CFS_MAX_TOKENS 6

static bool tok_is(const uint8_t *t, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp((const char *)t, word, n) == 0;
}

static enum cfs_parse_result fail(int *code, const char **msg, int c, const char *m)
{
	*code = c;
	*msg = m;
	return CFS_ERROR;
}

static int hexval(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* A VIRGO descriptor: 1..16 hex digits, optional 0x (native form). */
static int parse_fd_hex(const uint8_t *t, size_t n, uint64_t *out)
{
	frame_unquote(&t, &n);
	if (n > 2 && t[0] == '0' && (t[1] | 0x20) == 'x') {
		t += 2;
		n -= 2;
	}
	if (n == 0 || n > 16)
		return -1;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		int d = hexval(t[i]);
		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	*out = v;
	return 0;
}

/* An octal mode, at most 07777. */
static int parse_mode(const uint8_t *t, size_t n, unsigned *out)
{
	if (n == 0 || n > 5)
		return -1;
	unsigned v = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '7')
			return -1;
		v = v * 8 + (unsigned)(t[i] - '0');
	}
	if (v > 07777)
		return -1;
	*out = v;
	return 0;
}

static int parse_flags(const uint8_t *t, size_t n, unsigned *out)
{
	unsigned f = 0;
	if (n == 0 || n > 8)
		return -1;
	for (size_t i = 0; i < n; i++) {
		unsigned b;
		switch (t[i]) {
		case 'r': b = CFS_O_READ; break;
		case 'w': b = CFS_O_WRITE; break;
		case 'c': b = CFS_O_CREAT; break;
		case 't': b = CFS_O_TRUNC; break;
		case 'x': b = CFS_O_EXCL; break;
		case 'a': b = CFS_O_APPEND; break;
		case 's': b = CFS_O_STAT; break;
		case 'p': b = CFS_O_PARENT; break;
		default: return -1;
		}
		if (f & b)
			return -1;
		f |= b;
	}
	if (!(f & (CFS_O_READ | CFS_O_WRITE)))
		return -1;
	if ((f & (CFS_O_TRUNC | CFS_O_APPEND)) && !(f & CFS_O_WRITE))
		return -1;
	if ((f & CFS_O_EXCL) && !(f & CFS_O_CREAT))
		return -1;
	*out = f;
	return 0;
}

/* utimens times: decimal nanoseconds, "now" or "omit". */
static int parse_time(const uint8_t *t, size_t n, int64_t *out)
{
	uint64_t v;
	if (tok_is(t, n, "now")) {
		*out = CFS_TIME_NOW;
		return 0;
	}
	if (tok_is(t, n, "omit")) {
		*out = CFS_TIME_OMIT;
		return 0;
	}
	if (frame_u64(t, n, &v) != 0 || v > (uint64_t)INT64_MAX)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static int path_tok(const uint8_t *t, size_t n, char *out, size_t *len)
{
	if (pathcodec_decode(t, n, out, CFS_PATH_MAX + 1) != 0)
		return -1;
	*len = strlen(out);
	return 0;
}

/* The raw path of the call syntax (no escapes): blanks and quotes trimmed. */
static int legacy_path(const uint8_t *s, size_t n, struct cfs_req *req)
{
	frame_unquote(&s, &n);
	if (n == 0 || n > CFS_PATH_MAX || memchr(s, 0, n))
		return -1;
	memcpy(req->path, s, n);
	req->path[n] = '\0';
	req->path_len = n;
	return 0;
}

/* virgo_cloud_<name>(<args>) */
static enum cfs_parse_result parse_legacy(const uint8_t *line, size_t n, struct cfs_req *req,
					  int *code, const char **msg)
{
	static const char prefix[] = "virgo_cloud_";
	const size_t plen = sizeof prefix - 1;
	const uint8_t *open = memchr(line, '(', n);
	size_t close = n;
	while (close > 0 && (line[close - 1] == ' ' || line[close - 1] == '\t'))
		close--;
	if (!open || close == 0 || line[close - 1] != ')' || line + close - 1 < open)
		return fail(code, msg, EINVAL, "call syntax is virgo_cloud_<op>(<args>)");
	const uint8_t *name = line + plen;
	size_t name_len = (size_t)(open - name);
	while (name_len > 0 && name[name_len - 1] == ' ')
		name_len--;
	const uint8_t *args = open + 1;
	size_t args_len = (size_t)(line + close - 1 - args);
	req->legacy = true;
	if (tok_is(name, name_len, "open")) {
		req->op = CFS_OP_OPEN;
		if (legacy_path(args, args_len, req) != 0)
			return fail(code, msg, EINVAL, "open needs (<path>)");
		return CFS_REQ;
	}
	if (tok_is(name, name_len, "close")) {
		req->op = CFS_OP_CLOSE;
		if (frame_u64(args, args_len, &req->fd) != 0)
			return fail(code, msg, EINVAL, "close needs (<decimal descriptor>)");
		return CFS_REQ;
	}
	if (tok_is(name, name_len, "read")) {
		/* (<fd>,<ignored>,<count>,<pos>) */
		const uint8_t *part[4];
		size_t pl[4];
		int np = 0;
		const uint8_t *p = args, *end = args + args_len;
		while (np < 4) {
			const uint8_t *comma = np < 3 ? memchr(p, ',', (size_t)(end - p)) : NULL;
			part[np] = p;
			pl[np] = (size_t)((comma ? comma : end) - p);
			np++;
			if (!comma)
				break;
			p = comma + 1;
		}
		req->op = CFS_OP_READ;
		if (np < 3 || frame_u64(part[0], pl[0], &req->fd) != 0 ||
		    frame_u64(part[2], pl[2], &req->count) != 0 ||
		    (np == 4 && frame_u64(part[3], pl[3], &req->offset) != 0))
			return fail(code, msg, EINVAL, "read needs (<fd>,none,<count>,<pos>)");
		req->has_offset = np == 4;
		return CFS_REQ;
	}
	if (tok_is(name, name_len, "write")) {
		/* (<fd>,<data>,<count>,<pos>): data between the first and the
		 * second-last comma; (<fd>,<data>) writes all of data */
		req->op = CFS_OP_WRITE;
		const uint8_t *c1 = memchr(args, ',', args_len);
		if (!c1 || frame_u64(args, (size_t)(c1 - args), &req->fd) != 0)
			return fail(code, msg, EINVAL, "write needs (<fd>,<data>,<count>,<pos>)");
		const uint8_t *data = c1 + 1, *end = args + args_len;
		const uint8_t *c3 = NULL, *c2 = NULL;
		for (const uint8_t *q = end; q > data; q--) {
			if (q[-1] == ',') {
				if (!c3)
					c3 = q - 1;
				else {
					c2 = q - 1;
					break;
				}
			}
		}
		uint64_t cnt, pos;
		if (c2 && frame_u64(c2 + 1, (size_t)(c3 - c2 - 1), &cnt) == 0 &&
		    frame_u64(c3 + 1, (size_t)(end - c3 - 1), &pos) == 0) {
			req->data = data;
			req->data_len = (size_t)(c2 - data);
			if (cnt < req->data_len)
				req->data_len = (size_t)cnt;
			req->count = req->data_len;
			req->offset = pos;
			req->has_offset = true;
		} else {
			req->data = data;
			req->data_len = (size_t)(end - data);
			req->count = req->data_len;
		}
		return CFS_REQ;
	}
	return fail(code, msg, ENOSYS, "unknown call (open, read, write, close)");
}

struct cmd {
	const char *word;
	enum cfs_op op;
	int min, max; /* argument counts */
	const char *usage;
};

static const struct cmd cmds[] = {
	{"open", CFS_OP_OPEN, 1, 3, "usage: open <path> [<flags: r w c t x a s>] [<octal mode>]"},
	{"read", CFS_OP_READ, 2, 2, "usage: read <fd> <count>"},
	{"pread", CFS_OP_PREAD, 3, 3, "usage: pread <fd> <count> <offset>"},
	{"write", CFS_OP_WRITE, 2, 2, "usage: write <fd> <nbytes> + payload"},
	{"pwrite", CFS_OP_PWRITE, 3, 4, "usage: pwrite <fd> <nbytes> <offset> [s] + payload"},
	{"close", CFS_OP_CLOSE, 1, 1, "usage: close <fd>"},
	{"fsync", CFS_OP_FSYNC, 1, 1, "usage: fsync <fd>"},
	{"fdatasync", CFS_OP_FDATASYNC, 1, 1, "usage: fdatasync <fd>"},
	{"fstat", CFS_OP_FSTAT, 1, 1, "usage: fstat <fd>"},
	{"ftruncate", CFS_OP_FTRUNCATE, 2, 2, "usage: ftruncate <fd> <size>"},
	{"stat", CFS_OP_STAT, 1, 1, "usage: stat <path>"},
	{"lstat", CFS_OP_LSTAT, 1, 1, "usage: lstat <path>"},
	{"truncate", CFS_OP_TRUNCATE, 2, 2, "usage: truncate <path> <size>"},
	{"unlink", CFS_OP_UNLINK, 1, 1, "usage: unlink <path>"},
	{"rename", CFS_OP_RENAME, 2, 2, "usage: rename <from> <to>"},
	{"mkdir", CFS_OP_MKDIR, 1, 3, "usage: mkdir <path> [<octal mode> [s]]"},
	{"rmdir", CFS_OP_RMDIR, 1, 1, "usage: rmdir <path>"},
	{"readdir", CFS_OP_READDIR, 1, 4, "usage: readdir <path> [<cursor> [<count 1..4096> [s|t]]]"},
	{"readlink", CFS_OP_READLINK, 1, 1, "usage: readlink <path>"},
	{"symlink", CFS_OP_SYMLINK, 2, 2, "usage: symlink <target> <linkpath>"},
	{"chmod", CFS_OP_CHMOD, 2, 2, "usage: chmod <path> <octal mode>"},
	{"utimens", CFS_OP_UTIMENS, 3, 3, "usage: utimens <path> <atime_ns|now|omit> <mtime_ns|now|omit>"},
	{"statfs", CFS_OP_STATFS, 0, 0, "usage: statfs"},
	{"fsyncdir", CFS_OP_FSYNCDIR, 1, 1, "usage: fsyncdir <path>"},
	{"stats", CFS_OP_STATS, 0, 0, "stats takes no arguments"},
	{"ping", CFS_OP_PING, 0, 0, "ping takes no arguments"},
	{"help", CFS_OP_HELP, 0, 0, "help takes no arguments"},
	{"quit", CFS_OP_QUIT, 0, 0, "quit takes no arguments"},
};

static bool op_takes_fd(enum cfs_op op)
{
	return op >= CFS_OP_READ && op <= CFS_OP_FTRUNCATE;
}

static bool op_takes_path(enum cfs_op op)
{
	return op == CFS_OP_OPEN || (op >= CFS_OP_STAT && op <= CFS_OP_UTIMENS && op != CFS_OP_SYMLINK) ||
	       op == CFS_OP_FSYNCDIR;
}

enum cfs_parse_result cfs_parse(struct frame_state *st, const uint8_t *buf, size_t len, bool eof,
				const struct cfs_limits *lim, struct cfs_req *req, size_t *consumed,
				uint64_t *need, int *code, const char **msg)
{
	const uint8_t *line;
	size_t line_len, used;
	*need = 0;
	req->op = 0;
	req->legacy = req->has_offset = false;
	req->fd = req->count = req->offset = req->max = 0;
	req->flags = req->mode = 0;
	req->atime_ns = req->mtime_ns = CFS_TIME_OMIT;
	req->data = NULL;
	req->data_len = req->path_len = req->path2_len = 0;
	req->path[0] = req->path2[0] = '\0';
	enum frame_result fr =
		frame_next_line(st, buf, len, eof, lim->max_line, &line, &line_len, &used);
	*consumed = used;
	if (fr == FRAME_MORE)
		return CFS_MORE;
	if (fr == FRAME_TOOLONG)
		return fail(code, msg, E2BIG, "request line too long");

	if (line_len > 12 && strncasecmp((const char *)line, "virgo_cloud_", 12) == 0)
		return parse_legacy(line, line_len, req, code, msg);

	const uint8_t *tok[CFS_MAX_TOKENS];
	size_t tl[CFS_MAX_TOKENS];
	int nt = frame_tokens(line, line_len, tok, tl, CFS_MAX_TOKENS);
	if (nt <= 0)
		return fail(code, msg, EINVAL, "too many arguments");
	const struct cmd *cm = NULL;
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
		if (tok_is(tok[0], tl[0], cmds[i].word))
			cm = &cmds[i];
	if (!cm)
		return fail(code, msg, ENOSYS, "unknown command (try: help)");
	int na = nt - 1;
	req->op = cm->op;

	if (cm->op == CFS_OP_WRITE || cm->op == CFS_OP_PWRITE) {
		/* <fd> <nbytes> [<offset>] \r\n <payload> \r\n */
		uint64_t n;
		if (na < 2 || frame_u64(tok[2], tl[2], &n) != 0)
			return fail(code, msg, EINVAL, cm->usage);
		switch (frame_body(st, buf, len, eof, line, used, n, lim->max_io, consumed, need)) {
		case FRAME_BODY_TOOBIG:
			return fail(code, msg, E2BIG, "payload larger than cloudfs_max_io (write in pieces)");
		case FRAME_BODY_MORE: return CFS_MORE;
		case FRAME_BODY_BADTERM:
			return fail(code, msg, EINVAL, "payload not followed by CRLF (bad data chunk)");
		case FRAME_BODY_OK: break;
		}
		/* pwrite's trailing "s": the reply carries the file's fstat */
		if (na == 4 && cm->max == 4 && tok_is(tok[4], tl[4], "s")) {
			req->flags = CFS_O_STAT;
			na--;
		}
		if (na != cm->min || parse_fd_hex(tok[1], tl[1], &req->fd) != 0 ||
		    (na == 3 && frame_u64(tok[3], tl[3], &req->offset) != 0))
			return fail(code, msg, EINVAL, cm->usage);
		req->count = n;
		req->data = buf + used;
		req->data_len = (size_t)n;
		return CFS_REQ;
	}
	if (na < cm->min || na > cm->max)
		return fail(code, msg, EINVAL, cm->usage);
	if (op_takes_fd(cm->op) && parse_fd_hex(tok[1], tl[1], &req->fd) != 0)
		return fail(code, msg, EINVAL, "bad descriptor (expected hex)");
	if (op_takes_path(cm->op) && path_tok(tok[1], tl[1], req->path, &req->path_len) != 0)
		return fail(code, msg, EINVAL, "bad path (1-4095 bytes, %XX escapes, no NUL)");
	switch (cm->op) {
	case CFS_OP_OPEN:
		req->flags = CFS_O_READ;
		req->mode = 0644;
		if (na >= 2 && parse_flags(tok[2], tl[2], &req->flags) != 0)
			return fail(code, msg, EINVAL,
				    "open flags: letters r w c t x a s p, with r or w (t, a need w; x needs c)");
		if (na == 3 && parse_mode(tok[3], tl[3], &req->mode) != 0)
			return fail(code, msg, EINVAL, "mode is octal, at most 7777");
		break;
	case CFS_OP_READ:
	case CFS_OP_PREAD:
		if (frame_u64(tok[2], tl[2], &req->count) != 0 ||
		    (na == 3 && frame_u64(tok[3], tl[3], &req->offset) != 0))
			return fail(code, msg, EINVAL, cm->usage);
		break;
	case CFS_OP_FTRUNCATE:
	case CFS_OP_TRUNCATE:
		if (frame_u64(tok[2], tl[2], &req->offset) != 0 || req->offset > (uint64_t)INT64_MAX)
			return fail(code, msg, EINVAL, cm->usage);
		break;
	case CFS_OP_RENAME:
		if (path_tok(tok[2], tl[2], req->path2, &req->path2_len) != 0)
			return fail(code, msg, EINVAL, "bad path (1-4095 bytes, %XX escapes, no NUL)");
		break;
	case CFS_OP_SYMLINK:
		if (path_tok(tok[1], tl[1], req->path2, &req->path2_len) != 0 ||
		    path_tok(tok[2], tl[2], req->path, &req->path_len) != 0)
			return fail(code, msg, EINVAL, "bad path (1-4095 bytes, %XX escapes, no NUL)");
		break;
	case CFS_OP_MKDIR:
		req->mode = 0755;
		if (na >= 2 && parse_mode(tok[2], tl[2], &req->mode) != 0)
			return fail(code, msg, EINVAL, "mode is octal, at most 7777");
		/* a trailing "s": the reply carries the new directory's lstat */
		if (na == 3 && !tok_is(tok[3], tl[3], "s"))
			return fail(code, msg, EINVAL, cm->usage);
		if (na == 3)
			req->flags = CFS_O_STAT;
		break;
	case CFS_OP_CHMOD:
		if (parse_mode(tok[2], tl[2], &req->mode) != 0)
			return fail(code, msg, EINVAL, "mode is octal, at most 7777");
		break;
	case CFS_OP_UTIMENS:
		if (parse_time(tok[2], tl[2], &req->atime_ns) != 0 ||
		    parse_time(tok[3], tl[3], &req->mtime_ns) != 0)
			return fail(code, msg, EINVAL, cm->usage);
		break;
	case CFS_OP_READDIR:
		req->max = CFS_READDIR_DEFAULT;
		if (na >= 2 && frame_u64(tok[2], tl[2], &req->offset) != 0)
			return fail(code, msg, EINVAL, cm->usage);
		if (na >= 3 && (frame_u64(tok[3], tl[3], &req->max) != 0 || req->max == 0 ||
				req->max > CFS_READDIR_MAX))
			return fail(code, msg, EINVAL, "readdir count must be 1..4096");
		/* a trailing "s": every entry with all its lstat fields; "t":
		 * names and types only (no lstat of each entry) */
		if (na == 4 && !tok_is(tok[4], tl[4], "s") && !tok_is(tok[4], tl[4], "t"))
			return fail(code, msg, EINVAL, cm->usage);
		if (na == 4)
			req->flags = tok_is(tok[4], tl[4], "s") ? CFS_O_STAT : CFS_O_NAMES;
		break;
	default:
		break;
	}
	return CFS_REQ;
}
