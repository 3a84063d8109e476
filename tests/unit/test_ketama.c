/*
 * test_ketama.c - MD5 against RFC 1321's vectors, and the ketama continuum
 * (key placement for the memcached port): determinism, balance, minimal
 * movement when a node is added, and agreement with virgo_key_owner.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/common/md5.h"
#include "../../src/lib/ketama.h"
#include "virgo.h"

static void hex(const uint8_t d[16], char out[33])
{
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void md5_rfc1321(void **state)
{
	(void)state;
	static const char *const v[][2] = {
		{"", "d41d8cd98f00b204e9800998ecf8427e"},
		{"a", "0cc175b9c0f1b6a831c399e269772661"},
		{"abc", "900150983cd24fb0d6963f7d28e17f72"},
		{"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
		{"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
		{"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
		 "57edf4a22be3c955ac49da2e2107b67a"},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		uint8_t d[16];
		char h[33];
		md5_digest(v[i][0], strlen(v[i][0]), d);
		hex(d, h);
		assert_string_equal(h, v[i][1]);
	}
}

static const char *const hosts[] = {"127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1"};
static const int ports[] = {11211, 11212, 11213, 11214};

static void known_placement(void **state)
{
	(void)state;
	struct kt_point ring[3 * KT_POINTS_PER_NODE];
	kt_build(ring, hosts, ports, 3);
	for (int i = 1; i < 3 * KT_POINTS_PER_NODE; i++)
		assert_true(ring[i - 1].value <= ring[i].value);
	/* the key hash is MD5's first word, little-endian: MD5("abc") starts 90 01 50 98 */
	assert_int_equal(kt_hash("abc", 3), 0x98500190u);
	/* lookups are deterministic and stable across rebuilds */
	struct kt_point ring2[3 * KT_POINTS_PER_NODE];
	kt_build(ring2, hosts, ports, 3);
	for (int i = 0; i < 1000; i++) {
		char k[32];
		int n = snprintf(k, sizeof k, "key:%d", i);
		assert_int_equal(kt_lookup(ring, 3, k, (size_t)n), kt_lookup(ring2, 3, k, (size_t)n));
	}
}

static void balanced_and_minimal_movement(void **state)
{
	(void)state;
	struct kt_point r3[3 * KT_POINTS_PER_NODE], r4[4 * KT_POINTS_PER_NODE];
	kt_build(r3, hosts, ports, 3);
	kt_build(r4, hosts, ports, 4);
	int count[3] = {0}, moved = 0, moved_elsewhere = 0;
	const int N = 30000;
	for (int i = 0; i < N; i++) {
		char k[32];
		int n = snprintf(k, sizeof k, "user:%d", i);
		int a = kt_lookup(r3, 3, k, (size_t)n), b = kt_lookup(r4, 4, k, (size_t)n);
		count[a]++;
		if (a != b) {
			moved++;
			if (b != 3)
				moved_elsewhere++; /* consistent hashing: only to the new node */
		}
	}
	for (int i = 0; i < 3; i++)
		assert_true(count[i] > N / 3 * 7 / 10 && count[i] < N / 3 * 13 / 10);
	assert_int_equal(moved_elsewhere, 0);
	assert_true(moved > N / 4 * 6 / 10 && moved < N / 4 * 14 / 10);
}

static void key_owner_api(void **state)
{
	(void)state;
	char path[] = "/tmp/virgo-ketama-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char conf[] = "node = 1 127.0.0.1 0\nnode = 2 127.0.0.1 1\nnode = 3 127.0.0.1 2\n";
	assert_int_equal(write(fd, conf, sizeof conf - 1), (ssize_t)(sizeof conf - 1));
	close(fd);
	virgo_fini();
	assert_int_equal(virgo_init(path), 0);
	struct kt_point ring[3 * KT_POINTS_PER_NODE];
	kt_build(ring, hosts, ports, 3);
	for (int i = 0; i < 200; i++) {
		char k[32];
		int n = snprintf(k, sizeof k, "k%d", i);
		assert_int_equal(virgo_key_owner(k, (size_t)n), kt_lookup(ring, 3, k, (size_t)n));
	}
	assert_int_equal(virgo_key_owner("", 0), -EINVAL);
	char big[251];
	memset(big, 'x', sizeof big);
	assert_int_equal(virgo_key_owner(big, sizeof big), -EINVAL);
	virgo_fini();
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(md5_rfc1321),
		cmocka_unit_test(known_placement),
		cmocka_unit_test(balanced_and_minimal_movement),
		cmocka_unit_test(key_owner_api),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
