/*
 * cpupool_knobs.h - what the cpupool lets the kernel analytics change and
 * what it tells it (daemon/knob.h): the live knobs cpu_workers, cpu_queue
 * and job_timeout_ms, and the learnt, read-only variables localhost_load
 * ("[load1, load5, load15]", as the original's balancer script appended)
 * and runtime_ms.<function> (an EWMA of each function's or program's run
 * time on this node, the notes' §898 "learns execution times").
 */
#ifndef VIRGO_CPUPOOL_KNOBS_H
#define VIRGO_CPUPOOL_KNOBS_H

#include "cpupool_pool.h"

struct cp_knobs;

/* Registers the knobs and the reporter for pool (not owned) and the
 * atomic job timeout (the cpupool's).  NULL on out of memory.  Free
 * with cp_knobs_free before the pool. */
struct cp_knobs *cp_knobs_new(struct cp_pool *pool, _Atomic int *job_timeout_ms);
void cp_knobs_free(struct cp_knobs *k);

/* Any thread: name (a function or program) ran ok for ms. */
void cp_knobs_learn(struct cp_knobs *k, const char *name, double ms);

/* The environment of a program the cpupool runs: PATH, LC_ALL and a
 * snapshot of the node's analytics variables as VIRGO_AN_<name>=<value>
 * (name's other characters as '_'; at most CP_ENV_BYTES in all), as one
 * malloc'd block (pointers then strings; caller frees the pointer), or
 * NULL (no analytics or out of memory: the default environment). */
char **cp_knobs_env(void);
#define CP_ENV_BYTES (64u << 10)

/* The EWMA weight of a new run time. */
#define CP_LEARN_ALPHA 0.3
#define CP_LEARN_FNS 64 /* functions tracked (least recently run go first) */

#endif
