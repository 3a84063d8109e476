/*
 * pathcodec.c - %XX escapes for file names on the wire (pathcodec.h).
 */
#include "pathcodec.h"

static int hexval(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch |= 0x20;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

int pathcodec_decode(const uint8_t *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	if (n == 0 || cap == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = s[i];
		if (ch == '%') {
			int hi, lo;
			if (i + 2 >= n || (hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				return -1;
			ch = (uint8_t)(hi << 4 | lo);
			i += 2;
		}
		if (ch == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)ch;
	}
	out[o] = '\0';
	return 0;
}

size_t pathcodec_encode(const char *s, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t ch = (uint8_t)s[i];
		if (ch <= 0x20 || ch >= 0x7f || ch == '%') {
			if (o + 3 < cap) {
				out[o] = '%';
				out[o + 1] = hex[ch >> 4];
				out[o + 2] = hex[ch & 15];
			}
			o += 3;
		} else {
			if (o + 1 < cap)
				out[o] = (char)ch;
			o++;
		}
	}
	if (cap)
		out[o < cap ? o : cap - 1] = '\0';
	return o;
}
