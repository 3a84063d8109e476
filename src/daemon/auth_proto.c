/*
 * auth_proto.c - the AUTH line's parser (auth.h): "AUTH <token>" ended by
 * LF or CRLF, the keyword in any case, one or more spaces, a token of
 * printable non-space bytes.  Pure: no allocation, no state.
 */
#include "auth.h"

#include <string.h>
#include <strings.h>

int vd_auth_parse(const char *buf, size_t len, const char **tok, size_t *toklen)
{
	size_t scan = len < VD_AUTH_MAX_LINE ? len : VD_AUTH_MAX_LINE;
	const char *nl = memchr(buf, '\n', scan);
	if (!nl)
		return len >= VD_AUTH_MAX_LINE ? -1 : 0;
	size_t n = (size_t)(nl - buf); /* the line without its LF */
	size_t end = n > 0 && buf[n - 1] == '\r' ? n - 1 : n;
	if (end < 6 || strncasecmp(buf, "AUTH", 4) != 0 || buf[4] != ' ')
		return -1;
	size_t i = 4;
	while (i < end && buf[i] == ' ')
		i++;
	size_t start = i;
	for (; i < end; i++)
		if ((unsigned char)buf[i] <= ' ' || (unsigned char)buf[i] >= 0x7f)
			return -1;
	if (i == start)
		return -1;
	*tok = buf + start;
	*toklen = end - start;
	return (int)(n + 1);
}
