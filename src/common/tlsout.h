/*
 * tlsout.h - a write BIO that collects TLS records for one send().
 *
 * With a socket BIO, OpenSSL writes every record with its own write():
 * a 64 KiB reply is five system calls on our side and, on loopback,
 * up to five wake-ups of the reader, where plain TCP makes one writev.
 * An SSL attached with tlsout_attach appends its records to the tlsout's
 * buffer instead (never blocking); the owner sends them with
 * tlsout_send, several records per system call, and keeps what the
 * socket did not take for later.  Byte counters (written, sent) tell
 * which of the owner's records are on the wire (tlsout_mark,
 * tlsout_retire).  Used by the node's
 * TLS transport and libvirgo's where kTLS is off (kTLS needs the socket
 * BIO).
 */
#ifndef VIRGO_TLSOUT_H
#define VIRGO_TLSOUT_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

/* records encrypted ahead and sent together, at most */
#define TLSOUT_BATCH 8

struct tlsout {
	unsigned char *buf; /* owned: tlsout_release */
	size_t off, len, cap; /* unsent bytes: buf[off..len) */
	uint64_t written; /* bytes appended since creation */
	uint64_t sent; /* bytes sent since creation */
	/* The owner's plaintext in records not yet all on the wire: the
	 * owner keeps those bytes (reports them unwritten) until
	 * tlsout_retire says they went; `ahead` of them are encrypted. */
	size_t ahead;
	int nrec;
	struct {
		size_t plain; /* the owner's bytes in the record */
		uint64_t end; /* `written` after it */
	} rec[TLSOUT_BATCH];
};

/* Makes ssl read from fd (a socket BIO) and write its records into o
 * (o must outlive ssl): 0, or -1 out of memory. */
int tlsout_attach(SSL *ssl, int fd, struct tlsout *o);
/* Bytes held, not yet sent. */
static inline size_t tlsout_held(const struct tlsout *o) { return o->len - o->off; }
/* Makes room for n more bytes in one allocation (records then append
 * without growing the buffer step by step): 0, or -1 out of memory. */
int tlsout_reserve(struct tlsout *o, size_t n);
/* Records that the SSL_write just made wrote `plain` of the owner's bytes. */
void tlsout_mark(struct tlsout *o, size_t plain);
/* The owner's bytes whose records are now all sent (they leave `ahead`). */
size_t tlsout_retire(struct tlsout *o);
/* Sends what o holds on fd (non-blocking, MSG_NOSIGNAL): 0 when all of
 * it went, 1 when the socket took only part (EAGAIN), -1 with errno. */
int tlsout_send(struct tlsout *o, int fd);
/* Frees the buffer when nothing is held and it has grown past what one
 * small reply needs (an idle connection keeps no large buffer). */
void tlsout_trim(struct tlsout *o);
void tlsout_release(struct tlsout *o);

#endif
