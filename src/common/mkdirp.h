/*
 * mkdirp.h - `mkdir -p` for the services' data directories (the queue's,
 * EventNet's, cloudfs's export root, cloudsync's epoch directory): every
 * missing component made 0755, an existing one accepted.  One copy of the
 * loop that four services had each written.
 */
#ifndef VIRGO_MKDIRP_H
#define VIRGO_MKDIRP_H

/* Makes path and its missing parents (absolute or relative).  0, or a
 * negative errno (also left in errno); -ENAMETOOLONG past PATH_MAX. */
int mkdirp(const char *path);

#endif
