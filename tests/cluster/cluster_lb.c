/*
 * cluster_lb.c - one libvirgo process for tests/cluster/netns_cluster.sh:
 * the balancer's view of the cluster needs one long-lived client (each
 * `virgo` command is a new process with a fresh back-off table).
 *
 *   cluster_lb malloc N [SPACING_MS [AT CMD]]
 *       N allocations (set + get + free each), SPACING_MS apart; before
 *       the AT-th, runs the shell command CMD (the script's "restore the
 *       link" while this client's back-off state lives on).  Prints
 *       "node1=.. node2=.. node3=.. failed=.. max_ms=.." for the calls
 *       before AT ("before"), and for the last third ("last"), or for all
 *       ("all") without AT; max_ms: the slowest malloc.
 *   cluster_lb run N       N virgo_run of echo, the same counts
 *   cluster_lb clone N     N virgo_clone of the built-in virgo_cloud_test
 *
 * Exit 0 when every call succeeded, 1 otherwise.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "virgo.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "malloc") && strcmp(argv[1], "run") &&
			 strcmp(argv[1], "clone"))) {
		fprintf(stderr, "usage: cluster_lb malloc|run|clone N [SPACING_MS [AT CMD]]\n");
		return 2;
	}
	int n = atoi(argv[2]), failed = 0;
	int spacing = argc > 3 ? atoi(argv[3]) : 0;
	int at = argc > 5 ? atoi(argv[4]) : -1;
	const char *cmd = argc > 5 ? argv[5] : NULL;
	long per[8] = {0}, last[8] = {0};
	int64_t worst = 0;
	if (virgo_init(NULL) != 0) {
		fprintf(stderr, "cluster_lb: %s\n", virgo_last_error());
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if (i == at) {
			printf("before node1=%ld node2=%ld node3=%ld failed=%d max_ms=%lld\n", per[1],
			       per[2], per[3], failed, (long long)worst);
			fflush(stdout);
			if (system(cmd) != 0)
				fprintf(stderr, "cluster_lb: '%s' failed\n", cmd);
		}
		if (i > 0 && spacing > 0) {
			struct timespec ts = {spacing / 1000, (long)(spacing % 1000) * 1000000};
			nanosleep(&ts, NULL);
		}
		int64_t t0 = now_ms();
		if (strcmp(argv[1], "malloc") == 0) {
			virgo_vuid_t v;
			int rc = virgo_malloc(32, &v);
			int64_t dt = now_ms() - t0;
			if (dt > worst)
				worst = dt;
			void *got = NULL;
			size_t len = 0;
			if (rc == 0)
				rc = virgo_set(v, "cluster-check", 13);
			if (rc == 0)
				rc = virgo_get(v, &got, &len);
			if (rc == 0 && (len != 13 || memcmp(got, "cluster-check", 13) != 0))
				rc = -1;
			free(got);
			if (rc == 0)
				rc = virgo_free(v);
			if (rc != 0) {
				fprintf(stderr, "cluster_lb: %s\n", virgo_last_error());
				failed++;
				continue;
			}
			unsigned node = (unsigned)(v >> 48);
			per[node < 8 ? node : 0]++;
			if (i >= n - n / 3)
				last[node < 8 ? node : 0]++;
		} else if (strcmp(argv[1], "clone") == 0) {
			void *res = NULL;
			size_t len = 0;
			unsigned node = 0;
			int rc = virgo_clone_ex("virgo_cloud_test", "over tls", 8, NULL, &res, &len,
						&node);
			int64_t dt = now_ms() - t0;
			if (dt > worst)
				worst = dt;
			if (rc != 0 || len < 8 || !memmem(res, len, "over tls", 8)) {
				fprintf(stderr, "cluster_lb: clone: %s\n", virgo_last_error());
				failed++;
			} else {
				per[node < 8 ? node : 0]++;
				if (i >= n - n / 3)
					last[node < 8 ? node : 0]++;
			}
			free(res);
		} else {
			const char *const av[] = {"echo", "hello", NULL};
			struct virgo_run_result res;
			memset(&res, 0, sizeof res);
			int rc = virgo_run(av, &res);
			int64_t dt = now_ms() - t0;
			if (dt > worst)
				worst = dt;
			if (rc != 0 || res.exit_code != 0 || !res.out ||
			    strncmp((const char *)res.out, "hello", 5) != 0) {
				fprintf(stderr, "cluster_lb: run: %s\n", virgo_last_error());
				failed++;
			} else {
				per[res.node_id < 8 ? res.node_id : 0]++;
				if (i >= n - n / 3)
					last[res.node_id < 8 ? res.node_id : 0]++;
			}
			virgo_run_result_free(&res);
		}
	}
	if (at >= 0)
		printf("last node1=%ld node2=%ld node3=%ld failed=%d\n", last[1], last[2], last[3],
		       failed);
	else
		printf("all node1=%ld node2=%ld node3=%ld failed=%d max_ms=%lld\n", per[1], per[2],
		       per[3], failed, (long long)worst);
	virgo_fini();
	return failed ? 1 : 0;
}
