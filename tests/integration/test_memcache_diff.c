/*
 * test_memcache_diff.c - the memcached port against memcached itself: the
 * test starts a real memcached (the Debian package's binary) on a free
 * loopback port beside a virgod node, sends both the same deterministic
 * pseudo-random sequence of a few thousand text-protocol commands (every
 * storage command, cas, get/gets/gat, incr/decr, delete, touch,
 * flush_all, with and without noreply, plus malformed lines), and
 * compares the replies byte for byte; only CAS uniques (which each server
 * numbers its own way) are masked.  Each batch of commands is followed by
 * "version", whose reply marks where the batch's replies end, so a
 * server that answers a noreply command is caught.  Skipped (and counted
 * as skipped) when memcached is not installed.  Deliberate differences
 * (docs/PROTOCOL.md) are left out of the mix, and so is a get with a key
 * over 250 bytes: memcached then drops the replies of the commands
 * pipelined before it in the same read.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness.h"

#define MEMCACHED "/usr/bin/memcached"
#define NCMDS 3000
#define NKEYS 8

static struct th_cluster cl;
static pid_t mcd_pid = -1;
static int mcd_port;

/* A loopback port nobody listens on now (the kernel's pick). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof a;
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return ntohs(a.sin_port);
}

static int start_memcached(void)
{
	mcd_port = free_port();
	if (mcd_port < 0)
		return -1;
	char port[16];
	snprintf(port, sizeof port, "%d", mcd_port);
	mcd_pid = fork();
	if (mcd_pid < 0)
		return -1;
	if (mcd_pid == 0) {
		/* memcached refuses to run as root without -u */
		execl(MEMCACHED, MEMCACHED, "-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "64",
		      "-t", "1", "-o", "no_lru_crawler,no_lru_maintainer", "-u", getuid() == 0 ? "nobody" : "root", (char *)NULL);
		_exit(127);
	}
	int64_t deadline = th_now_ms() + 10000;
	while (th_now_ms() < deadline) {
		int fd = th_connect(mcd_port);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(mcd_pid, NULL, WNOHANG) == mcd_pid) {
			mcd_pid = -1;
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL); /* polling interval */
	}
	return -1;
}

static int setup(void **state)
{
	(void)state;
	if (access(MEMCACHED, X_OK) != 0)
		return 0; /* the test reports the skip */
	if (start_memcached() != 0) {
		fprintf(stderr, "could not start %s\n", MEMCACHED);
		return -1;
	}
	return th_cluster_start(&cl, 1, "mem_limit = 64M\n", "");
}

static int teardown(void **state)
{
	(void)state;
	if (mcd_pid > 0) {
		kill(mcd_pid, SIGTERM);
		waitpid(mcd_pid, NULL, 0);
	}
	if (cl.n == 0)
		return 0;
	return th_cluster_stop(&cl) == 0 ? 0 : -1;
}

/* ---- the command generator (xorshift64*, fixed seed) ------------------- */

static uint64_t rng = 0x9e3779b97f4a7c15u;

static unsigned rnd(unsigned n)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (unsigned)((rng * 0x2545f4914f6cdd1dull) >> 33) % n;
}

struct buf {
	char b[4096];
	size_t n;
};

static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(b->b + b->n, sizeof b->b - b->n, fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && (size_t)n < sizeof b->b - b->n);
	b->n += (size_t)n;
}

/* A value: often a number (with the spaces or signs memcached's strtoull
 * takes or refuses), else lower-case text. */
static void gen_value(char *v, size_t *n)
{
	static const char *const nums[] = {"0", "1", "9", "10", "99", "18446744073709551615",
					   "18446744073709551616", " 5", "5 ", "7  ", "-1", "-0",
					   "+3", "0005", "1x", "x1", "12 34", "\t4"};
	size_t k;
	unsigned how = rnd(3);
	if (how == 0) {
		const char *s = nums[rnd(sizeof nums / sizeof nums[0])];
		k = strlen(s);
		memcpy(v, s, k);
	} else if (how == 1) {
		k = 1 + rnd(6);
		for (size_t i = 0; i < k; i++)
			v[i] = (char)('0' + rnd(10));
	} else {
		k = rnd(40);
		for (size_t i = 0; i < k; i++)
			v[i] = (char)('a' + rnd(26));
	}
	*n = k;
}

/* Per server: the CAS unique last seen for each key (from gets). */
static uint64_t seen_cas[2][NKEYS];

static const char *nr(void) { return rnd(4) == 0 ? " noreply" : ""; }

/* Appends one command made from seed (for server s: only a cas's unique
 * differs between the servers). */
static void gen_cmd(struct buf *b, int s, uint64_t seed)
{
	uint64_t keep = rng;
	rng = seed; /* the same command for both servers */
	unsigned k = rnd(NKEYS);
	char val[64];
	size_t vn;
	static const char *const store[] = {"set", "add", "replace", "append", "prepend"};
	unsigned what = rnd(100);
	if (what < 30) {
		gen_value(val, &vn);
		int exp = rnd(10) == 0 ? -1 : 0;
		put(b, "%s k%u %u %d %zu%s\r\n", store[rnd(5)], k, rnd(3) * 7, exp, vn, nr());
		memcpy(b->b + b->n, val, vn);
		b->n += vn;
		put(b, "\r\n");
	} else if (what < 36) {
		gen_value(val, &vn);
		unsigned how = rnd(3);
		uint64_t cas = how == 0 ? seen_cas[s][k] : how == 1 ? 987654321u : 0;
		put(b, "cas k%u %u 0 %zu %llu%s\r\n", k, rnd(3), vn, (unsigned long long)cas, nr());
		memcpy(b->b + b->n, val, vn);
		b->n += vn;
		put(b, "\r\n");
	} else if (what < 56) {
		static const char *const get[] = {"get", "gets", "gat 0", "gats 0"};
		put(b, "%s", get[rnd(4)]);
		unsigned nk = 1 + rnd(4);
		for (unsigned i = 0; i < nk; i++)
			put(b, " k%u", rnd(NKEYS));
		put(b, "\r\n");
	} else if (what < 70) {
		static const char *const deltas[] = {"1", "5", "0", "100", "18446744073709551615",
						     "0007", "+2", "-0"};
		put(b, "%s k%u %s%s\r\n", rnd(2) ? "incr" : "decr", k,
		    deltas[rnd(sizeof deltas / sizeof deltas[0])], nr());
	} else if (what < 78) {
		put(b, "delete k%u%s%s\r\n", k, rnd(3) == 0 ? " 0" : "", nr());
	} else if (what < 84) {
		put(b, "touch k%u %d%s\r\n", k, rnd(4) == 0 ? -1 : 0, nr());
	} else if (what < 85) {
		put(b, "flush_all%s\r\n", nr());
	} else {
		/* malformed or odd lines: every reply (or silence) must match */
		static const char *const bad[] = {
			"bogus", "get", "gets", "incr k%u", "incr k%u x", "incr k%u -1",
			"incr k%u noreply", "incr k%u x noreply", "incr k%u 1 junk", "incr k%u 1 2 3",
			"decr k%u 99999999999999999999", "touch k%u", "touch k%u x",
			"touch k%u x noreply", "touch k%u 0 junk", "delete", "delete k%u 1",
			"delete k%u 1 noreply", "delete k%u junk", "delete k%u 0 noreply",
			"delete k%u x y", "delete k%u 0 0 0", "set k%u 0 0", "set k%u 0 0 x",
			"set k%u 0 0 x noreply", "set k%u 0 0 -1", "set k%u 0 0 1 2 3", "cas k%u 0 0 1",
			"flush_all x", "flush_all x noreply", "verbosity", "verbosity x",
			"verbosity 0 noreply", "verbosity x noreply", "get k%u\0 k0",
			"incr k%u\0 junk 1", "ge\0t k%u", "\0", "", "   ", "GET k%u"};
		/* templates with a NUL: written byte by byte up to "%u" */
		static const size_t bad_len[] = {[34] = 11, [35] = 16, [36] = 8, [37] = 1};
		unsigned i = rnd(sizeof bad / sizeof bad[0]);
		if (i < sizeof bad_len / sizeof bad_len[0] && bad_len[i]) {
			const char *t = bad[i];
			for (size_t j = 0; j < bad_len[i]; j++) {
				if (t[j] == '%' && t[j + 1] == 'u') {
					put(b, "%u", k);
					j++;
				} else {
					b->b[b->n++] = t[j];
				}
			}
			put(b, "\r\n");
		} else {
			put(b, bad[i], k);
			put(b, "\r\n");
		}
	}
	rng = keep;
}

/* ---- replies ----------------------------------------------------------- */

/* Reads until the reply ends in the server's "VERSION ..." line (sent
 * after each batch); returns the reply before it. */
static size_t read_batch(int fd, char *buf, size_t cap)
{
	size_t used = 0;
	int64_t deadline = th_now_ms() + 5000;
	for (;;) {
		char *v = used >= 2 ? memmem(buf, used, "VERSION ", 8) : NULL;
		/* the last VERSION line, complete */
		while (v) {
			char *nx = memmem(v + 1, used - (size_t)(v + 1 - buf), "VERSION ", 8);
			if (!nx)
				break;
			v = nx;
		}
		if (v && (v == buf || v[-1] == '\n') && memmem(v, used - (size_t)(v - buf), "\r\n", 2) &&
		    buf[used - 1] == '\n')
			return (size_t)(v - buf);
		int64_t left = deadline - th_now_ms();
		assert_true(left > 0);
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		assert_true(poll(&pf, 1, (int)left) == 1);
		ssize_t r = recv(fd, buf + used, cap - used, 0);
		assert_true(r > 0);
		used += (size_t)r;
		assert_true(used < cap);
	}
}

/* Masks the CAS uniques of "VALUE <key> <flags> <bytes> <cas>" lines and
 * records them for later cas commands (key k<i>). */
static size_t normalize(int s, const char *in, size_t n, char *out)
{
	size_t i = 0, o = 0;
	while (i < n) {
		const char *eol = memmem(in + i, n - i, "\r\n", 2);
		size_t ll = eol ? (size_t)(eol - (in + i)) + 2 : n - i;
		unsigned key, fl, bytes;
		unsigned long long cas;
		char line[400];
		size_t ln = ll < sizeof line - 1 ? ll : sizeof line - 1;
		memcpy(line, in + i, ln);
		line[ln] = 0;
		int f = sscanf(line, "VALUE k%u %u %u %llu", &key, &fl, &bytes, &cas);
		if (f == 4 && key < NKEYS) {
			seen_cas[s][key] = cas;
			o += (size_t)sprintf(out + o, "VALUE k%u %u %u <cas>\r\n", key, fl, bytes);
		} else {
			memcpy(out + o, in + i, ll);
			o += ll;
		}
		i += ll;
		if (f >= 3 && strncmp(line, "VALUE ", 6) == 0 && i + bytes + 2 <= n) {
			memcpy(out + o, in + i, bytes + 2); /* the data block, verbatim */
			o += bytes + 2;
			i += bytes + 2;
		}
	}
	return o;
}

static void show(const char *what, const char *s, size_t n)
{
	fprintf(stderr, "%s [", what);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '\r')
			fputs("\\r", stderr);
		else if (ch == '\n')
			fputs("\\n", stderr);
		else if (ch < 32 || ch > 126)
			fprintf(stderr, "\\x%02x", ch);
		else
			fputc(ch, stderr);
	}
	fputs("]\n", stderr);
}

static void differential(void **state)
{
	(void)state;
	if (access(MEMCACHED, X_OK) != 0) {
		print_message("SKIP: %s not installed (apt-get install memcached)\n", MEMCACHED);
		skip();
	}
	int fd[2] = {th_connect(th_port(&cl, 0, 11211)), th_connect(mcd_port)};
	assert_true(fd[0] >= 0 && fd[1] >= 0);
	static char rbuf[2][1 << 16], norm[2][1 << 16];
	int done = 0, batches = 0, silent = 0;
	while (done < NCMDS) {
		/* a batch of 1-4 commands, pipelined, then "version".  An
		 * incr/decr only starts a batch: memcached rewrites a number in
		 * place only when no reply still holds the item, so after a get
		 * of the same key in the same read its result's length depends
		 * on timing (a new item or one padded with spaces). */
		unsigned nb = 1 + rnd(4);
		static uint64_t carry;
		uint64_t seeds[4];
		struct buf b[2];
		b[0].n = b[1].n = 0;
		unsigned j;
		for (j = 0; j < nb; j++) {
			if (carry) {
				seeds[j] = carry;
				carry = 0;
			} else {
				seeds[j] = rng = rng * 6364136223846793005ull + 1442695040888963407ull;
			}
			size_t at = b[1].n;
			gen_cmd(&b[1], 1, seeds[j]);
			bool arith = strncmp(b[1].b + at, "incr", 4) == 0 ||
				     strncmp(b[1].b + at, "decr", 4) == 0;
			if (j > 0 && arith) {
				b[1].n = at;
				carry = seeds[j];
				break;
			}
		}
		nb = j;
		for (j = 0; j < nb; j++)
			gen_cmd(&b[0], 0, seeds[j]);
		for (int s = 0; s < 2; s++) {
			put(&b[s], "version\r\n");
			assert_int_equal(th_send(fd[s], b[s].b, b[s].n), 0);
		}
		if (getenv("MC_DIFF_LOG")) {
			static FILE *lf;
			if (!lf)
				lf = fopen(getenv("MC_DIFF_LOG"), "w");
			fwrite(b[1].b, 1, b[1].n, lf);
			fflush(lf);
		}
		size_t n[2];
		for (int s = 0; s < 2; s++) {
			size_t raw = read_batch(fd[s], rbuf[s], sizeof rbuf[s]);
			n[s] = normalize(s, rbuf[s], raw, norm[s]);
		}
		if (n[0] != n[1] || memcmp(norm[0], norm[1], n[0]) != 0) {
			fprintf(stderr, "batch %d (commands %d..%d) differs:\n", batches, done,
				done + (int)nb - 1);
			show("  sent     ", b[1].b, b[1].n);
			show("  virgod   ", norm[0], n[0]);
			show("  memcached", norm[1], n[1]);
			fail();
		}
		silent += n[0] == 0;
		done += (int)nb;
		batches++;
	}
	print_message("%d commands in %d batches matched memcached (%d batches silent)\n", done,
		      batches, silent);
	close(fd[0]);
	close(fd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(differential),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
