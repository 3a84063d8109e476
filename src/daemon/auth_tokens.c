/*
 * auth_tokens.c - the tokens a node accepts (auth.h): the shared
 * auth_token and the named tokens file, read, checked and kept as
 * SHA-256 digests, and the constant-time lookup of a client's AUTH token
 * among them.  Only digests are kept: the comparison then takes the same
 * time for every token length, and the secrets do not sit in memory.
 */
#include "auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/tokfile.h"

#define VD_TOK_MD 32 /* SHA-256 */

struct vd_tok {
	char name[TOKFILE_NAME_MAX + 1];
	unsigned char md[VD_TOK_MD];
};

struct vd_tokens {
	size_t n; /* entries in e; the shared token (if any) first */
	size_t named;
	struct vd_tok e[];
};

static bool tokens_digest(const char *s, size_t len, unsigned char md[VD_TOK_MD])
{
	unsigned int n = 0;
	return EVP_Digest(s, len, md, &n, EVP_sha256(), NULL) == 1 && n == VD_TOK_MD;
}

struct vd_tokens *vd_tokens_load(const char *shared, const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	size_t len = 0;
	struct tokfile_entry *ents = NULL;
	int n = 0;
	if (path[0]) {
		char rerr[400];
		if (!(buf = tokfile_read(path, &len, rerr, sizeof rerr))) {
			snprintf(err, errlen, "auth_tokens_file %s", rerr);
			return NULL;
		}
		ents = malloc(TOKFILE_MAX_ENTRIES * sizeof *ents);
		char perr[256];
		if (!ents) {
			snprintf(err, errlen, "auth_tokens_file %s: out of memory", path);
			n = -1;
		} else if ((n = tokfile_parse(buf, len, ents, TOKFILE_MAX_ENTRIES, perr,
					      sizeof perr)) < 0) {
			snprintf(err, errlen, "auth_tokens_file %s: %s", path, perr);
		}
	}
	struct vd_tokens *t = NULL;
	if (n >= 0) {
		t = calloc(1, sizeof *t + ((size_t)n + 1) * sizeof t->e[0]);
		if (!t)
			snprintf(err, errlen, "out of memory loading the tokens");
	}
	if (t && shared[0]) {
		snprintf(t->e[0].name, sizeof t->e[0].name, "%s", VD_AUTH_SHARED_NAME);
		if (!tokens_digest(shared, strlen(shared), t->e[0].md))
			goto digest_failed;
		t->n = 1;
	}
	for (int i = 0; t && i < n; i++) {
		struct vd_tok *e = &t->e[t->n];
		memcpy(e->name, ents[i].name, ents[i].namelen);
		e->name[ents[i].namelen] = '\0';
		if (!tokens_digest(ents[i].token, ents[i].toklen, e->md))
			goto digest_failed;
		if (shared[0] && CRYPTO_memcmp(e->md, t->e[0].md, VD_TOK_MD) == 0) {
			snprintf(err, errlen,
				 "auth_tokens_file %s: line %u: the token of %s is auth_token's "
				 "(a client must be one identity)",
				 path, ents[i].line, e->name);
			goto fail;
		}
		t->n++;
		t->named++;
	}
	goto done;
digest_failed:
	snprintf(err, errlen, "SHA-256 unavailable (OpenSSL)");
fail:
	free(t);
	t = NULL;
done:
	if (buf) {
		OPENSSL_cleanse(buf, len);
		free(buf);
	}
	free(ents);
	return t;
}

void vd_tokens_free(struct vd_tokens *t)
{
	if (t)
		OPENSSL_cleanse(t, sizeof *t + t->n * sizeof t->e[0]);
	free(t);
}

size_t vd_tokens_named(const struct vd_tokens *t) { return t ? t->named : 0; }

bool vd_tokens_has(const struct vd_tokens *t, const char *name)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (strcmp(t->e[i].name, name) == 0)
			return true;
	return false;
}

bool vd_tokens_match(const struct vd_tokens *t, const char *got, size_t gotlen, char *name,
		     size_t namelen)
{
	unsigned char md[VD_TOK_MD];
	if (!t || !tokens_digest(got, gotlen, md))
		return false;
	/* every entry, no early exit; the index of the match is picked by
	 * masks, not a branch on the comparison */
	size_t found = 0, any = 0;
	for (size_t i = 0; i < t->n; i++) {
		size_t eq = (size_t)(CRYPTO_memcmp(md, t->e[i].md, VD_TOK_MD) == 0);
		size_t mask = (size_t)0 - eq;
		found = (found & ~mask) | (i & mask);
		any |= eq;
	}
	if (!any)
		return false;
	snprintf(name, namelen, "%s", t->e[found].name);
	return true;
}
