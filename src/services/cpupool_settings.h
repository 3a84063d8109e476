/*
 * cpupool_settings.h - the cpupool's own keys of virgo_cloud.conf
 * (service-owned settings, service.h): what may run, how long, with how
 * much output, memory and processes, on how many workers.  The daemon
 * parses them into struct cp_settings; job_timeout_ms also takes effect
 * on SIGHUP.
 */
#ifndef VIRGO_CPUPOOL_SETTINGS_H
#define VIRGO_CPUPOOL_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>

#include "../daemon/service.h"

/* The default allow-list: harmless programs that take no privileged action
 * whatever their arguments (documented in README). */
#define CP_DEFAULT_ALLOW_EXEC "echo, true, false, uname, nproc"

#define CP_PROGRAMS_MAX 2048 /* cpupool_programs */

struct cp_settings {
	char allow_exec[4096]; /* comma-separated program names / absolute paths */
	char plugins[4096]; /* comma-separated plugin library paths */
	int job_timeout_ms; /* a job's reply is due within this (queue included) */
	uint64_t output_cap; /* bytes of stdout, of stderr, of a function's result */
	int cpu_workers; /* jobs running at once (0: one per core) */
	int cpu_queue; /* jobs waiting beyond those; then ERR EBUSY */
	uint64_t job_mem_limit; /* RLIMIT_AS of an executable */
	int job_max_procs; /* processes a program's job may have (pids cgroup) */
	/* identities (vconn_identity) that may run jobs; "" = every client */
	char identities[1024];
	/* per identity, which programs / functions it may run (idpolicy.h
	 * map); an identity it does not name keeps the whole allow-list */
	char programs[CP_PROGRAMS_MAX];
	bool use_as_kingcobra_service; /* enqueue clone calls on the queue (§976) */
};

extern const struct vsvc_key cp_settings_keys[];
void cp_settings_defaults(void *settings);
/* What the cpupool needs of the daemon: its largest reply (a program's
 * stdout and stderr, each up to output_cap) and the descriptors of its
 * running jobs. */
void cp_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out);

#endif
