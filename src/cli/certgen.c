/*
 * certgen.c - CA, node and client certificates and a CRL with the
 * OpenSSL 3 library (certgen.h).  Nothing here parses network input; the
 * files it reads are the ones it wrote (ca.pem, ca.key, crl.pem).
 */
#include "certgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	char buf[200] = "";
	if (e)
		ERR_error_string_n(e, buf, sizeof buf);
	ERR_clear_error();
	snprintf(err, errlen, "%s%s%s", what, e ? ": " : "", buf);
	return -1;
}

static int write_pem(const char *path, int mode, X509 *cert, EVP_PKEY *key, X509_CRL *crl,
		     char *err, size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fchmod(fd, (mode_t)mode);
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	int ok = cert ? PEM_write_X509(f, cert)
		 : key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		       : PEM_write_X509_CRL(f, crl);
	if (fclose(f) != 0 || !ok) {
		char what[300];
		snprintf(what, sizeof what, "cannot write %s", path);
		return fail(err, errlen, what);
	}
	return 0;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (!ex)
		return -1;
	int ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -1;
}

/* "10.0.0.1,node1" -> "IP:10.0.0.1,DNS:node1" (NULL when too long or bad). */
static int san_list(const char *sans, char *out, size_t cap)
{
	char buf[1024];
	size_t used = 0;
	out[0] = '\0';
	if (strlen(sans) >= sizeof buf)
		return -1;
	snprintf(buf, sizeof buf, "%s", sans);
	char *save = NULL;
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		unsigned char bin[16];
		bool ip = inet_pton(AF_INET, t, bin) == 1 || inet_pton(AF_INET6, t, bin) == 1;
		for (const char *p = t; *p; p++)
			if (!(((*p | 32) >= 'a' && (*p | 32) <= 'z') || (*p >= '0' && *p <= '9') ||
			      *p == '.' || *p == '-' || *p == ':' || *p == '*'))
				return -1;
		int n = snprintf(out + used, cap - used, "%s%s:%s", used ? "," : "", ip ? "IP" : "DNS", t);
		if (n < 0 || (size_t)n >= cap - used)
			return -1;
		used += (size_t)n;
	}
	return 0;
}

static EVP_PKEY *key_new(void) { return EVP_EC_gen("P-256"); }

static X509 *cert_new(EVP_PKEY *key, const char *cn, long from_s, long to_s)
{
	X509 *c = X509_new();
	if (!c)
		return NULL;
	uint64_t serial;
	if (RAND_bytes((unsigned char *)&serial, sizeof serial) != 1) {
		X509_free(c);
		return NULL;
	}
	serial &= 0x7fffffffffffffffULL;
	ASN1_INTEGER_set_uint64(X509_get_serialNumber(c), serial | 1);
	X509_set_version(c, 2);
	X509_gmtime_adj(X509_getm_notBefore(c), from_s);
	X509_gmtime_adj(X509_getm_notAfter(c), to_s);
	X509_set_pubkey(c, key);
	X509_NAME *n = X509_get_subject_name(c);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"VIRGO cluster", -1,
				   -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	return c;
}

static int mkdir_p(const char *dir, char *err, size_t errlen)
{
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

int certgen_ca(const char *dir, const char *cn, int days, char *err, size_t errlen)
{
	if (mkdir_p(dir, err, errlen) != 0)
		return -1;
	EVP_PKEY *key = key_new();
	X509 *c = key ? cert_new(key, cn, 0, (long)days * 86400) : NULL;
	int rc = -1;
	if (!c) {
		fail(err, errlen, "cannot make the CA key");
		goto out;
	}
	X509_set_issuer_name(c, X509_get_subject_name(c));
	if (add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(c, c, NID_subject_key_identifier, "hash") || X509_sign(c, key, EVP_sha256()) == 0) {
		fail(err, errlen, "cannot sign the CA certificate");
		goto out;
	}
	char path[512];
	snprintf(path, sizeof path, "%s/ca.key", dir);
	if (write_pem(path, 0600, NULL, key, NULL, err, errlen) != 0)
		goto out;
	snprintf(path, sizeof path, "%s/ca.pem", dir);
	rc = write_pem(path, 0644, c, NULL, NULL, err, errlen);
out:
	X509_free(c);
	EVP_PKEY_free(key);
	return rc;
}

/* dir's CA certificate and key; 0 or -1 with err. */
static int load_ca(const char *dir, X509 **ca, EVP_PKEY **cakey, char *err, size_t errlen)
{
	char path[512];
	snprintf(path, sizeof path, "%s/ca.pem", dir);
	FILE *f = fopen(path, "r");
	*ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	snprintf(path, sizeof path, "%s/ca.key", dir);
	f = fopen(path, "r");
	*cakey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!*ca || !*cakey) {
		X509_free(*ca);
		EVP_PKEY_free(*cakey);
		ERR_clear_error();
		snprintf(err, errlen, "%s has no usable ca.pem and ca.key (run virgo certs init %s)",
			 dir, dir);
		return -1;
	}
	return 0;
}

int certgen_issue(const char *dir, const char *name, enum certgen_kind kind, const char *sans,
		  long from_s, long to_s, char *err, size_t errlen)
{
	for (const char *p = name; *p; p++)
		if (*p == '/' || *p == ' ' || (unsigned char)*p < 0x21) {
			snprintf(err, errlen, "bad name '%s' (no slashes or spaces)", name);
			return -1;
		}
	if (!name[0] || strlen(name) > 64) {
		snprintf(err, errlen, "a name is 1..64 characters");
		return -1;
	}
	char san[2048] = "";
	if (sans && sans[0] && san_list(sans, san, sizeof san) != 0) {
		snprintf(err, errlen, "bad address list '%s'", sans);
		return -1;
	}
	X509 *ca = NULL;
	EVP_PKEY *cakey = NULL;
	if (load_ca(dir, &ca, &cakey, err, errlen) != 0)
		return -1;
	EVP_PKEY *key = key_new();
	X509 *c = key ? cert_new(key, name, from_s, to_s) : NULL;
	int rc = -1;
	if (!c) {
		fail(err, errlen, "cannot make a key");
		goto out;
	}
	X509_set_issuer_name(c, X509_get_subject_name(ca));
	if (add_ext(c, ca, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(c, ca, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(c, ca, NID_ext_key_usage,
		    kind == CERTGEN_NODE ? "serverAuth,clientAuth" : "clientAuth") ||
	    add_ext(c, ca, NID_authority_key_identifier, "keyid") ||
	    (san[0] && add_ext(c, ca, NID_subject_alt_name, san)) ||
	    X509_sign(c, cakey, EVP_sha256()) == 0) {
		fail(err, errlen, "cannot sign the certificate");
		goto out;
	}
	char path[512];
	snprintf(path, sizeof path, "%s/%s.key", dir, name);
	if (write_pem(path, 0600, NULL, key, NULL, err, errlen) != 0)
		goto out;
	snprintf(path, sizeof path, "%s/%s.pem", dir, name);
	rc = write_pem(path, 0644, c, NULL, NULL, err, errlen);
out:
	X509_free(c);
	EVP_PKEY_free(key);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return rc;
}

int certgen_revoke(const char *dir, const char *name, char *err, size_t errlen)
{
	char path[512];
	err[0] = '\0';
	snprintf(path, sizeof path, "%s/%s.pem", dir, name);
	FILE *f = fopen(path, "r");
	X509 *victim = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!victim) {
		ERR_clear_error();
		snprintf(err, errlen, "%s: no such certificate", path);
		return -1;
	}
	X509 *ca = NULL;
	EVP_PKEY *cakey = NULL;
	if (load_ca(dir, &ca, &cakey, err, errlen) != 0) {
		X509_free(victim);
		return -1;
	}
	int rc = -1;
	snprintf(path, sizeof path, "%s/crl.pem", dir);
	f = fopen(path, "r");
	X509_CRL *old = f ? PEM_read_X509_CRL(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	ERR_clear_error();
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *now = ASN1_TIME_new(), *next = ASN1_TIME_new();
	if (!crl || !now || !next)
		goto out;
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_gmtime_adj(now, 0);
	X509_gmtime_adj(next, 30L * 86400);
	X509_CRL_set1_lastUpdate(crl, now);
	X509_CRL_set1_nextUpdate(crl, next);
	STACK_OF(X509_REVOKED) *had = old ? X509_CRL_get_REVOKED(old) : NULL;
	for (int i = 0; had && i < sk_X509_REVOKED_num(had); i++) {
		X509_REVOKED *r = X509_REVOKED_dup(sk_X509_REVOKED_value(had, i));
		if (!r || !X509_CRL_add0_revoked(crl, r))
			goto out;
	}
	X509_REVOKED *r = X509_REVOKED_new();
	if (!r || !X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(victim)) ||
	    !X509_REVOKED_set_revocationDate(r, now) || !X509_CRL_add0_revoked(crl, r))
		goto out;
	X509_CRL_sort(crl);
	if (X509_CRL_sign(crl, cakey, EVP_sha256()) == 0)
		goto out;
	rc = write_pem(path, 0644, NULL, NULL, crl, err, errlen);
out:
	if (rc != 0 && !err[0])
		fail(err, errlen, "cannot make the CRL");
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	X509_CRL_free(crl);
	X509_CRL_free(old);
	X509_free(victim);
	X509_free(ca);
	EVP_PKEY_free(cakey);
	return rc;
}
