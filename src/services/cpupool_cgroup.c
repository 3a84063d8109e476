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
#include <stdatomic.h>
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
	_Atomic unsigned long next;
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

/* Removes the empty parent cgroups of nodes that died without cleaning
 * up (SIGKILL): virgod-<pid> with no such process. */
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
		rmdir(path); /* fails, harmlessly, if a job cgroup is inside */
	}
	closedir(d);
}

struct cp_cgroup *cp_cgroup_open(void)
{
	struct cp_cgroup *cg = try_v2();
	if (!cg)
		cg = try_v1();
	if (cg) {
		sweep_stale(cg->root);
		log_info("cpupool: each program runs in a pids cgroup under %s", cg->root);
	}
	else
		log_info("cpupool: no pids cgroup can be made here: the number of processes a "
			 "program starts is not capped (its descendants are still killed)");
	return cg;
}

void cp_cgroup_close(struct cp_cgroup *cg)
{
	if (!cg)
		return;
	rmdir(cg->root);
	free(cg);
}

int cp_cgroup_job_new(struct cp_cgroup *cg, int max_procs, char *dir, size_t cap)
{
	if (!cg)
		return -1;
	unsigned long n = atomic_fetch_add(&cg->next, 1);
	char path[600], num[32];
	snprintf(dir, cap, "%s/job-%lu", cg->root, n);
	if (mkdir(dir, 0755) != 0)
		return -1;
	snprintf(path, sizeof path, "%s/pids.max", dir);
	snprintf(num, sizeof num, "%d", max_procs + 1); /* + the shepherd */
	int fd = -1;
	if (write_file(path, num) == 0) {
		snprintf(path, sizeof path, "%s/cgroup.procs", dir);
		fd = open(path, O_WRONLY | O_CLOEXEC);
	}
	if (fd < 0)
		rmdir(dir);
	return fd;
}

void cp_cgroup_job_free(const char *dir)
{
	if (rmdir(dir) != 0 && errno != ENOENT)
		log_warn("cpupool: cannot remove %s: %s", dir, strerror(errno));
}
