/*
 * cfgval.h - value parsers for the config files (sizes, integers, booleans).
 *
 * Both virgo_cloud.conf (daemon) and virgo_client.conf (libvirgo) take sizes
 * like "256M", bounded integers and yes/no flags; one strict parser each so
 * a typo is an error that names the line rather than a silent default.
 */
#ifndef VIRGO_CFGVAL_H
#define VIRGO_CFGVAL_H

#include <stdbool.h>
#include <stdint.h>

/* "123", "64K", "256M", "2G" (powers of 1024). 0 or -1. */
int cv_size(const char *s, uint64_t *out);
/* Decimal integer within [min,max]. 0 or -1. */
int cv_int(const char *s, long min, long max, long *out);
/* yes/no/true/false/on/off/1/0. 0 or -1. */
int cv_bool(const char *s, bool *out);

#endif
