/*
 * harness.h - integration-test harness: start real virgod processes on
 * loopback, wait for readiness with a deadline (never a fixed sleep), talk
 * to them over raw sockets, and stop them.
 *
 * Each test binary gets its own port-offset range (derived from its pid)
 * and a scratch directory with the nodes' configs and logs, so tests never
 * collide with a demo cluster or with each other.
 */
#ifndef VIRGO_HARNESS_H
#define VIRGO_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TH_MAX_NODES 8

struct th_node {
	pid_t pid;
	unsigned id;
	int offset;
	char conf[320], pidfile[320], log[320];
};

struct th_cluster {
	int n;
	struct th_node nodes[TH_MAX_NODES];
	char dir[256];
	char client_conf[320];
};

/* Path of the virgod binary next to the test binaries ($BUILD/virgod). */
const char *th_virgod(void);
/* Path of the CLI under test: $VIRGO_CLI if set (to run the CLI tests
 * against another build), else $BUILD/virgo.  Static string. */
const char *th_virgo_cli(void);
/* A fresh scratch directory under $TMPDIR; returned string is static.
 * Removed when the process exits 0 (kept after a failure, or always
 * with VIRGO_TEST_KEEP=1). */
const char *th_tmpdir(void);
/* A port offset block of `count` for this process, within 100..1400. */
int th_offset_base(int count);

/* Writes node configs (node_conf_extra appended to each) and a client
 * config (client_extra appended), starts n nodes and waits until all are
 * ready.  Also points libvirgo at the client config (VIRGO_CLIENT_CONF).
 * Returns 0, or -1 after printing the nodes' logs. */
int th_cluster_start(struct th_cluster *c, int n, const char *node_conf_extra,
		     const char *client_extra);
/* As th_cluster_start, with a per-node extra (node_extra[i], may be NULL)
 * appended after the common one. */
int th_cluster_start_nodes(struct th_cluster *c, int n, const char *node_conf_extra,
			   const char *const node_extra[], const char *client_extra);
/* Directory of the test binaries ($BUILD/tests); static string. */
const char *th_build_dir(void);
/* A kB field of /proc/<pid>/status ("VmRSS", "VmHWM"), in kB; -1 if
 * the process or the field is not there. */
long th_proc_kb(pid_t pid, const char *field);
/* How much pid's peak resident memory (VmHWM) grew since before_kb:
 * prints it and returns 0 when within max_kb, -1 when over.  Under ASan
 * (whose quarantine keeps freed buffers) it only prints: returns 0. */
int th_peak_growth_ok(pid_t pid, long before_kb, long max_kb);
/* Number of live or zombie child processes of pid (from /proc). */
int th_children(pid_t pid);
/* Points this process's libvirgo at the cluster: virgo_fini, then
 * virgo_init with its client config.  0 or virgo_init's error. */
int th_cluster_client(const struct th_cluster *c);
/* cmocka group teardown for a cluster: virgo_fini, then stop every node;
 * 0 if all exited 0, else -1. */
int th_cluster_teardown(struct th_cluster *c);
/* (Re)starts node i and waits for it to be ready. */
int th_node_start(struct th_cluster *c, int i);
/* SIGTERMs every live node and reaps it; returns the number that did not
 * exit 0 within the deadline. */
int th_cluster_stop(struct th_cluster *c);
/* Sends sig to node i; for SIGKILL/SIGTERM also reaps it; for SIGSTOP
 * returns once the process is stopped. */
void th_node_signal(struct th_cluster *c, int i, int sig);

/* Runs a command line with a deadline; stdout+stderr captured into out
 * (NUL-terminated, truncated to cap).  Returns the exit status, or -1. */
int th_run(const char *const argv[], char *out, size_t cap, int timeout_ms);
/* The same with stdin, stdout and stderr on a new pseudo-terminal (for
 * what a CLI draws only on a terminal); out gets what the terminal got,
 * CR/LF as a tty sends them.  Returns the exit status, or -1. */
int th_run_tty(const char *const argv[], char *out, size_t cap, int timeout_ms);

/* Has Debian's python load json and print what prog (python code over
 * the object o) says of it, into res (th_run's capture).  python's exit
 * status, -1 (deadline), or -2 (the scratch file could not be written). */
int th_json_eval(const char *json, const char *prog, char *res, size_t cap);

/* Runs the CLI: `<virgo> -c <conf> a0 ap...` (NULL-terminated, at most
 * 60 arguments) with th_run's capture and deadline.  For a test's own
 * variadic wrapper.  Returns the exit status, or -1. */
int th_cliv(const char *virgo, const char *conf, char *out, size_t cap, int timeout_ms,
	    const char *a0, va_list ap);

/* Node i's port of the service with that base port (60000, the queue:
 * 61000 + offset, see harness.c). */
int th_port(const struct th_cluster *c, int i, int base);
/* Raw TCP: connect to 127.0.0.1:port (fd or -1). */
int th_connect(int port);
int th_send(int fd, const void *buf, size_t n);
/* Reads until `needle` appears in what was read (or EOF/timeout); returns
 * bytes read (NUL-terminated in buf) or -1. */
ssize_t th_recv_until(int fd, char *buf, size_t cap, const char *needle, int timeout_ms);

int64_t th_now_ms(void);

/* th_connect with SO_RCVBUF set first (rcvbuf > 0): a client whose small
 * receive buffer keeps the kernel from hiding what a node queues. */
int th_connect_rcvbuf(int port, int rcvbuf);
/* Whether a line of node n's log (so far) contains needle. */
bool th_log_has(const struct th_node *n, const char *needle);

/* The classic paused client, as a forked child (never returns): takes the
 * lock `name` with a 300 ms lease on cloudsync port lock_port, writes its
 * token (uint64_t) to wfd, stops itself (SIGSTOP) and, once the parent
 * continues it past its lease, tries what a paused process would: renew
 * (must be refused, ENOLCK) and a fenced `set` of vuid_hex with its old
 * token on mempool port mp_port (must be refused, ESTALE).  Exits 0 iff
 * both were refused.  Raw sockets only: no libvirgo state shared across
 * fork.  lock_ms: how long the lock request may wait. */
void th_paused_lock_child(int wfd, int lock_port, int mp_port, const char *name,
			  const char *vuid_hex, int lock_ms) __attribute__((noreturn));

#endif
