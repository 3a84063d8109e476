/*
 * queue_topics.c - the queue's topic table (queue_int.h): a bounded array
 * of open topic logs, found by name under q->tmu.  Topics are created by
 * the writer thread on their first push (the directory and first segment
 * are disk work) and recovered at start-up; they are never closed before
 * the service stops, so a pointer once found stays valid.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/log.h"
#include "queue_int.h"
#include "../../common/mkdirp.h"

struct ql_topic *qt_find(struct queue *q, const char *name)
{
	struct ql_topic *t = NULL;
	pthread_mutex_lock(&q->tmu);
	for (int i = 0; i < q->ntopics; i++) {
		if (strcmp(ql_name(q->topics[i]), name) == 0) {
			t = q->topics[i];
			break;
		}
	}
	pthread_mutex_unlock(&q->tmu);
	return t;
}

static int topic_open(struct queue *q, const char *name, bool create, struct ql_topic **out)
{
	if (q->ntopics >= q->set.max_topics)
		return -ENOSPC;
	int rc = ql_open(q->set.dir, name, q->set.segment_bytes, q->set.max_record, create, out);
	if (rc)
		return rc;
	ql_zero_by_helper(*out, true); /* queue_zero.c */
	struct ql_stats st;
	ql_get_stats(*out, &st);
	if (st.max_lamport > q->lamport)
		q->lamport = st.max_lamport;
	pthread_mutex_lock(&q->tmu);
	q->topics[q->ntopics++] = *out;
	pthread_mutex_unlock(&q->tmu);
	return 0;
}

struct ql_topic *qt_get_or_create(struct queue *q, const char *name, int *err)
{
	struct ql_topic *t = qt_find(q, name);
	if (t)
		return t;
	*err = topic_open(q, name, true, &t);
	if (*err) {
		static struct vlog_rl rl;
		vlog_limited(&rl, VLOG_WARN, "queue_topic_create topic=%s error=%s", name,
			     strerror(-*err));
		return NULL;
	}
	log_info("queue_topic_created topic=%s", name);
	return t;
}

int qt_load_all(struct queue *q)
{
	DIR *d = opendir(q->set.dir);
	if (!d)
		return -errno;
	struct dirent *de;
	int rc = 0;
	while ((de = readdir(d))) {
		if (!qp_name_valid(de->d_name, strlen(de->d_name)))
			continue;
		if (de->d_type != DT_DIR) {
			/* some file systems (FUSE ones, older XFS) give no type */
			struct stat sb;
			if (de->d_type != DT_UNKNOWN || fstatat(dirfd(d), de->d_name, &sb, 0) != 0 ||
			    !S_ISDIR(sb.st_mode))
				continue;
		}
		struct ql_topic *t;
		rc = topic_open(q, de->d_name, false, &t);
		if (rc) {
			log_error("queue_topic_open topic=%s error=%s", de->d_name, strerror(-rc));
			break;
		}
		struct ql_stats st;
		ql_get_stats(t, &st);
		log_info("queue_topic_recovered topic=%s first=%llu next=%llu segments=%llu "
			 "corrupt=%llu truncated_bytes=%llu",
			 de->d_name, (unsigned long long)st.first, (unsigned long long)st.next,
			 (unsigned long long)st.segments, (unsigned long long)st.corrupt,
			 (unsigned long long)st.truncated_bytes);
	}
	closedir(d);
	return rc;
}

void qt_free_all(struct queue *q)
{
	for (int i = 0; i < q->ntopics; i++)
		ql_close(q->topics[i]);
	free(q->topics);
	q->topics = NULL;
	q->ntopics = 0;
}

static void disable(struct queue *q, const char *what, int err)
{
	snprintf(q->why, sizeof q->why, "%s %s: %s", what, q->set.dir, strerror(err));
	log_error("queue_disabled reason=\"%s\"", q->why);
	q->state = Q_DISABLED;
}

void qt_open_dir(struct queue *q, bool create)
{
	int rc;
	if (create && (rc = mkdirp(q->set.dir)) != 0)
		return disable(q, "cannot create", -rc);
	char path[300];
	snprintf(path, sizeof path, "%s/LOCK", q->set.dir);
	q->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (q->lockfd < 0)
		return disable(q, "cannot open the lock file in", errno);
	if (flock(q->lockfd, LOCK_EX | LOCK_NB) != 0)
		return disable(q, "another virgod uses", errno);
	if ((rc = qt_load_all(q)) != 0)
		return disable(q, "cannot recover", -rc);
	q->state = Q_READY;
}
