/*
 * cloudfs_settings.c - the cloudfs keys, their defaults, bounds and hints
 * (cloudfs_settings.h), in one table.
 */
#include "cloudfs_settings.h"

#include <stddef.h>
#include <stdio.h>

#include "../../daemon/config.h"

#define CFS_KEY(name, type, field, len, min, max, want, reload)                                    \
	{name, type, offsetof(struct cfs_settings, field), len, min, max, want, reload}

const struct vsvc_key cfs_settings_keys[] = {
	CFS_KEY("cloudfs_export_root", VSVC_KEY_STR, export_root, 4096, 0, 0, "a shorter path",
		false),
	CFS_KEY("cloudfs_read_only", VSVC_KEY_BOOL, read_only, 0, 0, 0, "yes or no", false),
	CFS_KEY("cloudfs_writers", VSVC_KEY_STR, writers, 1024, 0, 0, "a shorter list", false),
	CFS_KEY("cloudfs_max_io", VSVC_KEY_SIZE, max_io, 0, 4096, INT64_C(16) << 20,
		"a size from 4K to 16M", false),
	CFS_KEY("cloudfs_max_fds", VSVC_KEY_INT, max_fds, 0, 1, 1000000, "1..1000000", false),
	CFS_KEY("cloudfs_max_fds_per_conn", VSVC_KEY_INT, max_fds_per_conn, 0, 1, 1000000,
		"1..1000000", false),
	CFS_KEY("cloudfs_call_fds", VSVC_KEY_INT, call_fds, 0, 0, 1000000, "0..1000000", false),
	CFS_KEY("cloudfs_call_fd_idle_s", VSVC_KEY_INT, call_fd_idle_s, 0, 1, 86400, "1..86400",
		false),
	CFS_KEY("cloudfs_sendfile_loopback", VSVC_KEY_BOOL, sendfile_loopback, 0, 0, 0, "yes or no",
		false),
	{NULL, 0, 0, 0, 0, 0, NULL, false},
};

void cfs_settings_defaults(void *settings)
{
	struct cfs_settings *s = settings;
	s->export_root[0] = '\0';
	s->read_only = false;
	s->writers[0] = '\0';
	s->max_io = UINT64_C(1) << 20;
	s->max_fds = 4096;
	s->max_fds_per_conn = 256;
	s->call_fds = 256;
	s->call_fd_idle_s = 300;
	s->sendfile_loopback = false;
}

void cfs_settings_needs(const struct vd_config *cfg, const void *settings, struct vsvc_needs *out)
{
	const struct cfs_settings *s = settings;
	out->largest_reply = s->max_io + cfg->max_line + 4096;
	/* open files, the export root, a parent directory per running job */
	out->fds = s->max_fds + 64;
}
