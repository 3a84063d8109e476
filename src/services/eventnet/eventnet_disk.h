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

#include <stddef.h>
#include <stdint.h>

#include "eventnet_graph.h"

struct evbuffer;

struct evd {
	int dfd, lock_fd, jfd, vfd, efd;
	char dir[512];
	uint64_t repaired_bytes; /* cut off the journal's tail at start-up */
	uint64_t replayed; /* journal records replayed */
};

/* Creates dir (and its parents) if needed, locks it against a second
 * virgod, replays the journal into g (cutting a torn tail) and rewrites
 * the text files.  0, or -1 with a sentence in err. */
int evd_open(struct evd *d, const char *dir, struct evg *g, char *err, size_t errlen);
void evd_close(struct evd *d);

/* Appends (and drains) the three buffers to the journal, the vertices
 * and the edges files.  0 or -errno. */
int evd_append(struct evd *d, struct evbuffer *journal, struct evbuffer *vertices,
	       struct evbuffer *edges);
/* fdatasync of the three files.  0 or -errno. */
int evd_sync(struct evd *d);
/* Replaces EventNetVertices.txt by text[0..n) (temporary file + rename).
 * 0 or -errno. */
int evd_replace_vertices(struct evd *d, const char *text, size_t n);

/* Formatting (pure; into evbuffers).  A journal record of the change ch
 * (its new event, appended conversation, added causes). */
void evd_journal_change(struct evbuffer *j, const struct evg *g, const struct evg_change *ch,
			const char *conv, size_t conv_len);
/* The text files' lines for the change: a new vertex line (or nothing:
 * an appended conversation rewrites the file later), an edge per cause. */
void evd_text_change(struct evbuffer *v, struct evbuffer *e, const struct evg *g,
		     const struct evg_change *ch);
/* The whole EventNetVertices.txt for g. */
void evd_vertices_text(struct evbuffer *out, const struct evg *g);

#endif
