/*
 * test_cloudfs_fdtab.c - the node's VIRGO descriptor table: layout (node
 * in the top bits), ownership, the caps, stale descriptors refused after
 * close and reuse, deferred close while a job holds a reference, closing
 * a connection's descriptors, the idle expiry of call-syntax ones, and
 * descriptors refused to identities other than the one that opened them,
 * and the files held open for writing (for other identities' changes).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/services/cloudfs/cloudfs_fdtab.h"

/* An OS descriptor to register (the table closes it). */
static int osfd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	return fd;
}

/* a written file's attributes, as the opener's fstat gives them */
static const struct stat W = {.st_dev = 1, .st_ino = 2};

static bool is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

static void layout_and_ownership(void **state)
{
	(void)state;
	struct cfs_fdtab *t = cfs_fdtab_new(7, 8, 4, 12345);
	assert_non_null(t);
	uint64_t a, b;
	int fa = osfd();
	assert_int_equal(cfs_fdtab_add(t, fa, 100, 0, 8, &W, 0, &a), 0);
	assert_int_equal(cfs_fd_node(a), 7);
	assert_int_equal(cfs_fdtab_add(t, osfd(), 0, 0, 8, NULL, 0, &b), 0); /* node-owned */
	assert_true(a != b);
	int fd;
	bool w;
	assert_int_equal(cfs_fdtab_get(t, a, 100, 0, 0, &fd, &w), 0);
	assert_int_equal(fd, fa);
	assert_true(w);
	cfs_fdtab_put(t, a);
	/* another connection may not use it; anyone may use a node-owned one */
	assert_int_equal(cfs_fdtab_get(t, a, 101, 0, 0, &fd, NULL), -EBADF);
	assert_int_equal(cfs_fdtab_close(t, a, 101, 0), -EBADF);
	assert_int_equal(cfs_fdtab_get(t, b, 101, 0, 0, &fd, &w), 0);
	assert_false(w);
	cfs_fdtab_put(t, b);
	/* another node's, or garbage */
	assert_int_equal(cfs_fdtab_get(t, a ^ (UINT64_C(1) << 48), 100, 0, 0, &fd, NULL), -EBADF);
	assert_int_equal(cfs_fdtab_get(t, 0, 100, 0, 0, &fd, NULL), -EBADF);
	assert_int_equal(cfs_fdtab_get(t, (UINT64_C(7) << 48) | 0xffffff, 100, 0, 0, &fd, NULL), -EBADF);
	/* closed: refused, and the slot's reuse gets another descriptor */
	assert_int_equal(cfs_fdtab_close(t, a, 100, 0), 0);
	assert_false(is_open(fa));
	assert_int_equal(cfs_fdtab_close(t, a, 100, 0), -EBADF);
	uint64_t c;
	for (int i = 0; i < 6; i++) {
		assert_int_equal(cfs_fdtab_add(t, osfd(), 200, 0, 8, &W, 0, &c), 0);
		assert_true(c != a);
	}
	cfs_fdtab_free(t);
}

static void caps(void **state)
{
	(void)state;
	struct cfs_fdtab *t = cfs_fdtab_new(1, 6, 2, 1);
	uint64_t v[8];
	int spare = osfd();
	/* per owner */
	assert_int_equal(cfs_fdtab_add(t, osfd(), 5, 0, 2, &W, 0, &v[0]), 0);
	assert_int_equal(cfs_fdtab_add(t, osfd(), 5, 0, 2, &W, 0, &v[1]), 0);
	assert_int_equal(cfs_fdtab_owned(t, 5), 2);
	assert_true(cfs_fdtab_owner_full(t, 5, 2));
	assert_false(cfs_fdtab_owner_full(t, 5, 3)); /* the table holds 2 in all */
	assert_false(cfs_fdtab_owner_full(t, 6, 2)); /* ... none of them 6's */
	assert_int_equal(cfs_fdtab_add(t, spare, 5, 0, 2, &W, 0, &v[2]), -EMFILE);
	assert_true(is_open(spare)); /* left to the caller */
	/* node-owned (call syntax) */
	assert_int_equal(cfs_fdtab_add(t, osfd(), 0, 0, 9, &W, 0, &v[2]), 0);
	assert_int_equal(cfs_fdtab_add(t, osfd(), 0, 0, 9, &W, 0, &v[3]), 0);
	assert_int_equal(cfs_fdtab_add(t, spare, 0, 0, 9, &W, 0, &v[4]), -EMFILE);
	/* the node's total */
	assert_int_equal(cfs_fdtab_add(t, osfd(), 6, 0, 9, &W, 0, &v[4]), 0);
	assert_int_equal(cfs_fdtab_add(t, osfd(), 7, 0, 9, &W, 0, &v[5]), 0);
	assert_int_equal(cfs_fdtab_add(t, spare, 8, 0, 9, &W, 0, &v[6]), -EMFILE);
	struct cfs_fdtab_counts n;
	cfs_fdtab_counts(t, &n);
	assert_int_equal(n.open, 6);
	assert_int_equal(n.call, 2);
	close(spare);
	cfs_fdtab_free(t);
}

static void deferred_close_and_owner_close(void **state)
{
	(void)state;
	struct cfs_fdtab *t = cfs_fdtab_new(1, 8, 8, 1);
	uint64_t a, b;
	int fa = osfd(), fb = osfd(), fd;
	assert_int_equal(cfs_fdtab_add(t, fa, 9, 0, 8, &W, 0, &a), 0);
	assert_int_equal(cfs_fdtab_add(t, fb, 9, 0, 8, &W, 0, &b), 0);
	/* a job holds a: the close waits for it */
	assert_int_equal(cfs_fdtab_get(t, a, 9, 0, 0, &fd, NULL), 0);
	assert_int_equal(cfs_fdtab_close(t, a, 9, 0), 0);
	assert_true(is_open(fa));
	assert_int_equal(cfs_fdtab_get(t, a, 9, 0, 0, &fd, NULL), -EBADF);
	struct cfs_fdtab_counts n;
	cfs_fdtab_counts(t, &n);
	assert_int_equal(n.open, 1);
	cfs_fdtab_put(t, a);
	assert_false(is_open(fa));
	/* the connection goes: everything it owned closes */
	cfs_fdtab_close_owner(t, 9);
	assert_false(is_open(fb));
	assert_int_equal(cfs_fdtab_owned(t, 9), 0);
	cfs_fdtab_free(t);
}

static void idle_expiry(void **state)
{
	(void)state;
	struct cfs_fdtab *t = cfs_fdtab_new(1, 8, 8, 1);
	uint64_t a, b, c;
	int fa = osfd(), fd;
	assert_int_equal(cfs_fdtab_add(t, fa, 0, 0, 8, &W, 1000, &a), 0);
	assert_int_equal(cfs_fdtab_add(t, osfd(), 0, 0, 8, &W, 1000, &b), 0);
	assert_int_equal(cfs_fdtab_add(t, osfd(), 3, 0, 8, &W, 1000, &c), 0); /* a connection's: never */
	assert_int_equal(cfs_fdtab_get(t, b, 3, 0, 4000, &fd, NULL), 0); /* used at 4000, in use */
	assert_int_equal(cfs_fdtab_expire(t, 5000, 3000), 1); /* a only */
	assert_false(is_open(fa));
	assert_int_equal(cfs_fdtab_get(t, a, 3, 0, 5000, &fd, NULL), -EBADF);
	assert_int_equal(cfs_fdtab_expire(t, 9000, 3000), 0); /* b still held by a job */
	cfs_fdtab_put(t, b);
	assert_int_equal(cfs_fdtab_expire(t, 9000, 3000), 1);
	assert_int_equal(cfs_fdtab_owned(t, 3), 1);
	cfs_fdtab_free(t);
}

/* A descriptor belongs to the identity that opened it: a call-syntax
 * (node-owned) one is usable and closable by any connection of that
 * identity, by no other identity (EACCES); a connection's own descriptor
 * asked for by another identity is EACCES too, by the same identity on
 * another connection EBADF, as before. */
static void identities(void **state)
{
	(void)state;
	const uint64_t alice = 0xa11ce, bob = 0xb0b;
	struct cfs_fdtab *t = cfs_fdtab_new(1, 8, 8, 1);
	uint64_t call, conn;
	int fd;
	assert_int_equal(cfs_fdtab_add(t, osfd(), 0, alice, 8, &W, 0, &call), 0);
	assert_int_equal(cfs_fdtab_add(t, osfd(), 10, alice, 8, &W, 0, &conn), 0);
	assert_int_equal(cfs_fdtab_get(t, call, 11, alice, 0, &fd, NULL), 0);
	cfs_fdtab_put(t, call);
	assert_int_equal(cfs_fdtab_get(t, call, 12, bob, 0, &fd, NULL), -EACCES);
	assert_int_equal(cfs_fdtab_get(t, call, 12, 0, 0, &fd, NULL), -EACCES);
	assert_int_equal(cfs_fdtab_close(t, call, 12, bob), -EACCES);
	assert_int_equal(cfs_fdtab_get(t, conn, 12, bob, 0, &fd, NULL), -EACCES);
	assert_int_equal(cfs_fdtab_close(t, conn, 12, bob), -EACCES);
	assert_int_equal(cfs_fdtab_get(t, conn, 11, alice, 0, &fd, NULL), -EBADF);
	assert_int_equal(cfs_fdtab_close(t, call, 11, alice), 0);
	assert_int_equal(cfs_fdtab_close(t, conn, 10, alice), 0);
	cfs_fdtab_free(t);
}

/* Writable entries remember their file: cfs_fdtab_writer_other finds a
 * file open for writing by another identity (not by the asker's own,
 * not through a read-only or a closed entry). */
static void writers(void **state)
{
	(void)state;
	const uint64_t alice = 0xa11ce, bob = 0xb0b;
	char path[] = "/tmp/virgo-fdtab-XXXXXX";
	int w = mkstemp(path);
	assert_true(w >= 0);
	int r = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(r >= 0);
	struct stat st;
	assert_int_equal(fstat(w, &st), 0);
	unlink(path);
	uint64_t dev = (uint64_t)st.st_dev, ino = (uint64_t)st.st_ino;
	struct cfs_fdtab *t = cfs_fdtab_new(1, 8, 8, 1);
	uint64_t ro, rw;
	assert_int_equal(cfs_fdtab_add(t, r, 10, alice, 8, NULL, 0, &ro), 0);
	assert_false(cfs_fdtab_writer_other(t, dev, ino, bob)); /* read-only: not a writer */
	assert_int_equal(cfs_fdtab_add(t, w, 10, alice, 8, &st, 0, &rw), 0);
	assert_true(cfs_fdtab_writer_other(t, dev, ino, bob));
	assert_true(cfs_fdtab_writer_other(t, dev, ino, 0));
	assert_false(cfs_fdtab_writer_other(t, dev, ino, alice));
	assert_false(cfs_fdtab_writer_other(t, dev, ino + 1, bob));
	assert_int_equal(cfs_fdtab_close(t, rw, 10, alice), 0);
	assert_false(cfs_fdtab_writer_other(t, dev, ino, bob));
	cfs_fdtab_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout_and_ownership),
		cmocka_unit_test(caps),
		cmocka_unit_test(deferred_close_and_owner_close),
		cmocka_unit_test(idle_expiry),
		cmocka_unit_test(identities),
		cmocka_unit_test(writers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
