/*
 * cpupool_load.h - what a node reports about its load (the notes' §889
 * registry is fed from this): load averages, cores, memory, and the
 * cpupool's running/queued jobs and counters.
 */
#ifndef VIRGO_CPUPOOL_LOAD_H
#define VIRGO_CPUPOOL_LOAD_H

#include <stddef.h>
#include <stdint.h>

struct cp_load {
	unsigned node_id;
	int cores;
	double load1, load5, load15;
	int running, queued, workers, queue_max;
	uint64_t mem_free, mem_total; /* bytes (MemAvailable, MemTotal) */
	uint64_t jobs_done, jobs_failed, jobs_rejected, jobs_cancelled;
	int weight; /* placement weight (the analytics knob `weight`) */
};

/* Fills cores, load averages and memory from the system. */
void cp_load_sample(struct cp_load *l);

/* Formats l as "<prefix><name> <value>\r\n" lines (prefix "STAT " for the
 * load command, "" for the virgo_load built-in).  Returns the length that
 * was (or would have been) written, like snprintf. */
size_t cp_load_format(const struct cp_load *l, const char *prefix, const char *eol, char *buf,
		      size_t cap);

#endif
