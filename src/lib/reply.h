/*
 * reply.h - classify a node's reply line (pure; unit-tested).
 */
#ifndef VIRGO_REPLY_H
#define VIRGO_REPLY_H

#include <stddef.h>
#include <stdint.h>

enum vc_reply_kind {
	VC_R_BAD = 0, /* unparsable */
	VC_R_OK, /* "OK" or "OK <arg>" */
	VC_R_VALUE, /* "VALUE <n>": n bytes + CRLF follow */
	VC_R_ERR, /* "ERR <CODE> <sentence>" */
	VC_R_STAT, /* "STAT ..." lines up to "END" */
	VC_R_PONG, /* "PONG <node id>" */
};

/* *n gets VALUE's byte count or PONG's node id; *err the positive errno. */
enum vc_reply_kind vc_reply_classify(const char *line, size_t len, uint64_t *n, int *err);

#endif
