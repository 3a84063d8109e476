/*
 * eventnet_disk.h - a node's EventNet files: the journal (the truth,
 * replayed at start-up) and the two text files the notes' AsFer reader
 * reads, EventNetVertices.txt ("<id> - <partakers csv> - <conversations>")
 * and EventNetEdges.txt ("<from>,<to>"), all under eventnet_dir.
 *
 * Blocking I/O: called from the workpool (or at start-up), never from an
 * event loop.  A torn tail of the journal (a crash mid-write) is cut off
 * at start-up and both text files are rewritten from the journal, so the
 * three always agree after a restart.
 */
#ifndef VIRGO_EVENTNET_DISK_H
#define VIRGO_EVENTNET_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "eventnet_graph.h"

/* A growable byte buffer that keeps its capacity: the ingest path swaps
 * two sets of them instead of allocating and freeing per batch.  oom is
 * set (and the bytes dropped) when it cannot grow. */
struct evd_buf {
	char *p;
	size_t n, cap;
	bool oom;
	/* a journal's records: its E and P lines (evd_journal_change counts
	 * them, evd_append adds them to the journal's counts for rotation) */
	uint64_t events, causes;
};
void evd_buf_add(struct evd_buf *b, const void *s, size_t n);
/* Room for n more bytes at b->p + b->n (the caller writes there and
 * adds what it wrote to b->n), or NULL (oom set). */
char *evd_buf_room(struct evd_buf *b, size_t n);
/* Frees the memory (b is empty and usable again). */
void evd_buf_free(struct evd_buf *b);

/* Room for a line without its conversation: id, clock, partakers, numbers. */
#define EVN_LINE_HEAD (256 + EVC_TEXT_MAX + 1024 + 64)

struct evd {
	int dfd, lock_fd, jfd, vfd, efd;
	char dir[512];
	uint64_t repaired_bytes; /* cut off the journal's tail at start-up */
	uint64_t replayed; /* journal records replayed */
	uint64_t skipped; /* of them: about events evicted from memory */
	uint64_t causes; /* P records replayed (EventNetEdges.txt's lines) */
	/* EventNetVertices.txt: line vlines (an event's ordinal) starts at
	 * byte voff; the lines before it are evicted events', never changed
	 * again (a rewrite copies them as they are) */
	uint64_t vlines, voff;
	/* the journal is rotated (eventnet.journal.<events>-<causes>, the
	 * counts of E and P records before it) when it holds rot_events
	 * events or rot_bytes bytes: a replay reads the newest rotated one
	 * and the current one, so restart time stays bounded */
	uint64_t jstart_e, jstart_p; /* E / P records before the current journal */
	uint64_t jevents, jcauses, jbytes; /* in the current journal */
	uint64_t rot_events, rot_bytes;
	uint64_t rotations;
	int old_jfd; /* the journal before the last rotation (evd_sync may hold it) */
};

/* Creates dir (and its parents) if needed, locks it against a second
 * virgod, replays the journal into g (the newest rotated segment and the
 * current one; cutting a torn tail of the current one) and rewrites or
 * repairs the text files.  0, -2 when another process holds the directory, or
 * -1; a sentence in err. */
int evd_open(struct evd *d, const char *dir, struct evg *g, char *err, size_t errlen);
void evd_close(struct evd *d);

/* Appends the three buffers to the journal, the vertices and the edges
 * files and empties them (keeping their memory); rotates the journal when
 * it is due (after an fdatasync of it).  0 or -errno. */
int evd_append(struct evd *d, struct evd_buf *journal, struct evd_buf *vertices,
	       struct evd_buf *edges);
/* fdatasync of the three files.  0 or -errno. */
int evd_sync(struct evd *d);
/* Replaces EventNetVertices.txt by its first base lines (the evicted
 * events': gone[0..ngone), sorted by ordinal, replace theirs) then
 * text[0..n) (the graph's events; temporary file + rename).  The file
 * must have every line up to base.  0 or -errno. */
int evd_replace_vertices(struct evd *d, uint64_t base, const struct evg_gone *gone, size_t ngone,
			 const char *text, size_t n);

/* Formatting (pure; into buffers).  "<node> <seq> <lamport> <vclock>"
 * of e into b (room for EVN_LINE_HEAD); returns its length (no NUL).
 * The journal record, the reply to a log and an EVENT line all carry it. */
size_t evd_event_clocks(const struct evg_event *e, char *b);
/* A journal record of the change ch to the event e (a new event, an
 * appended conversation, added causes); conv[0..conv_len) is the
 * request's conversation (a new event's whole one, or the appended
 * one); clocks[0..clocks_n) is evd_event_clocks() of a new event (NULL:
 * formatted here).  Reads only what never changes once e is recorded
 * (its id, partakers, clocks), so it runs without the service's lock. */
void evd_journal_change(struct evd_buf *j, const struct evg_event *e, const struct evg_change *ch,
			const char *conv, size_t conv_len, const char *clocks, size_t clocks_n);
/* The text files' lines for the change: a new vertex line (or nothing:
 * an appended conversation rewrites the file later), an edge per cause.
 * conv as for evd_journal_change; no lock needed either. */
void evd_text_change(struct evd_buf *v, struct evd_buf *ed, const struct evg_event *e,
		     const struct evg_change *ch, const char *conv, size_t conv_len);
/* The whole EventNetVertices.txt for g. */
void evd_vertices_text(struct evd_buf *out, const struct evg *g);

#endif
