/*
 * certgen.h - a cluster CA and the certificates signed by it, made with
 * the OpenSSL library (no openssl command, no config file): what
 * `virgo certs` writes and what the TLS tests generate at run time.
 * Keys are EC P-256 (fast handshakes), certificates X.509v3, files PEM
 * with keys mode 0600.  Every function returns 0, or -1 with a message
 * in err.
 */
#ifndef VIRGO_CERTGEN_H
#define VIRGO_CERTGEN_H

#include <stddef.h>

enum certgen_kind {
	CERTGEN_NODE, /* serverAuth + clientAuth; SANs = its addresses */
	CERTGEN_CLIENT, /* clientAuth; CN = the client's identity */
};

/* A new CA in dir (created if missing): ca.pem and ca.key, valid for
 * days days, CN cn. */
int certgen_ca(const char *dir, const char *cn, int days, char *err, size_t errlen);

/* dir/<name>.pem and dir/<name>.key signed by dir's CA, CN name.
 * sans: comma-separated addresses or host names for subjectAltName (IPs
 * become IP:, others DNS:), may be NULL.  Valid from now + from_s to now
 * + to_s seconds (both may be negative: a test's expired certificate). */
int certgen_issue(const char *dir, const char *name, enum certgen_kind kind, const char *sans,
		  long from_s, long to_s, char *err, size_t errlen);

/* Adds dir/<name>.pem's serial to dir/crl.pem (created, or re-signed with
 * its earlier entries kept), next update in 30 days. */
int certgen_revoke(const char *dir, const char *name, char *err, size_t errlen);

#endif
