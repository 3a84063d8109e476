/*
 * bw.h - the node's bulk-transfer bandwidth cap (the MaxNetworkBandwidth
 * live knob, knob.h): one token bucket per direction for the whole node,
 * shared by every connection of the services that declare bulk traffic
 * (struct vsvc's bulk: cloudfs reads and writes, queue fan-out).
 *
 * server.c is the one place that asks it, around the reads and writes it
 * makes for those connections.  A path that writes to the socket itself
 * (sendfile/splice of a cloudfs read) must ask it too, the same way:
 *
 *     uint64_t wait_us;
 *     size_t n = bw_take(BW_TX, len, &wait_us);   // before each send
 *     if (n == 0) -> send nothing; try again in wait_us (a timer on the
 *                    connection's loop; never spin, never sleep the loop)
 *     sent = sendfile(fd, file, &off, n);         // at most n bytes
 *     bw_refund(BW_TX, n - (sent > 0 ? sent : 0)); // what did not go out
 *
 * With no cap, bw_take returns len at once (one atomic load): callers
 * need no separate fast path.  Thread-safe; process-wide (one virgod is
 * one node).
 */
#ifndef VIRGO_BW_H
#define VIRGO_BW_H

#include <stddef.h>
#include <stdint.h>

enum bw_dir {
	BW_TX, /* bytes the node sends */
	BW_RX, /* bytes the node receives */
};

/* The longest wait bw_take ever asks for: a raised or removed cap takes
 * effect for a waiting connection within this. */
#define BW_MAX_WAIT_US 50000

/* The cap in Mbit/s (10^6 bits) for each direction; 0: none.  Takes
 * effect for the next bw_take. */
void bw_set_mbit(uint64_t mbit);
uint64_t bw_mbit(void);

/* May want bytes cross now in direction d?  Returns how many may
 * (1..want), taken from the node's bucket; or 0, and *wait_us (at most
 * BW_MAX_WAIT_US) is when to ask again.  A grant is at least
 * min(want, 16 KiB) so that a capped transfer does not dribble; bursts
 * are bounded to 100 ms of the rate. */
size_t bw_take(enum bw_dir d, size_t want, uint64_t *wait_us);

/* Gives back n bytes of a grant that were not sent or received (a short
 * write or read). */
void bw_refund(enum bw_dir d, size_t n);

#endif
