/*
 * idpolicy.h - the node-side identity policies of virgo_cloud.conf: which
 * authenticated identities (a client certificate's CN, "token" for the
 * shared auth_token, "" for an unauthenticated client) may do what.  Two
 * shapes of value, both pure string functions so a service checks a
 * request against the text it was configured with:
 *
 *   a list:  "alice, bob"            (names separated by commas/spaces)
 *   a map:   "alice:echo,uname bob:* *:echo"
 *            entries separated by whitespace; each is <identity>:<items>,
 *            items separated by commas, none (an empty list) allowed.
 *            The identity "*" is the entry for every identity not named.
 *
 * An item ending in '*' matches every word with that prefix ("cpu_*"); a
 * lone "*" matches every word.  Identities and items hold no whitespace,
 * ',' or ':'; an unauthenticated client ("") is matched only by "*".
 */
#ifndef VIRGO_IDPOLICY_H
#define VIRGO_IDPOLICY_H

#include <stdbool.h>
#include <stddef.h>

/* The longest policy value the services accept (their settings' size). */
#define IDPOL_MAX 4096

/* Is ident named in list?  An empty list names no one (the caller decides
 * what an empty list means: every service treats it as "no policy"). */
bool idpol_list_has(const char *list, const char *ident);

/* Checks a map's syntax: 0, or -1 with a sentence (naming the bad entry)
 * in err.  An empty map is valid (no policy). */
int idpol_map_check(const char *map, char *err, size_t errlen);

/* The items of ident's entry in map (the "*" entry when ident has none):
 * 1 with *items / *len pointing into map, or 0 when no entry applies. */
int idpol_map_find(const char *map, const char *ident, const char **items, size_t *len);

/* Does word[0..wlen) match one of items[0..len) (comma-separated, as
 * idpol_map_find returns them)? */
bool idpol_items_match(const char *items, size_t len, const char *word, size_t wlen);

/* What a map allows ident to do with word: true when the map is empty,
 * when no entry applies to ident (restrict == false), or when ident's
 * entry lists word.  restrict: an identity the map does not name (and no
 * "*" entry) is refused rather than allowed. */
bool idpol_map_allows(const char *map, const char *ident, const char *word, size_t wlen,
		      bool restrict_unnamed);

#endif
