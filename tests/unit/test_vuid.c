/*
 * test_vuid.c - VUID layout, formatting, parsing and the generator.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/common/vuid.h"

static void layout(void **state)
{
	(void)state;
	uint64_t v = vuid_make(7, false, 12345);
	assert_int_equal(vuid_node(v), 7);
	assert_false(vuid_is_span(v));
	uint64_t s = vuid_make(65535, true, VUID_SEQ_MASK);
	assert_int_equal(vuid_node(s), 65535);
	assert_true(vuid_is_span(s));
	assert_int_equal(s & VUID_SEQ_MASK, VUID_SEQ_MASK);
}

static void format_parse(void **state)
{
	(void)state;
	char buf[17];
	uint64_t v = vuid_make(3, true, 0xabcdef), back;
	vuid_format(v, buf);
	assert_int_equal(vuid_parse(buf, strlen(buf), &back), 0);
	assert_true(back == v);
	assert_int_equal(vuid_parse("\"3800000abcdef\"", 15, &back), 0);
	assert_true(back == v);
	assert_int_equal(vuid_parse(" 0x3800000ABCDEF ", 17, &back), 0);
	assert_true(back == v);
	assert_int_equal(vuid_parse("", 0, &back), -EINVAL);
	assert_int_equal(vuid_parse("xyz", 3, &back), -EINVAL);
	assert_int_equal(vuid_parse("12345678901234567", 17, &back), -EINVAL); /* 17 digits */
	assert_int_equal(vuid_parse("ffff", 4, &back), -EINVAL); /* node 0 */
}

static struct vuid_gen shared_gen;
#define PER_THREAD 20000

static void *gen_many(void *arg)
{
	uint64_t *out = arg;
	for (int i = 0; i < PER_THREAD; i++)
		out[i] = vuid_gen_next(&shared_gen, false);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void generator_unique_across_threads(void **state)
{
	(void)state;
	vuid_gen_init(&shared_gen, 9, UINT64_C(1800000000000));
	uint64_t *all = malloc(sizeof(uint64_t) * PER_THREAD * 4);
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, gen_many, all + i * PER_THREAD);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	qsort(all, PER_THREAD * 4, sizeof(uint64_t), cmp_u64);
	for (int i = 1; i < PER_THREAD * 4; i++)
		assert_true(all[i] != all[i - 1]);
	for (int i = 0; i < PER_THREAD * 4; i++)
		assert_int_equal(vuid_node(all[i]), 9);
	free(all);
}

static void restart_does_not_reuse(void **state)
{
	(void)state;
	struct vuid_gen a, b;
	vuid_gen_init(&a, 1, UINT64_C(1800000000000));
	uint64_t first = vuid_gen_next(&a, false);
	for (int i = 0; i < 200; i++)
		vuid_gen_next(&a, false);
	uint64_t last = vuid_gen_next(&a, false);
	/* a restart one second later starts past what the first life used */
	vuid_gen_init(&b, 1, UINT64_C(1800000001000));
	uint64_t after = vuid_gen_next(&b, false);
	assert_true(after > last && last > first);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout),
		cmocka_unit_test(format_parse),
		cmocka_unit_test(generator_unique_across_threads),
		cmocka_unit_test(restart_does_not_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
