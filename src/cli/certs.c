/*
 * certs.c - virgo certs: a quick secure set-up.  `init` makes a cluster
 * CA, one certificate per node (its addresses in subjectAltName, so
 * clients can check they reached the node they dialled) and one client
 * certificate; `add-client` and `add-node` issue more from the same CA;
 * `revoke` puts one in the CA's CRL (crl.pem, for the nodes' tls_crl).
 * The files come from certgen.c (OpenSSL library); keys are mode 0600.
 * `add-token` / `revoke-token` keep the named tokens file of plain-TCP
 * set-ups (certs_tokens.c), by default DIR/tokens next to the CA.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certgen.h"
#include "cli.h"

#define CERTS_DEFAULT_DIR "virgo-certs"

/* Parses [DIR] --dir D --days N --nodes LIST --file F after argv[first]. */
struct certs_args {
	const char *dir, *nodes, *file, *pos[2];
	int npos;
	unsigned long days;
	int force;
};

static int certs_parse(const char *cmd, int argc, char **argv, int first, struct certs_args *a)
{
	a->dir = NULL;
	a->file = NULL;
	a->nodes = "127.0.0.1";
	a->npos = 0;
	a->days = 825;
	a->force = 0;
	for (int i = first; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			a->dir = argv[++i];
		} else if (strcmp(argv[i], "--file") == 0 && i + 1 < argc) {
			a->file = argv[++i];
		} else if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) {
			a->nodes = argv[++i];
		} else if (strcmp(argv[i], "--days") == 0 && i + 1 < argc) {
			if (cli_parse_uint("--days", argv[++i], 1, 36500, &a->days) != 0)
				return 2;
		} else if (strcmp(argv[i], "--force") == 0) {
			a->force = 1;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return cli_usage(cmd, "unknown option '%s'", argv[i]);
		} else if (a->npos < 2) {
			a->pos[a->npos++] = argv[i];
		} else {
			return cli_usage(cmd, "too many arguments");
		}
	}
	return 0;
}

static int certs_init(int argc, char **argv)
{
	struct certs_args a;
	int rc = certs_parse("certs", argc, argv, 2, &a);
	if (rc)
		return rc;
	const char *dir = a.npos > 0 ? a.pos[0] : a.dir ? a.dir : CERTS_DEFAULT_DIR;
	char path[512], err[512] = "";
	struct stat st;
	snprintf(path, sizeof path, "%s/ca.key", dir);
	if (stat(path, &st) == 0 && !a.force) {
		fprintf(stderr, "virgo certs: %s exists: this directory already has a CA (use "
				"add-client/add-node, or --force to replace it and every "
				"certificate)\n",
			path);
		return 1;
	}
	if (certgen_ca(dir, "VIRGO cluster CA", (int)a.days, err, sizeof err) != 0)
		goto fail;
	char list[1024];
	snprintf(list, sizeof list, "%s", a.nodes);
	int id = 0;
	char *save = NULL;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char name[32], sans[256];
		snprintf(name, sizeof name, "node%d", ++id);
		/* loopback too: the node's own tools and its memcached port */
		snprintf(sans, sizeof sans, "%s,127.0.0.1,localhost", t);
		if (certgen_issue(dir, name, CERTGEN_NODE, sans, -300, (long)a.days * 86400, err,
				  sizeof err) != 0)
			goto fail;
		printf("%s/%s.pem  %s.key   node %d (%s)\n", dir, name, name, id, t);
	}
	if (certgen_issue(dir, "client", CERTGEN_CLIENT, NULL, -300, (long)a.days * 86400, err,
			  sizeof err) != 0)
		goto fail;
	printf("%s/client.pem client.key client identity \"client\"\n"
	       "%s/ca.pem     ca.key     the cluster CA (keep ca.key off the nodes)\n"
	       "node N:  tls_cert = %s/nodeN.pem, tls_key = %s/nodeN.key, tls_ca = %s/ca.pem\n"
	       "client:  tls_ca = %s/ca.pem, tls_cert = %s/client.pem, tls_key = %s/client.key\n",
	       dir, dir, dir, dir, dir, dir, dir, dir);
	return 0;
fail:
	fprintf(stderr, "virgo certs: %s\n", err);
	return 1;
}

static int certs_add(int argc, char **argv, enum certgen_kind kind)
{
	struct certs_args a;
	const char *sub = kind == CERTGEN_NODE ? "add-node" : "add-client";
	int rc = certs_parse("certs", argc, argv, 2, &a);
	if (rc)
		return rc;
	if (a.npos < (kind == CERTGEN_NODE ? 2 : 1))
		return cli_usage("certs", "%s wants %s", sub,
				 kind == CERTGEN_NODE ? "a name and its addresses" : "a name");
	const char *dir = a.dir ? a.dir : CERTS_DEFAULT_DIR;
	char err[512] = "", sans[512] = "";
	if (kind == CERTGEN_NODE)
		snprintf(sans, sizeof sans, "%s,127.0.0.1,localhost", a.pos[1]);
	if (certgen_issue(dir, a.pos[0], kind, sans, -300, (long)a.days * 86400, err, sizeof err) != 0) {
		fprintf(stderr, "virgo certs: %s\n", err);
		return 1;
	}
	printf("%s/%s.pem %s/%s.key\n", dir, a.pos[0], dir, a.pos[0]);
	return 0;
}

static int certs_revoke(int argc, char **argv)
{
	struct certs_args a;
	int rc = certs_parse("certs", argc, argv, 2, &a);
	if (rc)
		return rc;
	if (a.npos != 1)
		return cli_usage("certs", "revoke wants one name");
	const char *dir = a.dir ? a.dir : CERTS_DEFAULT_DIR;
	char err[512] = "";
	if (certgen_revoke(dir, a.pos[0], err, sizeof err) != 0) {
		fprintf(stderr, "virgo certs: %s\n", err);
		return 1;
	}
	printf("%s/crl.pem: %s revoked; set tls_crl = %s/crl.pem on the nodes and send them "
	       "SIGHUP\n",
	       dir, a.pos[0], dir);
	return 0;
}

/* add-token / revoke-token NAME [--file F | --dir D]: F, else D/tokens
 * (D made, mode 0700, when missing). */
static int certs_token(int argc, char **argv, bool add)
{
	struct certs_args a;
	int rc = certs_parse("certs", argc, argv, 2, &a);
	if (rc)
		return rc;
	if (a.npos != 1)
		return cli_usage("certs", "%s wants one name", argv[1]);
	char path[512];
	if (a.file) {
		snprintf(path, sizeof path, "%s", a.file);
	} else {
		const char *dir = a.dir ? a.dir : CERTS_DEFAULT_DIR;
		if (add && mkdir(dir, 0700) != 0 && errno != EEXIST) {
			fprintf(stderr, "virgo certs: %s: %s\n", dir, strerror(errno));
			return 1;
		}
		snprintf(path, sizeof path, "%s/tokens", dir);
	}
	return add ? certs_token_add(path, a.pos[0]) : certs_token_revoke(path, a.pos[0]);
}

int cmd_certs(int argc, char **argv)
{
	if (argc < 2)
		return cli_usage("certs", "wants init, add-client, add-node, revoke, add-token or "
					  "revoke-token");
	if (strcmp(argv[1], "add-token") == 0)
		return certs_token(argc, argv, true);
	if (strcmp(argv[1], "revoke-token") == 0)
		return certs_token(argc, argv, false);
	if (strcmp(argv[1], "init") == 0)
		return certs_init(argc, argv);
	if (strcmp(argv[1], "add-client") == 0)
		return certs_add(argc, argv, CERTGEN_CLIENT);
	if (strcmp(argv[1], "add-node") == 0)
		return certs_add(argc, argv, CERTGEN_NODE);
	if (strcmp(argv[1], "revoke") == 0)
		return certs_revoke(argc, argv);
	return cli_usage("certs", "unknown subcommand '%s'", argv[1]);
}
