/*
 * idpolicy.c - identity lists and identity maps of the node's policy keys
 * (idpolicy.h).  Pure functions over the configured text: no allocation,
 * bounded by the value's length (at most IDPOL_MAX).
 */
#include "idpolicy.h"

#include <stdio.h>
#include <string.h>

static bool is_space(char c) { return c == ' ' || c == '\t'; }

bool idpol_list_has(const char *list, const char *ident)
{
	size_t n = strlen(ident);
	if (!n)
		return false;
	for (const char *p = list; *p;) {
		p += strspn(p, ", \t");
		size_t w = strcspn(p, ", \t");
		if (w && w == n && memcmp(p, ident, n) == 0)
			return true;
		p += w;
	}
	return false;
}

/* One entry of a map: the identity and its items (pointers into it). */
struct entry {
	const char *id, *items;
	size_t idlen, len;
};

/* The entry at *pp (moved past it): 1, 0 at the end, -1 for a word
 * without ':' (e->id / e->idlen give it). */
static int next_entry(const char **pp, struct entry *e)
{
	const char *p = *pp;
	while (is_space(*p))
		p++;
	if (!*p)
		return 0;
	size_t w = strcspn(p, " \t");
	const char *colon = memchr(p, ':', w);
	e->id = p;
	if (!colon) {
		e->idlen = w;
		e->items = NULL;
		*pp = p + w;
		return -1;
	}
	e->idlen = (size_t)(colon - p);
	e->items = colon + 1;
	e->len = w - e->idlen - 1;
	*pp = p + w;
	return 1;
}

int idpol_map_check(const char *map, char *err, size_t errlen)
{
	if (strlen(map) >= IDPOL_MAX) {
		snprintf(err, errlen, "longer than %d characters", IDPOL_MAX - 1);
		return -1;
	}
	const char *p = map;
	struct entry e;
	int rc;
	while ((rc = next_entry(&p, &e)) != 0) {
		const char *why = NULL;
		if (rc < 0)
			why = "want <identity>:<item>,<item>... (no spaces inside an entry)";
		else if (e.idlen == 0)
			why = "an entry names no identity before ':'";
		else if (memchr(e.id, ',', e.idlen))
			why = "an identity holds no ','";
		else if (memchr(e.items, ':', e.len))
			why = "one ':' per entry (entries are separated by spaces)";
		else {
			for (size_t i = 0; i < e.len && !why; i++)
				if (e.items[i] == ',' && (i == 0 || i + 1 == e.len || e.items[i + 1] == ','))
					why = "an empty item between commas";
		}
		if (why) {
			size_t shown = rc < 0 ? e.idlen : e.idlen + 1 + e.len;
			snprintf(err, errlen, "entry '%.*s': %s", (int)(shown > 64 ? 64 : shown), e.id,
				 why);
			return -1;
		}
		/* an identity named twice would make the order matter */
		const char *q = map;
		struct entry f;
		while (next_entry(&q, &f) > 0 && f.id != e.id) {
			if (f.idlen == e.idlen && memcmp(f.id, e.id, e.idlen) == 0) {
				snprintf(err, errlen, "identity '%.*s' has two entries",
					 (int)(e.idlen > 64 ? 64 : e.idlen), e.id);
				return -1;
			}
		}
	}
	return 0;
}

int idpol_map_find(const char *map, const char *ident, const char **items, size_t *len)
{
	size_t n = strlen(ident);
	const char *p = map;
	struct entry e;
	int rc, found = 0;
	while ((rc = next_entry(&p, &e)) != 0) {
		if (rc < 0)
			continue;
		if (n && e.idlen == n && memcmp(e.id, ident, n) == 0) {
			*items = e.items;
			*len = e.len;
			return 1;
		}
		if (!found && e.idlen == 1 && e.id[0] == '*') {
			*items = e.items;
			*len = e.len;
			found = 1;
		}
	}
	return found;
}

bool idpol_items_match(const char *items, size_t len, const char *word, size_t wlen)
{
	size_t i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && items[j] != ',')
			j++;
		size_t il = j - i;
		const char *it = items + i;
		if (il && it[il - 1] == '*') {
			if (wlen >= il - 1 && memcmp(word, it, il - 1) == 0)
				return true;
		} else if (il == wlen && memcmp(word, it, il) == 0) {
			return true;
		}
		i = j + 1;
	}
	return false;
}

bool idpol_map_allows(const char *map, const char *ident, const char *word, size_t wlen,
		      bool restrict_unnamed)
{
	const char *items;
	size_t len;
	if (!map[strspn(map, " \t")])
		return true;
	if (!idpol_map_find(map, ident, &items, &len))
		return !restrict_unnamed;
	return idpol_items_match(items, len, word, wlen);
}
