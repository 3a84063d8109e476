/*
 * cpupool_settings.c - the cpupool's keys, their defaults, bounds and
 * hints (cpupool_settings.h); one table, so the keys, their ranges and
 * their error messages stay in one place.
 */
#include "cpupool_settings.h"

#include <stddef.h>
#include <stdio.h>
#include <unistd.h>

#include "../daemon/config.h"
#include "../daemon/service.h"

#define CP_KEY(name, type, field, len, min, max, want, reload)                                     \
	{name, type, offsetof(struct cp_settings, field), len, min, max, want, reload}

const struct vsvc_key cp_settings_keys[] = {
	CP_KEY("allow_exec", VSVC_KEY_STR, allow_exec, 4096, 0, 0, "a shorter list", false),
	CP_KEY("plugins", VSVC_KEY_STR, plugins, 4096, 0, 0, "a shorter list", false),
	CP_KEY("job_timeout_ms", VSVC_KEY_INT, job_timeout_ms, 0, 1, 86400000, "1..86400000", true),
	CP_KEY("output_cap", VSVC_KEY_SIZE, output_cap, 0, 1, INT64_C(1) << 30,
	       "a size from 1 to 1G", false),
	CP_KEY("cpu_workers", VSVC_KEY_INT, cpu_workers, 0, 0, 1024, "0..1024, 0 = one per core",
	       false),
	CP_KEY("cpu_queue", VSVC_KEY_INT, cpu_queue, 0, 0, 100000, "0..100000", false),
	CP_KEY("job_mem_limit", VSVC_KEY_SIZE, job_mem_limit, 0, INT64_C(16) << 20, INT64_C(1) << 44,
	       "a size from 16M to 16384G", false),
	CP_KEY("job_max_procs", VSVC_KEY_INT, job_max_procs, 0, 1, 100000, "1..100000", false),
	CP_KEY("cpupool_identities", VSVC_KEY_STR, identities, 1024, 0, 0, "a shorter list", false),
	CP_KEY("cpupool_programs", VSVC_KEY_STR, programs, CP_PROGRAMS_MAX, 0, 0, "a shorter map",
	       false),
	CP_KEY("use_as_kingcobra_service", VSVC_KEY_BOOL, use_as_kingcobra_service, 0, 0, 0, "yes or no",
	       false),
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void cp_settings_defaults(void *settings)
{
	struct cp_settings *s = settings;
	snprintf(s->allow_exec, sizeof s->allow_exec, "%s", CP_DEFAULT_ALLOW_EXEC);
	s->plugins[0] = '\0';
	s->job_timeout_ms = 30000;
	s->output_cap = UINT64_C(1) << 20;
	s->cpu_workers = 0;
	s->cpu_queue = 64;
	s->job_mem_limit = UINT64_C(1) << 30;
	s->job_max_procs = 64;
	s->use_as_kingcobra_service = false;
}

void cp_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out)
{
	(void)cfg;
	const struct cp_settings *s = settings;
	out->largest_reply = 2 * s->output_cap + 4096;
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	int workers = s->cpu_workers > 0 ? s->cpu_workers : (cores > 0 ? (int)cores : 1);
	/* per running job: stdout, stderr and status pipes, both ends while
	 * forking the shepherd */
	out->fds = 6 * workers;
}
