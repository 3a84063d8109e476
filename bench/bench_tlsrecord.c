/*
 * bench_tlsrecord.c - what one TLS 1.3 record costs in this machine's
 * OpenSSL, without sockets, for bench/suite_tls.sh: the floor under
 * TLS's per-request cost, from which the suite states the best
 * TLS/plain ratio each of its rows could reach.
 *
 *   bench_tlsrecord <node.pem> <node.key> [seconds per case, default 0.5]
 *                   [record size: only that one]
 *
 * For each cipher suite (AES-128-GCM, ChaCha20-Poly1305) and record size
 * (32 B, 1 KiB, 16 KiB) a client and a server SSL, joined by an in-memory
 * BIO pair, exchange records; "record" is the time of one SSL_write_ex on
 * one side plus the SSL_read_ex of it on the other: one seal and one open
 * through OpenSSL's record layer, as every request and every reply pays
 * (once per side).  "aead" is the same seal and open done directly with
 * EVP on contexts keyed once (a nonce, the 5-byte header as AAD, the
 * data, the tag), i.e. the cipher's own cost plus EVP's per-call
 * overhead: the rest of "record" is OpenSSL's record layer.  "copy" is
 * the BIO pair's share (a write and a read of the record's bytes).
 * Prints lines "record SUITE BYTES NS", "aead SUITE BYTES NS",
 * "copy BYTES NS"; each the fastest of 5 runs (a floor: on a shared
 * machine the others only add other processes' time).
 */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* runs of each case; the fastest is reported */
#define RUNS 5

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_tlsrecord: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static SSL_CTX *sctx_new(const char *cert, const char *key, const char *suite)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());
	if (!c || SSL_CTX_use_certificate_chain_file(c, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM) != 1)
		die("server certificate");
	SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(c, suite);
	SSL_CTX_set_num_tickets(c, 0);
	return c;
}

/* Runs both ends' handshakes to completion over the BIO pair. */
static void handshake(SSL *cl, SSL *sv)
{
	for (int i = 0; i < 100; i++) {
		int a = SSL_do_handshake(cl), b = SSL_do_handshake(sv);
		if (a == 1 && b == 1)
			return;
	}
	die("handshake");
}

/* Seconds for n round trips of one `size`-byte record each way. */
static double exchange(SSL *cl, SSL *sv, unsigned char *buf, size_t size, long n)
{
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		size_t w, r, got;
		if (SSL_write_ex(cl, buf, size, &w) != 1)
			die("client write");
		for (got = 0; got < size; got += r)
			if (SSL_read_ex(sv, buf + got, size - got, &r) != 1)
				die("server read");
		if (SSL_write_ex(sv, buf, size, &w) != 1)
			die("server write");
		for (got = 0; got < size; got += r)
			if (SSL_read_ex(cl, buf + got, size - got, &r) != 1)
				die("client read");
	}
	return now_s() - t0;
}

/* ns per record sealed and opened through OpenSSL's record layer */
static double record_ns(const char *cert, const char *key, const char *suite, size_t size,
			double secs)
{
	SSL_CTX *sc = sctx_new(cert, key, suite), *cc = SSL_CTX_new(TLS_client_method());
	if (!cc)
		die("client context");
	SSL_CTX_set_min_proto_version(cc, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(cc, suite);
	SSL_CTX_set_verify(cc, SSL_VERIFY_NONE, NULL);
	SSL *cl = SSL_new(cc), *sv = SSL_new(sc);
	BIO *b1 = NULL, *b2 = NULL;
	if (!cl || !sv || BIO_new_bio_pair(&b1, 65536, &b2, 65536) != 1)
		die("SSL");
	SSL_set_bio(cl, b1, b1);
	SSL_set_bio(sv, b2, b2);
	SSL_set_connect_state(cl);
	SSL_set_accept_state(sv);
	handshake(cl, sv);
	unsigned char *buf = calloc(1, size);
	long n = 64;
	double t = exchange(cl, sv, buf, size, n); /* warm up, then size the run */
	n = (long)(secs / (t / (double)n)) + 1;
	t = exchange(cl, sv, buf, size, n);
	free(buf);
	SSL_free(cl);
	SSL_free(sv);
	SSL_CTX_free(cc);
	SSL_CTX_free(sc);
	return t * 1e9 / (double)(2 * n);
}

/* ns per seal + open with EVP on contexts keyed once */
static double aead_ns(const char *name, size_t size, double secs)
{
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, name, NULL);
	EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new(), *d = EVP_CIPHER_CTX_new();
	unsigned char k[32], iv[12], hdr[5] = {23, 3, 3, 0, 0}, tag[16];
	RAND_bytes(k, sizeof k);
	RAND_bytes(iv, sizeof iv);
	if (!c || !e || !d || EVP_EncryptInit_ex2(e, c, k, iv, NULL) != 1 ||
	    EVP_DecryptInit_ex2(d, c, k, iv, NULL) != 1)
		die(name);
	unsigned char *p = calloc(1, size), *q = malloc(size + 16);
	long n = 1000;
	double ns = 0;
	for (int pass = 0; pass < 2; pass++) {
		double t0 = now_s();
		for (long i = 0; i < n; i++) {
			int l, l2;
			iv[11] = (unsigned char)i; /* a fresh nonce per record, as TLS's */
			if (EVP_EncryptInit_ex2(e, NULL, NULL, iv, NULL) != 1 ||
			    EVP_EncryptUpdate(e, NULL, &l, hdr, 5) != 1 ||
			    EVP_EncryptUpdate(e, q, &l, p, (int)size) != 1 ||
			    EVP_EncryptFinal_ex(e, q + l, &l2) != 1 ||
			    EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1)
				die("seal");
			if (EVP_DecryptInit_ex2(d, NULL, NULL, iv, NULL) != 1 ||
			    EVP_DecryptUpdate(d, NULL, &l, hdr, 5) != 1 ||
			    EVP_DecryptUpdate(d, p, &l, q, (int)size) != 1 ||
			    EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1 ||
			    EVP_DecryptFinal_ex(d, p + l, &l2) != 1)
				die("open");
		}
		double t = now_s() - t0;
		ns = t * 1e9 / (double)n;
		n = (long)(secs / (t / (double)n)) + 1; /* the second pass: secs long */
	}
	free(p);
	free(q);
	EVP_CIPHER_CTX_free(e);
	EVP_CIPHER_CTX_free(d);
	EVP_CIPHER_free(c);
	return ns;
}

/* ns to move `size` bytes through a BIO pair (the harness's own cost) */
static double copy_ns(size_t size, double secs)
{
	BIO *b1 = NULL, *b2 = NULL;
	if (BIO_new_bio_pair(&b1, 65536, &b2, 65536) != 1)
		die("BIO pair");
	unsigned char *buf = calloc(1, size);
	long n = (long)(secs * 1e6);
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		if (BIO_write(b1, buf, (int)size) != (int)size || BIO_read(b2, buf, (int)size) != (int)size)
			die("BIO pair copy");
	}
	double t = now_s() - t0;
	free(buf);
	BIO_free(b1);
	BIO_free(b2);
	return t * 1e9 / (double)n;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_tlsrecord <node.pem> <node.key> [seconds]\n");
		return 2;
	}
	double secs = argc > 3 ? atof(argv[3]) : 0.5;
	size_t only = argc > 4 ? (size_t)atol(argv[4]) : 0;
	static const struct {
		const char *suite, *evp;
	} suites[] = {{"TLS_AES_128_GCM_SHA256", "AES-128-GCM"},
		      {"TLS_CHACHA20_POLY1305_SHA256", "ChaCha20-Poly1305"}};
	static const size_t sizes[] = {32, 1024, 16384};
	for (size_t s = 0; s < sizeof suites / sizeof suites[0]; s++)
		for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
			if (only && sizes[z] != only)
				continue;
			double r = 1e18, a = 1e18;
			for (int k = 0; k < RUNS; k++) {
				double x = record_ns(argv[1], argv[2], suites[s].suite, sizes[z],
						     secs / RUNS);
				double y = aead_ns(suites[s].evp, sizes[z], secs / RUNS);
				r = x < r ? x : r;
				a = y < a ? y : a;
			}
			printf("record %s %zu %.0f\n", suites[s].suite, sizes[z], r);
			printf("aead %s %zu %.0f\n", suites[s].suite, sizes[z], a);
		}
	for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
		double c = 1e18;
		for (int k = 0; k < RUNS; k++) {
			double x = copy_ns(sizes[z], secs / 10 / RUNS);
			c = x < c ? x : c;
		}
		printf("copy %zu %.0f\n", sizes[z], c);
	}
	return 0;
}
