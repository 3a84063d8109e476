/*
 * mem_find.c - finding memory again: virgo_ls pages through one node's
 * allocation table (the mempool `ls` command) and virgo_free_owner frees
 * every allocation carrying an owner tag on every node (`free owner=`).
 * Both only talk to nodes and parse their replies; leases and tags are
 * given at malloc time (mem.c, virgo_malloc_ex).
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/vuid.h"
#include "client.h"
#include "mem_find.h"

bool vc_owner_ok(const char *o)
{
	size_t n = o ? strlen(o) : 0;
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)o[i]) && !strchr("._-:@/", o[i]))
			return false;
	return true;
}

const char *virgo_owner_default(void)
{
	static _Thread_local char tag[65];
	const char *env = getenv("VIRGO_OWNER");
	if (env && vc_owner_ok(env)) {
		snprintf(tag, sizeof tag, "%s", env);
		return tag;
	}
	char host[256];
	if (gethostname(host, sizeof host) != 0)
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	/* a host name is letters, digits, '-' and '.'; anything else a tag
	 * cannot carry becomes '_'; at most 53 bytes leave room for the pid */
	host[53] = '\0';
	for (char *h = host; *h; h++)
		if (!isalnum((unsigned char)*h) && !strchr("._-", *h))
			*h = '_';
	snprintf(tag, sizeof tag, "%s:%ld", host[0] ? host : "localhost", (long)getpid());
	return tag;
}

/* One table per process (libvirgo has one client); entries of an earlier
 * client (virgo_fini, virgo_init) are dropped, as node indexes may differ. */
static struct {
	pthread_mutex_t lock;
	struct vc_client *owner;
	size_t n;
	struct vc_pending e[VC_PENDING_MAX];
} pend = {.lock = PTHREAD_MUTEX_INITIALIZER};

void vc_pending_add(struct vc_client *c, int idx, const char *line, size_t len, int64_t at_ms)
{
	if (len >= sizeof pend.e[0].line)
		return;
	pthread_mutex_lock(&pend.lock);
	if (pend.owner != c) {
		pend.owner = c;
		pend.n = 0;
	}
	if (pend.n == VC_PENDING_MAX) {
		memmove(&pend.e[0], &pend.e[1], (VC_PENDING_MAX - 1) * sizeof pend.e[0]);
		pend.n--;
	}
	struct vc_pending *p = &pend.e[pend.n++];
	p->idx = idx;
	p->at_ms = at_ms;
	memcpy(p->line, line, len);
	p->line[len] = '\0';
	pthread_mutex_unlock(&pend.lock);
}

size_t vc_pending_take(struct vc_client *c, struct vc_pending *out, size_t max, int64_t now)
{
	size_t got = 0, keep = 0;
	pthread_mutex_lock(&pend.lock);
	if (pend.owner != c)
		pend.n = 0;
	for (size_t i = 0; i < pend.n; i++) {
		if (now - pend.e[i].at_ms > VC_PENDING_KEEP_MS)
			continue; /* the node has forgotten its rid: a re-send would allocate anew */
		if (got < max)
			out[got++] = pend.e[i];
		else
			pend.e[keep++] = pend.e[i];
	}
	pend.n = keep;
	pthread_mutex_unlock(&pend.lock);
	return got;
}

/* "alloc <vuid> <size> <len> <age> <idle> <ttl|-> <owner|->" (the STAT
 * prefix already gone); 0 or -1. */
static int parse_alloc(const char *l, struct virgo_alloc_info *in)
{
	char hex[32], ttl[24], owner[80];
	memset(in, 0, sizeof *in);
	if (sscanf(l, "alloc %31s %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %23s %79s", hex,
		   &in->size, &in->len, &in->age_s, &in->idle_s, ttl, owner) != 7)
		return -1;
	if (vuid_parse(hex, strlen(hex), &in->vuid) != 0 || strlen(owner) >= sizeof in->owner)
		return -1;
	in->ttl_s = strcmp(ttl, "-") == 0 ? -1 : strtoll(ttl, NULL, 10);
	if (strcmp(owner, "-") != 0)
		strcpy(in->owner, owner);
	return 0;
}

int virgo_ls(int idx, uint64_t *cursor, size_t max, struct virgo_alloc_info **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	struct vc_client *c;
	int err = vc_get_node(idx, &c);
	if (err)
		return err;
	if (max == 0 || max > 1000)
		return -EINVAL;
	char hdr[64];
	int hl = snprintf(hdr, sizeof hdr, "ls %" PRIx64 " %zu\r\n", *cursor, max);
	struct vc_reply rep;
	int rc = vc_call(c, idx, hdr, (size_t)hl, NULL, 0, VC_IDEMPOTENT, &rep);
	if (rc) {
		free(rep.data);
		return rc;
	}
	/* one line per entry plus "next": count the lines for the array */
	char *text = (char *)rep.data;
	size_t lines = 0;
	for (size_t i = 0; i < rep.data_len; i++)
		lines += text[i] == '\n';
	struct virgo_alloc_info *v = lines ? calloc(lines, sizeof *v) : NULL;
	if (lines && !v) {
		free(rep.data);
		return -ENOMEM;
	}
	size_t got = 0;
	bool have_next = false;
	uint64_t next = 0;
	for (char *l = text, *e; l && *l; l = e ? e + 1 : NULL) {
		e = strchr(l, '\n');
		if (e)
			*e = '\0';
		if (strncmp(l, "next ", 5) == 0) {
			char *end;
			next = strtoull(l + 5, &end, 16);
			have_next = end != l + 5 && *end == '\0';
		} else if (got < lines && parse_alloc(l, &v[got]) == 0) {
			got++;
		} else {
			rc = -VIRGO_EBADREPLY;
			break;
		}
	}
	free(rep.data);
	if (rc == 0 && !have_next)
		rc = -VIRGO_EBADREPLY;
	if (rc) {
		free(v);
		return rc;
	}
	if (got == 0) {
		free(v);
		v = NULL;
	}
	*out = v;
	*n = got;
	*cursor = next;
	return 0;
}

int virgo_free_owner(const char *owner, uint64_t *freed)
{
	int err = 0;
	struct vc_client *c = vc_get(&err);
	if (freed)
		*freed = 0;
	if (!c)
		return err;
	char hdr[128];
	if (!vc_owner_ok(owner)) /* also keeps CR/LF out of the request line */
		return -EINVAL;
	int hl = snprintf(hdr, sizeof hdr, "free owner=%s\r\n", owner);
	int first = 0;
	for (int i = 0; i < c->cfg.nnodes; i++) {
		struct vc_reply rep;
		/* freeing by tag twice frees nothing more the second time */
		int rc = vc_call(c, i, hdr, (size_t)hl, NULL, 0, VC_IDEMPOTENT, &rep);
		free(rep.data);
		uint64_t k = 0;
		if (rc == 0 && sscanf(rep.line, "OK %" SCNu64, &k) != 1)
			rc = -VIRGO_EBADREPLY;
		if (rc == 0 && freed)
			*freed += k;
		if (rc && !first)
			first = rc;
	}
	return first;
}
