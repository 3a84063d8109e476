/*
 * cloudfs_path.c - confined path resolution (cloudfs_path.h).
 */
#include "cloudfs_path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <linux/openat2.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static int openat2_beneath(int dirfd, const char *rel, int flags, unsigned mode)
{
	struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
			       .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0,
			       .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
	int fd;
	do
		fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
	while (fd < 0 && errno == EAGAIN); /* a rename raced the lookup: retry */
	if (fd >= 0)
		return fd;
	int e = errno;
	/* outside the export (.. past the root, an absolute or escaping
	 * symlink, a magic link): one answer for all */
	if (e == EXDEV)
		return -EACCES;
	return -e;
}

bool cfs_path_supported(int root)
{
	int fd = openat2_beneath(root, ".", O_PATH | O_DIRECTORY, 0);
	if (fd >= 0) {
		close(fd);
		return true;
	}
	return fd != -ENOSYS;
}

/* Skips leading slashes: "/a/b" and "a/b" name the same file. */
static const char *relative(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

int cfs_path_open(int root, const char *path, int flags, unsigned mode)
{
	return openat2_beneath(root, relative(path), flags, mode);
}

int cfs_path_parent(int root, const char *path, char *namebuf, const char **name)
{
	const char *rel = relative(path);
	size_t n = strlen(rel);
	while (n > 0 && rel[n - 1] == '/') /* "a/b/" names b */
		n--;
	if (n == 0 || n > PATH_MAX - 1)
		return -EINVAL;
	size_t slash = n;
	while (slash > 0 && rel[slash - 1] != '/')
		slash--;
	size_t nl = n - slash;
	if (nl > NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(namebuf, rel + slash, nl);
	namebuf[nl] = '\0';
	if (strcmp(namebuf, ".") == 0 || strcmp(namebuf, "..") == 0)
		return -EINVAL;
	*name = namebuf;
	char dir[PATH_MAX];
	if (slash == 0) {
		strcpy(dir, ".");
	} else {
		memcpy(dir, rel, slash);
		dir[slash] = '\0';
	}
	return openat2_beneath(root, dir, O_PATH | O_DIRECTORY, 0);
}

const char *cfs_path_msg(int err)
{
	switch (err) {
	case EACCES: return "permission denied or the path leads outside the export";
	case ENOENT: return "no such file or directory";
	case ENOTDIR: return "a component of the path is not a directory";
	case EISDIR: return "is a directory";
	case EEXIST: return "already exists";
	case ENOTEMPTY: return "directory not empty";
	case ELOOP: return "too many symlinks, or a symlink where none may be followed";
	case ENAMETOOLONG: return "name too long";
	case EINVAL: return "invalid argument (the export root itself, or a final . or ..)";
	case EROFS: return "the export is read-only (cloudfs_read_only)";
	case ENOSPC: return "no space left on the node's disk";
	case EBADF: return "no such open descriptor (closed, expired, or another connection's)";
	case EMFILE: return "too many open descriptors (cloudfs_max_fds, cloudfs_max_fds_per_conn, cloudfs_call_fds)";
	case ENOSYS: return "openat2 unavailable: this kernel cannot confine paths (Linux >= 5.6 needed)";
	case EXDEV: return "rename across file systems";
	case EPERM: return "operation not permitted";
	case EFBIG: return "file too large";
	case EOPNOTSUPP: return "operation not supported on this file";
	default: return "failed";
	}
}
