/*
 * cloudsync_epoch.c - durable boot epochs for fencing tokens
 * (cloudsync_epoch.h).  A file we cannot read or parse is an error, never
 * "epoch 0": guessing could hand out a token an earlier boot already gave.
 */
#include "cloudsync_epoch.h"
#include "../../common/mkdirp.h"

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

int cs_epoch_next(const char *dir, unsigned node_id, uint64_t *epoch, char *err, size_t errlen)
{
	char path[600], tmp[620], lockp[620];
	if (!dir || !*dir)
		return fail(err, errlen, -EINVAL, "lock_state_dir is empty:", "");
	snprintf(path, sizeof path, "%s/cloudsync-%u.epoch", dir, node_id);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	snprintf(lockp, sizeof lockp, "%s.lock", path);
	int rc = mkdirp(dir);
	if (rc)
		return fail(err, errlen, rc, "cannot create", dir);
	int lfd = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lfd < 0)
		return fail(err, errlen, -errno, "cannot open", lockp);
	if (flock(lfd, LOCK_EX) != 0) {
		rc = fail(err, errlen, -errno, "cannot lock", lockp);
		close(lfd);
		return rc;
	}
	uint64_t cur = 0;
	FILE *f = fopen(path, "re");
	if (f) {
		char line[64] = "";
		char *end = NULL;
		if (fgets(line, sizeof line, f))
			cur = strtoull(line, &end, 10);
		fclose(f);
		if (!end || end == line || (*end != '\n' && *end != '\0')) {
			snprintf(err, errlen, "%s is corrupt (expected one decimal number)", path);
			close(lfd);
			return -EIO;
		}
	} else if (errno != ENOENT) {
		rc = fail(err, errlen, -errno, "cannot read", path);
		close(lfd);
		return rc;
	}
	if (cur >= CS_EPOCH_MAX) {
		snprintf(err, errlen, "%s: epochs exhausted", path);
		close(lfd);
		return -EOVERFLOW;
	}
	cur++;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = fail(err, errlen, -errno, "cannot write", tmp);
		close(lfd);
		return rc;
	}
	char buf[32];
	int n = snprintf(buf, sizeof buf, "%" PRIu64 "\n", cur);
	if (write(fd, buf, (size_t)n) != n || fsync(fd) != 0) {
		rc = fail(err, errlen, errno ? -errno : -EIO, "cannot write", tmp);
		close(fd);
		close(lfd);
		return rc;
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		rc = fail(err, errlen, -errno, "cannot rename to", path);
		close(lfd);
		return rc;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		rc = fail(err, errlen, -errno, "cannot fsync", dir);
		if (dfd >= 0)
			close(dfd);
		close(lfd);
		return rc;
	}
	close(dfd);
	close(lfd);
	*epoch = cur;
	return 0;
}
