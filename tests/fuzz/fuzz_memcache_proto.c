/*
 * fuzz_memcache_proto.c - libFuzzer target for the memcached text protocol
 * parser: any bytes, whole and as a growing stream, must parse without
 * reading outside what has arrived, keep every pointer inside the buffer,
 * and always make progress; a get's keys iterated from any resume point
 * are the rest of its keys; and mc_strtoull agrees with memcached's
 * safe_strtoull (libc strtoull over the value followed by "\r\n", as
 * memcached stores it).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"
#include "../../src/services/memcache_proto.h"

static const struct mc_limits lim = {.max_line = 2048, .max_item = 8192};

static bool inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
	return n == 0 || (p >= buf && p + n <= buf + len);
}

static void drive(const uint8_t *buf, size_t n, bool eof, void *state, size_t *off)
{
	(void)eof; /* memcached's framing has no end-of-stream rule */
	struct mc_parse_state *st = state;
	for (int steps = 0; *off < n && steps < 100000; steps++) {
		struct mc_req req;
		size_t used = 0, need = 0;
		const char *err = NULL;
		/* the header-only parse (memcache.c's large-value path) sees the
		 * same bytes first and must agree on the line it consumed */
		struct mc_parse_state hst = *st;
		size_t hused = 0, hneed = 0;
		enum mc_parse_result hr =
			mc_parse_head(&hst, buf + *off, n - *off, &lim, &req, &hused, &hneed, &err);
		if (hused > n - *off || (hr == MC_REQ && req.data_len > 0 && req.data) ||
		    (hr == MC_REQ && !req.data && req.op >= MC_OP_SET && req.op <= MC_OP_CAS &&
		     hneed != hused + req.data_len + 2))
			abort();
		err = NULL;
		enum mc_parse_result r = mc_parse(st, buf + *off, n - *off, &lim, &req, &used, &need, &err);
		if (used > n - *off)
			abort();
		if (r == MC_ERROR && !err)
			abort();
		if (r == MC_REQ) {
			if (!inside(req.key, req.key_len, buf, n) || !inside(req.keys, req.keys_len, buf, n) ||
			    !inside(req.data, req.data_len, buf, n) || !inside(req.arg, req.arg_len, buf, n) ||
			    req.key_len > MC_KEY_MAX)
				abort();
			if (req.op == MC_OP_GET) {
				size_t pos = 0, kl, nk = 0, mid = 0;
				const uint8_t *k;
				while (mc_next_key(&req, &pos, &k, &kl)) {
					if (kl == 0 || kl > MC_KEY_MAX || !inside(k, kl, buf, n))
						abort();
					if (++nk == 2)
						mid = pos; /* where a paused get resumes */
				}
				size_t rest = 0;
				pos = mid;
				while (mc_next_key(&req, &pos, &k, &kl))
					rest++;
				if (nk >= 2 && rest != nk - 2)
					abort();
			}
		}
		*off += used;
		if (r == MC_MORE && used == 0)
			return;
	}
}

/* memcached's safe_strtoull over a stored value (followed by "\r\n"). */
static bool ref_strtoull(const uint8_t *p, size_t n, uint64_t *out)
{
	char str[80];
	memcpy(str, p, n);
	memcpy(str + n, "\r\n", 3);
	errno = 0;
	char *end;
	unsigned long long ull = strtoull(str, &end, 10);
	if (errno == ERANGE || end == str)
		return false;
	if (!isspace((unsigned char)*end) && !(*end == '\0' && end != str))
		return false;
	if ((long long)ull < 0 && memchr(str, '-', (size_t)(end - str)))
		return false;
	*out = ull;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 64 && !memchr(data, '\0', size)) {
		uint64_t a = 0, b = 0;
		bool ra = mc_strtoull(data, size, &a), rb = ref_strtoull(data, size, &b);
		/* all white space: strtoull runs past the value (undefined in
		 * memcached); anything else must agree */
		size_t i = 0;
		while (i < size && isspace(data[i]))
			i++;
		if (i < size && (ra != rb || a != b))
			abort();
	}
	replay(data, size, sizeof(struct mc_parse_state), drive);
	return 0;
}
