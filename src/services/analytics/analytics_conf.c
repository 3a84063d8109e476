/*
 * analytics_conf.c - the original's virgo_kernel_analytics.conf
 * (analytics_int.h): read at start, on SIGHUP and when its mtime, size or
 * inode changed (polled once a second by the tick), at most AN_CONF_MAX
 * bytes, and applied pair by pair (analytics_proto.c's grammar).  Runs on
 * the main thread: a small local file, read without holding the
 * service's mutex.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemon/log.h"
#include "analytics_int.h"

#define AN_CONF_MAX (1u << 20) /* bytes of virgo_kernel_analytics.conf read */

void an_conf_check(struct analytics *an, bool force)
{
	char path[256];
	pthread_mutex_lock(&an->mu);
	snprintf(path, sizeof path, "%s", an->conf);
	struct stat old = an->conf_st;
	bool seen = an->conf_seen;
	pthread_mutex_unlock(&an->mu);
	if (!path[0])
		return;
	struct stat st;
	if (stat(path, &st) != 0) {
		if (seen)
			log_info("analytics: %s is gone; variables stay as they are", path);
		pthread_mutex_lock(&an->mu);
		an->conf_seen = false;
		pthread_mutex_unlock(&an->mu);
		return;
	}
	if (!force && seen && st.st_mtim.tv_sec == old.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == old.st_mtim.tv_nsec && st.st_size == old.st_size &&
	    st.st_ino == old.st_ino)
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("analytics: cannot read %s: %s", path, strerror(errno));
		return;
	}
	char *buf = malloc(AN_CONF_MAX);
	size_t len = 0;
	ssize_t n;
	while (buf && len < AN_CONF_MAX && (n = read(fd, buf + len, AN_CONF_MAX - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (!buf)
		return;
	if (len == AN_CONF_MAX)
		log_warn("analytics: %s: only the first %u bytes are read", path, AN_CONF_MAX);
	pthread_mutex_lock(&an->mu);
	an->conf_st = st;
	an->conf_seen = true;
	pthread_mutex_unlock(&an->mu);
	int bad = an_apply_chunk(an, buf, len, path);
	log_info("analytics: read %s (%zu bytes%s)", path, len, bad ? ", some refused" : "");
	free(buf);
}
