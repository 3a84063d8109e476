/*
 * vfs_read.c - virgofs's read path (vfs_read.h).  A large read asks the
 * node for the range and moves the reply's payload from the node's
 * socket into a pipe of the calling thread by splice(2)
 * (vfs_pread_pipe); libfuse then splices that pipe on to /dev/fuse
 * (FUSE_CAP_SPLICE_WRITE), so the only copy left is the kernel's, into
 * the reader's page cache.  Each libfuse worker thread keeps one pipe
 * (thread-specific, closed when the thread ends); a pipe found not empty
 * (a reply libfuse could not send, a read that failed half way) is
 * replaced.  Small reads, TLS connections, and replies that did not fit
 * the pipe go through memory.
 */
#include "vfs_read.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../lib/client.h" /* vfs_pread_pipe */

#define VFS_READ_SPLICE_MIN (64u << 10) /* smaller reads: one copy is cheaper */
#define VFS_READ_PIPE (1u << 20) /* fs.pipe-max-size by default */

static pthread_key_t pipe_key;
static pthread_once_t pipe_once = PTHREAD_ONCE_INIT;

/* p[0] read end, p[1] write end, p[2] capacity */
static void pipe_close(void *v)
{
	int *p = v;
	close(p[0]);
	close(p[1]);
	free(p);
}

static void pipe_key_make(void)
{
	if (pthread_key_create(&pipe_key, pipe_close) != 0)
		abort(); /* only when out of keys at start */
}

/* This thread's pipe, empty and holding at least size bytes, or NULL. */
static int *pipe_get(size_t size)
{
	pthread_once(&pipe_once, pipe_key_make);
	int *p = pthread_getspecific(pipe_key);
	int queued = 0;
	if (p && ioctl(p[0], FIONREAD, &queued) == 0 && queued == 0)
		return (size_t)p[2] >= size ? p : NULL;
	if (p) {
		pthread_setspecific(pipe_key, NULL);
		pipe_close(p);
	}
	p = malloc(3 * sizeof *p);
	if (!p)
		return NULL;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
		free(p);
		return NULL;
	}
	fcntl(p[0], F_SETPIPE_SZ, (int)VFS_READ_PIPE); /* best effort */
	p[2] = fcntl(p[0], F_GETPIPE_SZ);
	pthread_setspecific(pipe_key, p);
	return (size_t)p[2] >= size ? p : NULL;
}

/* A bufvec of one buffer of n bytes: in memory (mem, given to libfuse)
 * or, with mem NULL, in the pipe whose read end is pfd. */
static struct fuse_bufvec *bufvec_of(void *mem, int pfd, size_t n)
{
	struct fuse_bufvec *b = malloc(sizeof *b);
	if (!b)
		return NULL;
	*b = (struct fuse_bufvec)FUSE_BUFVEC_INIT(n);
	if (mem) {
		b->buf[0].mem = mem;
	} else {
		b->buf[0].flags = FUSE_BUF_IS_FD;
		b->buf[0].fd = pfd;
	}
	return b;
}

ssize_t vfs_read_into(virgo_fd_t fd, struct fuse_bufvec **bufp, size_t size, off_t off)
{
	*bufp = NULL;
	int *p = size >= VFS_READ_SPLICE_MIN ? pipe_get(size) : NULL;
	void *mem = NULL;
	ssize_t n = p ? vfs_pread_pipe(fd, p, size, (uint64_t)off, &mem) : -EOPNOTSUPP;
	if (n == -EOPNOTSUPP) {
		if (!(mem = malloc(size ? size : 1)))
			return -ENOMEM;
		n = virgo_pread(fd, mem, size, (uint64_t)off);
	}
	if (n < 0) {
		free(mem);
		return n;
	}
	if (!(*bufp = bufvec_of(mem, p ? p[0] : -1, (size_t)n))) {
		free(mem);
		return -ENOMEM; /* a pipe left full is replaced next time */
	}
	return n;
}
