/*
 * certs_tokens.c - virgo certs add-token / revoke-token: the named tokens
 * file a node reads (auth_tokens_file, tokfile.h).  add-token appends
 * "<name> <token>" with a fresh random token (32 bytes from OpenSSL's
 * RAND_bytes, hex) and prints the line the client's virgo_client.conf
 * needs; revoke-token rewrites the file without the name (a new file
 * renamed over the old, so a node re-reading it never sees half of it).
 * The file stays mode 0600: the node refuses one others may read.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/tokfile.h"
#include "cli.h"

#define CERTS_TOKEN_BYTES 32

/* The tokens file as read and parsed: its text and its entries. */
struct tokens_doc {
	char *buf;
	size_t len;
	struct tokfile_entry *ents; /* point into buf */
	int n;
};

/* Reads and parses path as a node would (an absent file, when
 * missing_ok, is an empty one): 0, or -1 after printing why. */
static int tokens_open(struct tokens_doc *d, const char *path, bool missing_ok)
{
	char err[512];
	memset(d, 0, sizeof *d);
	d->buf = tokfile_read(path, &d->len, err, sizeof err);
	if (!d->buf && errno == ENOENT && missing_ok)
		d->buf = calloc(1, 1);
	else if (!d->buf) {
		fprintf(stderr, "virgo certs: %s%s\n", err,
			errno == EACCES ? " (the nodes refuse it too)" : "");
		return -1;
	}
	d->ents = malloc(TOKFILE_MAX_ENTRIES * sizeof *d->ents);
	if (!d->buf || !d->ents) {
		fprintf(stderr, "virgo certs: out of memory\n");
		return -1;
	}
	d->n = tokfile_parse(d->buf, d->len, d->ents, TOKFILE_MAX_ENTRIES, err, sizeof err);
	if (d->n < 0) {
		fprintf(stderr, "virgo certs: %s: %s (fix it first: the nodes refuse it too)\n",
			path, err);
		return -1;
	}
	return 0;
}

static void tokens_close(struct tokens_doc *d)
{
	free(d->ents);
	if (d->buf)
		OPENSSL_cleanse(d->buf, d->len);
	free(d->buf);
}

static int tokens_find(const struct tokfile_entry *ents, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (ents[i].namelen == strlen(name) && memcmp(ents[i].name, name, ents[i].namelen) == 0)
			return i;
	return -1;
}

static int tokens_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int certs_token_add(const char *path, const char *name)
{
	if (!tokfile_name_ok(name, strlen(name)))
		return cli_usage("certs",
				 "bad token name '%s' (1..%d letters, digits, '.', '_', '-', '@'; "
				 "not 'token')",
				 name, TOKFILE_NAME_MAX);
	struct tokens_doc d;
	int rc = 1;
	if (tokens_open(&d, path, true) != 0)
		goto out;
	if (tokens_find(d.ents, d.n, name) >= 0) {
		fprintf(stderr, "virgo certs: %s already has a token in %s (revoke-token %s first)\n",
			name, path, name);
		goto out;
	}
	unsigned char raw[CERTS_TOKEN_BYTES];
	char line[TOKFILE_NAME_MAX + 2 * CERTS_TOKEN_BYTES + 4], *tok;
	if (RAND_bytes(raw, sizeof raw) != 1) {
		fprintf(stderr, "virgo certs: no random bytes from OpenSSL\n");
		goto out;
	}
	int off = snprintf(line, sizeof line, "%s%s ", d.len && d.buf[d.len - 1] != '\n' ? "\n" : "",
			   name);
	tok = line + off;
	for (size_t i = 0; i < sizeof raw; i++)
		off += snprintf(line + off, sizeof line - (size_t)off, "%02x", raw[i]);
	line[off++] = '\n';
	OPENSSL_cleanse(raw, sizeof raw);
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || tokens_write_all(fd, line, (size_t)off) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "virgo certs: %s: %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	line[off - 1] = '\0';
	printf("%s: added %s (mode 0600)\n"
	       "nodes:   auth_tokens_file = %s (a copy on each node, readable by virgod only),\n"
	       "         then SIGHUP them (kill -HUP, or systemctl reload virgod)\n"
	       "%s's virgo_client.conf:\n"
	       "auth_token = %s\n",
	       path, name, path, name, tok);
	OPENSSL_cleanse(line, sizeof line);
	rc = 0;
out:
	tokens_close(&d);
	return rc;
}

int certs_token_revoke(const char *path, const char *name)
{
	struct tokens_doc d;
	int rc = 1, fd = -1;
	char tmp[600] = "";
	if (tokens_open(&d, path, false) != 0)
		goto out;
	int k = tokens_find(d.ents, d.n, name);
	if (k < 0) {
		fprintf(stderr, "virgo certs: %s has no token named %s\n", path, name);
		goto out;
	}
	/* everything but that entry's line, comments included */
	const char *line = d.buf;
	for (unsigned i = 1; i < d.ents[k].line; i++)
		line = strchr(line, '\n') + 1;
	const char *nl = strchr(line, '\n');
	const char *after = nl ? nl + 1 : d.buf + d.len;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.new", path) >= sizeof tmp) {
		fprintf(stderr, "virgo certs: %s: path too long\n", path);
		goto out;
	}
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || tokens_write_all(fd, d.buf, (size_t)(line - d.buf)) != 0 ||
	    tokens_write_all(fd, after, (size_t)(d.buf + d.len - after)) != 0 || fsync(fd) != 0 ||
	    close(fd) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "virgo certs: %s: %s\n", fd < 0 ? tmp : path, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	printf("%s: %s's token removed; copy the file to the nodes and SIGHUP them: %s's new "
	       "connections are refused and open ones closed\n",
	       path, name, name);
	rc = 0;
out:
	tokens_close(&d);
	return rc;
}
