/*
 * vfs_cache.h - what virgofs knows of paths between round trips to their
 * node: the attributes the kernel was last given for each path (so an
 * open can tell whether the file changed since: close-to-open), the
 * attributes a closed file's last write returned (so a stat after close
 * needs no round trip).  What is answered from it is at most the
 * attribute timeout old.  It never answers "no such file": a name made
 * elsewhere is found by the next lookup (close-to-open).  Thread-safe; bounded (emptied when
 * full, which only costs round trips).  Paths are the mount's
 * ("/node2/a/b").
 */
#ifndef VIRGO_VFS_CACHE_H
#define VIRGO_VFS_CACHE_H

#include <stdbool.h>

#include "virgo.h"

/* How long answers from here stay good (the kernel's attr_timeout). */
void vfs_cache_set_timeout(double seconds);

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

/* 0 and *v: a getattr of path answered without the node; else -1. */
int vfs_cache_answer(const char *path, struct virgo_stat *v);
/* The kernel may hold other attributes for path than v. */
bool vfs_cache_changed(const char *path, const struct virgo_stat *v);

#endif
