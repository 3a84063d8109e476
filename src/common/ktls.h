/*
 * ktls.h - can this machine offload TLS records to the kernel (kTLS)?
 * Asked once by the node and by libvirgo before they build their TLS
 * contexts: OpenSSL 3.0 turns read-ahead off whenever SSL_OP_ENABLE_KTLS
 * is set, kTLS active or not, which costs a second recv per record.  So
 * the option is set only where kTLS can work (the kernel's tls ULP is
 * loaded or loadable), and read-ahead is used everywhere else.
 */
#ifndef VIRGO_KTLS_H
#define VIRGO_KTLS_H

#include <stdbool.h>

/* true when kTLS may work here; otherwise *why (static) says why not:
 * "kernel_tls_ulp_not_available" or "openssl_built_without_ktls". */
bool ktls_possible(const char **why);

#endif
