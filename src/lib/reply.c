/*
 * reply.c - reply line classification (reply.h).
 */
#include "reply.h"

#include <errno.h>
#include <string.h>

#include "../common/errcode.h"
#include "../common/frame.h"

static int starts(const char *line, size_t len, const char *w)
{
	size_t n = strlen(w);
	return len >= n && memcmp(line, w, n) == 0 && (len == n || line[n] == ' ');
}

enum vc_reply_kind vc_reply_classify(const char *line, size_t len, uint64_t *n, int *err)
{
	if (starts(line, len, "OK"))
		return VC_R_OK;
	if (starts(line, len, "VALUE") || starts(line, len, "PONG")) {
		int value = line[0] == 'V';
		size_t skip = value ? 6 : 5;
		/* VALUE <n> may carry more words (cpupool run: exit status) */
		size_t end = skip;
		while (value && end < len && line[end] != ' ')
			end++;
		if (!value)
			end = len;
		if (len <= skip || frame_u64((const uint8_t *)line + skip, end - skip, n) != 0)
			return VC_R_BAD;
		return value ? VC_R_VALUE : VC_R_PONG;
	}
	if (starts(line, len, "ERR")) {
		const char *code = line + 4;
		size_t rest = len > 4 ? len - 4 : 0;
		size_t cl = 0;
		while (cl < rest && code[cl] != ' ')
			cl++;
		*err = cl ? ec_from_name(code, cl) : EPROTO;
		return VC_R_ERR;
	}
	if (starts(line, len, "STAT") || starts(line, len, "END"))
		return VC_R_STAT;
	return VC_R_BAD;
}
