/*
 * cloudsync_epoch.h - the durable part of fencing tokens: a boot epoch.
 *
 * A token is epoch * CS_EPOCH_BLOCK + a counter that starts at 1 on every
 * boot (so token 3000000000017 is the 17th of epoch 3, readable as is),
 * and each boot of a node durably reserves one block of 10^12 tokens: the epoch is incremented, written and fsync'd before the node
 * listens (at init, never on an event loop), and every token handed out
 * later is above every token any earlier boot could have handed out --
 * without an fsync per acquire.
 */
#ifndef VIRGO_CLOUDSYNC_EPOCH_H
#define VIRGO_CLOUDSYNC_EPOCH_H

#include <stddef.h>
#include <stdint.h>

#define CS_EPOCH_BLOCK UINT64_C(1000000000000)
#define CS_EPOCH_MAX UINT64_C(9000000) /* tokens stay below 2^63 */
#define CS_SEQ_MAX (CS_EPOCH_BLOCK - 1) /* tickets per boot */

/* Takes the next epoch from <dir>/cloudsync-<node_id>.epoch (creating dir
 * and file as needed; a missing file is epoch 0), durably: the new value
 * is written to a temporary file, fsync'd, renamed over the old one and
 * the directory fsync'd, all under an flock so two daemons sharing the
 * file never take the same epoch.  0 and *epoch, or a negative errno with
 * a sentence in err. */
int cs_epoch_next(const char *dir, unsigned node_id, uint64_t *epoch, char *err, size_t errlen);

#endif
