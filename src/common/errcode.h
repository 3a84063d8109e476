/*
 * errcode.h - the stable error words of the wire protocol.
 *
 * Every error reply is "ERR <CODE> <sentence>", where CODE is an errno name
 * (ENOENT, ENOMEM, ...).  The daemon turns a negative errno into the word,
 * libvirgo turns the word back into the same negative errno, so a C caller
 * sees exactly the error the node meant.
 */
#ifndef VIRGO_ERRCODE_H
#define VIRGO_ERRCODE_H

#include <stddef.h>

/* Name of a positive errno value ("EIO" for anything unlisted). */
const char *ec_name(int err);
/* Positive errno for a name of n bytes; EPROTO if the name is unknown. */
int ec_from_name(const char *s, size_t n);

#endif
