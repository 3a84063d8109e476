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

/* One node's ping, asked on a thread of its own (cli_fanout). */
struct ping_res {
	int rc;
	unsigned id;
	double us;
	char detail[512]; /* virgo_last_error() of a failed ping (the TLS or node's reason) */
};

static void ping_one(int i, void *arg)
{
	struct ping_res *r = (struct ping_res *)arg + i;
	r->rc = virgo_ping(i, &r->id, &r->us);
	if (r->rc)
		snprintf(r->detail, sizeof r->detail, "%s", virgo_last_error());
}

int cmd_ping(int argc, char **argv)
{
	(void)argv;
	if (argc != 1)
		return cli_usage("ping", "takes no arguments");
	int n = virgo_node_count(), down = 0;
	if (n < 0)
		return cli_fail("config", n);
	struct ping_res *res = calloc((size_t)n + 1, sizeof *res);
	if (!res)
		return cli_fail("ping", -ENOMEM);
	cli_fanout(n, ping_one, res);
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		struct ping_res *r = &res[i];
		if (r->rc == -EPROTO) {
			printf("node %u %s+%d: answers as node %u (check virgo_client.conf)\n", ni.id,
			       ni.host, ni.port_offset, r->id);
			down++;
		} else if (r->rc) {
			printf("node %u %s+%d: DOWN (%s)\n", ni.id, ni.host, ni.port_offset,
			       r->detail[0] ? r->detail : virgo_strerror(r->rc));
			down++;
		} else {
			printf("node %u %s+%d: up, %.0f us\n", ni.id, ni.host, ni.port_offset, r->us);
		}
	}
	free(res);
	return down ? 1 : 0;
}

/* Base ports of the services (README's table); a node adds port_offset. */
enum { STATUS_MEMPOOL_PORT = 30000, STATUS_CPUPOOL_PORT = 10000, STATUS_MEMCACHE_PORT = 11211 };

/* The value of "<key> <n>" in a stats text ("name value" lines): 1 with
 * *v set, or 0 when the node does not report that key. */
static int status_stat(const char *text, const char *key, unsigned long long *v)
{
	size_t kl = strlen(key);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ' && sscanf(l + kl + 1, "%llu", v) == 1)
			return 1;
	return 0;
}

/* Bytes in human units (powers of 1024): "512", "1.5K", "64M", "2.0G". */
static const char *status_human(unsigned long long v, char *buf, size_t cap)
{
	static const char units[] = "KMGTPE";
	if (v < 1024) {
		snprintf(buf, cap, "%llu", v);
		return buf;
	}
	double d = (double)v;
	int u = -1;
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(buf, cap, d < 10 ? "%.1f%c" : "%.0f%c", d, units[u]);
	return buf;
}

/* s as a JSON string (quotes, backslashes and control bytes escaped). */
static void status_json_str(const char *s)
{
	putchar('"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else
			putchar(*p);
	}
	putchar('"');
}

/* The pool keys of the mempool stats reply that status shows; a node
 * that does not report one leaves it out. */
static const char *const status_pool_keys[] = {"allocations", "bytes",	      "accounted_bytes",
					       "limit",	      "cache_bytes", "live_bytes",
					       "resident_bytes", "leased"};

/* The word after "<key> " in a stats text, into buf ("" if absent). */
static const char *status_word(const char *text, const char *key, char *buf, size_t cap)
{
	size_t kl = strlen(key);
	buf[0] = '\0';
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (strncmp(l, key, kl) == 0 && l[kl] == ' ') {
			size_t n = strcspn(l + kl + 1, " \n");
			snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), l + kl + 1);
			break;
		}
	return buf;
}

/* What status asks each node, each on a thread of its own (cli_fanout):
 * the mempool's stats, the cpupool's load, the memcache port's stats. */
enum { ST_MEMPOOL, ST_LOAD, ST_MEMCACHE, ST_QUERIES };
struct status_res {
	int rc, lrc, mrc;
	char *text, *mtext; /* malloc'd stats texts */
	struct virgo_load ld;
	char detail[512], ldetail[512]; /* virgo_last_error() of the failed calls */
};

static void status_one(int i, void *arg)
{
	struct status_res *r = (struct status_res *)arg + i / ST_QUERIES;
	int node = i / ST_QUERIES;
	switch (i % ST_QUERIES) {
	case ST_MEMPOOL:
		r->rc = virgo_mempool_stats(node, &r->text);
		if (r->rc)
			snprintf(r->detail, sizeof r->detail, "%s", virgo_last_error());
		break;
	case ST_LOAD:
		r->lrc = virgo_load(node, &r->ld);
		if (r->lrc)
			snprintf(r->ldetail, sizeof r->ldetail, "%s", virgo_last_error());
		break;
	default: r->mrc = virgo_memcache_stats(node, &r->mtext); break;
	}
}

/* The node's sentence for a node that answered neither service. */
static const char *status_why(const struct status_res *r)
{
	if (r->detail[0])
		return r->detail;
	if (r->ldetail[0])
		return r->ldetail;
	return virgo_strerror(r->rc ? r->rc : r->lrc);
}

/* The memcache port's cache figures: hits, misses, evictions, items;
 * 0 when the node did not answer them. */
struct status_mc {
	unsigned long long hits, misses, evictions, items;
};

static int status_mc(const struct status_res *r, struct status_mc *m)
{
	if (r->mrc || !r->mtext)
		return 0;
	memset(m, 0, sizeof *m);
	return status_stat(r->mtext, "get_hits", &m->hits) &&
	       status_stat(r->mtext, "get_misses", &m->misses) &&
	       (status_stat(r->mtext, "evictions", &m->evictions), 1) &&
	       (status_stat(r->mtext, "curr_items", &m->items), 1);
}

static void status_json_node(const struct virgo_node_info *ni, int first,
			     const struct status_res *r)
{
	int rc = r->rc, lrc = r->lrc;
	const char *text = r->text;
	const struct virgo_load *ld = &r->ld;
	printf("%s\n    {\"id\": %u, \"host\": ", first ? "" : ",", ni->id);
	status_json_str(ni->host);
	printf(", \"port_offset\": %d, \"address\": ", ni->port_offset);
	char addr[128];
	snprintf(addr, sizeof addr, "%s:%d", ni->host, STATUS_MEMPOOL_PORT + ni->port_offset);
	status_json_str(addr);
	printf(", \"ports\": {\"mempool\": %d, \"cpupool\": %d, \"memcache\": %d}",
	       STATUS_MEMPOOL_PORT + ni->port_offset, STATUS_CPUPOOL_PORT + ni->port_offset,
	       STATUS_MEMCACHE_PORT + ni->port_offset);
	printf(", \"state\": \"%s\"", rc && lrc ? "down" : "up");
	if (rc && lrc) {
		printf(", \"error\": ");
		status_json_str(status_why(r));
	}
	if (lrc == 0)
		printf(", \"cores\": %d, \"load1\": %.2f, \"load5\": %.2f, \"load15\": %.2f, "
		       "\"running\": %d, \"workers\": %d, \"queued\": %d, \"queue_max\": %d, "
		       "\"jobs_done\": %llu, \"jobs_failed\": %llu, \"jobs_rejected\": %llu, "
		       "\"mem_free\": %llu, \"mem_total\": %llu",
		       ld->cores, ld->load1, ld->load5, ld->load15, ld->running, ld->workers,
		       ld->queued, ld->queue_max, (unsigned long long)ld->jobs_done,
		       (unsigned long long)ld->jobs_failed, (unsigned long long)ld->jobs_rejected,
		       (unsigned long long)ld->mem_free, (unsigned long long)ld->mem_total);
	if (rc == 0) {
		printf(", \"pool\": {");
		int n = 0;
		for (size_t k = 0; k < sizeof status_pool_keys / sizeof *status_pool_keys; k++) {
			unsigned long long v;
			if (status_stat(text, status_pool_keys[k], &v))
				printf("%s\"%s\": %llu", n++ ? ", " : "", status_pool_keys[k], v);
		}
		printf("}");
		/* the node's security layer: TLS, and whether kTLS offload is active */
		static const char *const sec[] = {"tls", "tls_client_certs", "ktls", "ktls_note"};
		for (size_t k = 0; k < sizeof sec / sizeof *sec; k++) {
			char w[64];
			if (*status_word(text, sec[k], w, sizeof w)) {
				printf(", \"%s\": ", sec[k]);
				status_json_str(w);
			}
		}
	}
	struct status_mc m;
	if (status_mc(r, &m)) {
		printf(", \"memcache\": {\"items\": %llu, \"get_hits\": %llu, "
		       "\"get_misses\": %llu, \"evictions\": %llu, \"hit_rate\": ",
		       m.items, m.hits, m.misses, m.evictions);
		if (m.hits + m.misses)
			printf("%.4f}", (double)m.hits / (double)(m.hits + m.misses));
		else
			printf("null}");
	}
	printf("}");
}

#define STATUS_FMT                                                                          \
	"%-5s %-21s %-5s %-5s %-6s %-11s %-10s %-6s %-7s %-13s %-6s %-7s %-5s %-6s %-13s %-7s %s\n"

static void status_table_node(const struct virgo_node_info *ni, const struct status_res *r)
{
	int rc = r->rc, lrc = r->lrc;
	const char *text = r->text;
	const struct virgo_load *ld = &r->ld;
	char id[16], addr[96];
	snprintf(id, sizeof id, "%u", ni->id);
	snprintf(addr, sizeof addr, "%s:%d", ni->host, STATUS_MEMPOOL_PORT + ni->port_offset);
	if (rc && lrc) {
		printf("%-5s %-21s %-5s %s\n", id, addr, "DOWN", status_why(r));
		return;
	}
	char rw[32] = "-", q[32] = "-", done[32] = "-", cores[16] = "-", l1[16] = "-", mf[16] = "-";
	if (lrc == 0) {
		snprintf(rw, sizeof rw, "%d/%d", ld->running, ld->workers);
		snprintf(q, sizeof q, "%d/%d", ld->queued, ld->queue_max);
		snprintf(done, sizeof done, "%llu", (unsigned long long)ld->jobs_done);
		snprintf(cores, sizeof cores, "%d", ld->cores);
		snprintf(l1, sizeof l1, "%.2f", ld->load1);
		status_human(ld->mem_free, mf, sizeof mf);
	}
	char allocs[32] = "-", pin[40] = "-", cache[16] = "-", lr[40] = "-", tls[16] = "-";
	unsigned long long a, b, c2;
	char h1[16], h2[16];
	if (rc == 0) {
		if (status_stat(text, "allocations", &a))
			snprintf(allocs, sizeof allocs, "%llu", a);
		if (!status_stat(text, "accounted_bytes", &a) && !status_stat(text, "bytes", &a))
			a = 0;
		if (status_stat(text, "limit", &b))
			snprintf(pin, sizeof pin, "%s/%s", status_human(a, h1, sizeof h1),
				 status_human(b, h2, sizeof h2));
		else
			status_human(a, pin, sizeof pin);
		if (status_stat(text, "cache_bytes", &c2))
			status_human(c2, cache, sizeof cache);
		if (status_stat(text, "live_bytes", &a) && status_stat(text, "resident_bytes", &b))
			snprintf(lr, sizeof lr, "%s/%s", status_human(a, h1, sizeof h1),
				 status_human(b, h2, sizeof h2));
		/* off, on (user-space TLS) or ktls (kernel offload active) */
		char w[16];
		if (*status_word(text, "tls", w, sizeof w))
			snprintf(tls, sizeof tls, "%s",
				 strcmp(w, "on") != 0 ? w
				 : strcmp(status_word(text, "ktls", w, sizeof w), "active") == 0 ? "ktls"
												  : "on");
	}
	char items[24] = "-", hit[16] = "-", ev[24] = "-";
	struct status_mc m;
	if (status_mc(r, &m)) {
		snprintf(items, sizeof items, "%llu", m.items);
		snprintf(ev, sizeof ev, "%llu", m.evictions);
		if (m.hits + m.misses)
			snprintf(hit, sizeof hit, "%.0f%%",
				 100.0 * (double)m.hits / (double)(m.hits + m.misses));
	}
	printf(STATUS_FMT, id, addr, "up", cores, l1, rw, q, done, allocs, pin, cache, items, hit,
	       ev, lr, mf, tls);
}

int cmd_status(int argc, char **argv)
{
	int json = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else
			return cli_usage("status", "unknown argument '%s' (only --json)", argv[i]);
	}
	int n = virgo_node_count(), down = 0;
	if (n < 0)
		return cli_fail("config", n);
	struct status_res *res = calloc((size_t)n + 1, sizeof *res);
	if (!res)
		return cli_fail("status", -ENOMEM);
	/* every node and service at once: a hung node costs one timeout */
	cli_fanout(n * ST_QUERIES, status_one, res);
	if (json)
		printf("{\"nodes\": [");
	else
		printf(STATUS_FMT, "NODE", "ADDRESS", "STATE", "CORES", "LOAD1", "RUN/WORKERS",
		       "QUEUED/MAX", "JOBS", "ALLOCS", "PINNED/LIMIT", "CACHE", "ITEMS", "HIT%",
		       "EVICT", "LIVE/RES", "MEMFREE", "TLS");
	for (int i = 0; i < n; i++) {
		struct virgo_node_info ni;
		virgo_node_info(i, &ni);
		struct status_res *r = &res[i];
		down += r->rc && r->lrc;
		if (json)
			status_json_node(&ni, i == 0, r);
		else
			status_table_node(&ni, r);
		free(r->text);
		free(r->mtext);
	}
	free(res);
	if (json)
		printf("\n  ],\n  \"down\": %d\n}\n", down);
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
