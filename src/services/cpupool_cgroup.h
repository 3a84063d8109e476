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

/* Makes the node's parent cgroup for jobs (<own cgroup>/virgod-<pid>) and
 * `slots` job cgroups in it (one per job that can run at once), each with
 * pids.max = max_procs + 1 (the shepherd).  Made once and reused: making
 * and removing a cgroup per job cost up to a millisecond.  NULL when no
 * pids cgroup can be made here (not an error). */
struct cp_cgroup *cp_cgroup_open(int slots, int max_procs);
/* Removes the cgroups (empty by then) and frees cg (NULL is fine). */
void cp_cgroup_close(struct cp_cgroup *cg);

/* At a shutdown that leaves a stuck worker behind: removes the idle job
 * cgroups and (if it is then empty) the parent, but keeps cg itself, which
 * a worker may still use.  Takes no more jobs. */
void cp_cgroup_abandon(struct cp_cgroup *cg);

/* Any thread.  Takes a free job cgroup: returns its slot and sets
 * *procs_fd to an O_WRONLY fd of its cgroup.procs (the job's shepherd
 * writes its pid there; the caller closes the fd), or -1 (none free). */
int cp_cgroup_job_take(struct cp_cgroup *cg, int *procs_fd);
/* Gives the slot back once the job is over; any process still in it (a
 * shepherd killed from outside leaves orphans) is SIGKILLed first. */
void cp_cgroup_job_put(struct cp_cgroup *cg, int slot);

#endif
