/*
 * bench_tlsconn.c - connection set-up cost: connect, (handshake), one
 * "ping" round trip, close, n times in a row against one node's mempool
 * port, for bench/suite_tls.sh.
 *
 *   bench_tlsconn plain  <port> <n>
 *   bench_tlsconn full   <port> <n> <ca.pem> <client.pem> <client.key>
 *   bench_tlsconn resume <port> <n> <ca.pem> <client.pem> <client.key>
 *
 * full: every connection a full TLS 1.3 handshake (ECDHE + certificate
 * checks both ways); resume: every connection after the first resumes the
 * session ticket the node sent (what libvirgo does for a new pooled
 * connection).  Prints "us_per_conn N" and "resumed N" (connections that
 * resumed).  Exit 1 if any connection failed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int dial(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* reads until "PONG\r\n"; 0 or -1 */
static int pong_plain(int fd)
{
	char buf[64];
	size_t used = 0;
	while (used < sizeof buf - 1) {
		ssize_t n = read(fd, buf + used, sizeof buf - 1 - used);
		if (n <= 0)
			return -1;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n"))
			return strncmp(buf, "PONG", 4) == 0 ? 0 : -1;
	}
	return -1;
}

static int pong_tls(SSL *ssl)
{
	char buf[64];
	size_t used = 0;
	while (used < sizeof buf - 1) {
		int n = SSL_read(ssl, buf + used, (int)(sizeof buf - 1 - used));
		if (n <= 0)
			return -1;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n"))
			return strncmp(buf, "PONG", 4) == 0 ? 0 : -1;
	}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc < 4 || (strcmp(argv[1], "plain") != 0 && argc < 7)) {
		fprintf(stderr, "usage: bench_tlsconn plain|full|resume <port> <n> [ca cert key]\n");
		return 2;
	}
	int port = atoi(argv[2]), n = atoi(argv[3]), failed = 0, resumed = 0;
	int tls = strcmp(argv[1], "plain") != 0, resume = strcmp(argv[1], "resume") == 0;
	SSL_CTX *ctx = NULL;
	SSL_SESSION *sess = NULL;
	if (tls) {
		ctx = SSL_CTX_new(TLS_client_method());
		SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
		if (SSL_CTX_load_verify_locations(ctx, argv[4], NULL) != 1 ||
		    SSL_CTX_use_certificate_file(ctx, argv[5], SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, argv[6], SSL_FILETYPE_PEM) != 1) {
			ERR_print_errors_fp(stderr);
			return 1;
		}
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	}
	double t0 = now_us();
	for (int i = 0; i < n; i++) {
		int fd = dial(port);
		if (fd < 0) {
			failed++;
			continue;
		}
		if (!tls) {
			if (write(fd, "ping\r\n", 6) != 6 || pong_plain(fd) != 0)
				failed++;
			close(fd);
			continue;
		}
		SSL *ssl = SSL_new(ctx);
		SSL_set_fd(ssl, fd);
		if (resume && sess)
			SSL_set_session(ssl, sess);
		if (SSL_connect(ssl) != 1 || SSL_write(ssl, "ping\r\n", 6) != 6 || pong_tls(ssl) != 0) {
			ERR_clear_error();
			failed++;
		} else {
			resumed += SSL_session_reused(ssl);
			/* the ticket came with the reply: keep the newest */
			if (resume) {
				SSL_SESSION *s = SSL_get1_session(ssl);
				if (s) {
					SSL_SESSION_free(sess);
					sess = s;
				}
			}
		}
		SSL_shutdown(ssl);
		SSL_free(ssl);
		close(fd);
	}
	double dt = now_us() - t0;
	printf("us_per_conn %.1f\nresumed %d\nfailed %d\n", dt / n, resumed, failed);
	SSL_SESSION_free(sess);
	SSL_CTX_free(ctx);
	return failed ? 1 : 0;
}
