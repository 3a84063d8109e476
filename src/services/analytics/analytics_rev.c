/*
 * analytics_rev.c - the reservation file of analytics revisions
 * (analytics_rev.h).  One decimal number and a newline; a file that
 * cannot be read or parsed is an error, never "0": guessing could give
 * again a revision a watcher has seen.  The read-modify-write holds a
 * flock on <file>.lock, so nodes sharing a directory (tests) reserve
 * distinct blocks.
 */
#include "analytics_rev.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, int rc, const char *what, const char *path)
{
	snprintf(err, errlen, "%s %s: %s", what, path, strerror(-rc));
	return rc;
}

/* Under the lock: the number in the file (0 when there is none). */
static int read_limit(const char *path, uint64_t *out, char *err, size_t errlen)
{
	*out = 0;
	FILE *f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? 0 : fail(err, errlen, -errno, "cannot read", path);
	char line[32] = "";
	char *end = NULL;
	errno = 0;
	if (fgets(line, sizeof line, f))
		*out = strtoull(line, &end, 10);
	fclose(f);
	if (errno || !end || end == line || line[0] == '-' || (*end != '\n' && *end != '\0')) {
		snprintf(err, errlen, "%s is corrupt (expected one decimal number)", path);
		return -EIO;
	}
	return 0;
}

/* Under the lock: the file says limit, durably. */
static int write_limit(const char *path, uint64_t limit, char *err, size_t errlen)
{
	char tmp[340];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(err, errlen, -errno, "cannot create", tmp);
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", limit);
	if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0) {
		int rc = fail(err, errlen, errno ? -errno : -EIO, "cannot write", tmp);
		close(fd);
		unlink(tmp);
		return rc;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		int rc = fail(err, errlen, -errno, "cannot rename to", path);
		unlink(tmp);
		return rc;
	}
	/* the rename itself: fsync the directory */
	char dir[320];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

/* Reserves [*from, *from + AN_REV_BLOCK) where *from is at least `at`
 * and above what the file says. */
static int reserve(struct an_rev *r, uint64_t at, uint64_t *from, char *err, size_t errlen)
{
	char lockp[340];
	snprintf(lockp, sizeof lockp, "%s.lock", r->path);
	int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lfd < 0)
		return fail(err, errlen, -errno, "cannot open", lockp);
	if (flock(lfd, LOCK_EX) != 0) {
		int rc = fail(err, errlen, -errno, "cannot lock", lockp);
		close(lfd);
		return rc;
	}
	uint64_t cur;
	int rc = read_limit(r->path, &cur, err, errlen);
	if (rc == 0) {
		*from = cur > at ? cur : at;
		if (*from > UINT64_MAX / 2) {
			snprintf(err, errlen, "%s: revisions exhausted", r->path);
			rc = -EOVERFLOW;
		}
	}
	if (rc == 0)
		rc = write_limit(r->path, *from + AN_REV_BLOCK, err, errlen);
	if (rc == 0)
		r->limit = *from + AN_REV_BLOCK;
	close(lfd); /* and its lock */
	return rc;
}

int an_rev_open(struct an_rev *r, const char *dir, unsigned node_id, uint64_t *base, char *err,
		size_t errlen)
{
	*base = 0;
	r->path[0] = '\0';
	r->limit = UINT64_MAX;
	if (!dir || !*dir)
		return 0;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return fail(err, errlen, -errno, "cannot create", dir);
	if (snprintf(r->path, sizeof r->path, "%s/analytics-%u.rev", dir, node_id) >=
	    (int)sizeof r->path) {
		r->path[0] = '\0';
		return fail(err, errlen, -ENAMETOOLONG, "too long:", dir);
	}
	int rc = reserve(r, 0, base, err, errlen);
	if (rc) {
		r->path[0] = '\0';
		r->limit = UINT64_MAX;
	}
	return rc;
}

int an_rev_need(struct an_rev *r, uint64_t *rev, char *err, size_t errlen)
{
	if (*rev < r->limit)
		return 0;
	return reserve(r, *rev, rev, err, errlen);
}
