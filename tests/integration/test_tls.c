/*
 * test_tls.c - TLS and token authentication against real virgod nodes.
 *
 * Certificates are made at run time (certgen.c, the code behind `virgo
 * certs`): a cluster CA, the node's certificate (127.0.0.1 in its
 * subjectAltName), clients alice and bob, an expired client, and a client
 * of another CA.  One node runs mutual TLS, another plain TCP with an
 * auth_token.  What must hold: libvirgo works over TLS; a plain client, a
 * client without a certificate, with an expired one or one from another
 * CA, or one that does not trust the node's CA, is refused; a certificate
 * revoked in the CRL is refused after SIGHUP while a connection opened
 * before the reload keeps working; the right token works, a wrong or
 * missing one is refused; a node will not listen on a non-loopback
 * address without authentication.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/cli/certgen.h"
#include "../harness.h"
#include "virgo.h"

#define TOKEN "s3cret-token-0123456789"

static struct th_cluster tls_c, tok_c;
static char certs[300], other[300];
static char conf_dir[300];

/* A client config for the TLS node with these files (ca may be another
 * CA's; cert NULL: none).  Returns its path (static buffer per slot). */
static const char *client_conf(int slot, const struct th_cluster *c, const char *ca,
			       const char *cert, const char *extra)
{
	static char path[8][400];
	snprintf(path[slot], sizeof path[slot], "%s/client%d.conf", conf_dir, slot);
	FILE *f = fopen(path[slot], "w");
	assert_non_null(f);
	fprintf(f, "node = 1 127.0.0.1 %d\npool_size = 0\ntimeout_ms = 3000\n", c->nodes[0].offset);
	if (ca)
		fprintf(f, "tls_ca = %s\n", ca);
	if (cert)
		fprintf(f, "tls_cert = %s.pem\ntls_key = %s.key\n", cert, cert);
	if (extra)
		fprintf(f, "%s\n", extra);
	fclose(f);
	return path[slot];
}

/* libvirgo with that config: the result of a ping of node 0. */
static int ping_with(const char *conf)
{
	virgo_fini();
	int rc = virgo_init(conf);
	if (rc)
		return rc;
	unsigned id = 0;
	rc = virgo_ping(0, &id, NULL);
	if (rc)
		fprintf(stderr, "  (refused as expected? %s)\n", virgo_last_error());
	return rc;
}

static int group_setup(void **state)
{
	(void)state;
	char err[512] = "";
	snprintf(conf_dir, sizeof conf_dir, "%s", th_tmpdir());
	snprintf(certs, sizeof certs, "%s/certs", conf_dir);
	snprintf(other, sizeof other, "%s/other", conf_dir);
	if (certgen_ca(certs, "test CA", 2, err, sizeof err) ||
	    certgen_issue(certs, "node1", CERTGEN_NODE, "127.0.0.1,localhost", -60, 86400, err,
			  sizeof err) ||
	    certgen_issue(certs, "alice", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err) ||
	    certgen_issue(certs, "bob", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err) ||
	    certgen_issue(certs, "carol", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err) ||
	    certgen_issue(certs, "expired", CERTGEN_CLIENT, NULL, -7200, -3600, err, sizeof err) ||
	    certgen_ca(other, "another CA", 2, err, sizeof err) ||
	    certgen_issue(other, "mallory", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err) ||
	    certgen_issue(other, "node1", CERTGEN_NODE, "127.0.0.1", -60, 86400, err, sizeof err)) {
		fprintf(stderr, "certgen: %s\n", err);
		return -1;
	}
	char node[1200], client[1200];
	snprintf(node, sizeof node,
		 "tls_cert = %s/node1.pem\ntls_key = %s/node1.key\ntls_ca = %s/ca.pem\n"
		 "request_timeout = 1\ncpupool_identities = alice, bob\nmemcache_tls = yes\n"
		 "cloudfs_export_root = %s/export\n",
		 certs, certs, certs, conf_dir);
	snprintf(client, sizeof client,
		 "tls_ca = %s/ca.pem\ntls_cert = %s/alice.pem\ntls_key = %s/alice.key\n", certs,
		 certs, certs);
	if (th_cluster_start(&tls_c, 1, node, client) != 0)
		return -1;
	if (th_cluster_start(&tok_c, 1, "auth_token = " TOKEN "\n", "auth_token = " TOKEN "\n") != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	virgo_fini();
	int a = th_cluster_stop(&tls_c);
	int b = th_cluster_stop(&tok_c);
	return a || b ? -1 : 0;
}

/* ---- a raw TLS client (blocking), for connections kept across reloads */
struct raw_tls {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static int raw_open(struct raw_tls *r, int port, const char *ca, const char *cert)
{
	memset(r, 0, sizeof *r);
	r->fd = th_connect(port);
	if (r->fd < 0)
		return -1;
	struct timeval tv = {3, 0};
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	r->ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_load_verify_locations(r->ctx, ca, NULL);
	char p[400], k[400];
	snprintf(p, sizeof p, "%s.pem", cert);
	snprintf(k, sizeof k, "%s.key", cert);
	SSL_CTX_use_certificate_file(r->ctx, p, SSL_FILETYPE_PEM);
	SSL_CTX_use_PrivateKey_file(r->ctx, k, SSL_FILETYPE_PEM);
	r->ssl = SSL_new(r->ctx);
	SSL_set_fd(r->ssl, r->fd);
	return SSL_connect(r->ssl) == 1 ? 0 : -1;
}

/* cmd over it: 0 when the reply's first line starts with want. */
static int raw_cmd(struct raw_tls *r, const char *cmd, const char *want)
{
	if (SSL_write(r->ssl, cmd, (int)strlen(cmd)) != (int)strlen(cmd))
		return -1;
	char buf[256];
	size_t used = 0;
	while (used < sizeof buf - 1) {
		int n = SSL_read(r->ssl, buf + used, (int)(sizeof buf - 1 - used));
		if (n <= 0)
			return -1;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n"))
			return strncmp(buf, want, strlen(want)) == 0 ? 0 : -1;
	}
	return -1;
}

/* "ping" over it: 0 when the node answers PONG. */
static int raw_ping(struct raw_tls *r)
{
	return raw_cmd(r, "ping\r\n", "PONG");
}

static void raw_close(struct raw_tls *r)
{
	if (r->ssl && SSL_is_init_finished(r->ssl))
		SSL_shutdown(r->ssl); /* else its session would not be resumable */
	SSL_free(r->ssl);
	SSL_CTX_free(r->ctx);
	if (r->fd >= 0)
		close(r->fd);
	ERR_clear_error();
}

static void test_tls_roundtrip(void **state)
{
	(void)state;
	assert_int_equal(th_cluster_client(&tls_c), 0);
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(64, &v), 0);
	assert_int_equal(virgo_set(v, "over tls", 8), 0);
	void *got = NULL;
	size_t glen = 0;
	assert_int_equal(virgo_get(v, &got, &glen), 0);
	assert_int_equal(glen, 8);
	assert_memory_equal(got, "over tls", 8);
	free(got);
	/* a big value: many records each way */
	size_t big = 3u << 20;
	char *a = malloc(big);
	assert_non_null(a);
	for (size_t i = 0; i < big; i++)
		a[i] = (char)(i * 31 + 7);
	virgo_vuid_t w;
	assert_int_equal(virgo_malloc(big, &w), 0);
	assert_int_equal(virgo_set(w, a, big), 0);
	void *b = NULL;
	assert_int_equal(virgo_get(w, &b, &glen), 0);
	assert_int_equal(glen, big);
	assert_memory_equal(a, b, big);
	free(a);
	free(b);
	assert_int_equal(virgo_free(w), 0);
	assert_int_equal(virgo_free(v), 0);
	char *text = NULL;
	assert_int_equal(virgo_mempool_stats(0, &text), 0);
	assert_non_null(strstr(text, "tls on\n"));
	assert_non_null(strstr(text, "tls_client_certs required\n"));
	/* this kernel has no TLS ULP loaded: the node says kTLS is off and why */
	assert_non_null(strstr(text, "ktls "));
	free(text);
}

/* cloudfs over TLS: reads are copied (no sendfile under a user-space
 * TLS record layer) and one request at a time is in flight on a file's
 * connection (write-behind stays off): large files still round-trip. */
static void test_cloudfs_tls(void **state)
{
	(void)state;
	assert_int_equal(th_cluster_client(&tls_c), 0);
	size_t n = (3u << 20) + 1;
	uint8_t *a = malloc(n), *b = malloc(4u << 20);
	assert_non_null(a);
	assert_non_null(b);
	for (size_t i = 0; i < n; i++)
		a[i] = (uint8_t)(i * 13 + (i >> 9));
	virgo_fd_t fd;
	assert_int_equal(virgo_open_ex("/tls.bin", O_RDWR | O_CREAT | O_TRUNC, 0644, &fd), 0);
	assert_int_equal(virgo_writebehind(fd, 4), 0);
	assert_int_equal(virgo_pwrite(fd, a, n, 0), (ssize_t)n);
	assert_int_equal(virgo_flush(fd), 0);
	assert_int_equal(virgo_pread(fd, b, 4u << 20, 0), (ssize_t)n);
	assert_memory_equal(a, b, n);
	assert_int_equal(virgo_close(fd), 0);
	free(a);
	free(b);
}

static void test_plain_client_refused(void **state)
{
	(void)state;
	int fd = th_connect(th_port(&tls_c, 0, 30000));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "ping\r\n", 6), 0);
	char buf[512];
	ssize_t n = th_recv_until(fd, buf, sizeof buf, "\r\n", 3000);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "ERR EACCES this port requires TLS"));
	assert_null(strstr(buf, "PONG"));
	close(fd);
	/* libvirgo without TLS configured: refused too */
	assert_int_not_equal(ping_with(client_conf(0, &tls_c, NULL, NULL, NULL)), 0);
}

/* memcache_tls = yes: the memcached port speaks TLS (memcached's own
 * TLS clients), and plain text there is refused. */
static void test_memcache_tls(void **state)
{
	(void)state;
	char ca[400], bob[400], buf[256];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(bob, sizeof bob, "%s/bob", certs);
	int port = th_port(&tls_c, 0, 11211);
	struct raw_tls r;
	assert_int_equal(raw_open(&r, port, ca, bob), 0);
	assert_int_equal(raw_cmd(&r, "set k 0 0 2\r\nhi\r\n", "STORED"), 0);
	assert_int_equal(raw_cmd(&r, "version\r\n", "VERSION"), 0);
	raw_close(&r);
	int fd = th_connect(port);
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "version\r\n", 9), 0);
	th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	assert_non_null(strstr(buf, "ERR EACCES this port requires TLS"));
	assert_null(strstr(buf, "VERSION"));
	close(fd);
}

static void test_client_cert_checks(void **state)
{
	(void)state;
	char ca[400], ok[400], exp[400], mal[400], oca[400];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(ok, sizeof ok, "%s/bob", certs);
	snprintf(exp, sizeof exp, "%s/expired", certs);
	snprintf(mal, sizeof mal, "%s/mallory", other);
	snprintf(oca, sizeof oca, "%s/ca.pem", other);
	assert_int_equal(ping_with(client_conf(1, &tls_c, ca, ok, NULL)), 0);
	/* no client certificate */
	assert_int_not_equal(ping_with(client_conf(2, &tls_c, ca, NULL, NULL)), 0);
	/* a certificate of another CA */
	assert_int_not_equal(ping_with(client_conf(3, &tls_c, ca, mal, NULL)), 0);
	/* expired */
	assert_int_not_equal(ping_with(client_conf(4, &tls_c, ca, exp, NULL)), 0);
	/* the client does not trust the node's CA (wrong CA on the client) */
	assert_int_not_equal(ping_with(client_conf(5, &tls_c, oca, ok, NULL)), 0);
	assert_non_null(strstr(virgo_last_error(), "TLS"));
}

/* Identities own their allocations: carol's are hers unless shared. */
static void test_ownership(void **state)
{
	(void)state;
	char ca[400], bob[400], carol[400];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(bob, sizeof bob, "%s/bob", certs);
	snprintf(carol, sizeof carol, "%s/carol", certs);
	const char *as_carol = client_conf(6, &tls_c, ca, carol, NULL);
	const char *as_bob = client_conf(7, &tls_c, ca, bob, NULL);
	virgo_fini();
	assert_int_equal(virgo_init(as_carol), 0);
	virgo_vuid_t mine, shared;
	assert_int_equal(virgo_malloc(16, &mine), 0);
	assert_int_equal(virgo_set(mine, "carol's", 7), 0);
	struct virgo_malloc_opts so = {.shared = 1, .owner = "team"};
	assert_int_equal(virgo_malloc_ex(16, &so, &shared), 0);
	assert_int_equal(virgo_set(shared, "ours", 4), 0);
	struct virgo_malloc_opts tag = {.owner = "team"};
	virgo_vuid_t tagged;
	assert_int_equal(virgo_malloc_ex(16, &tag, &tagged), 0);

	virgo_fini();
	assert_int_equal(virgo_init(as_bob), 0);
	void *got = NULL;
	size_t len = 0;
	assert_int_equal(virgo_get(mine, &got, &len), -EACCES);
	assert_int_equal(virgo_set(mine, "bob", 3), -EACCES);
	assert_int_equal(virgo_free(mine), -EACCES);
	assert_int_equal(virgo_renew(mine, 1000), -EACCES);
	assert_int_equal(virgo_get(shared, &got, &len), 0); /* shared: bob may */
	assert_int_equal(len, 4);
	free(got);
	assert_int_equal(virgo_set(shared, "both", 4), 0);
	/* free by tag frees only what bob may use: the shared one */
	uint64_t n = 0;
	assert_int_equal(virgo_free_owner("team", &n), 0);
	assert_int_equal(n, 1);

	virgo_fini();
	assert_int_equal(virgo_init(as_carol), 0);
	assert_int_equal(virgo_get(mine, &got, &len), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(got, "carol's", 7);
	free(got);
	assert_int_equal(virgo_free(tagged), 0); /* still there, still hers */
	assert_int_equal(virgo_free(mine), 0);
}

/* The node's policy: only alice and bob may run jobs there. */
static void test_cpupool_policy(void **state)
{
	(void)state;
	char ca[400], bob[400], carol[400];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(bob, sizeof bob, "%s/bob", certs);
	snprintf(carol, sizeof carol, "%s/carol", certs);
	const char *const argv[] = {"echo", "hi", NULL};
	struct virgo_run_result res;
	virgo_fini();
	assert_int_equal(virgo_init(client_conf(6, &tls_c, ca, carol, NULL)), 0);
	memset(&res, 0, sizeof res);
	assert_int_equal(virgo_run(argv, &res), -EACCES);
	virgo_run_result_free(&res);
	virgo_fini();
	assert_int_equal(virgo_init(client_conf(7, &tls_c, ca, bob, NULL)), 0);
	memset(&res, 0, sizeof res);
	assert_int_equal(virgo_run(argv, &res), 0);
	assert_int_equal(res.exit_code, 0);
	assert_true(res.out_len >= 2 && memcmp(res.out, "hi", 2) == 0);
	virgo_run_result_free(&res);
}

static void test_revoked_after_reload(void **state)
{
	(void)state;
	char ca[400], alice[400], bob[400], err[512] = "";
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(alice, sizeof alice, "%s/alice", certs);
	snprintf(bob, sizeof bob, "%s/bob", certs);
	const char *alice_conf = client_conf(6, &tls_c, ca, alice, NULL);
	assert_int_equal(ping_with(alice_conf), 0);
	/* alice's open connection, from before the reload */
	struct raw_tls r;
	assert_int_equal(raw_open(&r, th_port(&tls_c, 0, 30000), ca, alice), 0);
	assert_int_equal(raw_ping(&r), 0);

	assert_int_equal(certgen_revoke(certs, "alice", err, sizeof err), 0);
	FILE *f = fopen(tls_c.nodes[0].conf, "a");
	assert_non_null(f);
	fprintf(f, "tls_crl = %s/crl.pem\n", certs);
	fclose(f);
	th_node_signal(&tls_c, 0, SIGHUP);
	int64_t deadline = th_now_ms() + 5000;
	int rc;
	while ((rc = ping_with(alice_conf)) == 0 && th_now_ms() < deadline) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	assert_int_not_equal(rc, 0); /* new connections of alice: refused */
	assert_int_equal(ping_with(client_conf(7, &tls_c, ca, bob, NULL)), 0); /* bob: fine */
	assert_int_equal(raw_ping(&r), 0); /* the old connection was not dropped */
	raw_close(&r);
}

/* Exactly n bytes from r, or -1. */
static int raw_readn(struct raw_tls *r, char *buf, size_t n)
{
	while (n > 0) {
		size_t got = 0;
		if (SSL_read_ex(r->ssl, buf, n, &got) != 1)
			return -1;
		buf += got;
		n -= got;
	}
	return 0;
}

/* One reply line (CRLF stripped) from r, or -1. */
static int raw_line(struct raw_tls *r, char *line, size_t cap)
{
	size_t n = 0;
	while (n + 1 < cap) {
		if (raw_readn(r, line + n, 1) != 0)
			return -1;
		if (line[n] == '\n') {
			line[n > 0 && line[n - 1] == '\r' ? n - 1 : n] = '\0';
			return 0;
		}
		n++;
	}
	return -1;
}

/* Replies larger than the socket takes, to a client that reads them
 * only after sending every request: the node holds encrypted records the
 * socket did not take and sends them in order as the client reads (one
 * send carries several records: transport_tls.c). */
static void test_large_replies_slow_reader(void **state)
{
	(void)state;
	char ca[400], bob[400], line[256];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(bob, sizeof bob, "%s/bob", certs);
	struct raw_tls r;
	assert_int_equal(raw_open(&r, th_port(&tls_c, 0, 30000), ca, bob), 0);
	/* a window far smaller than the replies, so that the node's sends
	 * fill it, yet each 1 MiB reply well inside request_timeout (1 s
	 * here, restarted as each get is taken) on a loaded machine */
	int small = 65536;
	setsockopt(r.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
	size_t big = (1u << 20) + 777; /* not a whole number of records */
	char cmd[128];
	snprintf(cmd, sizeof cmd, "malloc %zu\r\n", big);
	assert_int_equal(SSL_write(r.ssl, cmd, (int)strlen(cmd)), (int)strlen(cmd));
	char vuid[40];
	assert_int_equal(raw_line(&r, line, sizeof line), 0);
	assert_int_equal(sscanf(line, "OK %39s", vuid), 1);
	char *val = malloc(big + 2), *got = malloc(big + 2);
	assert_non_null(val);
	assert_non_null(got);
	for (size_t i = 0; i < big; i++)
		val[i] = (char)(i * 131 + (i >> 12));
	memcpy(val + big, "\r\n", 2);
	snprintf(cmd, sizeof cmd, "set %s %zu\r\n", vuid, big);
	assert_int_equal(SSL_write(r.ssl, cmd, (int)strlen(cmd)), (int)strlen(cmd));
	assert_int_equal(SSL_write(r.ssl, val, (int)big + 2), (int)big + 2);
	assert_int_equal(raw_line(&r, line, sizeof line), 0);
	assert_string_equal(line, "OK");
	enum { GETS = 8 };
	char gets[GETS * 64] = "";
	for (int i = 0; i < GETS; i++) {
		snprintf(cmd, sizeof cmd, "get %s\r\n", vuid);
		strcat(gets, cmd);
	}
	assert_int_equal(SSL_write(r.ssl, gets, (int)strlen(gets)), (int)strlen(gets));
	for (int i = 0; i < GETS; i++) {
		assert_int_equal(raw_line(&r, line, sizeof line), 0);
		unsigned long n = 0;
		assert_int_equal(sscanf(line, "VALUE %lu", &n), 1);
		assert_int_equal(n, big);
		assert_int_equal(raw_readn(&r, got, big + 2), 0);
		assert_memory_equal(got, val, big + 2);
	}
	assert_int_equal(raw_ping(&r), 0);
	snprintf(cmd, sizeof cmd, "free %s\r\n", vuid);
	assert_int_equal(raw_cmd(&r, cmd, "OK"), 0);
	raw_close(&r);
	free(val);
	free(got);
}

/* The node's open TLS connections (its stats' tls_connections, the
 * stats connection itself included), or -1. */
static long tls_open_count(void)
{
	char *text = NULL;
	long n = -1;
	if (virgo_mempool_stats(0, &text) == 0 && strstr(text, "tls_connections "))
		sscanf(strstr(text, "tls_connections ") + 16, "%ld", &n);
	free(text);
	return n;
}

/* Until the node has closed its end of every connection we closed (with
 * pool_size = 0 the stats connection asking is then the only one open),
 * so that a session must outlive the connection that issued it;
 * deadline 5 s. */
static void wait_tls_closed(void)
{
	/* the count a check saw, not a fresh one: the connection of the
	 * check before may still be closing at the node when the next is
	 * counted (seen on a loaded machine: 1, then 2) */
	long n = tls_open_count();
	for (int i = 0; i < 250 && n != 1; i++) {
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
		n = tls_open_count();
	}
	assert_int_equal(n, 1);
}

/* A second connection resumes the session of the first (the node's
 * ticket), so pooled clients rarely pay a full handshake; the session
 * outlives the connection that issued it, and one ticket serves twice. */
static void test_resumption(void **state)
{
	(void)state;
	char ca[400], bob[400], bobconf[400];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(bob, sizeof bob, "%s/bob", certs);
	snprintf(bobconf, sizeof bobconf, "%s", client_conf(7, &tls_c, ca, bob, NULL));
	assert_int_equal(ping_with(bobconf), 0);
	wait_tls_closed(); /* earlier tests' connections too */
	struct raw_tls r;
	assert_int_equal(raw_open(&r, th_port(&tls_c, 0, 30000), ca, bob), 0);
	assert_int_equal(raw_ping(&r), 0); /* the ticket arrives with the reply */
	SSL_SESSION *sess = SSL_get1_session(r.ssl);
	assert_non_null(sess);
	assert_int_equal(SSL_SESSION_is_resumable(sess), 1);
	raw_close(&r);
	wait_tls_closed();
	/* twice from the same ticket: libvirgo opens pooled connections in
	 * parallel from the node's latest one */
	for (int i = 0; i < 2; i++) {
		struct raw_tls r2;
		memset(&r2, 0, sizeof r2);
		r2.fd = th_connect(th_port(&tls_c, 0, 30000));
		assert_true(r2.fd >= 0);
		r2.ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_verify(r2.ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_load_verify_locations(r2.ctx, ca, NULL);
		r2.ssl = SSL_new(r2.ctx);
		SSL_set_fd(r2.ssl, r2.fd);
		SSL_set_session(r2.ssl, sess);
		assert_int_equal(SSL_connect(r2.ssl), 1);
		assert_int_equal(SSL_session_reused(r2.ssl), 1);
		assert_int_equal(raw_ping(&r2), 0); /* bob's identity came with the session */
		raw_close(&r2);
		wait_tls_closed();
	}
	SSL_SESSION_free(sess);
	/* libvirgo: every new connection after the first resumes */
	unsigned long long before = 0, after = 0;
	char *text = NULL;
	assert_int_equal(ping_with(bobconf), 0);
	assert_int_equal(virgo_mempool_stats(0, &text), 0);
	assert_non_null(strstr(text, "tls_resumed "));
	sscanf(strstr(text, "tls_resumed ") + 12, "%llu", &before);
	free(text);
	for (int i = 0; i < 5; i++) /* pool_size = 0: a new connection each */
		assert_int_equal(virgo_ping(0, NULL, NULL), 0);
	assert_int_equal(virgo_mempool_stats(0, &text), 0);
	sscanf(strstr(text, "tls_resumed ") + 12, "%llu", &after);
	free(text);
	assert_true(after >= before + 5);
}

/* A handshake must finish within request_timeout (1 s here), however
 * slowly it trickles; an established connection may then idle. */
static void test_handshake_deadline(void **state)
{
	(void)state;
	char ca[400], bob[400], buf[64];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(bob, sizeof bob, "%s/bob", certs);
	struct raw_tls r;
	assert_int_equal(raw_open(&r, th_port(&tls_c, 0, 30000), ca, bob), 0);
	int fd = th_connect(th_port(&tls_c, 0, 30000));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "\x16\x03\x01", 3), 0); /* a ClientHello begun */
	int64_t t0 = th_now_ms();
	assert_true(th_recv_until(fd, buf, sizeof buf, NULL, 5000) >= 0); /* closed */
	int64_t dt = th_now_ms() - t0;
	assert_true(dt < 4000);
	close(fd);
	/* bob's connection, idle as long: still served */
	assert_int_equal(raw_ping(&r), 0);
	raw_close(&r);
}

static void test_token(void **state)
{
	(void)state;
	int port = th_port(&tok_c, 0, 30000);
	char buf[512];
	int fd = th_connect(port);
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "AUTH " TOKEN "\r\nping\r\n", strlen(TOKEN) + 13), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "PONG", 3000) > 0);
	assert_true(strncmp(buf, "OK\r\n", 4) == 0);
	close(fd);
	/* wrong token: refused and closed, the request never runs */
	fd = th_connect(port);
	assert_int_equal(th_send(fd, "AUTH s3cret-token-0123456780\r\nping\r\n", 36), 0);
	th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	assert_non_null(strstr(buf, "ERR EACCES wrong token"));
	assert_null(strstr(buf, "PONG"));
	close(fd);
	/* no AUTH line */
	fd = th_connect(port);
	assert_int_equal(th_send(fd, "ping\r\n", 6), 0);
	th_recv_until(fd, buf, sizeof buf, NULL, 3000);
	assert_non_null(strstr(buf, "ERR EACCES"));
	assert_null(strstr(buf, "PONG"));
	close(fd);
	/* libvirgo: the right token, and a wrong one */
	assert_int_equal(th_cluster_client(&tok_c), 0);
	virgo_vuid_t v;
	assert_int_equal(virgo_malloc(16, &v), 0);
	assert_int_equal(virgo_free(v), 0);
	assert_int_equal(ping_with(client_conf(0, &tok_c, NULL, NULL, "auth_token = wrong-token-0123456789")),
			 -EACCES);
	/* the memcached port stays plain, no token */
	fd = th_connect(th_port(&tok_c, 0, 11211));
	assert_true(fd >= 0);
	assert_int_equal(th_send(fd, "version\r\n", 9), 0);
	assert_true(th_recv_until(fd, buf, sizeof buf, "VERSION", 3000) > 0);
	close(fd);
}

static void test_refuses_non_loopback_without_auth(void **state)
{
	(void)state;
	char out[4096], off[16], conf[400];
	snprintf(conf, sizeof conf, "%s/open.conf", conf_dir);
	FILE *f = fopen(conf, "w");
	assert_non_null(f);
	fprintf(f, "listen = 0.0.0.0\n");
	fclose(f);
	snprintf(off, sizeof off, "%d", th_offset_base(1));
	const char *argv[] = {th_virgod(), "-c", conf, "-o", off, NULL};
	int rc = th_run(argv, out, sizeof out, 10000);
	assert_int_not_equal(rc, 0);
	assert_non_null(strstr(out, "refusing to listen on 0.0.0.0"));
	assert_non_null(strstr(out, "tls_ca"));
	assert_non_null(strstr(out, "auth_token"));
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tls_roundtrip),
		cmocka_unit_test(test_cloudfs_tls),
		cmocka_unit_test(test_plain_client_refused),
		cmocka_unit_test(test_memcache_tls),
		cmocka_unit_test(test_client_cert_checks),
		cmocka_unit_test(test_ownership),
		cmocka_unit_test(test_cpupool_policy),
		cmocka_unit_test(test_revoked_after_reload),
		cmocka_unit_test(test_resumption),
		cmocka_unit_test(test_large_replies_slow_reader),
		cmocka_unit_test(test_handshake_deadline),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_refuses_non_loopback_without_auth),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
