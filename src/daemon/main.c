/*
 * main.c - virgod: command line, configuration, pidfile and start-up.
 *
 * With no arguments and no config file, virgod is node 1 on 127.0.0.1 at
 * the notes' ports.  Readiness is announced by a "ready" log line and by
 * the pidfile, which is written only once every listener is bound.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../../include/virgo.h"
#include "../common/cfgfile.h"
#include "../common/cfgval.h"
#include "config.h"
#include "log.h"
#include "server.h"
#include "service.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: virgod [options]\n"
		"Runs one VIRGO node: every service of this build on its port.\n\n"
		"  -c, --config FILE      node config (default: $VIRGO_CONF_DIR/virgo_cloud.conf,\n"
		"                         then /etc/virgo/virgo_cloud.conf, else built-in defaults)\n"
		"  -n, --node-id N        node id 1..65535 (default 1)\n"
		"  -o, --port-offset N    add N to every service port (several nodes on one host)\n"
		"  -l, --listen ADDR      address to listen on (default 127.0.0.1)\n"
		"  -m, --mem-limit SIZE   memory all allocations may hold, e.g. 256M\n"
		"  -t, --threads N        worker threads of each service (default: one per core)\n"
		"  -p, --pidfile FILE     write the pid here once ready; removed at exit\n"
		"  -v, --log-level LEVEL  error, warn, info (default) or debug\n"
		"  -L, --log-file FILE    append the log to FILE instead of stderr; reopened\n"
		"                         on SIGHUP (logrotate)\n"
		"  -S, --syslog           log to syslog (facility daemon) as well as to the\n"
		"                         log file, or instead of stderr\n"
		"  -h, --help             this text\n"
		"  -V, --version          print the version\n\n"
		"Services and base ports (plus the port offset):\n");
	for (int i = 0; vsvc_table[i]; i++)
		fprintf(f, "  %-10s %u\n", vsvc_table[i]->name, vsvc_table[i]->base_port);
	fprintf(f, "\nSIGTERM or SIGINT: stop accepting, flush replies, exit 0.\n"
		   "SIGHUP: reopen the log file, re-read the config file (log_level and\n"
		   "reloadable keys).\n");
}

/* Descriptors the daemon itself holds besides its connections: each
 * worker's event loop (epoll + its wake-up eventfd), the main loop's (and
 * its signal pair), one listener per service, what each service says it
 * holds (the cpupool: the pipes of running jobs), and a margin for logs,
 * the pidfile and plugins. */
static rlim_t own_fds(const struct vd_config *cfg)
{
	rlim_t n = 32;
	for (int i = 0; vsvc_table[i]; i++)
		if (vd_config_port(cfg, i) != 0) {
			struct vsvc_needs nd;
			vd_config_needs(cfg, i, &nd);
			n += 1 + 2 * (rlim_t)vd_config_threads(cfg, i) + (rlim_t)nd.fds;
		}
	return n;
}

/* max_connections is only a promise if the process may hold that many
 * descriptors besides its own: raise the soft limit toward the hard one,
 * or lower the cap (with a warning).  If descriptors still run out (other
 * processes, ENFILE), accepting pauses (server.c) instead of spinning. */
static void fit_fd_limit(struct vd_config *cfg)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	rlim_t own = own_fds(cfg);
	rlim_t want = (rlim_t)cfg->max_conns + own;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < want) {
		int cap = rl.rlim_cur > own + 16 ? (int)(rl.rlim_cur - own) : 16;
		log_warn("open-file limit %llu (%llu kept for the daemon's own use): "
			 "max_connections lowered from %d to %d",
			 (unsigned long long)rl.rlim_cur, (unsigned long long)own, cfg->max_conns, cap);
		cfg->max_conns = cap;
	}
}

static int write_pidfile(const char *path)
{
	char tmp[300];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%d\n", (int)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"node-id", required_argument, NULL, 'n'},
		{"port-offset", required_argument, NULL, 'o'},
		{"listen", required_argument, NULL, 'l'},
		{"mem-limit", required_argument, NULL, 'm'},
		{"threads", required_argument, NULL, 't'},
		{"pidfile", required_argument, NULL, 'p'},
		{"log-level", required_argument, NULL, 'v'},
		{"log-file", required_argument, NULL, 'L'},
		{"syslog", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	/* First pass: only --config, so the file is read before the other
	 * flags override it whatever their order. */
	const char *conf_path = NULL;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "c:n:o:l:m:t:p:v:L:ShV", opts, NULL)) != -1) {
		if (c == 'c')
			conf_path = optarg;
		else if (c == 'h') {
			usage(stdout);
			return 0;
		} else if (c == 'V') {
			printf("virgod %s\n", VIRGO_VERSION);
			return 0;
		}
	}
	struct vd_config cfg;
	vd_config_defaults(&cfg);
	char path[512], err[512];
	if (cfgfile_find(conf_path, NULL, "virgo_cloud.conf", path, sizeof path)) {
		if (vd_config_load(&cfg, path, err, sizeof err) != 0) {
			fprintf(stderr, "virgod: %s\n", err);
			return 2;
		}
	}
	optind = 1;
	opterr = 1;
	long v;
	while ((c = getopt_long(argc, argv, "c:n:o:l:m:t:p:v:L:ShV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': break;
		case 'n':
			if (cv_int(optarg, 1, 65535, &v))
				goto bad;
			cfg.node_id = (unsigned)v;
			break;
		case 'o':
			if (cv_int(optarg, 0, 1500, &v))
				goto bad;
			cfg.port_offset = (int)v;
			break;
		case 'l':
			snprintf(cfg.listen, sizeof cfg.listen, "%s", optarg);
			break;
		case 'm':
			if (cv_size(optarg, &cfg.mem_limit) || cfg.mem_limit == 0 ||
			    cfg.mem_limit > VD_MAX_MEM)
				goto bad;
			break;
		case 't':
			if (cv_int(optarg, 0, 256, &v))
				goto bad;
			cfg.threads = (int)v;
			break;
		case 'p':
			snprintf(cfg.pidfile, sizeof cfg.pidfile, "%s", optarg);
			break;
		case 'v':
			if (vlog_parse_level(optarg, &cfg.log_level))
				goto bad;
			break;
		case 'L':
			if (strlen(optarg) >= sizeof cfg.log_file)
				goto bad;
			snprintf(cfg.log_file, sizeof cfg.log_file, "%s", optarg);
			break;
		case 'S':
			cfg.log_syslog = true;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "virgod: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	vlog_set_level(cfg.log_level);
	if (cfg.log_file[0]) {
		int rc = vlog_open_file(cfg.log_file);
		if (rc != 0) {
			fprintf(stderr, "virgod: cannot open log file %s: %s\n", cfg.log_file,
				strerror(-rc));
			return 1;
		}
	}
	if (cfg.log_syslog)
		vlog_use_syslog();
	signal(SIGPIPE, SIG_IGN);
	fit_fd_limit(&cfg);
	log_info("node %u starting (config: %s)", cfg.node_id,
		 cfg.source[0] ? cfg.source : "built-in defaults");
	struct vd_server *srv = server_start(&cfg);
	if (!srv)
		return 1;
	if (cfg.pidfile[0] && write_pidfile(cfg.pidfile) != 0) {
		log_error("cannot write pidfile %s: %s", cfg.pidfile, strerror(errno));
		server_free(srv);
		return 1;
	}
	log_info("node %u ready", cfg.node_id);
	server_run(srv);
	server_free(srv);
	if (cfg.pidfile[0])
		unlink(cfg.pidfile);
	return 0;
bad:
	fprintf(stderr, "virgod: bad value '%s' for -%c (see --help)\n", optarg, c);
	return 2;
}
