/*
 * cpupool_load.c - node load sampling for the cpupool (cpupool_load.h):
 * getloadavg(3), the online core count and /proc/meminfo.
 */
#include "cpupool_load.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cp_load_sample(struct cp_load *l)
{
	double la[3] = {0, 0, 0};
	if (getloadavg(la, 3) < 3)
		la[0] = la[1] = la[2] = 0;
	l->load1 = la[0];
	l->load5 = la[1];
	l->load15 = la[2];
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	l->cores = n > 0 ? (int)n : 1;
	l->mem_free = l->mem_total = 0;
	FILE *f = fopen("/proc/meminfo", "re");
	if (!f)
		return;
	char line[256];
	while (fgets(line, sizeof line, f)) {
		unsigned long long kb;
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			l->mem_total = (uint64_t)kb * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			l->mem_free = (uint64_t)kb * 1024;
	}
	fclose(f);
}

size_t cp_load_format(const struct cp_load *l, const char *p, const char *e, char *buf, size_t cap)
{
	int n = snprintf(buf, cap,
			 "%snode_id %u%s%scores %d%s%sload1 %.2f%s%sload5 %.2f%s%sload15 %.2f%s"
			 "%srunning %d%s%squeued %d%s%sworkers %d%s%squeue_max %d%s"
			 "%smem_free %" PRIu64 "%s%smem_total %" PRIu64 "%s"
			 "%sjobs_done %" PRIu64 "%s%sjobs_failed %" PRIu64 "%s"
			 "%sjobs_rejected %" PRIu64 "%s%sjobs_cancelled %" PRIu64 "%s%sweight %d%s",
			 p, l->node_id, e, p, l->cores, e, p, l->load1, e, p, l->load5, e, p,
			 l->load15, e, p, l->running, e, p, l->queued, e, p, l->workers, e, p,
			 l->queue_max, e, p, l->mem_free, e, p, l->mem_total, e, p, l->jobs_done, e,
			 p, l->jobs_failed, e, p, l->jobs_rejected, e, p, l->jobs_cancelled, e, p,
			 l->weight, e);
	return n < 0 ? 0 : (size_t)n;
}
