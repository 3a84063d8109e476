/*
 * test_eventnet_graph.c - the causal graph's clocks and rules, and its files.
 *
 * Property test: random causal histories over 3 nodes (events at random
 * nodes, causes picked among all earlier events, remote ones carried by
 * the client's clock as libvirgo does): for every pair, a -> b (the
 * transitive closure of node order and causes) implies L(a) < L(b) and
 * V(a) < V(b), and a pair with no path either way is reported concurrent.
 * Then cycle refusal, conversation appends, why's causal order, the
 * bounds, and the journal: replay, a torn tail cut, the text files' exact
 * format.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/services/eventnet/eventnet_disk.h"
#include "../../src/services/eventnet/eventnet_graph.h"

#define S(x) ((struct evg_str){(x), strlen(x)})

#define NEV 240
#define NNODES 3

struct hist {
	struct evg g[NNODES];
	char id[NEV][16];
	int node[NEV]; /* 0..2 */
	uint32_t idx[NEV]; /* index in its node's graph */
	uint64_t anc[NEV][(NEV + 63) / 64]; /* ground truth ancestors */
	int n;
};

static bool hb(const struct hist *h, int a, int b)
{
	return (h->anc[b][a / 64] >> (a % 64)) & 1;
}

static const struct evg_event *ev_of(const struct hist *h, int i)
{
	return h->g[h->node[i]].ev[h->idx[i]];
}

static void run_history(struct hist *h, unsigned seed)
{
	srand(seed);
	memset(h, 0, sizeof *h);
	for (int k = 0; k < NNODES; k++)
		assert_int_equal(evg_init(&h->g[k], (uint16_t)(k + 1), 1u << 20, 1u << 28), 0);
	int last_at[NNODES] = {-1, -1, -1};
	for (int i = 0; i < NEV; i++) {
		int nd = rand() % NNODES;
		snprintf(h->id[i], sizeof h->id[i], "e%d", i);
		struct evg_str after[4];
		int causes[4], nc = 0;
		int want = i ? rand() % 4 : 0;
		struct evc clock = {0};
		uint64_t lam = 0;
		bool remote = false;
		for (int c = 0; c < want; c++) {
			int p = rand() % i;
			bool dup = false;
			for (int q = 0; q < nc; q++)
				dup |= causes[q] == p;
			if (dup)
				continue;
			causes[nc] = p;
			after[nc++] = S(h->id[p]);
			if (h->node[p] != nd) { /* the client carries the cause's clock */
				const struct evg_event *pe = ev_of(h, p);
				struct evc_ent pv[EVC_MAX];
				unsigned pn = evg_ev_clock(pe, pv);
				assert_int_equal(evc_merge_ents(&clock, pv, pn), 0);
				if (pe->lamport > lam)
					lam = pe->lamport;
				remote = true;
			}
		}
		struct evg_log_in in = {.id = S(h->id[i]), .after = after, .nafter = (unsigned)nc,
					.clock = remote ? &clock : NULL, .lamport = lam};
		struct evg_change ch;
		const char *why = NULL;
		int rc = evg_log(&h->g[nd], &in, &ch, &why);
		if (rc)
			fail_msg("log %s: %d %s", h->id[i], rc, why);
		assert_true(ch.created);
		h->node[i] = nd;
		h->idx[i] = ch.idx;
		/* ground truth: node order + causes, transitively */
		int preds[5], np = 0;
		if (last_at[nd] >= 0)
			preds[np++] = last_at[nd];
		for (int q = 0; q < nc; q++)
			preds[np++] = causes[q];
		for (int q = 0; q < np; q++) {
			int p = preds[q];
			for (size_t w = 0; w < sizeof h->anc[0] / 8; w++)
				h->anc[i][w] |= h->anc[p][w];
			h->anc[i][p / 64] |= UINT64_C(1) << (p % 64);
		}
		last_at[nd] = i;
		h->n++;
	}
}

static void clocks_match_causality_on_random_histories(void **state)
{
	(void)state;
	static struct hist h;
	uint64_t pairs = 0, concurrent = 0;
	for (unsigned seed = 1; seed <= 25; seed++) {
		run_history(&h, seed);
		for (int a = 0; a < h.n; a++) {
			for (int b = 0; b < h.n; b++) {
				if (a == b)
					continue;
				const struct evg_event *x = ev_of(&h, a), *y = ev_of(&h, b);
				enum evc_order o = evg_order(x, y);
				pairs++;
				if (hb(&h, a, b)) {
					if (x->lamport >= y->lamport || o != EVC_BEFORE)
						fail_msg("seed %u: %s -> %s but L %lu/%lu order %s", seed,
							 h.id[a], h.id[b], (unsigned long)x->lamport,
							 (unsigned long)y->lamport, evc_order_name(o));
				} else if (!hb(&h, b, a)) {
					concurrent++;
					if (o != EVC_CONCURRENT)
						fail_msg("seed %u: %s || %s but reported %s", seed, h.id[a],
							 h.id[b], evc_order_name(o));
				}
			}
		}
		/* why lists exactly the ancestors through causes, causally sorted */
		for (int i = 0; i < h.n; i += 17) {
			struct evg *g = &h.g[h.node[i]];
			uint32_t *anc;
			size_t n;
			char *remote, *evicted;
			assert_int_equal(evg_why(g, h.idx[i], &anc, &n, &remote, &evicted), 0);
			assert_null(evicted);
			for (size_t k = 1; k < n; k++)
				assert_true(g->ev[anc[k - 1]]->lamport <= g->ev[anc[k]]->lamport);
			for (size_t k = 0; k < n; k++) {
				const struct evg_event *e = g->ev[anc[k]];
				int j = atoi(evg_ev_id(e) + 1);
				assert_true(hb(&h, j, i));
			}
			free(anc);
			free(remote);
		}
		for (int k = 0; k < NNODES; k++)
			evg_free(&h.g[k]);
	}
	assert_true(concurrent > pairs / 20); /* the histories do have concurrency */
}

static const char *conv_of(const struct evg_event *e)
{
	size_t n;
	return evg_ev_conv(e, &n);
}

static int log_simple(struct evg *g, const char *id, const char *after, const char **why)
{
	struct evg_str a = after ? S(after) : (struct evg_str){0};
	struct evg_log_in in = {.id = S(id), .after = after ? &a : NULL, .nafter = after ? 1 : 0};
	struct evg_change ch;
	return evg_log(g, &in, &ch, why);
}

static void cycles_are_refused(void **state)
{
	(void)state;
	struct evg g;
	const char *why;
	assert_int_equal(evg_init(&g, 1, 1000, 1 << 24), 0);
	assert_int_equal(log_simple(&g, "a", NULL, &why), 0);
	assert_int_equal(log_simple(&g, "b", "a", &why), 0);
	assert_int_equal(log_simple(&g, "c", "b", &why), 0);
	struct evg_change ch[2];
	int nch;
	/* c -> a would close a -> b -> c -> a */
	assert_int_equal(evg_edge(&g, S("c"), S("a"), ch, &nch, &why), -ELOOP);
	assert_int_equal(nch, 0);
	assert_non_null(strstr(why, "cycle"));
	assert_int_equal(evg_edge(&g, S("a"), S("a"), ch, &nch, &why), -ELOOP);
	/* an effect recorded before its unknown cause */
	assert_int_equal(evg_edge(&g, S("zz"), S("a"), ch, &nch, &why), -ELOOP);
	assert_int_equal(evg_find(&g, "zz", 2), -1);
	/* a log naming a later event as the cause of an existing one */
	assert_int_equal(log_simple(&g, "a", "c", &why), -ELOOP);
	assert_int_equal(log_simple(&g, "a", "a", &why), -ELOOP);
	assert_int_equal(log_simple(&g, "d", "d", &why), -ELOOP);
	/* a consistent edge between recorded events is added once */
	assert_int_equal(evg_edge(&g, S("a"), S("c"), ch, &nch, &why), 0);
	assert_int_equal(nch, 1);
	assert_int_equal(ch[0].nadded, 1);
	assert_int_equal(evg_edge(&g, S("a"), S("c"), ch, &nch, &why), 0);
	assert_int_equal(ch[0].nadded, 0);
	/* edges create unknown endpoints: from before to */
	assert_int_equal(evg_edge(&g, S("x"), S("y"), ch, &nch, &why), 0);
	assert_int_equal(nch, 2);
	assert_true(g.ev[evg_find(&g, "x", 1)]->seq < g.ev[evg_find(&g, "y", 1)]->seq);
	/* an unknown cause needs the clock it was recorded with */
	assert_int_equal(log_simple(&g, "e", "elsewhere", &why), -ENOENT);
	struct evc foreign = {0};
	evc_set(&foreign, 2, 4);
	struct evg_str a = S("elsewhere");
	struct evg_log_in in = {.id = S("e"), .after = &a, .nafter = 1, .clock = &foreign,
				.lamport = 40};
	struct evg_change c1;
	assert_int_equal(evg_log(&g, &in, &c1, &why), 0);
	const struct evg_event *e = g.ev[c1.idx];
	assert_int_equal(e->lamport, 41);
	assert_string_equal(evg_ev_rparents(e), "elsewhere");
	/* a clock claiming events of this node it never recorded */
	evc_set(&foreign, 1, 999);
	in.id = S("f");
	assert_int_equal(evg_log(&g, &in, &c1, &why), -EINVAL);
	evg_free(&g);
}

static void conversations_append_and_bounds(void **state)
{
	(void)state;
	struct evg g;
	const char *why;
	assert_int_equal(evg_init(&g, 1, 1024, 1 << 24), 0);
	struct evg_log_in in = {.id = S("1"), .partakers = S("alice,bob"), .conv = S("(hello,hi)")};
	struct evg_change ch;
	assert_int_equal(evg_log(&g, &in, &ch, &why), 0);
	uint64_t seq = g.seq;
	in.conv = S("(bye,ciao)");
	assert_int_equal(evg_log(&g, &in, &ch, &why), 0);
	assert_false(ch.created);
	assert_true(ch.conv_appended);
	assert_string_equal(conv_of(g.ev[0]), "(hello,hi)#(bye,ciao)");
	assert_int_equal(g.seq, seq); /* the same vertex: no new event */
	/* max_events */
	char id[16];
	for (int i = 0; i < 1023; i++) {
		snprintf(id, sizeof id, "n%d", i);
		struct evg_log_in x = {.id = S(id)};
		assert_int_equal(evg_log(&g, &x, &ch, &why), 0);
	}
	/* every id is still found after the index grew */
	for (int i = 0; i < 1023; i++) {
		snprintf(id, sizeof id, "n%d", i);
		assert_int_equal(evg_find(&g, id, strlen(id)), i + 1);
	}
	/* at the bound the oldest eighth leaves memory (one chunk: exact) */
	struct evg_log_in x = {.id = S("over")};
	assert_int_equal(evg_log(&g, &x, &ch, &why), 0);
	assert_true(ch.created);
	assert_int_equal(g.base, 128);
	assert_int_equal(g.n, 1024 - 128 + 1);
	assert_int_equal(evg_find(&g, "over", 4), g.n - 1);
	assert_int_equal(ch.idx, g.n - 1);
	for (int i = 0; i < 1023; i++) {
		snprintf(id, sizeof id, "n%d", i);
		assert_int_equal(evg_find(&g, id, strlen(id)), i + 1 < 128 ? -1 : i + 1 - 128);
	}
	/* the one with an appended conversation left with it: kept for the file */
	struct evg_gone *gone;
	size_t ngone;
	evg_take_gone(&g, &gone, &ngone);
	assert_int_equal(ngone, 1);
	assert_int_equal(gone[0].ord, 0);
	assert_string_equal(gone[0].text + gone[0].id_n + 1 + gone[0].part_n + 1,
			    "(hello,hi)#(bye,ciao)");
	free(gone[0].text);
	free(gone);
	evg_free(&g);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Applies a change like the service: graph, then the files' lines. */
static void apply(struct evd *d, struct evg *g, const struct evg_change *ch, const char *conv)
{
	struct evd_buf j = {0}, v = {0}, e = {0};
	size_t cl = conv ? strlen(conv) : 0;
	evd_journal_change(&j, g->ev[ch->idx], ch, conv, cl, NULL, 0);
	evd_text_change(&v, &e, g->ev[ch->idx], ch, conv, cl);
	assert_int_equal(evd_append(d, &j, &v, &e), 0);
	assert_int_equal(j.n + v.n + e.n, 0);
	evd_buf_free(&j);
	evd_buf_free(&v);
	evd_buf_free(&e);
}

static void journal_replay_and_torn_tail(void **state)
{
	(void)state;
	char dir[] = "/tmp/virgo-evtest-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[600];
	struct evg g;
	struct evd d;
	char err[600];
	const char *why;
	assert_int_equal(evg_init(&g, 1, 1000, 1 << 24), 0);
	assert_int_equal(evd_open(&d, dir, &g, err, sizeof err), 0);
	/* a second node on the same directory is refused */
	struct evg g2;
	struct evd d2;
	assert_int_equal(evg_init(&g2, 2, 1000, 1 << 24), 0);
	assert_int_equal(evd_open(&d2, dir, &g2, err, sizeof err), -2);
	assert_non_null(strstr(err, "in use"));
	evg_free(&g2);

	struct evg_change ch, ch2[2];
	int nch;
	struct evg_log_in in = {.id = S("1"), .partakers = S("alice,bob"), .conv = S("(hello,hi)")};
	assert_int_equal(evg_log(&g, &in, &ch, &why), 0);
	apply(&d, &g, &ch, "(hello,hi)");
	assert_int_equal(evg_edge(&g, S("1"), S("2"), ch2, &nch, &why), 0);
	apply(&d, &g, &ch2[0], NULL);
	in.conv = S("(bye,ciao)");
	assert_int_equal(evg_log(&g, &in, &ch, &why), 0);
	apply(&d, &g, &ch, "(bye,ciao)");
	struct evd_buf vt = {0};
	evd_vertices_text(&vt, &g);
	assert_int_equal(evd_replace_vertices(&d, 0, NULL, 0, vt.p, vt.n), 0);
	evd_buf_free(&vt);
	assert_int_equal(evd_sync(&d), 0);
	snprintf(path, sizeof path, "%s/EventNetVertices.txt", dir);
	assert_string_equal(slurp(path), "1 - alice,bob - (hello,hi)#(bye,ciao)\n2 -  - \n");
	snprintf(path, sizeof path, "%s/EventNetEdges.txt", dir);
	assert_string_equal(slurp(path), "1,2\n");
	evd_close(&d);
	uint64_t lam = g.lamport;
	evg_free(&g);

	/* a crash mid-write: half a record at the end */
	snprintf(path, sizeof path, "%s/eventnet.journal", dir);
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "E 1 3 3 1:3 torn al", 19), 19);
	close(fd);
	snprintf(path, sizeof path, "%s/EventNetEdges.txt", dir);
	fd = open(path, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "1,to", 4), 4); /* torn too */
	close(fd);

	assert_int_equal(evg_init(&g, 1, 1000, 1 << 24), 0);
	assert_int_equal(evd_open(&d, dir, &g, err, sizeof err), 0);
	assert_int_equal(d.repaired_bytes, 19);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.lamport, lam);
	assert_int_equal(evg_find(&g, "torn", 4), -1);
	assert_string_equal(conv_of(g.ev[0]), "(hello,hi)#(bye,ciao)");
	assert_int_equal(evg_ev_nparents(g.ev[1]), 1);
	snprintf(path, sizeof path, "%s/EventNetEdges.txt", dir);
	assert_string_equal(slurp(path), "1,2\n");
	snprintf(path, sizeof path, "%s/EventNetVertices.txt", dir);
	assert_string_equal(slurp(path), "1 - alice,bob - (hello,hi)#(bye,ciao)\n2 -  - \n");
	/* the clock goes on from where it was */
	struct evg_log_in n3 = {.id = S("3")};
	assert_int_equal(evg_log(&g, &n3, &ch, &why), 0);
	assert_int_equal(g.ev[ch.idx]->seq, 3);
	evd_close(&d);
	evg_free(&g);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}


/* The id index grows without a whole-table rehash: while it grows, ids
 * are found in either table, and the old one is gone once copied.  Also
 * the compact records: a small event without causes or partakers takes
 * its 56-byte header, its id and conversation (its own clock entry is
 * implied by its seq). */
static void index_grows_incrementally(void **state)
{
	(void)state;
	struct evg g;
	const char *why;
	enum { N = 200000 };
	assert_int_equal(evg_init(&g, 1, N, UINT64_C(1) << 32), 0);
	assert_int_equal(sizeof(struct evg_event), 56);
	char id[16];
	bool seen_growing = false;
	uint32_t max_nold = 0;
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof id, "i%d", i);
		struct evg_log_in x = {.id = S(id), .conv = S("(abcdefghijklmnopqrstuvwxyz0123)")};
		struct evg_change ch;
		assert_int_equal(evg_log(&g, &x, &ch, &why), 0);
		if (g.old) {
			seen_growing = true;
			if (g.nold > max_nold)
				max_nold = g.nold;
			/* the earliest and the latest ids resolve mid-growth */
			assert_int_equal(evg_find(&g, "i0", 2), 0);
			assert_int_equal(evg_find(&g, id, strlen(id)), i);
			/* the load bound holds in the table being filled */
			assert_true((uint64_t)g.n * 2 <= g.nslot);
		}
	}
	assert_true(seen_growing);
	assert_true(max_nold >= 131072); /* it grew several times, incrementally */
	for (int i = 0; i < N; i += 997) {
		snprintf(id, sizeof id, "i%d", i);
		assert_int_equal(evg_find(&g, id, strlen(id)), i);
	}
	assert_int_equal(evg_find(&g, "nope", 4), -1);
	/* bytes per event (blocks, index, array): the old records took ~200 */
	uint64_t per = evg_bytes(&g) / N;
	print_message("bytes per 32-byte event: %" PRIu64 "\n", per);
	assert_true(per < 145);
	evg_free(&g);
}

/* The index's next table made ahead (outside the service's lock): it
 * is wanted once the index is seven sixteenths full, counted in evg_bytes
 * while it waits, and taken as is by the growth (no other allocation);
 * a second one is refused, and none is wanted when max_events keeps the
 * index from growing. */
static void index_spare_is_used(void **state)
{
	(void)state;
	struct evg g;
	const char *why;
	enum { N = 300000 };
	assert_int_equal(evg_init(&g, 1, N, UINT64_C(1) << 32), 0);
	char id[16];
	int made = 0, used = 0;
	uint64_t *waiting = NULL;
	for (int i = 0; i < N; i++) {
		uint32_t ns = evg_index_spare_wanted(&g);
		if (ns) {
			assert_int_equal(ns, g.nslot * 2);
			assert_true((uint64_t)g.n * 16 >= (uint64_t)g.nslot * 7);
			uint64_t *t = evg_index_table_new(ns);
			assert_non_null(t);
			uint64_t before = evg_bytes(&g);
			evg_give_index_spare(&g, t, ns);
			assert_int_equal(evg_bytes(&g), before + (uint64_t)ns * sizeof *t);
			assert_int_equal(evg_index_spare_wanted(&g), 0);
			/* one arriving second is freed, not kept */
			evg_give_index_spare(&g, evg_index_table_new(ns), ns);
			assert_ptr_equal(g.spare_slot, t);
			waiting = t;
			made++;
		}
		uint32_t nslot = g.nslot;
		snprintf(id, sizeof id, "s%d", i);
		struct evg_log_in x = {.id = S(id), .conv = S("(abc)")};
		struct evg_change ch;
		assert_int_equal(evg_log(&g, &x, &ch, &why), 0);
		if (g.nslot != nslot && waiting) {
			assert_ptr_equal(g.slot, waiting); /* the spare became the index */
			assert_null(g.spare_slot);
			waiting = NULL;
			used++;
		}
	}
	assert_true(made >= 2);
	assert_int_equal(used, made - (waiting ? 1 : 0));
	for (int i = 0; i < N; i += 991) {
		snprintf(id, sizeof id, "s%d", i);
		assert_int_equal(evg_find(&g, id, strlen(id)), i);
	}
	evg_free(&g);

	/* bounded below the next growth: no spare */
	assert_int_equal(evg_init(&g, 1, 100000, UINT64_C(1) << 32), 0);
	for (int i = 0; i < 100000; i++) {
		snprintf(id, sizeof id, "b%d", i);
		struct evg_log_in x = {.id = S(id)};
		struct evg_change ch;
		assert_int_equal(evg_log(&g, &x, &ch, &why), 0);
		if (g.nslot / 2 >= 100000)
			assert_int_equal(evg_index_spare_wanted(&g), 0);
	}
	evg_free(&g);
}

/* eventnet_max_bytes bounds what evg_bytes counts (events, index,
 * arrays): logging until it refuses stays within it and fills most of it;
 * interned partakers cost one copy. */
static void bytes_bound_holds(void **state)
{
	(void)state;
	struct evg g;
	const char *why = NULL;
	uint64_t max = 8u << 20;
	assert_int_equal(evg_init(&g, 1, 1u << 30, max), 0);
	char id[24];
	int rc = 0, i;
	/* three times what fits: every one taken, the oldest evicted */
	uint64_t most = 0;
	for (i = 0; i < 200000 && rc == 0; i++) {
		snprintf(id, sizeof id, "b%d", i);
		struct evg_log_in x = {.id = S(id), .partakers = S("node1,queue"),
				       .conv = S("(push,topic-0123456789abcdef)")};
		struct evg_change ch;
		rc = evg_log(&g, &x, &ch, &why);
		assert_true(evg_bytes(&g) <= max);
		if (g.n > most)
			most = g.n;
	}
	assert_int_equal(rc, 0);
	assert_true(most > 30000);
	assert_true(g.base > 100000);
	assert_int_equal(g.base + g.n, 200000);
	assert_true(evg_bytes(&g) > max / 2);
	assert_int_equal(evg_find(&g, "b199999", 7), g.n - 1);
	assert_int_equal(evg_find(&g, "b0", 2), -1);
	/* one interned copy of the partakers */
	assert_ptr_equal(g.ev[0]->partakers, g.ev[g.n - 1]->partakers);
	assert_string_equal(evg_ev_partakers(g.ev[1]), "node1,queue");
	/* appends that would cross the bound evict older events instead */
	static char big[4096];
	memset(big, 'x', sizeof big - 1);
	struct evg_change ch;
	uint64_t base = g.base;
	for (i = 199000; i < 199999; i++) { /* 64 KiB per event at most (E2BIG) */
		snprintf(id, sizeof id, "b%d", i);
		struct evg_log_in a = {.id = S(id), .conv = S(big)};
		while ((rc = evg_log(&g, &a, &ch, &why)) == 0)
			assert_true(evg_bytes(&g) <= max);
		if (rc != -E2BIG)
			break;
	}
	assert_int_equal(rc, -E2BIG);
	assert_true(g.base > base);
	/* a bound that cannot hold a chunk and the index refuses */
	evg_free(&g);
	assert_int_equal(evg_init(&g, 1, 1000, 4096), 0);
	struct evg_log_in t = {.id = S("t")};
	assert_int_equal(evg_log(&g, &t, &ch, &why), -ENOSPC);
	assert_non_null(strstr(why, "eventnet_max_bytes"));
	evg_free(&g);
}

/* Writes the graph's part of EventNetVertices.txt as the service does. */
static void rewrite(struct evd *d, struct evg *g)
{
	struct evd_buf vt = {0};
	struct evg_gone *gone;
	size_t ngone;
	evd_vertices_text(&vt, g);
	evg_take_gone(g, &gone, &ngone);
	assert_int_equal(evd_replace_vertices(d, g->base, gone, ngone, vt.p, vt.n), 0);
	for (size_t i = 0; i < ngone; i++)
		free(gone[i].text);
	free(gone);
	evd_buf_free(&vt);
}

/* The text files a chain of n events v0..v(n-1) should give (v10 with an
 * appended conversation), then extra. */
static void expect_files(const char *dir, int n, const char *extra)
{
	static char want[1 << 16], path[600];
	size_t o = 0;
	for (int i = 0; i < n; i++)
		o += (size_t)snprintf(want + o, sizeof want - o, "v%d -  - (c%d)%s\n", i, i,
				      i == 10 ? "#(more)" : "");
	snprintf(want + o, sizeof want - o, "%s", extra);
	snprintf(path, sizeof path, "%s/EventNetVertices.txt", dir);
	char *got = slurp(path);
	assert_string_equal(got, want);
	o = 0;
	for (int i = 1; i < n; i++)
		o += (size_t)snprintf(want + o, sizeof want - o, "v%d,v%d\n", i - 1, i);
	want[o] = '\0';
	snprintf(path, sizeof path, "%s/EventNetEdges.txt", dir);
	got = slurp(path);
	assert_string_equal(got, want);
}

/* A graph bounded at 64 events takes 300: the oldest leave memory,
 * the files keep every one (an appended conversation of an evicted event
 * too), why says where the history is truncated, a replay keeps the
 * newest within the bound and cuts nothing, an evicted id logged again
 * is a new event (a new line; replayed without a cut). */
static void eviction_keeps_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/virgo-evtest-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct evg g;
	struct evd d;
	char err[600], id[16], prev[16] = "", conv[16];
	const char *why;
	struct evg_change ch;
	assert_int_equal(evg_init(&g, 1, 64, 1 << 24), 0);
	assert_int_equal(evd_open(&d, dir, &g, err, sizeof err), 0);
	for (int i = 0; i < 300; i++) {
		snprintf(id, sizeof id, "v%d", i);
		snprintf(conv, sizeof conv, "(c%d)", i);
		struct evg_str a = S(prev);
		struct evg_log_in in = {.id = S(id), .conv = S(conv), .after = &a, .nafter = i > 0};
		assert_int_equal(evg_log(&g, &in, &ch, &why), 0);
		assert_true(ch.created);
		apply(&d, &g, &ch, conv);
		assert_true(g.n <= 64);
		if (i == 12) { /* v10, still in memory: a conversation appended */
			struct evg_log_in ap = {.id = S("v10"), .conv = S("(more)")};
			assert_int_equal(evg_log(&g, &ap, &ch, &why), 0);
			assert_true(ch.conv_appended);
			apply(&d, &g, &ch, "(more)");
		}
		if (i == 150)
			rewrite(&d, &g); /* v10 had left memory by then */
		snprintf(prev, sizeof prev, "%s", id);
	}
	rewrite(&d, &g);
	assert_int_equal(g.base + g.n, 300);
	assert_true(g.base >= 236);
	expect_files(dir, 300, "");
	/* why on the newest: its ancestors in memory, truncated at the oldest's cause */
	uint32_t *anc;
	size_t n;
	char *remote, *evicted;
	assert_int_equal(evg_why(&g, g.n - 1, &anc, &n, &remote, &evicted), 0);
	assert_int_equal(n, g.n - 1);
	assert_null(remote);
	snprintf(id, sizeof id, "v%" PRIu64, g.base - 1);
	assert_string_equal(evicted, id);
	free(anc);
	free(evicted);
	/* its cause by id, as before */
	char csv[64];
	evg_parents_csv(&g, g.ev[0], csv, sizeof csv);
	assert_string_equal(csv, id);
	assert_int_equal(evg_find(&g, "v0", 2), -1);
	/* the journal rotated every 64 events: 4 times */
	assert_int_equal(d.rotations, 4);
	char path[700];
	snprintf(path, sizeof path, "%s/eventnet.journal.192-191", dir);
	assert_int_equal(access(path, F_OK), 0);
	evd_close(&d);
	evg_free(&g);

	/* the replay keeps the newest, cuts nothing, leaves the files whole */
	assert_int_equal(evg_init(&g, 1, 64, 1 << 24), 0);
	assert_int_equal(evd_open(&d, dir, &g, err, sizeof err), 0);
	assert_int_equal(d.repaired_bytes, 0);
	assert_true(g.n <= 64 && g.n > 32);
	assert_int_equal(g.base + g.n, 300);
	assert_int_equal(evg_find(&g, "v299", 4), g.n - 1);
	/* only the newest rotated journal and the current one were read */
	assert_true(d.replayed <= 2 * (64 + 64) + 1);
	expect_files(dir, 300, "");
	/* an evicted id again: a new event, a new line */
	struct evg_log_in again = {.id = S("v0"), .conv = S("(again)")};
	assert_int_equal(evg_log(&g, &again, &ch, &why), 0);
	assert_true(ch.created);
	apply(&d, &g, &ch, "(again)");
	uint64_t seq = g.seq;
	evd_close(&d);
	evg_free(&g);
	assert_int_equal(evg_init(&g, 1, 64, 1 << 24), 0);
	assert_int_equal(evd_open(&d, dir, &g, err, sizeof err), 0);
	assert_int_equal(d.repaired_bytes, 0);
	assert_int_equal(g.seq, seq);
	assert_int_equal(evg_find(&g, "v0", 2), g.n - 1);
	expect_files(dir, 300, "v0 -  - (again)\n");
	evd_close(&d);
	evg_free(&g);
}

/* Edges at the bound: the second log of an edge may evict; both
 * changes still name their events (the first's index shifted). */
static void edges_at_the_bound(void **state)
{
	(void)state;
	struct evg g;
	const char *why;
	int evictions = 0;
	assert_int_equal(evg_init(&g, 1, 64, 1 << 24), 0);
	struct evg_change c1;
	struct evg_log_in odd = {.id = S("odd")}; /* so that the bound falls on a 'to' */
	assert_int_equal(evg_log(&g, &odd, &c1, &why), 0);
	for (int i = 0; i < 200; i++) {
		char from[16], to[16];
		snprintf(from, sizeof from, "ef%d", i);
		snprintf(to, sizeof to, "et%d", i);
		struct evg_change c2[2];
		int nch;
		uint64_t b = g.base;
		assert_int_equal(evg_edge(&g, S(from), S(to), c2, &nch, &why), 0);
		assert_int_equal(nch, 2);
		assert_string_equal(evg_ev_id(g.ev[c2[0].idx]), from);
		assert_string_equal(evg_ev_id(g.ev[c2[1].idx]), to);
		assert_int_equal(evg_ev_parent(g.ev[c2[1].idx], 0), c2[0].idx);
		evictions += g.base != b;
		assert_true(g.n <= 64);
	}
	assert_true(evictions > 5);
	evg_free(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(clocks_match_causality_on_random_histories),
		cmocka_unit_test(cycles_are_refused),
		cmocka_unit_test(conversations_append_and_bounds),
		cmocka_unit_test(journal_replay_and_torn_tail),
		cmocka_unit_test(index_grows_incrementally),
		cmocka_unit_test(index_spare_is_used),
		cmocka_unit_test(bytes_bound_holds),
		cmocka_unit_test(eviction_keeps_files),
		cmocka_unit_test(edges_at_the_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
