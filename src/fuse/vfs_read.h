/*
 * vfs_read.h - virgofs's large reads: the data of a FUSE read reply goes
 * from the node's socket into a pipe and on to /dev/fuse by splice(2),
 * never through virgofs's memory (vfs_read.c).
 */
#ifndef VIRGO_VFS_READ_H
#define VIRGO_VFS_READ_H

#define FUSE_USE_VERSION 31
#include <fuse.h>
#include <sys/types.h>

#include "virgo.h"

/* Reads at most size bytes of fd at off for a FUSE read_buf op: *bufp
 * (malloc'd, libfuse frees it) describes them, in this thread's pipe
 * (spliced) or in memory.  Returns the count, or libvirgo's negative
 * error (*bufp then NULL). */
ssize_t vfs_read_into(virgo_fd_t fd, struct fuse_bufvec **bufp, size_t size, off_t off);

#endif
