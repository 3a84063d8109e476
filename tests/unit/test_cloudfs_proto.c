/*
 * test_cloudfs_proto.c - the cloudfs parser: native commands, the notes'
 * call syntax, path escapes, write payloads, limits and error paths.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/pathcodec.h"
#include "../../src/services/cloudfs/cloudfs_proto.h"

static const struct cfs_limits lim = {.max_line = 256, .max_io = 1000};

struct parsed {
	enum cfs_parse_result r;
	struct cfs_req req;
	size_t used;
	uint64_t need;
	int code;
	const char *msg;
};

static struct parsed *parse(struct frame_state *st, const char *s, size_t n, bool eof)
{
	static struct parsed p;
	p.r = cfs_parse(st, (const uint8_t *)s, n, eof, &lim, &p.req, &p.used, &p.need, &p.code,
			&p.msg);
	return &p;
}

#define P(s) parse(&st, s, sizeof(s) - 1, false)

static void native_fd_commands(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed *p = P("open /data/a.txt rwct 600\r\n");
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.op, CFS_OP_OPEN);
	assert_string_equal(p->req.path, "/data/a.txt");
	assert_int_equal(p->req.flags, CFS_O_READ | CFS_O_WRITE | CFS_O_CREAT | CFS_O_TRUNC);
	assert_int_equal(p->req.mode, 0600);
	assert_false(p->req.legacy);
	p = P("open a wcts\r\n"); /* s: the reply carries the fstat */
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.flags, CFS_O_WRITE | CFS_O_CREAT | CFS_O_TRUNC | CFS_O_STAT);
	assert_int_equal(P("open a s\n")->code, EINVAL); /* s needs r or w */
	assert_int_equal(P("open a rss\n")->code, EINVAL);
	p = P("open /d/f wcxsp 600\r\n"); /* p: ... and the directory's ctimes */
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.flags,
			 CFS_O_WRITE | CFS_O_CREAT | CFS_O_EXCL | CFS_O_STAT | CFS_O_PARENT);
	assert_int_equal(P("open a rwctxasp\n")->r, CFS_REQ); /* every letter once: 8 */
	assert_int_equal(P("open a p\n")->code, EINVAL); /* p needs r or w */
	assert_int_equal(P("open a rpp\n")->code, EINVAL);
	p = P("open a\n");
	assert_int_equal(p->req.flags, CFS_O_READ);
	assert_int_equal(p->req.mode, 0644);
	p = P("read 7000001000002 4096\r\n");
	assert_int_equal(p->req.op, CFS_OP_READ);
	assert_true(p->req.fd == 0x7000001000002ULL);
	assert_int_equal(p->req.count, 4096);
	p = P("pread 0x7000001000002 10 99\r\n");
	assert_int_equal(p->req.op, CFS_OP_PREAD);
	assert_int_equal(p->req.offset, 99);
	p = P("ftruncate 70000010000aa 5\n");
	assert_int_equal(p->req.op, CFS_OP_FTRUNCATE);
	assert_int_equal(p->req.offset, 5);
	assert_int_equal(P("close 1\n")->req.op, CFS_OP_CLOSE);
	assert_int_equal(P("fsync 1\n")->req.op, CFS_OP_FSYNC);
	assert_int_equal(P("fdatasync 1\n")->req.op, CFS_OP_FDATASYNC);
	assert_int_equal(P("fstat 1\n")->req.op, CFS_OP_FSTAT);
	assert_int_equal(P("statfs\n")->req.op, CFS_OP_STATFS);
	assert_int_equal(P("PING\n")->req.op, CFS_OP_PING);
}

static void native_path_commands(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed *p = P("rename a%20b c%25d\n");
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.op, CFS_OP_RENAME);
	assert_string_equal(p->req.path, "a b");
	assert_string_equal(p->req.path2, "c%d");
	p = P("symlink ../x /link\n");
	assert_int_equal(p->req.op, CFS_OP_SYMLINK);
	assert_string_equal(p->req.path2, "../x");
	assert_string_equal(p->req.path, "/link");
	p = P("mkdir /d\n");
	assert_int_equal(p->req.mode, 0755);
	assert_int_equal(p->req.flags, 0);
	p = P("mkdir /d 700 s\n"); /* s: the reply carries the new directory's lstat */
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.mode, 0700);
	assert_int_equal(p->req.flags, CFS_O_STAT);
	assert_int_equal(P("mkdir /d 700 x\n")->code, EINVAL);
	assert_int_equal(P("mkdir /d 700 s s\n")->code, EINVAL);
	assert_int_equal(P("mkdir /d s\n")->code, EINVAL); /* the mode comes first */
	p = P("chmod /d 1777\n");
	assert_int_equal(p->req.mode, 01777);
	p = P("utimens /f now 1500000000000000000\n");
	assert_int_equal(p->req.atime_ns, CFS_TIME_NOW);
	assert_true(p->req.mtime_ns == 1500000000000000000LL);
	p = P("utimens /f omit omit\n");
	assert_int_equal(p->req.mtime_ns, CFS_TIME_OMIT);
	p = P("readdir /\n");
	assert_int_equal(p->req.op, CFS_OP_READDIR);
	assert_int_equal(p->req.max, CFS_READDIR_DEFAULT);
	assert_int_equal(p->req.offset, 0);
	p = P("readdir / 12345 10\n");
	assert_int_equal(p->req.offset, 12345);
	assert_int_equal(p->req.max, 10);
	assert_int_equal(p->req.flags, 0);
	p = P("readdir /d 0 4096 s\n"); /* s: every entry with all its lstat fields */
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.max, 4096);
	assert_int_equal(p->req.flags, CFS_O_STAT);
	p = P("readdir /d 99 4096 t\n"); /* t: names and types only */
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.offset, 99);
	assert_int_equal(p->req.flags, CFS_O_NAMES);
	assert_int_equal(P("readdir /d 0 10 st\n")->code, EINVAL);
	assert_int_equal(P("readdir /d 0 10 t s\n")->code, EINVAL);
	assert_int_equal(P("readdir /d 0 10 a\n")->code, EINVAL);
	assert_int_equal(P("readdir /d 0 s\n")->code, EINVAL); /* the count comes first */
	assert_int_equal(P("truncate /f 77\n")->req.offset, 77);
	assert_int_equal(P("lstat /f\n")->req.op, CFS_OP_LSTAT);
	assert_int_equal(P("readlink /f\n")->req.op, CFS_OP_READLINK);
	assert_int_equal(P("fsyncdir /\n")->req.op, CFS_OP_FSYNCDIR);
	assert_int_equal(P("unlink /f\n")->req.op, CFS_OP_UNLINK);
	assert_int_equal(P("rmdir /f\n")->req.op, CFS_OP_RMDIR);
}

static void native_errors(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed *p = P("bogus\n");
	assert_int_equal(p->r, CFS_ERROR);
	assert_int_equal(p->code, ENOSYS);
	assert_int_equal(P("open\n")->code, EINVAL);
	assert_int_equal(P("open a q\n")->code, EINVAL); /* bad flag */
	assert_int_equal(P("open a t\n")->code, EINVAL); /* t without w */
	assert_int_equal(P("open a rx\n")->code, EINVAL); /* x without c */
	assert_int_equal(P("open a rr\n")->code, EINVAL);
	assert_int_equal(P("open a r 8\n")->code, EINVAL);
	assert_int_equal(P("open a r 17777\n")->code, EINVAL);
	assert_int_equal(P("open a%2\n")->code, EINVAL); /* cut escape */
	assert_int_equal(P("open a%zz\n")->code, EINVAL);
	assert_int_equal(P("open a%00b\n")->code, EINVAL); /* NUL inside */
	assert_int_equal(P("read xyz 1\n")->code, EINVAL);
	assert_int_equal(P("read 1\n")->code, EINVAL);
	assert_int_equal(P("read 11112222333344445 1\n")->code, EINVAL); /* 17 digits */
	assert_int_equal(P("readdir / 0 0\n")->code, EINVAL);
	assert_int_equal(P("readdir / 0 4097\n")->code, EINVAL);
	assert_int_equal(P("utimens /f soon now\n")->code, EINVAL);
	assert_int_equal(P("statfs x\n")->code, EINVAL);
	assert_int_equal(P("a b c d e f g\n")->code, EINVAL);
	/* a path of 4096 bytes is one too many (lines are 256 here: E2BIG) */
	char big[400];
	memset(big, 'a', sizeof big);
	memcpy(big, "stat ", 5);
	big[sizeof big - 1] = '\n';
	p = parse(&st, big, sizeof big, false);
	assert_int_equal(p->r, CFS_ERROR);
	assert_int_equal(p->code, E2BIG);
}

static void write_payloads(void **state)
{
	(void)state;
	struct frame_state st = {0};
	/* the payload is binary: CR, LF and NUL inside */
	static const char w[] = "pwrite 1a 5 7\r\na\r\n\0b\r\nping\r\n";
	struct parsed *p = parse(&st, w, sizeof w - 1, false);
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.op, CFS_OP_PWRITE);
	assert_int_equal(p->req.data_len, 5);
	assert_memory_equal(p->req.data, "a\r\n\0b", 5);
	assert_int_equal(p->req.offset, 7);
	assert_int_equal(p->used, sizeof "pwrite 1a 5 7\r\na\r\n\0b\r\n" - 1);
	assert_int_equal(p->req.flags, 0);
	/* a trailing s: the reply carries the file's fstat */
	memset(&st, 0, sizeof st);
	p = P("pwrite 1a 2 7 s\r\nab\r\n");
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.flags, CFS_O_STAT);
	assert_int_equal(p->req.offset, 7);
	assert_memory_equal(p->req.data, "ab", 2);
	memset(&st, 0, sizeof st);
	assert_int_equal(P("pwrite 1a 2 7 t\r\nab\r\n")->code, EINVAL);
	memset(&st, 0, sizeof st);
	assert_int_equal(P("write 1a 2 s\r\nab\r\n")->code, EINVAL); /* pwrite only */
	memset(&st, 0, sizeof st);
	/* incomplete: keep the line, ask for the whole */
	p = P("write 1a 10\r\nabc");
	assert_int_equal(p->r, CFS_MORE);
	assert_int_equal(p->used, 0);
	assert_true(p->need >= 13 + 10 + 1); /* at least an LF after it */
	/* an empty write */
	p = P("write 1a 0\r\n\r\n");
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.data_len, 0);
	/* too big: the payload is skipped, the next command parses */
	memset(&st, 0, sizeof st);
	char big[1100 + 40];
	int h = snprintf(big, sizeof big, "write 1a 1001\r\n");
	memset(big + h, 'x', 1001);
	memcpy(big + h + 1001, "\r\nping\r\n", 8);
	size_t n = (size_t)h + 1001 + 8, off = 0;
	p = parse(&st, big, n, false);
	assert_int_equal(p->r, CFS_ERROR);
	assert_int_equal(p->code, E2BIG);
	off += p->used;
	for (int i = 0; i < 4 && off < n; i++) {
		p = parse(&st, big + off, n - off, false);
		off += p->used;
		if (p->r == CFS_REQ)
			break;
	}
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.op, CFS_OP_PING);
	/* a payload not followed by CRLF */
	memset(&st, 0, sizeof st);
	p = P("write 1a 2\r\nabXY");
	assert_int_equal(p->r, CFS_ERROR);
	assert_int_equal(p->code, EINVAL);
}

static void legacy_calls(void **state)
{
	(void)state;
	struct frame_state st = {0};
	struct parsed *p = P("virgo_cloud_open(/virgofstest.txt)\n");
	assert_int_equal(p->r, CFS_REQ);
	assert_true(p->req.legacy);
	assert_int_equal(p->req.op, CFS_OP_OPEN);
	assert_string_equal(p->req.path, "/virgofstest.txt");
	p = P("virgo_cloud_open(\"/with space/%41\")\n"); /* raw: no escapes */
	assert_string_equal(p->req.path, "/with space/%41");
	p = P("virgo_cloud_read(1234,none,100,5)\n");
	assert_int_equal(p->req.op, CFS_OP_READ);
	assert_int_equal(p->req.fd, 1234);
	assert_int_equal(p->req.count, 100);
	assert_int_equal(p->req.offset, 5);
	assert_true(p->req.has_offset);
	p = P("virgo_cloud_read(\"1234\",\"none\",\"100\")\n");
	assert_int_equal(p->req.count, 100);
	assert_false(p->req.has_offset);
	p = P("virgo_cloud_write(1234,a,b(c),d,5,0)\n");
	assert_int_equal(p->req.op, CFS_OP_WRITE);
	assert_int_equal(p->req.data_len, 5);
	assert_memory_equal(p->req.data, "a,b(c", 5); /* clipped to count */
	assert_int_equal(p->req.offset, 0);
	p = P("virgo_cloud_write(1234,hello world,100,7)\n");
	assert_int_equal(p->req.data_len, 11);
	assert_int_equal(p->req.offset, 7);
	p = P("virgo_cloud_write(1234,just data)\n");
	assert_int_equal(p->req.data_len, 9);
	assert_false(p->req.has_offset);
	p = P("virgo_cloud_close(1234)\n");
	assert_int_equal(p->req.op, CFS_OP_CLOSE);
	assert_int_equal(P("virgo_cloud_open()\n")->code, EINVAL);
	assert_int_equal(P("virgo_cloud_read(1,none)\n")->code, EINVAL);
	assert_int_equal(P("virgo_cloud_read(x,none,1,1)\n")->code, EINVAL);
	assert_int_equal(P("virgo_cloud_write(1)\n")->code, EINVAL);
	assert_int_equal(P("virgo_cloud_close(abc)\n")->code, EINVAL);
	assert_int_equal(P("virgo_cloud_open(x\n")->code, EINVAL);
	assert_int_equal(P("virgo_cloud_mmap(x)\n")->code, ENOSYS);
	/* the original clients' NUL padding ends the line */
	static const char pad[] = "virgo_cloud_close(9)\0\0\0\0";
	p = parse(&st, pad, sizeof pad - 1, false);
	assert_int_equal(p->r, CFS_REQ);
	assert_int_equal(p->req.fd, 9);
}

static void path_codec(void **state)
{
	(void)state;
	char enc[64], dec[64];
	size_t n = pathcodec_encode("a b%\n\xc3\xa9", 7, enc, sizeof enc);
	assert_string_equal(enc, "a%20b%25%0A%C3%A9");
	assert_int_equal(n, strlen(enc));
	assert_int_equal(pathcodec_decode((const uint8_t *)enc, n, dec, sizeof dec), 0);
	assert_string_equal(dec, "a b%\n\xc3\xa9");
	/* truncation reports the needed length, stays terminated */
	char small[4];
	assert_int_equal(pathcodec_encode("abcdef", 6, small, sizeof small), 6);
	assert_string_equal(small, "abc");
	assert_int_equal(pathcodec_decode((const uint8_t *)"abc", 3, small, 3), -1);
	assert_int_equal(pathcodec_decode((const uint8_t *)"", 0, small, 3), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(native_fd_commands), cmocka_unit_test(native_path_commands),
		cmocka_unit_test(native_errors),      cmocka_unit_test(write_payloads),
		cmocka_unit_test(legacy_calls),       cmocka_unit_test(path_codec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
