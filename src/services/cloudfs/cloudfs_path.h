/*
 * cloudfs_path.h - resolving a client's path inside the export, race-free.
 *
 * Every path a client names is relative to the export root (a leading '/'
 * means the root itself).  The kernel resolves it with openat2() and
 * RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS, so `..` past the root, an
 * absolute symlink, or a symlink leading outside -- even one swapped in
 * while the call runs -- fails inside the one system call (there is no
 * check-then-use window).  Operations on a final component (unlink,
 * rename, mkdir, lstat, readlink, symlink) use the *at() calls on the
 * confined parent directory and never follow that component.  Where
 * openat2 is missing (Linux < 5.6) every path is refused.
 */
#ifndef VIRGO_CLOUDFS_PATH_H
#define VIRGO_CLOUDFS_PATH_H

#include <stdbool.h>

/* Whether this kernel has openat2 (checked once on root). */
bool cfs_path_supported(int root);
/* Opens path beneath root with open(2) flags and mode: an fd, or -errno
 * (-EACCES for a path leading outside the export). */
int cfs_path_open(int root, const char *path, int flags, unsigned mode);
/* The confined parent directory of path (an O_PATH fd the caller closes)
 * and its final component (*name points into namebuf, NAME_MAX bytes at
 * most).  -EINVAL for the root itself or a final "." or "..". */
int cfs_path_parent(int root, const char *path, char *namebuf, const char **name);
/* A message for a path error code (static). */
const char *cfs_path_msg(int err);

#endif
