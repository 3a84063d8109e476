/*
 * queue_owner.c - who owns each consumer group (queue_int.h).
 *
 * The identity whose join creates a group owns it (issue 21): a join by
 * another identity is refused with EACCES unless the owner created it
 * shared ("join <topic> <group> [<max_inflight>] shared").  Acks need a
 * joined connection, so the join is the one door.  An unauthenticated
 * node's clients are all identity 0, which owns nothing: their groups are
 * anyone's, as before identities.  Owners live in memory for every group
 * the node has seen (groups themselves are freed when idle) and on disk
 * as the second line of <topic>/<group>.group, "owner <hex> shared|private",
 * written with the group's position (queue_deliver.c), and read back for
 * every topic at start-up, so a restart does not hand a group to whoever
 * joins first.  The identities in queue_group_admins may join any group
 * (an operator draining a group whose owner is gone).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../daemon/log.h"
#include "queue_int.h"

#define QO_MAX 4096 /* owned groups remembered by one node */

struct q_gowner {
	char topic[QP_NAME_MAX + 1], group[QP_NAME_MAX + 1];
	uint64_t ident;
	bool shared;
};

int qo_format(char *buf, size_t cap, uint64_t ident, bool shared)
{
	return snprintf(buf, cap, "owner %016" PRIx64 " %s\n", ident, shared ? "shared" : "private");
}

int qo_parse(const char *line, size_t len, uint64_t *ident, bool *shared)
{
	/* "owner " 16 hex digits, ' ', "shared" or "private", optional LF */
	if (len < 6 + 16 + 1 + 6 || memcmp(line, "owner ", 6) != 0 || line[22] != ' ')
		return -1;
	uint64_t v = 0;
	for (int i = 6; i < 22; i++) {
		char c = line[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return -1;
		v = v << 4 | (uint64_t)d;
	}
	const char *w = line + 23;
	size_t wl = len - 23;
	if (wl && w[wl - 1] == '\n')
		wl--;
	if (wl == 6 && memcmp(w, "shared", 6) == 0)
		*shared = true;
	else if (wl == 7 && memcmp(w, "private", 7) == 0)
		*shared = false;
	else
		return -1;
	*ident = v;
	return 0;
}

static struct q_gowner *find(struct queue *q, const char *topic, const char *group)
{
	for (int i = 0; i < q->ngowners; i++)
		if (strcmp(q->gowners[i].topic, topic) == 0 && strcmp(q->gowners[i].group, group) == 0)
			return &q->gowners[i];
	return NULL;
}

static struct q_gowner *add(struct queue *q, const char *topic, const char *group)
{
	if (q->ngowners == q->cap_gowners) {
		if (q->cap_gowners >= QO_MAX)
			return NULL;
		int cap = q->cap_gowners ? q->cap_gowners * 2 : 16;
		struct q_gowner *n = realloc(q->gowners, (size_t)cap * sizeof *n);
		if (!n)
			return NULL;
		q->gowners = n;
		q->cap_gowners = cap;
	}
	struct q_gowner *o = &q->gowners[q->ngowners++];
	snprintf(o->topic, sizeof o->topic, "%s", topic);
	snprintf(o->group, sizeof o->group, "%s", group);
	return o;
}

int qo_claim(struct queue *q, const char *topic, const char *group, uint64_t ident, bool shared,
	     bool admin, bool *is_shared, bool *changed)
{
	struct q_gowner *o = find(q, topic, group);
	*changed = false;
	if (o) {
		if (o->ident != ident && !o->shared && !admin)
			return -EACCES;
		if (o->ident == ident && shared && !o->shared)
			*changed = o->shared = true; /* the owner shares it now */
		*is_shared = o->shared;
		return 0;
	}
	*is_shared = shared;
	if (ident == 0) /* no identity: nothing to own */
		return 0;
	if (!(o = add(q, topic, group)))
		return -ENOSPC;
	o->ident = ident;
	o->shared = shared;
	*changed = true;
	return 0;
}

uint64_t qo_owner(struct queue *q, const char *topic, const char *group)
{
	struct q_gowner *o = find(q, topic, group);
	return o ? o->ident : 0;
}

/* The owner line of one group file, if it has one. */
static void load_file(struct queue *q, const char *topic, const char *dir, const char *file)
{
	char path[1024], line[64];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	uint64_t ident;
	bool shared;
	if (fgets(line, sizeof line, f) && fgets(line, sizeof line, f) &&
	    qo_parse(line, strlen(line), &ident, &shared) == 0 && ident != 0) {
		char group[QP_NAME_MAX + 1];
		snprintf(group, sizeof group, "%.*s", (int)(strlen(file) - 6), file);
		struct q_gowner *o = find(q, topic, group);
		if (!o && !(o = add(q, topic, group)))
			log_warn("queue_group_owners: more than %d owned groups; %s/%s is anyone's",
				 QO_MAX, topic, group);
		if (o) {
			o->ident = ident;
			o->shared = shared;
		}
	}
	fclose(f);
}

void qo_load(struct queue *q)
{
	for (int i = 0; i < q->ntopics; i++) {
		const char *dir = ql_path(q->topics[i]);
		DIR *d = opendir(dir);
		if (!d)
			continue;
		struct dirent *de;
		while ((de = readdir(d))) {
			size_t n = strlen(de->d_name);
			if (n > 6 && strcmp(de->d_name + n - 6, ".group") == 0 &&
			    qp_name_valid(de->d_name, n - 6))
				load_file(q, ql_name(q->topics[i]), dir, de->d_name);
		}
		closedir(d);
	}
}

void qo_free(struct queue *q)
{
	free(q->gowners);
	q->gowners = NULL;
	q->ngowners = q->cap_gowners = 0;
}
