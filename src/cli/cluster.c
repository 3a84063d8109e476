/*
 * cluster.c - virgo ping/status/stats/owner: the cluster as the client
 * configuration describes it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cmd_ping(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return cli_usage("ping", "takes no arguments");
	int n = virgo_node_count(), down = 0;
	if (n < 0)
		return cli_fail("config", n);
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		unsigned id;
		double us;
		int rc = virgo_ping(i, &id, &us);
		if (rc) {
			printf("node %u %s+%d: DOWN (%s)\n", ni.id, ni.host, ni.port_offset,
			       virgo_strerror(rc));
			down++;
		} else if (id != ni.id) {
			printf("node %u %s+%d: answers as node %u (check virgo_client.conf)\n", ni.id,
			       ni.host, ni.port_offset, id);
			down++;
		} else {
			printf("node %u %s+%d: up, %.0f us\n", ni.id, ni.host, ni.port_offset, us);
		}
	}
	return down ? 1 : 0;
}

int cmd_status(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return cli_usage("status", "takes no arguments");
	int n = virgo_node_count(), down = 0;
	if (n < 0)
		return cli_fail("config", n);
	printf("%-5s %-16s %-6s %-5s %-6s %-11s %-10s %-8s %-7s %-11s %s\n", "NODE", "HOST",
	       "STATE", "CORES", "LOAD1", "RUN/WORKERS", "QUEUED/MAX", "JOBS", "ALLOCS", "BYTES",
	       "MEMFREE");
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		char *text = NULL;
		int rc = virgo_mempool_stats(i, &text);
		unsigned long long allocs = 0, bytes = 0;
		for (char *l = text; rc == 0 && l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
			sscanf(l, "allocations %llu", &allocs);
			sscanf(l, "bytes %llu", &bytes);
		}
		free(text);
		struct virgo_load ld;
		int lrc = virgo_load(i, &ld);
		if (rc && lrc) {
			printf("%-5u %-16s %-6s %s\n", ni.id, ni.host, "DOWN", virgo_strerror(lrc));
			down++;
			continue;
		}
		char rw[32] = "-", q[32] = "-", done[32] = "-", cores[16] = "-", l1[16] = "-",
		     mf[32] = "-";
		if (lrc == 0) {
			snprintf(rw, sizeof rw, "%d/%d", ld.running, ld.workers);
			snprintf(q, sizeof q, "%d/%d", ld.queued, ld.queue_max);
			snprintf(done, sizeof done, "%llu", (unsigned long long)ld.jobs_done);
			snprintf(cores, sizeof cores, "%d", ld.cores);
			snprintf(l1, sizeof l1, "%.2f", ld.load1);
			snprintf(mf, sizeof mf, "%lluM", (unsigned long long)(ld.mem_free >> 20));
		}
		printf("%-5u %-16s %-6s %-5s %-6s %-11s %-10s %-8s %-7llu %-11llu %s\n", ni.id, ni.host,
		       "up", cores, l1, rw, q, done, allocs, bytes, mf);
	}
	return down ? 1 : 0;
}

/* One line per key: "<key> node <id> <host>:<memcache port>". */
int cmd_owner(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("owner", "wants at least one key");
	for (int i = 1; i < argc; i++) {
		size_t kl = strlen(argv[i]);
		if (kl == 0 || kl > 250)
			return cli_usage("owner", "a memcached key is 1..250 bytes, not %zu", kl);
	}
	for (int i = 1; i < argc; i++) {
		int idx = virgo_key_owner(argv[i], strlen(argv[i]));
		if (idx < 0)
			return cli_fail(argv[i], idx);
		struct virgo_node_info ni;
		virgo_node_info(idx, &ni);
		printf("%s node %u %s:%d\n", argv[i], ni.id, ni.host, 11211 + ni.port_offset);
	}
	return 0;
}

int cmd_stats(int argc, char **argv)
{
	if (argc > 2)
		return cli_usage("stats", "wants at most one node id");
	unsigned long want = 0;
	if (argc == 2 && cli_parse_uint("stats", strncmp(argv[1], "node", 4) == 0 ? argv[1] + 4 : argv[1], 1, 65535, &want))
		return 2;
	int n = virgo_node_count(), shown = 0, bad = 0;
	if (n < 0)
		return cli_fail("config", n);
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		if (argc == 2 && want != ni.id)
			continue;
		shown++;
		char *text = NULL;
		int rc = virgo_mempool_stats(i, &text);
		printf("# node %u (%s+%d)\n", ni.id, ni.host, ni.port_offset);
		if (rc) {
			printf("error %s\n", virgo_strerror(rc));
			bad++;
		} else {
			fputs(text, stdout);
		}
		free(text);
	}
	if (!shown) {
		fprintf(stderr, "virgo: no node %s in the client config\n", argv[1]);
		return 1;
	}
	return bad ? 1 : 0;
}
