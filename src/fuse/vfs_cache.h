/*
 * vfs_cache.h - what virgofs knows of paths between round trips to their
 * node: the attributes the kernel was last given for each path (so an
 * open can tell whether the file changed since: close-to-open), the
 * attributes a closed file's last write returned (so a stat after close
 * needs no round trip).  What is answered from it is at most the
 * attribute timeout old.
 * It answers "no such file" only inside a directory it knows completely:
 * one this mount made (empty then), changed since only by this mount's
 * own creates, each of whose replies showed the directory's ctime just
 * before the create equal to the one seen last (nobody else changed it
 * in between); every name in it then has an entry here.  That knowledge
 * answers lookups for the negative timeout from its last confirmation;
 * after that it has lapsed (lookups there go to the node) until a
 * create here shows the directory's ctime still the one seen last,
 * which renews it.  Any other change made here (rename into it,
 * symlink, a failed create or removal, a listing showing a name it has
 * no entry for) ends it at once.  So a name made in such a directory by another client is found
 * here within the negative timeout (virgofs: 1 s, -o negative_timeout=),
 * or at once after this mount's next create or listing there.  Thread-safe; bounded (when
 * full, expired entries go first, else all: that only costs round trips).  Paths are the mount's
 * ("/node2/a/b").
 */
#ifndef VIRGO_VFS_CACHE_H
#define VIRGO_VFS_CACHE_H

#include <stdbool.h>

#include "virgo.h"

/* How long answers from here stay good (the kernel's attr_timeout), and
 * how long a directory known completely stays so without confirmation
 * (the kernel's negative_timeout). */
void vfs_cache_set_timeout(double seconds);
void vfs_cache_set_negative_timeout(double seconds);

/* path exists with attributes v, as the kernel is being told; answer:
 * getattr of path may be answered from v for the timeout. */
void vfs_cache_put(const char *path, const struct virgo_stat *v, bool answer);
/* path changed here in a way v no longer shows (a write, chmod ...):
 * ask the node next time. */
void vfs_cache_stale(const char *path);
/* path no longer exists (unlinked, or a lookup found nothing). */
void vfs_cache_gone(const char *path);
/* path was removed or renamed away: unless it was a file (a directory
 * took what was under it along), no answers for any path until put
 * again. */
void vfs_cache_moved(const char *path);

/* dir was just made by this mount (so it is empty) and its ctime was
 * ctime_ns: known completely from now on. */
void vfs_cache_dir_made(const char *dir, int64_t ctime_ns);
/* This mount made path (already vfs_cache_put) and the node saw its
 * directory's ctime pre just before and post just after: a directory
 * known completely stays so if pre is the ctime seen last (then post
 * is); -1s (the node did not say) end it. */
void vfs_cache_created(const char *path, int64_t pre_ns, int64_t post_ns);
/* path's directory may hold a name this cache has no entry for (or
 * lack one it has): no longer known completely. */
void vfs_cache_parent_unknown(const char *path);
/* A listing of path's directory showed path: if this cache has no
 * entry for it, the directory is no longer known completely. */
void vfs_cache_listed(const char *path);
/* A listing page of dir showed entries d[0..n): each is put (as
 * vfs_cache_put, answer true) and listed (as vfs_cache_listed), under
 * one lock and with the hash of "dir/" computed once. */
void vfs_cache_listing(const char *dir, const struct virgo_direntplus *d, size_t n);
/* A listing page of dir gave names (and types) only, d[0..n): each is
 * listed (as vfs_cache_listed); no attributes are put. */
void vfs_cache_names(const char *dir, const struct virgo_direntplus *d, size_t n);
/* The listing of dir just made gave names only from cursor on (its
 * first page gave attributes).  For the attribute timeout, getattrs of
 * its entries the cache cannot answer are counted (vfs_cache_names_miss). */
void vfs_cache_names_listed(const char *dir, uint64_t cursor);
/* A getattr of path was not answered here.  true when path's directory
 * was listed names-only (above) and this is the VFS_FILL_AFTER-th such
 * miss since: the caller fetches the attributes of that listing's
 * entries from *cursor on and puts them (vfs_cache_listing); dir (cap
 * bytes) gets the directory's path.  Once per listing; the directory's
 * later listings then give attributes for every entry (as the kernel's
 * READDIRPLUS_AUTO does after lookups). */
bool vfs_cache_names_miss(const char *path, char *dir, size_t cap, uint64_t *cursor);
/* dir's listings should carry every entry's attributes (above). */
bool vfs_cache_wants_attrs(const char *dir);

/* path is known not to exist (its directory is known completely and has
 * no such name): a lookup may say ENOENT without the node. */
bool vfs_cache_absent(const char *path);

/* 0 and *v: a getattr of path answered without the node; else -1. */
int vfs_cache_answer(const char *path, struct virgo_stat *v);
/* The kernel may hold other attributes for path than v. */
bool vfs_cache_changed(const char *path, const struct virgo_stat *v);

#endif
