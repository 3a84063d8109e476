/*
 * ktls.c - the kTLS availability check (ktls.h): OpenSSL built with kTLS
 * (OPENSSL_NO_KTLS not defined), and the kernel's tls ULP either loaded
 * (listed in /proc/sys/net/ipv4/tcp_available_ulp), or built in or
 * shipped as a module (/sys/module/tls, or tls.ko under
 * /lib/modules/<release>/kernel/net/tls, which the kernel loads on the
 * first TCP_ULP "tls").  VIRGO_KTLS=0 in the environment says no.
 */
#include "ktls.h"

#include <openssl/opensslconf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

bool ktls_possible(const char **why)
{
#ifdef OPENSSL_NO_KTLS
	*why = "openssl_built_without_ktls";
	return false;
#else
	const char *env = getenv("VIRGO_KTLS");
	if (env && strcmp(env, "0") == 0) {
		*why = "disabled_by_VIRGO_KTLS";
		return false;
	}
	char line[256] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");
	if (f) {
		if (!fgets(line, sizeof line, f))
			line[0] = '\0';
		fclose(f);
	}
	char *save = NULL;
	for (char *w = strtok_r(line, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
		if (strcmp(w, "tls") == 0)
			return true;
	if (access("/sys/module/tls", F_OK) == 0)
		return true;
	struct utsname u;
	if (uname(&u) == 0) {
		char path[512];
		static const char *const ext[] = {"ko", "ko.xz", "ko.zst", "ko.gz"};
		for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
			snprintf(path, sizeof path, "/lib/modules/%s/kernel/net/tls/tls.%s", u.release,
				 ext[i]);
			if (access(path, F_OK) == 0)
				return true;
		}
	}
	*why = "kernel_tls_ulp_not_available";
	return false;
#endif
}
