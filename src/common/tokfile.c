/*
 * tokfile.c - reading the named tokens file (tokfile.h) with the checks a
 * file of secrets needs, the same for the node that loads it and the CLI
 * that edits it: a regular file, no access for group or others, within
 * TOKFILE_MAX_BYTES.  The parsing is tokfile_proto.c's.
 */
#include "tokfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *tokfile_read(const char *path, size_t *len, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		errno = e;
		return NULL;
	}
	struct stat st;
	char *buf = NULL;
	int e = EINVAL;
	if (fstat(fd, &st) != 0) {
		e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	} else if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
	} else if (st.st_mode & 077) {
		e = EACCES;
		snprintf(err, errlen,
			 "%s may be read or changed by group or others (mode %04o); it holds "
			 "secrets: chmod 600 %s",
			 path, (unsigned)(st.st_mode & 07777), path);
	} else if ((uint64_t)st.st_size > TOKFILE_MAX_BYTES) {
		e = EFBIG;
		snprintf(err, errlen, "%s is larger than %u bytes", path, TOKFILE_MAX_BYTES);
	} else if (!(buf = malloc((size_t)st.st_size + 1))) {
		e = ENOMEM;
		snprintf(err, errlen, "%s: out of memory", path);
	} else {
		/* at most the size seen: a file growing meanwhile is cut there */
		size_t got = 0;
		ssize_t r = 1;
		while (got < (size_t)st.st_size &&
		       (r = read(fd, buf + got, (size_t)st.st_size - got)) != 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				break;
			got += (size_t)r;
		}
		if (r < 0) {
			e = errno;
			snprintf(err, errlen, "%s: %s", path, strerror(e));
			free(buf);
			buf = NULL;
		} else {
			buf[got] = '\0';
			*len = got;
		}
	}
	close(fd);
	if (!buf)
		errno = e;
	return buf;
}
