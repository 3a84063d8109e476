/*
 * test_mempool_ident.c - allocations owned by identities (mempool_store.c):
 * another identity (or an unauthenticated client) gets EACCES, the owner
 * and everyone on a shared one get through, unowned ones are anyone's,
 * free-by-tag skips what the caller may not use, and what an owned entry
 * costs is given back exactly when it is freed, and a listing made for an
 * identity leaves out other identities' private allocations.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/mempool_store.h"

#define ALICE UINT64_C(0x1111)
#define BOB UINT64_C(0x2222)

static void test_check(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, 1 << 20, 4096, UINT64_C(1800000000000));
	assert_non_null(st);
	uint64_t mine, shared, nobody;
	struct mp_alloc_opts a = {.ident = ALICE};
	struct mp_alloc_opts s = {.ident = ALICE, .shared = true};
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &a, &mine), 0);
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &s, &shared), 0);
	assert_int_equal(mp_store_alloc(st, 10, false, &nobody), 0);
	assert_int_equal(mp_store_check(st, mine, ALICE), 0);
	assert_int_equal(mp_store_check(st, mine, BOB), -EACCES);
	assert_int_equal(mp_store_check(st, mine, 0), -EACCES);
	assert_int_equal(mp_store_check(st, shared, BOB), 0);
	assert_int_equal(mp_store_check(st, shared, 0), 0);
	assert_int_equal(mp_store_check(st, nobody, BOB), 0);
	assert_int_equal(mp_store_check(st, nobody + 4096, ALICE), -ENOENT);
	/* the bytes are untouched by the identity stored after them */
	assert_int_equal(mp_store_write(st, mine, 0, "0123456789", 10, true), 0);
	assert_int_equal(mp_store_check(st, mine, ALICE), 0);
	assert_int_equal(mp_store_check(st, mine, BOB), -EACCES);
	mp_store_free_all(st);
}

static void test_free_owner_as_and_cost(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, 1 << 20, 4096, UINT64_C(1800000000000));
	assert_non_null(st);
	uint64_t a1, a2, b1;
	struct mp_alloc_opts a = {.ident = ALICE, .owner = "job", .owner_len = 3};
	struct mp_alloc_opts as = {.ident = ALICE, .shared = true, .owner = "job", .owner_len = 3};
	struct mp_alloc_opts b = {.ident = BOB, .owner = "job", .owner_len = 3};
	assert_int_equal(mp_store_alloc_ex(st, 100, false, &a, &a1), 0);
	assert_int_equal(mp_store_alloc_ex(st, 100, false, &as, &a2), 0);
	assert_int_equal(mp_store_alloc_ex(st, 100, false, &b, &b1), 0);
	/* bob's tag sweep: his own and alice's shared one */
	assert_int_equal(mp_store_free_owner_as(st, "job", 3, BOB), 2);
	assert_int_equal(mp_store_check(st, a1, ALICE), 0);
	assert_int_equal(mp_store_check(st, a2, ALICE), -ENOENT);
	assert_int_equal(mp_store_check(st, b1, BOB), -ENOENT);
	assert_int_equal(mp_store_free_owner_as(st, "job", 3, ALICE), 1);
	struct mp_stats s;
	mp_store_stats(st, &s);
	assert_int_equal(s.allocations, 0);
	assert_int_equal(s.accounted, 0); /* the identity's 8 bytes given back too */
	mp_store_free_all(st);
}

struct seen {
	uint64_t v[8];
	int n;
};

static bool seen_cb(void *ctx, const struct mp_info *in)
{
	struct seen *s = ctx;
	if (s->n < 8)
		s->v[s->n++] = in->vuid;
	return true;
}

static bool has(const struct seen *s, uint64_t v)
{
	for (int i = 0; i < s->n; i++)
		if (s->v[i] == v)
			return true;
	return false;
}

/* ls as an identity: its own, shared and unowned allocations, never
 * another identity's private ones; the plain listing shows all. */
static void test_list_as(void **state)
{
	(void)state;
	struct mp_store *st = mp_store_new(1, 1 << 20, 4096, UINT64_C(1800000000000));
	assert_non_null(st);
	uint64_t mine, shared, nobody, hers;
	struct mp_alloc_opts a = {.ident = ALICE};
	struct mp_alloc_opts as = {.ident = ALICE, .shared = true};
	struct mp_alloc_opts b = {.ident = BOB};
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &a, &mine), 0);
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &as, &shared), 0);
	assert_int_equal(mp_store_alloc(st, 10, false, &nobody), 0);
	assert_int_equal(mp_store_alloc_ex(st, 10, false, &b, &hers), 0);
	struct seen s = {.n = 0};
	uint64_t cur = 0;
	do
		cur = mp_store_list_as(st, cur, 100, BOB, seen_cb, &s);
	while (cur);
	assert_int_equal(s.n, 3);
	assert_false(has(&s, mine));
	assert_true(has(&s, shared) && has(&s, nobody) && has(&s, hers));
	memset(&s, 0, sizeof s);
	cur = 0;
	do
		cur = mp_store_list_as(st, cur, 100, 0, seen_cb, &s);
	while (cur);
	assert_int_equal(s.n, 2); /* unauthenticated: shared and unowned */
	memset(&s, 0, sizeof s);
	cur = 0;
	do
		cur = mp_store_list(st, cur, 100, seen_cb, &s);
	while (cur);
	assert_int_equal(s.n, 4);
	mp_store_free_all(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_free_owner_as_and_cost),
		cmocka_unit_test(test_list_as),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
