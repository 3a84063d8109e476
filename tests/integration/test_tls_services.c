/*
 * test_tls_services.c - the services with their own connections in
 * libvirgo (cloudsync locks, EventNet, kernel analytics) against nodes
 * that require TLS or a token, through libvirgo and through the CLI.
 *
 * Two clusters of two nodes: one with mutual TLS (certificates made at
 * run time by certgen.c), one plain TCP with an auth_token.  On both:
 * lock, renew and unlock (and a second lock reusing the pooled
 * connection); EventNet log on each node, `why` merging the two nodes'
 * histories, and tail; analytics set, get and a watch that sees a change.
 * The same through the `virgo` command.  A wrong or missing token, and a
 * client without TLS, are refused with an error that says why -- for
 * each of the three services, and a watch does not retry for ever.
 * A node at its connection limit on a TLS port (the memcached port with
 * memcache_tls) refuses with a TLS alert, never a plain-text line.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/cli/certgen.h"
#include "../harness.h"
#include "virgo.h"

#define TOKEN "svc-token-0123456789abcdef"

static struct th_cluster tls_c, tok_c, busy_c;
static char dir[300], certs[300];
static char virgo[700];
static char out[16384];

/* A client config file for cluster c with extra lines; node_first: the
 * index listed first (so the EventNet home node can be chosen). */
static const char *conf_for(const char *name, const struct th_cluster *c, int first,
			    const char *extra)
{
	static char path[6][400];
	static int slot;
	char *p = path[slot++ % 6];
	snprintf(p, 400, "%s/%s.conf", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	for (int k = 0; k < c->n; k++) {
		int i = (first + k) % c->n;
		fprintf(f, "node = %u 127.0.0.1 %d\n", c->nodes[i].id, c->nodes[i].offset);
	}
	fprintf(f, "timeout_ms = 3000\nconnect_timeout_ms = 1000\nbackoff_ms = 50\n"
		   "backoff_max_ms = 200\n%s\n",
		extra ? extra : "");
	fclose(f);
	return p;
}

static char tls_extra[1200];

static int group_setup(void **state)
{
	(void)state;
	char err[512] = "";
	snprintf(dir, sizeof dir, "%s", th_tmpdir());
	snprintf(certs, sizeof certs, "%s/certs", dir);
	snprintf(virgo, sizeof virgo, "%s", th_virgo_cli());
	if (certgen_ca(certs, "svc CA", 2, err, sizeof err) ||
	    certgen_issue(certs, "node", CERTGEN_NODE, "127.0.0.1", -60, 86400, err, sizeof err) ||
	    certgen_issue(certs, "alice", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err)) {
		fprintf(stderr, "certgen: %s\n", err);
		return -1;
	}
	char node[1200];
	snprintf(node, sizeof node, "tls_cert = %s/node.pem\ntls_key = %s/node.key\ntls_ca = %s/ca.pem\n",
		 certs, certs, certs);
	snprintf(tls_extra, sizeof tls_extra,
		 "tls_ca = %s/ca.pem\ntls_cert = %s/alice.pem\ntls_key = %s/alice.key", certs, certs,
		 certs);
	if (th_cluster_start(&tls_c, 2, node, tls_extra) != 0)
		return -1;
	if (th_cluster_start(&tok_c, 2, "auth_token = " TOKEN "\n", "auth_token = " TOKEN "\n") != 0)
		return -1;
	char busy[1400];
	snprintf(busy, sizeof busy, "%smemcache_tls = yes\nmemcache_max_connections = 1\n", node);
	char busy_client[1300];
	snprintf(busy_client, sizeof busy_client, "%s\nmemcache_tls = yes", tls_extra);
	if (th_cluster_start(&busy_c, 1, busy, busy_client) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	virgo_fini();
	int a = th_cluster_stop(&tls_c);
	int b = th_cluster_stop(&tok_c);
	int d = th_cluster_stop(&busy_c);
	return a || b || d ? -1 : 0;
}

static void use(const char *conf)
{
	virgo_fini();
	assert_int_equal(virgo_init(conf), 0);
}

/* ---- locks ------------------------------------------------------------ */

static void locks_work(void)
{
	virgo_lock_t *l = NULL;
	struct virgo_lock_opts o = {.ttl_ms = 5000};
	assert_int_equal(virgo_lock("svc/lock-a", &o, &l), 0);
	assert_true(virgo_lock_token(l) > 0);
	/* held: another handle cannot take it */
	virgo_lock_t *l2 = NULL;
	assert_int_equal(virgo_trylock("svc/lock-a", &o, &l2), -EBUSY);
	assert_int_equal(virgo_lock_renew(l), 0);
	assert_true(virgo_lock_left_ms(l) > 4000);
	assert_int_equal(virgo_unlock(l), 0);
	/* again, on the connection the unlock gave back to the pool */
	assert_int_equal(virgo_trylock("svc/lock-a", &o, &l2), 0);
	assert_int_equal(virgo_unlock(l2), 0);
	/* a lock whose home is the other node */
	char name[64];
	int home0 = virgo_lock_home("svc/lock-a");
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof name, "svc/lock-%d", i);
		if (virgo_lock_home(name) != home0)
			break;
	}
	assert_int_not_equal(virgo_lock_home(name), home0);
	assert_int_equal(virgo_lock(name, &o, &l), 0);
	assert_int_equal(virgo_unlock(l), 0);
}

static void test_lock_tls(void **state)
{
	(void)state;
	use(tls_c.client_conf);
	locks_work();
}

static void test_lock_token(void **state)
{
	(void)state;
	use(tok_c.client_conf);
	locks_work();
}

/* ---- EventNet ---------------------------------------------------------- */

struct tail_arg {
	const char *want; /* an id prefix */
	int seen;
};

static int tail_cb(const struct virgo_event *ev, void *arg)
{
	struct tail_arg *t = arg;
	if (strncmp(ev->id, t->want, strlen(t->want)) == 0) {
		t->seen = 1;
		return 1;
	}
	return 0;
}

static void *tail_main(void *arg)
{
	intptr_t rc = virgo_eventnet_tail(tail_cb, arg);
	return (void *)rc;
}

/* A config whose EventNet home (getpid() % 2) is node index `node`. */
static const char *home_conf(const char *name, const struct th_cluster *c, int node,
			     const char *extra)
{
	int first = (node - (int)(getpid() % 2) + 2) % 2;
	return conf_for(name, c, first, extra);
}

static void eventnet_works(const struct th_cluster *c, const char *tag, const char *extra)
{
	char a[64], b[64], d[64];
	snprintf(a, sizeof a, "%s-order", tag);
	snprintf(b, sizeof b, "%s-pay", tag);
	snprintf(d, sizeof d, "%s-ship", tag);
	/* a on node 1, b after it on node 2: why(b) merges both nodes */
	use(home_conf("ev1", c, 0, extra));
	assert_int_equal(virgo_eventnet_log(a, "shop", "ordered", NULL), 0);
	assert_int_equal(virgo_eventnet_flush(5000), 0);
	use(home_conf("ev2", c, 1, extra));
	assert_int_equal(virgo_eventnet_log(b, "bank", "paid", a), 0);
	assert_int_equal(virgo_eventnet_flush(5000), 0);
	struct virgo_event *evs = NULL;
	size_t n = 0;
	assert_int_equal(virgo_eventnet_why(b, &evs, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(evs[0].id, a);
	assert_string_equal(evs[1].id, b);
	assert_int_equal(evs[0].node, c->nodes[0].id);
	assert_int_equal(evs[1].node, c->nodes[1].id);
	virgo_events_free(evs, n);
	assert_int_equal(virgo_eventnet_before(a, b), VIRGO_EV_BEFORE);
	/* tail over every node sees an event logged after it started */
	struct tail_arg t = {d, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, tail_main, &t), 0);
	int64_t deadline = th_now_ms() + 10000;
	for (int i = 0; !t.seen && th_now_ms() < deadline; i++) {
		/* the tail may not be subscribed yet: log another until it
		 * sees one */
		char di[80];
		snprintf(di, sizeof di, "%s-%d", d, i);
		assert_int_equal(virgo_eventnet_log(di, NULL, "shipped", b), 0);
		assert_int_equal(virgo_eventnet_flush(5000), 0);
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(t.seen, 1); /* (a failure leaves the thread behind) */
	void *rc;
	pthread_join(th, &rc);
	assert_int_equal((intptr_t)rc, 0);
}

static void test_eventnet_tls(void **state)
{
	(void)state;
	eventnet_works(&tls_c, "tls", tls_extra);
}

static void test_eventnet_token(void **state)
{
	(void)state;
	eventnet_works(&tok_c, "tok", "auth_token = " TOKEN);
}

/* ---- analytics --------------------------------------------------------- */

struct watch_arg {
	int idx;
	uint64_t from;
	int rc, seen;
};

static int watch_cb(void *arg, uint64_t rev, const char *key, const char *value)
{
	struct watch_arg *w = arg;
	(void)rev;
	if (strcmp(key, "svc.watched") == 0 && strcmp(value, "2") == 0) {
		w->seen = 1;
		return 1;
	}
	return 0;
}

static void *watch_main(void *arg)
{
	struct watch_arg *w = arg;
	w->rc = virgo_analytics_watch(w->idx, w->from, 10000, watch_cb, w);
	return NULL;
}

static void analytics_works(void)
{
	uint64_t rev = 0, rev2 = 0;
	char value[64];
	assert_int_equal(virgo_analytics_set(0, "svc.watched", "1", &rev), 0);
	assert_true(rev > 0);
	assert_int_equal(virgo_analytics_get(0, "svc.watched", value, sizeof value, &rev2), 0);
	assert_string_equal(value, "1");
	assert_int_equal(rev2, rev);
	/* a watch from that revision sees the next change */
	struct watch_arg w = {0, rev, 0, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, watch_main, &w), 0);
	assert_int_equal(virgo_analytics_set(0, "svc.watched", "2", NULL), 0);
	pthread_join(th, NULL);
	assert_int_equal(w.rc, 0);
	assert_int_equal(w.seen, 1);
	/* on every node */
	assert_int_equal(virgo_analytics_set(-1, "svc.all", "yes", NULL), 0);
	assert_int_equal(virgo_analytics_get(1, "svc.all", value, sizeof value, NULL), 0);
	assert_string_equal(value, "yes");
}

static void test_analytics_tls(void **state)
{
	(void)state;
	use(tls_c.client_conf);
	analytics_works();
}

static void test_analytics_token(void **state)
{
	(void)state;
	use(tok_c.client_conf);
	analytics_works();
}

/* ---- refusals ---------------------------------------------------------- */

static void refused(const char *conf, const char *why)
{
	use(conf);
	virgo_lock_t *l = NULL;
	assert_int_not_equal(virgo_lock("svc/refused", NULL, &l), 0);
	assert_null(l);
	fprintf(stderr, "  lock: %s\n", virgo_last_error());
	assert_non_null(strstr(virgo_last_error(), why));
	char v[32];
	assert_int_not_equal(virgo_analytics_get(0, "svc.watched", v, sizeof v, NULL), 0);
	fprintf(stderr, "  analytics: %s\n", virgo_last_error());
	assert_non_null(strstr(virgo_last_error(), why));
	/* a watch gives up at once: credentials do not heal by retrying */
	int64_t t0 = th_now_ms();
	struct watch_arg w = {0, VIRGO_ANALYTICS_NOW, 0, 0};
	w.rc = virgo_analytics_watch(0, VIRGO_ANALYTICS_NOW, 5000, watch_cb, &w);
	assert_int_not_equal(w.rc, 0);
	assert_int_not_equal(w.rc, -ETIMEDOUT);
	assert_true(th_now_ms() - t0 < 3000);
	struct virgo_event *evs = NULL;
	size_t n = 0;
	assert_int_not_equal(virgo_eventnet_why("tls-pay", &evs, &n), 0);
	fprintf(stderr, "  eventnet: %s\n", virgo_last_error());
	/* the logger: queued, then the flush reports the refusal */
	assert_int_equal(virgo_eventnet_log("svc-refused", NULL, NULL, NULL), 0);
	assert_int_not_equal(virgo_eventnet_flush(3000), 0);
}

static void test_wrong_token_refused(void **state)
{
	(void)state;
	refused(conf_for("wrongtok", &tok_c, 0, "auth_token = not-the-token-0123456789"),
		"wrong token");
	refused(conf_for("notok", &tok_c, 0, NULL), "AUTH");
}

static void test_no_tls_refused(void **state)
{
	(void)state;
	refused(conf_for("plain", &tls_c, 0, NULL), "requires TLS");
}

/* ---- a refusal at the connection limit on a TLS port ----------------- */

/* Everything fd receives until EOF (or 3 s): its length, bytes in buf. */
static ssize_t read_all(int fd, unsigned char *buf, size_t cap)
{
	size_t used = 0;
	int64_t deadline = th_now_ms() + 3000;
	while (used < cap && th_now_ms() < deadline) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t r = recv(fd, buf + used, cap - used, 0);
		if (r <= 0)
			return r < 0 && used == 0 ? -1 : (ssize_t)used;
		used += (size_t)r;
	}
	return (ssize_t)used;
}

static void test_busy_tls_port_refuses_with_alert(void **state)
{
	(void)state;
	int port = th_port(&busy_c, 0, 11211);
	int hold = th_connect(port); /* the port's one connection */
	assert_true(hold >= 0);
	/* the node counts it once accepted: wait until a second is refused */
	unsigned char buf[256];
	ssize_t n = 0;
	int64_t deadline = th_now_ms() + 5000;
	do {
		int fd = th_connect(port);
		assert_true(fd >= 0);
		n = read_all(fd, buf, sizeof buf);
		close(fd);
	} while (n == 0 && th_now_ms() < deadline);
	/* one fatal TLS alert record, not "ERR EBUSY ..." in plain text */
	assert_int_equal(n, 7);
	assert_int_equal(buf[0], 0x15);
	assert_int_equal(buf[5], 2); /* fatal */
	assert_null(memmem(buf, (size_t)n, "ERR", 3));
	/* a TLS client reads it as the node's alert */
	char ca[400];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_load_verify_locations(ctx, ca, NULL);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	int fd = th_connect(port);
	assert_true(fd >= 0);
	SSL *ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	assert_true(SSL_connect(ssl) <= 0);
	char why[256];
	ERR_error_string_n(ERR_peek_error(), why, sizeof why);
	fprintf(stderr, "  TLS client: %s\n", why);
	assert_non_null(strstr(why, "alert internal error"));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	ERR_clear_error();
	close(fd);
	/* libvirgo says why */
	use(busy_c.client_conf);
	char *text = NULL;
	assert_int_not_equal(virgo_memcache_stats(0, &text), 0);
	fprintf(stderr, "  libvirgo: %s\n", virgo_last_error());
	assert_non_null(strstr(virgo_last_error(), "connection limit"));
	close(hold);
	/* the slot is free again: a TLS client is served */
	deadline = th_now_ms() + 5000;
	int ok = 0;
	while (!ok && th_now_ms() < deadline) {
		char pem[400], key[400];
		snprintf(pem, sizeof pem, "%s/alice.pem", certs);
		snprintf(key, sizeof key, "%s/alice.key", certs);
		ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_load_verify_locations(ctx, ca, NULL);
		SSL_CTX_use_certificate_file(ctx, pem, SSL_FILETYPE_PEM);
		SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM);
		fd = th_connect(port);
		ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		ok = SSL_connect(ssl) == 1 && SSL_write(ssl, "version\r\n", 9) == 9 &&
		     SSL_read(ssl, why, sizeof why - 1) > 0 && strncmp(why, "VERSION", 7) == 0;
		SSL_free(ssl);
		SSL_CTX_free(ctx);
		ERR_clear_error();
		close(fd);
	}
	assert_true(ok);
}

/* ---- the CLI ----------------------------------------------------------- */

static int cli(const char *conf, const char *a0, ...)
{
	va_list ap;
	va_start(ap, a0);
	int rc = th_cliv(virgo, conf, out, sizeof out, 20000, a0, ap);
	va_end(ap);
	return rc;
}

/* a CLI call that must succeed; what it printed goes to the log if not */
#define CLI_OK(...)                                                                  \
	do {                                                                         \
		int rc_ = cli(__VA_ARGS__, NULL);                                    \
		if (rc_ != 0)                                                        \
			fprintf(stderr, "virgo exited %d: %s\n", rc_, out);          \
		assert_int_equal(rc_, 0);                                            \
	} while (0)

static void cli_works(const struct th_cluster *c, const char *tag)
{
	const char *conf = c->client_conf;
	char id1[64], id2[64], after[80], node1[16];
	snprintf(id1, sizeof id1, "cli-%s-1", tag);
	snprintf(id2, sizeof id2, "cli-%s-2", tag);
	snprintf(after, sizeof after, "--after=%s", id1);
	snprintf(node1, sizeof node1, "%u", c->nodes[0].id);
	CLI_OK(conf, "lock", "svc/cli", "--", "true");
	CLI_OK(conf, "lock", "ls");
	CLI_OK(conf, "analytics", "set", node1, "svc.cli=42");
	CLI_OK(conf, "analytics", "get", node1, "svc.cli");
	assert_string_equal(out, "42\n");
	CLI_OK(conf, "eventnet", "log", "--id", id1, "--conv", "hello");
	CLI_OK(conf, "eventnet", "log", "--id", id2, after);
	CLI_OK(conf, "eventnet", "why", id2);
	assert_non_null(strstr(out, id1));
	assert_non_null(strstr(out, id2));
}

static void test_cli_tls(void **state)
{
	(void)state;
	cli_works(&tls_c, "tls");
}

static void test_cli_token(void **state)
{
	(void)state;
	cli_works(&tok_c, "tok");
	const char *bad = conf_for("cliwrong", &tok_c, 0, "auth_token = not-the-token-0123456789");
	assert_int_not_equal(cli(bad, "lock", "svc/cli", "--", "true", NULL), 0);
	assert_non_null(strstr(out, "wrong token"));
	assert_int_not_equal(cli(bad, "analytics", "get", "1", "svc.cli", NULL), 0);
	assert_non_null(strstr(out, "wrong token"));
	assert_int_not_equal(cli(bad, "eventnet", "why", "cli-tok-2", NULL), 0);
	assert_non_null(strstr(out, "wrong token"));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_tls),
		cmocka_unit_test(test_lock_token),
		cmocka_unit_test(test_eventnet_tls),
		cmocka_unit_test(test_eventnet_token),
		cmocka_unit_test(test_analytics_tls),
		cmocka_unit_test(test_analytics_token),
		cmocka_unit_test(test_wrong_token_refused),
		cmocka_unit_test(test_no_tls_refused),
		cmocka_unit_test(test_cli_tls),
		cmocka_unit_test(test_cli_token),
		cmocka_unit_test(test_busy_tls_port_refuses_with_alert),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
