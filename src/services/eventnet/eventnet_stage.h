/*
 * eventnet_stage.h - the changes of one round of requests, staged while
 * the service holds the graph's lock and turned into journal and text
 * lines after it let go (eventnet.c).  Half of the work per event was
 * this formatting; under the lock it made ingest from many connections
 * serial.  The lines of a round reach the journal in the order the
 * rounds changed the graph (the service numbers the rounds under the
 * lock), so a replayed journal always has an event's causes before it.
 *
 * Formatting reads only what a recorded event never changes (its id,
 * partakers and clocks) and the request's own conversation bytes, which
 * must stay valid until evn_stage_format returns.
 */
#ifndef VIRGO_EVENTNET_STAGE_H
#define VIRGO_EVENTNET_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "eventnet_disk.h"
#include "eventnet_graph.h"

#define EVN_STAGE_CLOCKS 96 /* a one-to-three-node clock fits */

struct evn_stage_item {
	const struct evg_event *e;
	struct evg_change ch;
	const char *conv; /* the request's conversation, conv_len bytes */
	size_t conv_len;
	/* evd_event_clocks() of a new event when its reply formatted them
	 * (clocks_n 0: the journal line formats them) */
	uint8_t clocks_n;
	char clocks[EVN_STAGE_CLOCKS];
};

struct evn_stage {
	struct evn_stage_item *it; /* malloc'd, kept between rounds */
	unsigned n, cap;
	bool oom; /* a change could not be staged: its lines are lost */
	uint64_t ticket; /* the round's place in the journal's order */
	unsigned ready; /* changes formatted into j, v, e, not yet queued (0: none) */
	struct evd_buf j, v, e; /* the formatted journal, vertices, edges lines */
};

/* Stages the change ch of the recorded event e (copied). */
void evn_stage_add(struct evn_stage *s, const struct evg_event *e, const struct evg_change *ch,
		   const char *conv, size_t conv_len);
/* Formats every staged change into j, v and e (appended) and empties
 * the list.  No lock needed. */
void evn_stage_format(struct evn_stage *s);
/* Frees the memory (s is empty and usable again). */
void evn_stage_free(struct evn_stage *s);

#endif
