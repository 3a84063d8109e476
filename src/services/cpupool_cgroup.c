/*
 * cpupool_cgroup.c - per-job pids cgroups (cpupool_cgroup.h).
 *
 * The node's own cgroup comes from /proc/self/cgroup.  With cgroup v2 the
 * pids controller must be enabled for a child of it (possible when the
 * node's cgroup is a namespace root or delegated to it); with v1 a
 * directory under the pids hierarchy is enough.  Jobs get
 * <own>/virgod-<pid>/job-<n> with pids.max; the shepherd process
 * (cpupool_exec.c) writes its pid into cgroup.procs before it forks the
 * program, so everything the program starts is counted there.
 */
#include "cpupool_cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "../daemon/log.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

struct cp_cgroup {
	char root[512]; /* <own cgroup>/virgod-<pid> */
	pthread_mutex_t mu;
	int nslot, made;
	bool *busy;
};

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static bool file_has_word(const char *path, const char *word)
{
	char buf[1024];
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	for (char *save = NULL, *t = strtok_r(buf, " \n", &save); t; t = strtok_r(NULL, " \n", &save))
		if (strcmp(t, word) == 0)
			return true;
	return false;
}

/* The node's cgroup path in the v2 ("0::") or v1 pids hierarchy. */
static int own_cgroup(bool v2, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return -1;
	char line[1024];
	int rc = -1;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
		if (!a || !b)
			continue;
		*a = *b = '\0'; /* line: "id", a + 1: controllers, b + 1: path */
		bool match;
		if (v2) {
			match = strcmp(line, "0") == 0 && a[1] == '\0';
		} else { /* "N:pids:/path" or "N:cpu,pids:/path" */
			char ctl[256];
			snprintf(ctl, sizeof ctl, ",%s,", a + 1);
			match = strstr(ctl, ",pids,") != NULL;
		}
		if (match) {
			snprintf(out, cap, "%s", strcmp(b + 1, "/") == 0 ? "" : b + 1);
			rc = 0;
			break;
		}
	}
	fclose(f);
	return rc;
}

static struct cp_cgroup *try_v2(void)
{
	struct statfs sf;
	char own[400], base[480], path[560];
	if (statfs("/sys/fs/cgroup", &sf) != 0 || sf.f_type != CGROUP2_SUPER_MAGIC ||
	    own_cgroup(true, own, sizeof own) != 0)
		return NULL;
	snprintf(base, sizeof base, "/sys/fs/cgroup%s", own);
	snprintf(path, sizeof path, "%s/cgroup.controllers", base);
	if (!file_has_word(path, "pids"))
		return NULL;
	struct cp_cgroup *cg = calloc(1, sizeof *cg);
	if (!cg)
		return NULL;
	snprintf(cg->root, sizeof cg->root, "%s/virgod-%d", base, (int)getpid());
	if (mkdir(cg->root, 0755) != 0 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", base);
	if (!file_has_word(path, "pids"))
		write_file(path, "+pids"); /* fails where processes live: checked below */
	snprintf(path, sizeof path, "%s/cgroup.subtree_control", cg->root);
	if (write_file(path, "+pids") != 0)
		goto fail;
	return cg;
fail:
	rmdir(cg->root);
	free(cg);
	return NULL;
}

static struct cp_cgroup *try_v1(void)
{
	char own[400], path[560];
	if (own_cgroup(false, own, sizeof own) != 0)
		return NULL;
	struct cp_cgroup *cg = calloc(1, sizeof *cg);
	if (!cg)
		return NULL;
	snprintf(cg->root, sizeof cg->root, "/sys/fs/cgroup/pids%s/virgod-%d", own, (int)getpid());
	if (mkdir(cg->root, 0755) != 0 && errno != EEXIST)
		goto fail;
	snprintf(path, sizeof path, "%s/pids.max", cg->root);
	if (access(path, W_OK) != 0)
		goto fail;
	return cg;
fail:
	rmdir(cg->root);
	free(cg);
	return NULL;
}

/* Removes the empty cgroups of nodes that died without cleaning up
 * (SIGKILL, or a shutdown that left a stuck worker behind): virgod-<pid>
 * with no such process, and its job-<slot> directories. */
static void sweep_stale(const char *root)
{
	char parent[512];
	snprintf(parent, sizeof parent, "%s", root);
	char *slash = strrchr(parent, '/');
	if (!slash)
		return;
	*slash = '\0';
	DIR *d = opendir(parent);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		int pid;
		char path[800];
		if (sscanf(e->d_name, "virgod-%d", &pid) != 1 || pid <= 0 || kill(pid, 0) == 0 ||
		    errno != ESRCH)
			continue;
		snprintf(path, sizeof path, "%s/%s", parent, e->d_name);
		DIR *jd = opendir(path);
		struct dirent *je;
		while (jd && (je = readdir(jd))) {
			char job[1100];
			if (strncmp(je->d_name, "job-", 4) != 0)
				continue;
			snprintf(job, sizeof job, "%s/%s", path, je->d_name);
			rmdir(job); /* fails, harmlessly, while a process is in it */
		}
		if (jd)
			closedir(jd);
		rmdir(path);
	}
	closedir(d);
}

static void slot_dir(const struct cp_cgroup *cg, int slot, char *dir, size_t cap)
{
	snprintf(dir, cap, "%s/job-%d", cg->root, slot);
}

static int make_slots(struct cp_cgroup *cg, int slots, int max_procs)
{
	cg->busy = calloc((size_t)slots, sizeof *cg->busy);
	if (!cg->busy)
		return -1;
	pthread_mutex_init(&cg->mu, NULL);
	cg->nslot = slots;
	char num[32];
	snprintf(num, sizeof num, "%d", max_procs + 1); /* + the shepherd */
	for (; cg->made < slots; cg->made++) {
		char dir[600], path[640];
		slot_dir(cg, cg->made, dir, sizeof dir);
		if (mkdir(dir, 0755) != 0 && errno != EEXIST)
			return -1;
		snprintf(path, sizeof path, "%s/pids.max", dir);
		if (write_file(path, num) != 0) {
			rmdir(dir);
			return -1;
		}
	}
	return 0;
}

struct cp_cgroup *cp_cgroup_open(int slots, int max_procs)
{
	struct cp_cgroup *cg = try_v2();
	if (!cg)
		cg = try_v1();
	if (cg && make_slots(cg, slots, max_procs) != 0) {
		log_warn("cpupool: cannot make job cgroups under %s: %s", cg->root, strerror(errno));
		cp_cgroup_close(cg);
		cg = NULL;
	}
	if (cg) {
		sweep_stale(cg->root);
		log_info("cpupool: each program runs in a pids cgroup under %s (pids.max %d)",
			 cg->root, max_procs + 1);
	} else {
		log_info("cpupool: no pids cgroup can be made here: the number of processes a "
			 "program starts is not capped (its descendants are still killed)");
	}
	return cg;
}

void cp_cgroup_close(struct cp_cgroup *cg)
{
	if (!cg)
		return;
	for (int i = 0; i < cg->made; i++) {
		char dir[600];
		slot_dir(cg, i, dir, sizeof dir);
		if (rmdir(dir) != 0 && errno != ENOENT)
			log_warn("cpupool: cannot remove %s: %s", dir, strerror(errno));
	}
	rmdir(cg->root);
	if (cg->busy)
		pthread_mutex_destroy(&cg->mu);
	free(cg->busy);
	free(cg);
}

void cp_cgroup_abandon(struct cp_cgroup *cg)
{
	if (!cg)
		return;
	pthread_mutex_lock(&cg->mu);
	for (int i = 0; i < cg->made; i++) {
		if (cg->busy[i])
			continue;
		cg->busy[i] = true; /* never taken again */
		char dir[600];
		slot_dir(cg, i, dir, sizeof dir);
		rmdir(dir);
	}
	pthread_mutex_unlock(&cg->mu);
	rmdir(cg->root); /* fails while a busy job cgroup is inside */
}

int cp_cgroup_job_take(struct cp_cgroup *cg, int *procs_fd)
{
	*procs_fd = -1;
	if (!cg)
		return -1;
	int slot = -1;
	pthread_mutex_lock(&cg->mu);
	for (int i = 0; i < cg->nslot && slot < 0; i++)
		if (!cg->busy[i])
			cg->busy[slot = i] = true;
	pthread_mutex_unlock(&cg->mu);
	if (slot < 0)
		return -1;
	char dir[600], path[640];
	slot_dir(cg, slot, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	*procs_fd = open(path, O_WRONLY | O_CLOEXEC);
	if (*procs_fd < 0) {
		cp_cgroup_job_put(cg, slot);
		return -1;
	}
	return slot;
}

void cp_cgroup_job_put(struct cp_cgroup *cg, int slot)
{
	if (!cg || slot < 0)
		return;
	char dir[600], path[640];
	slot_dir(cg, slot, dir, sizeof dir);
	snprintf(path, sizeof path, "%s/cgroup.procs", dir);
	FILE *f = fopen(path, "r");
	if (f) {
		int pid;
		while (fscanf(f, "%d", &pid) == 1)
			if (pid > 1)
				kill(pid, SIGKILL);
		fclose(f);
	}
	pthread_mutex_lock(&cg->mu);
	cg->busy[slot] = false;
	pthread_mutex_unlock(&cg->mu);
}
