/*
 * evclock.c - vector clocks over the nodes (evclock.h): parsing and
 * formatting the wire form, merge and comparison.  Sparse and sorted, so
 * merge and compare are one linear walk over both clocks.
 */
#include "evclock.h"

#include <string.h>

#include "frame.h"

static int dec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	return frame_dec((const uint8_t *)s, n, max, out);
}

uint64_t evc_get(const struct evc *v, uint16_t node)
{
	for (unsigned i = 0; i < v->n; i++)
		if (v->e[i].node == node)
			return v->e[i].c;
	return 0;
}

int evc_set(struct evc *v, uint16_t node, uint64_t c)
{
	unsigned i = 0;
	while (i < v->n && v->e[i].node < node)
		i++;
	if (i < v->n && v->e[i].node == node) {
		v->e[i].c = c;
		return 0;
	}
	if (v->n == EVC_MAX)
		return -1;
	memmove(&v->e[i + 1], &v->e[i], (v->n - i) * sizeof v->e[0]);
	v->e[i].node = node;
	v->e[i].c = c;
	v->n++;
	return 0;
}

int evc_parse(struct evc *v, const char *s, size_t len)
{
	v->n = 0;
	if (len == 1 && s[0] == '-')
		return 0;
	if (len == 0)
		return -1;
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && s[j] != ',')
			j++;
		const char *colon = memchr(s + i, ':', j - i);
		uint64_t node, c;
		if (!colon || dec(s + i, (size_t)(colon - (s + i)), 65535, &node) || node == 0 ||
		    dec(colon + 1, (size_t)(s + j - colon - 1), UINT64_MAX, &c) || c == 0)
			return -1;
		if (evc_get(v, (uint16_t)node) != 0 || evc_set(v, (uint16_t)node, c) != 0)
			return -1;
		if (j == len)
			break;
		i = j + 1;
		if (i == len)
			return -1; /* trailing comma */
	}
	return 0;
}

/* Two digits a step from the back of a scratch buffer (every event's
 * journal line, reply and EVENT line carries several numbers). */
size_t evc_u64(char *out, uint64_t v)
{
	static const char pairs[] = "00010203040506070809101112131415161718192021222324"
				    "25262728293031323334353637383940414243444546474849"
				    "50515253545556575859606162636465666768697071727374"
				    "75767778798081828384858687888990919293949596979899";
	if (v < 10) {
		out[0] = (char)('0' + v);
		return 1;
	}
	char t[20];
	size_t i = sizeof t;
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		t[--i] = pairs[d + 1];
		t[--i] = pairs[d];
	}
	if (v >= 10) {
		unsigned d = (unsigned)v * 2;
		t[--i] = pairs[d + 1];
		t[--i] = pairs[d];
	} else {
		t[--i] = (char)('0' + v);
	}
	memcpy(out, t + i, sizeof t - i);
	return sizeof t - i;
}

size_t evc_format_ents(const struct evc_ent *e, unsigned cnt, char *out)
{
	if (cnt == 0) {
		out[0] = '-';
		out[1] = '\0';
		return 1;
	}
	size_t n = 0;
	for (unsigned i = 0; i < cnt; i++) {
		if (i)
			out[n++] = ',';
		n += evc_u64(out + n, e[i].node);
		out[n++] = ':';
		n += evc_u64(out + n, e[i].c);
	}
	out[n] = '\0';
	return n;
}

size_t evc_format(const struct evc *v, char *out)
{
	return evc_format_ents(v->e, v->n, out);
}

int evc_merge_ents(struct evc *dst, const struct evc_ent *src, unsigned n)
{
	struct evc r;
	unsigned i = 0, j = 0;
	r.n = 0;
	while (i < dst->n || j < n) {
		struct evc_ent e;
		if (j == n || (i < dst->n && dst->e[i].node < src[j].node)) {
			e = dst->e[i++];
		} else if (i == dst->n || src[j].node < dst->e[i].node) {
			e = src[j++];
		} else {
			e = dst->e[i];
			if (src[j].c > e.c)
				e.c = src[j].c;
			i++;
			j++;
		}
		if (r.n == EVC_MAX)
			return -1;
		r.e[r.n++] = e;
	}
	memcpy(dst->e, r.e, r.n * sizeof r.e[0]);
	dst->n = r.n;
	return 0;
}

int evc_merge(struct evc *dst, const struct evc *src)
{
	return evc_merge_ents(dst, src->e, src->n);
}

enum evc_order evc_compare_ents(const struct evc_ent *a, unsigned an, const struct evc_ent *b,
				unsigned bn)
{
	bool a_less = false, b_less = false; /* some component of a < b's, and vice versa */
	unsigned i = 0, j = 0;
	while (i < an || j < bn) {
		uint64_t ac, bc;
		if (j == bn || (i < an && a[i].node < b[j].node)) {
			ac = a[i++].c;
			bc = 0;
		} else if (i == an || b[j].node < a[i].node) {
			ac = 0;
			bc = b[j++].c;
		} else {
			ac = a[i++].c;
			bc = b[j++].c;
		}
		if (ac < bc)
			a_less = true;
		else if (bc < ac)
			b_less = true;
	}
	if (a_less && b_less)
		return EVC_CONCURRENT;
	if (a_less)
		return EVC_BEFORE;
	if (b_less)
		return EVC_AFTER;
	return EVC_EQUAL;
}

enum evc_order evc_compare(const struct evc *a, const struct evc *b)
{
	return evc_compare_ents(a->e, a->n, b->e, b->n);
}

const char *evc_order_name(enum evc_order o)
{
	switch (o) {
	case EVC_BEFORE: return "before";
	case EVC_AFTER: return "after";
	case EVC_CONCURRENT: return "concurrent";
	default: return "equal";
	}
}
