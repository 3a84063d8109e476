/*
 * test_analytics_store.c - the analytics store: revisions per change, the
 * 500-value ring per key, the byte and key bounds, learnt (read-only)
 * variables, and resuming after a revision without missing or repeating
 * a change (or an ERANGE when the rings dropped one).
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../src/services/analytics/analytics_store.h"

static int set(struct an_store *s, const char *k, const char *v, uint64_t *rev)
{
	return an_store_set(s, k, strlen(k), v, strlen(v), false, rev);
}

struct collect {
	uint64_t revs[4096];
	char vals[4096][16];
	int n;
};

static int collect_cb(void *arg, const struct an_entry *e)
{
	struct collect *c = arg;
	if (c->n < 4096) {
		c->revs[c->n] = e->rev;
		snprintf(c->vals[c->n], 16, "%s", e->val);
		c->n++;
	}
	return 0;
}

static void revisions_and_values(void **state)
{
	(void)state;
	struct an_store *s = an_store_new(16, 1 << 20);
	uint64_t rev;
	assert_int_equal(set(s, "match", "True", &rev), 1);
	assert_true(rev == 1);
	assert_int_equal(set(s, "kernel_analytics1", "v1", &rev), 1);
	assert_true(rev == 2);
	assert_int_equal(set(s, "match", "True", &rev), 0); /* same value: no change */
	assert_true(rev == 1);
	assert_int_equal(set(s, "match", "False", &rev), 1);
	assert_true(rev == 3);
	struct an_entry e;
	assert_int_equal(an_store_get(s, "match", 5, &e), 0);
	assert_string_equal(e.val, "False");
	assert_true(e.rev == 3);
	assert_int_equal(an_store_get(s, "nope", 4, &e), -ENOENT);
	assert_int_equal(an_store_set(s, "bad key", 7, "x", 1, false, &rev), -EINVAL);
	struct collect c = {0};
	an_store_list(s, NULL, 0, collect_cb, &c);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.vals[0], "v1"); /* by name: kernel_analytics1 < match */
	c.n = 0;
	an_store_list(s, "ma", 2, collect_cb, &c);
	assert_int_equal(c.n, 1);
	assert_true(an_store_rev(s) == 3);
	an_store_free(s);
}

static void ring_keeps_the_last_500(void **state)
{
	(void)state;
	struct an_store *s = an_store_new(16, 1 << 20);
	uint64_t rev;
	char v[16];
	for (int i = 1; i <= 700; i++) {
		snprintf(v, sizeof v, "%d", i);
		assert_int_equal(set(s, "MaxNetworkBandwidth", v, &rev), 1);
	}
	struct collect *c = calloc(1, sizeof *c);
	assert_int_equal(an_store_history(s, "MaxNetworkBandwidth", 19, collect_cb, c), 0);
	assert_int_equal(c->n, AN_RING);
	assert_string_equal(c->vals[0], "201");
	assert_string_equal(c->vals[AN_RING - 1], "700");
	assert_true(an_store_resumable(s) == 200);
	assert_int_equal(an_store_history(s, "nope", 4, collect_cb, c), -ENOENT);
	free(c);
	an_store_free(s);
}

static void bounds(void **state)
{
	(void)state;
	struct an_store *s = an_store_new(2, 4096);
	uint64_t rev;
	assert_int_equal(set(s, "a", "1", &rev), 1);
	assert_int_equal(set(s, "b", "1", &rev), 1);
	assert_int_equal(set(s, "c", "1", &rev), -ENOSPC);
	char big[1001];
	memset(big, 'x', 1000);
	big[1000] = '\0';
	for (int i = 0; i < 50; i++) {
		big[0] = (char)('a' + i % 26);
		set(s, "a", big, &rev);
		assert_true(an_store_bytes(s) <= 4096 + 1001);
	}
	/* the current value of b survived the byte budget */
	struct an_entry e;
	assert_int_equal(an_store_get(s, "b", 1, &e), 0);
	char huge[AN_RING * 3];
	memset(huge, 'y', sizeof huge);
	assert_int_equal(an_store_set(s, "a", 1, huge, 1025, false, &rev), -EINVAL);
	an_store_free(s);
}

static void learnt_is_read_only(void **state)
{
	(void)state;
	struct an_store *s = an_store_new(8, 1 << 20);
	uint64_t rev;
	assert_int_equal(an_store_set(s, "localhost_load", 14, "[0.5]", 5, true, &rev), 1);
	assert_int_equal(set(s, "localhost_load", "[9]", &rev), -EACCES);
	assert_int_equal(an_store_set(s, "localhost_load", 14, "[0.6]", 5, true, &rev), 1);
	struct an_entry e;
	an_store_get(s, "localhost_load", 14, &e);
	assert_true(e.learnt);
	assert_string_equal(e.val, "[0.6]");
	an_store_free(s);
}

static void resume_without_missing_or_repeating(void **state)
{
	(void)state;
	struct an_store *s = an_store_new(64, 1 << 20);
	uint64_t rev;
	char k[8], v[16];
	for (int i = 1; i <= 300; i++) {
		snprintf(k, sizeof k, "k%d", i % 7);
		snprintf(v, sizeof v, "%d", i);
		set(s, k, v, &rev);
	}
	for (uint64_t after = 0; after <= 300; after += 37) {
		struct collect *c = calloc(1, sizeof *c);
		assert_int_equal(an_store_since(s, after, collect_cb, c), 0);
		assert_int_equal(c->n, (int)(300 - after));
		for (int i = 0; i < c->n; i++) {
			assert_true(c->revs[i] == after + 1 + (uint64_t)i); /* each once, in order */
			snprintf(v, sizeof v, "%" PRIu64, after + 1 + (uint64_t)i);
			assert_string_equal(c->vals[i], v);
		}
		free(c);
	}
	/* push one key past its ring: resuming before what it dropped fails */
	for (int i = 0; i < 600; i++) {
		snprintf(v, sizeof v, "x%d", i);
		set(s, "hot", v, &rev);
	}
	assert_true(an_store_resumable(s) > 300);
	struct collect *c = calloc(1, sizeof *c);
	assert_int_equal(an_store_since(s, 300, collect_cb, c), -ERANGE);
	c->n = 0;
	assert_int_equal(an_store_since(s, an_store_resumable(s), collect_cb, c), 0);
	assert_int_equal(c->n, (int)(an_store_rev(s) - an_store_resumable(s)));
	free(c);
	an_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(revisions_and_values),
		cmocka_unit_test(ring_keeps_the_last_500),
		cmocka_unit_test(bounds),
		cmocka_unit_test(learnt_is_read_only),
		cmocka_unit_test(resume_without_missing_or_repeating),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
