/*
 * cpupool_cgroup.h - a pids cgroup per cpupool job, where the node can make
 * one: the number of processes a program and everything it starts may
 * have at once is capped (pids.max), which RLIMIT_NPROC cannot do for
 * root.  cgroup v2 (/sys/fs/cgroup with the pids controller, the node's
 * own cgroup delegated) or the v1 pids hierarchy (/sys/fs/cgroup/pids);
 * without either the cap is simply not enforced (logged once at start).
 * Killing what a job leaves behind does not depend on this: the job's
 * shepherd process is a subreaper (cpupool_exec.c).
 */
#ifndef VIRGO_CPUPOOL_CGROUP_H
#define VIRGO_CPUPOOL_CGROUP_H

#include <stddef.h>

struct cp_cgroup;

/* Makes the node's parent cgroup for jobs (<own cgroup>/virgod-<pid>).
 * NULL when no pids cgroup can be made here (not an error). */
struct cp_cgroup *cp_cgroup_open(void);
/* Removes the parent cgroup (empty by then) and frees cg (NULL is fine). */
void cp_cgroup_close(struct cp_cgroup *cg);

/* Any thread.  Makes a job's cgroup with pids.max = max_procs; dir (cap
 * bytes) receives its path.  Returns an O_WRONLY fd of its cgroup.procs
 * (the caller's child writes its pid there, then closes it), or -1. */
int cp_cgroup_job_new(struct cp_cgroup *cg, int max_procs, char *dir, size_t cap);
/* Removes a job's cgroup once every process in it is gone. */
void cp_cgroup_job_free(const char *dir);

#endif
