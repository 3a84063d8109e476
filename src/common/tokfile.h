/*
 * tokfile.h - the named tokens file (virgo_cloud.conf's auth_tokens_file):
 * one "<name> <token>" per line, '#' comment lines and blank lines
 * ignored.  A client that sends "AUTH <token>" is then the identity
 * <name>, as a client certificate's CN would make it; `virgo certs
 * add-token` writes such lines.  The parser (tokfile_proto.c) is a pure
 * function over the file's bytes (the node reads and re-reads the file,
 * the CLI checks it before appending), with a limit on everything;
 * tokfile.c reads the file with the checks a file of secrets needs.
 */
#ifndef VIRGO_TOKFILE_H
#define VIRGO_TOKFILE_H

#include <stdbool.h>
#include <stddef.h>

#define TOKFILE_MAX_BYTES (1u << 20) /* the whole file */
#define TOKFILE_MAX_LINE 1024 /* one line, without its LF */
#define TOKFILE_MAX_ENTRIES 4096 /* tokens in one file */
#define TOKFILE_NAME_MAX 63 /* a name fits a connection's identity (64 bytes) */
#define TOKFILE_TOKEN_MIN 16 /* as auth_token */
#define TOKFILE_TOKEN_MAX 255 /* as auth_token: AUTH lines stay short */

/* One line's fields: pointers into the parsed buffer, not NUL-ended. */
struct tokfile_entry {
	const char *name, *token;
	size_t namelen, toklen;
	unsigned line; /* 1-based */
};

/* Parses buf[0..len) (len <= TOKFILE_MAX_BYTES): the number of entries
 * (at most max are stored in ents, the rest only counted), or -1 with a
 * sentence naming the line and what is wrong in err.  Refused: a line
 * with other than two fields, a bad name (tokfile_name_ok), a token
 * shorter than TOKFILE_TOKEN_MIN, longer than TOKFILE_TOKEN_MAX or with
 * a byte outside '!'..'~', a name or a token given twice, a NUL byte, a
 * line longer than TOKFILE_MAX_LINE, more than TOKFILE_MAX_ENTRIES
 * entries.  Duplicates are looked for among the stored entries: pass
 * max = TOKFILE_MAX_ENTRIES to have every one checked.  ents point into
 * buf: they live as long as it. */
int tokfile_parse(const char *buf, size_t len, struct tokfile_entry *ents, size_t max, char *err,
		  size_t errlen);

/* The file at path, NUL-ended (*len bytes without the NUL), malloc'd
 * (the caller frees it, best after OPENSSL_cleanse-ing it: it holds
 * secrets).  Refused: not a regular file, any access for group or others
 * (the sentence says to chmod 600), more than TOKFILE_MAX_BYTES.  NULL
 * with a sentence naming path in err and errno set (ENOENT: no such
 * file).  Not pure: reads the file (tokfile.c). */
char *tokfile_read(const char *path, size_t *len, char *err, size_t errlen);

/* Is name[0..len) a token name: 1..TOKFILE_NAME_MAX bytes of letters,
 * digits and . _ - @, and not "token" (the identity of the shared
 * auth_token)?  Such a name is a valid identity in every policy key. */
bool tokfile_name_ok(const char *name, size_t len);

#endif
