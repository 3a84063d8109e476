/*
 * tokfile_proto.c - the named tokens file's parser (tokfile.h).  Pure:
 * no allocation, no state, no I/O; every loop bounded by the input's
 * length (the duplicate checks by the number of entries, at most
 * TOKFILE_MAX_ENTRIES).
 */
#include "tokfile.h"

#include <stdio.h>
#include <string.h>

static bool tokfile_is_space(char c) { return c == ' ' || c == '\t'; }

bool tokfile_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > TOKFILE_NAME_MAX || (len == 5 && memcmp(name, "token", 5) == 0))
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '@'))
			return false;
	}
	return true;
}

static bool tokfile_token_ok(const char *tok, size_t len)
{
	if (len < TOKFILE_TOKEN_MIN || len > TOKFILE_TOKEN_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
			return false;
	return true;
}

/* The next word of line[*i..end): its start and length (0 at the end). */
static size_t tokfile_word(const char *line, size_t end, size_t *i, const char **w)
{
	while (*i < end && tokfile_is_space(line[*i]))
		(*i)++;
	*w = line + *i;
	size_t start = *i;
	while (*i < end && !tokfile_is_space(line[*i]))
		(*i)++;
	return *i - start;
}

static bool tokfile_same(const char *a, size_t alen, const char *b, size_t blen)
{
	return alen == blen && memcmp(a, b, alen) == 0;
}

int tokfile_parse(const char *buf, size_t len, struct tokfile_entry *ents, size_t max, char *err,
		  size_t errlen)
{
	if (len > TOKFILE_MAX_BYTES) {
		snprintf(err, errlen, "larger than %u bytes", TOKFILE_MAX_BYTES);
		return -1;
	}
	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "holds a NUL byte (not a text file)");
		return -1;
	}
	size_t count = 0;
	unsigned lineno = 0;
	for (size_t pos = 0; pos < len;) {
		const char *line = buf + pos;
		const char *nl = memchr(line, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - line) : len - pos;
		pos += n + (nl ? 1 : 0);
		lineno++;
		if (n > TOKFILE_MAX_LINE) {
			snprintf(err, errlen, "line %u: longer than %u bytes", lineno,
				 TOKFILE_MAX_LINE);
			return -1;
		}
		size_t end = n > 0 && line[n - 1] == '\r' ? n - 1 : n;
		size_t i = 0;
		const char *name, *tok, *extra;
		size_t nlen = tokfile_word(line, end, &i, &name);
		if (nlen == 0 || name[0] == '#')
			continue;
		size_t tlen = tokfile_word(line, end, &i, &tok);
		if (tlen == 0 || tokfile_word(line, end, &i, &extra) != 0) {
			snprintf(err, errlen, "line %u: want '<name> <token>'", lineno);
			return -1;
		}
		if (!tokfile_name_ok(name, nlen)) {
			snprintf(err, errlen,
				 "line %u: bad name '%.*s' (1..%d letters, digits, '.', '_', '-', '@'; "
				 "not 'token')",
				 lineno, (int)(nlen > 64 ? 64 : nlen), name, TOKFILE_NAME_MAX);
			return -1;
		}
		if (!tokfile_token_ok(tok, tlen)) {
			/* the token itself is a secret: never echoed */
			snprintf(err, errlen,
				 "line %u: the token of %.*s is not %d..%d printable characters "
				 "without spaces",
				 lineno, (int)nlen, name, TOKFILE_TOKEN_MIN, TOKFILE_TOKEN_MAX);
			return -1;
		}
		if (count >= TOKFILE_MAX_ENTRIES) {
			snprintf(err, errlen, "line %u: more than %d tokens", lineno,
				 TOKFILE_MAX_ENTRIES);
			return -1;
		}
		size_t kept = count < max ? count : max;
		for (size_t k = 0; k < kept; k++) {
			if (tokfile_same(ents[k].name, ents[k].namelen, name, nlen)) {
				snprintf(err, errlen, "line %u: %.*s already has a token (line %u)",
					 lineno, (int)nlen, name, ents[k].line);
				return -1;
			}
			if (tokfile_same(ents[k].token, ents[k].toklen, tok, tlen)) {
				snprintf(err, errlen,
					 "line %u: %.*s has the same token as %.*s (line %u)", lineno,
					 (int)nlen, name, (int)ents[k].namelen, ents[k].name,
					 ents[k].line);
				return -1;
			}
		}
		if (count < max)
			ents[count] = (struct tokfile_entry){
				.name = name, .namelen = nlen, .token = tok, .toklen = tlen, .line = lineno};
		count++;
	}
	return (int)count;
}
