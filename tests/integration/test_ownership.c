/*
 * test_ownership.c - identities own what they create, and the node's
 * identity policies, against a real virgod with mutual TLS.
 *
 * Clients alice, bob, carol and dave hold certificates of the cluster CA (made
 * at run time by certgen.c); each request goes over its own TLS
 * connection, so the identity is the certificate's CN.  The node's policy:
 * bob may run only echo (cpupool_programs), only alice and carol may
 * change the cloudfs export (cloudfs_writers), alice may publish any analytics
 * variable, bob only app_* ones, carol none (analytics_publishers).  What
 * must hold: bob gets EACCES for alice's private allocation in a listing
 * (he sees her shared one), for her cloudfs descriptors (call-form and
 * native, use and close), for her consumer group (also after a restart of
 * the node) unless she created it shared (dave, in queue_group_admins,
 * may join it), and for renewing or unlocking
 * her lock; carol may not write-open, truncate, unlink or rename a file
 * alice holds open for writing; each policy key refuses and allows as
 * configured.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../src/cli/certgen.h"
#include "../harness.h"

static struct th_cluster cl;
static char certs[300], qdir[300], xdir[300];

/* ---- one TLS connection as one identity ------------------------------ */
struct who {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

/* Connects to the node's port `base` as the client certificate `name`. */
static void who_open(struct who *w, int base, const char *name)
{
	char ca[400], pem[400], key[400];
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(pem, sizeof pem, "%s/%s.pem", certs, name);
	snprintf(key, sizeof key, "%s/%s.key", certs, name);
	w->fd = th_connect(th_port(&cl, 0, base));
	assert_true(w->fd >= 0);
	struct timeval tv = {5, 0};
	setsockopt(w->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	w->ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(w->ctx);
	SSL_CTX_set_verify(w->ctx, SSL_VERIFY_PEER, NULL);
	assert_int_equal(SSL_CTX_load_verify_locations(w->ctx, ca, NULL), 1);
	assert_int_equal(SSL_CTX_use_certificate_file(w->ctx, pem, SSL_FILETYPE_PEM), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey_file(w->ctx, key, SSL_FILETYPE_PEM), 1);
	w->ssl = SSL_new(w->ctx);
	SSL_set_fd(w->ssl, w->fd);
	assert_int_equal(SSL_connect(w->ssl), 1);
}

static void who_close(struct who *w)
{
	SSL_shutdown(w->ssl);
	SSL_free(w->ssl);
	SSL_CTX_free(w->ctx);
	close(w->fd);
	ERR_clear_error();
}

/* Sends n bytes of req, then reads into buf until it holds `until` (or
 * the connection ends).  Returns buf. */
static const char *who_req(struct who *w, const void *req, size_t n, const char *until, char *buf,
			   size_t cap)
{
	assert_int_equal(SSL_write(w->ssl, req, (int)n), (int)n);
	size_t used = 0;
	buf[0] = '\0';
	while (used < cap - 1 && !strstr(buf, until)) {
		int r = SSL_read(w->ssl, buf + used, (int)(cap - 1 - used));
		if (r <= 0)
			break;
		used += (size_t)r;
		buf[used] = '\0';
	}
	return buf;
}

/* One line request and its one-line reply. */
static const char *who_line(struct who *w, const char *line, char *buf, size_t cap)
{
	return who_req(w, line, strlen(line), "\r\n", buf, cap);
}

/* A request on a connection of its own as name; the reply's first line. */
static const char *as(const char *name, int base, const char *line, char *buf, size_t cap)
{
	struct who w;
	who_open(&w, base, name);
	who_line(&w, line, buf, cap);
	who_close(&w);
	return buf;
}

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

static int group_setup(void **state)
{
	(void)state;
	char err[512] = "";
	const char *tmp = th_tmpdir();
	snprintf(certs, sizeof certs, "%s/certs", tmp);
	snprintf(qdir, sizeof qdir, "%s/queue", tmp);
	snprintf(xdir, sizeof xdir, "%s/export", tmp);
	if (mkdir(xdir, 0700) != 0)
		return -1;
	if (certgen_ca(certs, "test CA", 2, err, sizeof err) ||
	    certgen_issue(certs, "node1", CERTGEN_NODE, "127.0.0.1,localhost", -60, 86400, err,
			  sizeof err) ||
	    certgen_issue(certs, "alice", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err) ||
	    certgen_issue(certs, "bob", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err) ||
	    certgen_issue(certs, "carol", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err) ||
	    certgen_issue(certs, "dave", CERTGEN_CLIENT, NULL, -60, 86400, err, sizeof err)) {
		fprintf(stderr, "certgen: %s\n", err);
		return -1;
	}
	char node[2048], client[1200];
	snprintf(node, sizeof node,
		 "tls_cert = %s/node1.pem\ntls_key = %s/node1.key\ntls_ca = %s/ca.pem\n"
		 "cloudfs_export_root = %s\nqueue_dir = %s\nanalytics_conf =\n"
		 "cpupool_programs = bob:echo\ncloudfs_writers = alice, carol\n"
		 "analytics_publishers = alice:* bob:app_*\nqueue_group_admins = dave\n",
		 certs, certs, certs, xdir, qdir);
	snprintf(client, sizeof client,
		 "tls_ca = %s/ca.pem\ntls_cert = %s/alice.pem\ntls_key = %s/alice.key\n", certs,
		 certs, certs);
	return th_cluster_start(&cl, 1, node, client);
}

static int group_teardown(void **state)
{
	(void)state;
	return th_cluster_teardown(&cl);
}

/* mempool ls: bob sees alice's shared allocation, not her private one;
 * she sees both. */
static void test_mempool_listing(void **state)
{
	(void)state;
	char buf[8192], mine[64], shared[64];
	struct who a;
	who_open(&a, 30000, "alice");
	assert_true(starts(who_line(&a, "malloc 10\r\n", buf, sizeof buf), "OK "));
	snprintf(mine, sizeof mine, " %.*s ", (int)strcspn(buf + 3, "\r\n"), buf + 3);
	assert_true(starts(who_line(&a, "malloc 10 shared\r\n", buf, sizeof buf), "OK "));
	snprintf(shared, sizeof shared, " %.*s ", (int)strcspn(buf + 3, "\r\n"), buf + 3);
	who_req(&a, "ls\r\n", 4, "END\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, mine));
	assert_non_null(strstr(buf, shared));
	struct who b;
	who_open(&b, 30000, "bob");
	who_req(&b, "ls\r\n", 4, "END\r\n", buf, sizeof buf);
	assert_non_null(strstr(buf, "END\r\n"));
	assert_null(strstr(buf, mine));
	assert_non_null(strstr(buf, shared));
	who_close(&b);
	who_close(&a);
}

/* cloudfs: descriptors are their opener's identity's; only alice writes. */
static void test_cloudfs_descriptors_and_writers(void **state)
{
	(void)state;
	char buf[1024], line[256];
	/* the notes' call form: a node-wide descriptor, in decimal */
	as("alice", 50000, "virgo_cloud_open(/notes.txt)\r\n", buf, sizeof buf);
	unsigned long long callfd = strtoull(buf, NULL, 10);
	assert_true(callfd > 0);
	snprintf(line, sizeof line, "virgo_cloud_write(%llu,hello,5,0)\r\n", callfd);
	as("alice", 50000, line, buf, sizeof buf);
	assert_null(strstr(buf, "ERR"));
	snprintf(line, sizeof line, "virgo_cloud_read(%llu,none,5,0)\r\n", callfd);
	assert_non_null(strstr(as("bob", 50000, line, buf, sizeof buf), "ERR EACCES"));
	snprintf(line, sizeof line, "close %llx\r\n", callfd);
	assert_true(starts(as("bob", 50000, line, buf, sizeof buf), "ERR EACCES"));
	snprintf(line, sizeof line, "virgo_cloud_read(%llu,none,5,0)\r\n", callfd);
	assert_non_null(strstr(as("alice", 50000, line, buf, sizeof buf), "hello"));
	snprintf(line, sizeof line, "close %llx\r\n", callfd);
	assert_true(starts(as("alice", 50000, line, buf, sizeof buf), "OK"));

	/* a native descriptor asked for by another identity: EACCES */
	struct who a;
	who_open(&a, 50000, "alice");
	assert_true(starts(who_line(&a, "open /own.txt rwc\r\n", buf, sizeof buf), "OK "));
	char fd[32];
	snprintf(fd, sizeof fd, "%.*s", (int)strcspn(buf + 3, "\r\n"), buf + 3);
	snprintf(line, sizeof line, "read %s 5\r\n", fd);
	assert_true(starts(as("bob", 50000, line, buf, sizeof buf), "ERR EACCES"));
	snprintf(line, sizeof line, "close %s\r\n", fd);
	assert_true(starts(as("bob", 50000, line, buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(who_line(&a, line, buf, sizeof buf), "OK"));
	who_close(&a);

	/* cloudfs_writers = alice: bob reads, never writes */
	assert_true(starts(as("bob", 50000, "open /notes.txt r\r\n", buf, sizeof buf), "OK "));
	assert_true(starts(as("bob", 50000, "open /b.txt wc\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_non_null(strstr(buf, "cloudfs_writers"));
	assert_true(starts(as("bob", 50000, "unlink /notes.txt\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(as("bob", 50000, "mkdir /bobdir\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(as("bob", 50000, "rename /notes.txt /x.txt\r\n", buf, sizeof buf),
			   "ERR EACCES"));
	/* bob's call-form open is a read-only one, not a refusal */
	as("bob", 50000, "virgo_cloud_open(/notes.txt)\r\n", buf, sizeof buf);
	assert_true(strtoull(buf, NULL, 10) > 0);
	assert_true(starts(as("alice", 50000, "mkdir /alicedir\r\n", buf, sizeof buf), "OK"));
	assert_true(starts(as("alice", 50000, "unlink /notes.txt\r\n", buf, sizeof buf), "OK"));
}

/* A file one identity holds open for writing is not pulled from under it
 * by another writer of the export; reading it is fine, and so is its own
 * identity on another connection. */
static void test_cloudfs_writer_guard(void **state)
{
	(void)state;
	char buf[1024];
	assert_true(starts(as("carol", 50000, "open /other.txt wc\r\n", buf, sizeof buf), "OK "));
	struct who a;
	who_open(&a, 50000, "alice");
	assert_true(starts(who_line(&a, "open /held.txt rwc\r\n", buf, sizeof buf), "OK "));
	char fd[32];
	snprintf(fd, sizeof fd, "%.*s", (int)strcspn(buf + 3, "\r\n"), buf + 3);
	static const char *const refused[] = {
		"open /held.txt w\r\n",	"open /held.txt rwt\r\n", "truncate /held.txt 0\r\n",
		"unlink /held.txt\r\n",	"rename /held.txt /moved.txt\r\n",
		"rename /other.txt /held.txt\r\n",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		as("carol", 50000, refused[i], buf, sizeof buf);
		if (!starts(buf, "ERR EACCES"))
			fail_msg("%s -> %s", refused[i], buf);
		assert_non_null(strstr(buf, "another identity"));
	}
	assert_true(starts(as("carol", 50000, "open /held.txt r\r\n", buf, sizeof buf), "OK "));
	assert_true(starts(as("alice", 50000, "open /held.txt w\r\n", buf, sizeof buf), "OK "));
	char line[64];
	snprintf(line, sizeof line, "close %s\r\n", fd);
	assert_true(starts(who_line(&a, line, buf, sizeof buf), "OK"));
	who_close(&a);
	assert_true(starts(as("carol", 50000, "unlink /held.txt\r\n", buf, sizeof buf), "OK"));
}

/* Polls path until it holds needle (the group's owner line is written by
 * the node's delivery thread). */
static bool file_has(const char *path, const char *needle, int timeout_ms)
{
	int64_t deadline = th_now_ms() + timeout_ms;
	do {
		char buf[256] = "";
		FILE *f = fopen(path, "r");
		if (f) {
			size_t n = fread(buf, 1, sizeof buf - 1, f);
			buf[n] = '\0';
			fclose(f);
			if (strstr(buf, needle))
				return true;
		}
		usleep(10000);
	} while (th_now_ms() < deadline);
	return false;
}

/* queue: a group is its creator's unless created shared; ownership
 * survives the group going idle and the node restarting. */
static void test_queue_groups(void **state)
{
	(void)state;
	char buf[1024];
	assert_true(starts(as("alice", 60000, "push jobs 2\r\nj1\r\n", buf, sizeof buf), "OK"));
	struct who a;
	who_open(&a, 60000, "alice");
	assert_true(starts(who_line(&a, "join jobs workers\r\n", buf, sizeof buf), "OK"));
	assert_true(starts(as("bob", 60000, "join jobs workers\r\n", buf, sizeof buf), "ERR EACCES"));
	who_close(&a);
	char path[400];
	snprintf(path, sizeof path, "%s/jobs/workers.group", qdir);
	assert_true(file_has(path, "private", 5000));
	/* alice's group, with no member left: still hers */
	assert_true(starts(as("bob", 60000, "join jobs workers\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(as("carol", 60000, "join jobs workers 2\r\n", buf, sizeof buf),
			   "ERR EACCES"));
	/* queue_group_admins = dave: any group */
	assert_true(starts(as("dave", 60000, "join jobs workers\r\n", buf, sizeof buf), "OK"));
	/* created shared: anyone's */
	who_open(&a, 60000, "alice");
	assert_true(starts(who_line(&a, "join jobs pool shared\r\n", buf, sizeof buf), "OK"));
	struct who b;
	who_open(&b, 60000, "bob");
	assert_true(starts(who_line(&b, "join jobs pool\r\n", buf, sizeof buf), "OK"));
	who_close(&b);
	who_close(&a);
	/* after a restart the owner comes back from the group file */
	th_node_signal(&cl, 0, SIGTERM);
	assert_int_equal(th_node_start(&cl, 0), 0);
	assert_true(starts(as("bob", 60000, "join jobs workers\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(as("alice", 60000, "join jobs workers\r\n", buf, sizeof buf), "OK"));
	assert_true(starts(as("bob", 60000, "join jobs pool\r\n", buf, sizeof buf), "OK"));
}

/* cloudsync: only the holder renews or unlocks; another identity is told
 * EACCES, the holder's own other connection ENOLCK (the lock is its
 * connection's). */
static void test_lock_holder(void **state)
{
	(void)state;
	char buf[512];
	struct who a;
	who_open(&a, 40000, "alice");
	assert_true(starts(who_line(&a, "lock printer 30000\r\n", buf, sizeof buf), "OK "));
	assert_true(starts(as("bob", 40000, "unlock printer\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(as("bob", 40000, "renew printer 1000\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(as("alice", 40000, "unlock printer\r\n", buf, sizeof buf), "ERR ENOLCK"));
	assert_true(starts(who_line(&a, "renew printer 20000\r\n", buf, sizeof buf), "OK "));
	assert_true(starts(who_line(&a, "unlock printer\r\n", buf, sizeof buf), "OK"));
	who_close(&a);
	assert_true(starts(as("bob", 40000, "unlock printer\r\n", buf, sizeof buf), "ERR ENOLCK"));
}

/* cpupool_programs = bob:echo: bob runs echo only; alice (not named)
 * keeps the whole allow-list. */
static void test_cpupool_programs(void **state)
{
	(void)state;
	char buf[1024];
	static const char run_true[] = "run 5\r\ntrue\0\r\n";
	static const char run_echo[] = "run 8\r\necho\0hi\0\r\n";
	struct who w;
	who_open(&w, 10000, "bob");
	who_req(&w, run_true, sizeof run_true - 1, "\r\n", buf, sizeof buf);
	assert_true(starts(buf, "ERR EACCES"));
	assert_non_null(strstr(buf, "cpupool_programs"));
	who_req(&w, run_echo, sizeof run_echo - 1, "hi\n", buf, sizeof buf);
	assert_true(starts(buf, "VALUE "));
	who_close(&w);
	who_open(&w, 10000, "alice");
	who_req(&w, run_true, sizeof run_true - 1, "\r\n", buf, sizeof buf);
	assert_true(starts(buf, "VALUE "));
	who_close(&w);
}

/* analytics_publishers = alice:* bob:app_*: carol publishes nothing. */
static void test_analytics_publishers(void **state)
{
	(void)state;
	char buf[512];
	assert_true(starts(as("alice", 64000, "set anything=1\r\n", buf, sizeof buf), "OK "));
	assert_true(starts(as("bob", 64000, "set app_rate=2\r\n", buf, sizeof buf), "OK "));
	assert_true(starts(as("bob", 64000, "set anything=2\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_non_null(strstr(buf, "analytics_publishers"));
	assert_true(starts(as("carol", 64000, "set app_rate=3\r\n", buf, sizeof buf), "ERR EACCES"));
	assert_true(starts(as("carol", 64000, "get app_rate\r\n", buf, sizeof buf), "VALUE app_rate"));
	assert_non_null(strstr(buf, " 2\r\n")); /* reading is anyone's; bob's value stands */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mempool_listing),
		cmocka_unit_test(test_cloudfs_descriptors_and_writers),
		cmocka_unit_test(test_cloudfs_writer_guard),
		cmocka_unit_test(test_queue_groups),
		cmocka_unit_test(test_lock_holder),
		cmocka_unit_test(test_cpupool_programs),
		cmocka_unit_test(test_analytics_publishers),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
