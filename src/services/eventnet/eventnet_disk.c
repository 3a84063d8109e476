/*
 * eventnet_disk.c - the journal and the text files (eventnet_disk.h).
 *
 * Journal records, one line each (the conversation is the rest of the line):
 *   E <node> <seq> <lamport> <vclock> <id> <partakers|-> <conversation>
 *   C <id> <conversation appended>
 *   P <id> <cause>
 * A line that does not parse, or a last line without its newline, is
 * where a crash tore the file: it and everything after it are cut off.
 * A C or P record of an event no longer in memory (evicted) is skipped.
 *
 * Rotation: once the journal holds as many events as the graph can
 * (eventnet_max_events, or eventnet_max_bytes of journal), it is renamed
 * eventnet.journal.<E>-<P> (E and P: the event and cause records before
 * it) and a new one begins.  Start-up replays the newest rotated file and
 * the current one: at least what the graph holds, never more than about
 * twice that.  Older rotated files are kept (nothing is deleted) and
 * never read again; the text files have every event.
 */
#include "eventnet_disk.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../daemon/log.h"
#include "../../common/mkdirp.h"

#define JOURNAL "eventnet.journal"
#define VERTICES "EventNetVertices.txt"
#define EDGES "EventNetEdges.txt"

/* Splits off the next space-separated field of [*s, end). */
static int field(const char **s, const char *end, struct evg_str *out)
{
	const char *p = *s;
	const char *sp = memchr(p, ' ', (size_t)(end - p));
	if (!sp)
		return -1;
	*out = (struct evg_str){p, (size_t)(sp - p)};
	*s = sp + 1;
	return out->n ? 0 : -1;
}

static int num(struct evg_str f, uint64_t *v)
{
	if (f.n == 0 || f.n > 20)
		return -1;
	uint64_t x = 0;
	for (size_t i = 0; i < f.n; i++) {
		if (f.p[i] < '0' || f.p[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(f.p[i] - '0');
	}
	*v = x;
	return 0;
}

/* Applies one journal line [s, end) (no newline).  0, 1 (about an event
 * evicted from memory: skipped) or -1 (does not parse: a torn tail). */
static int replay_line(struct evg *g, const char *s, const char *end)
{
	if (end - s < 2 || s[1] != ' ')
		return -1;
	char kind = s[0];
	s += 2;
	struct evg_str f[6];
	if (kind == 'E') {
		for (int i = 0; i < 6; i++)
			if (field(&s, end, &f[i]))
				return -1;
		uint64_t node, seq, lam;
		struct evc vc;
		if (num(f[0], &node) || node == 0 || node > 65535 || num(f[1], &seq) ||
		    num(f[2], &lam) || evc_parse(&vc, f[3].p, f[3].n))
			return -1;
		struct evg_str part = f[5];
		if (part.n == 1 && part.p[0] == '-')
			part.n = 0;
		struct evg_str conv = {s, (size_t)(end - s)};
		return evg_replay_event(g, f[4], part, conv, (uint16_t)node, seq, lam, &vc);
	}
	if (kind == 'C' || kind == 'P') {
		if (field(&s, end, &f[0]))
			return -1;
		struct evg_str rest = {s, (size_t)(end - s)};
		if (kind == 'C')
			return evg_replay_conv(g, f[0], rest);
		return rest.n ? evg_replay_cause(g, f[0], rest) : -1;
	}
	return -1;
}

/* Replays the records of map[0..size); returns the length of those that
 * parse (up to the first that does not, or a line without its newline). */
static size_t replay_map(struct evd *d, struct evg *g, const char *map, size_t size)
{
	size_t good = 0;
	while (good < size) {
		const char *nl = memchr(map + good, '\n', size - good);
		int rc = nl ? replay_line(g, map + good, nl) : -1;
		if (rc < 0)
			break;
		if (map[good] == 'P')
			d->causes++;
		good = (size_t)(nl - map) + 1;
		d->replayed++;
		d->skipped += rc == 1;
	}
	return good;
}

/* Counts of E and P records and lines in b[0..n). */
static void count_records(const char *b, size_t n, uint64_t *ev, uint64_t *causes)
{
	for (const char *p = b, *end = b + n; p < end;) {
		if (p[0] == 'E')
			(*ev)++;
		else if (p[0] == 'P')
			(*causes)++;
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			break;
		p = nl + 1;
	}
}

/* The newest rotated journal: its name into name, its counts; false when
 * none. */
static bool newest_rotated(struct evd *d, char *name, size_t cap, uint64_t *e, uint64_t *p)
{
	int fd = openat(d->dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	bool found = false;
	struct dirent *de;
	while ((de = readdir(dir))) {
		unsigned long long a, b;
		int used = 0;
		if (strncmp(de->d_name, JOURNAL ".", sizeof JOURNAL) != 0 ||
		    sscanf(de->d_name + sizeof JOURNAL, "%llu-%llu%n", &a, &b, &used) != 2 ||
		    de->d_name[sizeof JOURNAL + used] != '\0')
			continue;
		if (!found || a > *e) {
			*e = a;
			*p = b;
			snprintf(name, cap, "%s", de->d_name);
			found = true;
		}
	}
	closedir(dir);
	return found;
}

/* Replays a whole rotated journal (written whole before its rotation;
 * a line that does not parse ends it, with a warning).  0 or -1. */
static int replay_rotated(struct evd *d, struct evg *g, const char *name)
{
	int fd = openat(d->dfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t size = (size_t)st.st_size, good = 0;
	const char *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
	close(fd);
	if (map == MAP_FAILED)
		return -1;
	good = replay_map(d, g, map, size);
	if (good < size)
		log_warn("eventnet_rotated_journal_bad dir=%s file=%s offset=%zu", d->dir, name, good);
	if (map)
		munmap((void *)map, size);
	return 0;
}

/* Replays the journal; cuts a torn tail.  0 or -1 (err set). */
static int replay(struct evd *d, struct evg *g, char *err, size_t errlen)
{
	char name[256];
	uint64_t re = 0, rp = 0;
	if (newest_rotated(d, name, sizeof name, &re, &rp)) {
		g->base = re; /* the ordinal of its first event */
		d->causes = rp;
		if (replay_rotated(d, g, name) != 0) {
			snprintf(err, errlen, "%s/%s: %s", d->dir, name, strerror(errno));
			return -1;
		}
	}
	d->jstart_e = g->base + g->n;
	d->jstart_p = d->causes;
	struct stat st;
	if (fstat(d->jfd, &st) != 0) {
		snprintf(err, errlen, "%s/%s: %s", d->dir, JOURNAL, strerror(errno));
		return -1;
	}
	if (st.st_size == 0)
		return 0;
	size_t size = (size_t)st.st_size;
	const char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, d->jfd, 0);
	if (map == MAP_FAILED) {
		snprintf(err, errlen, "%s/%s: mmap: %s", d->dir, JOURNAL, strerror(errno));
		return -1;
	}
	size_t good = replay_map(d, g, map, size);
	count_records(map, good, &d->jevents, &d->jcauses);
	d->jbytes = good;
	munmap((void *)map, size);
	if (good < size) {
		d->repaired_bytes = size - good;
		log_warn("eventnet_journal_repaired dir=%s cut_bytes=%zu kept_records=%" PRIu64,
			 d->dir, size - good, d->replayed);
		if (ftruncate(d->jfd, (off_t)good) != 0 || fsync(d->jfd) != 0) {
			snprintf(err, errlen, "%s/%s: cannot cut the torn tail: %s", d->dir, JOURNAL,
				 strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes text[0..n) as dir/name atomically (tmp + fsync + rename). */
static int replace_file(struct evd *d, const char *name, const char *text, size_t n, int *fdp)
{
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%s.tmp", name);
	int fd = openat(d->dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, text, n);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	close(fd);
	if (rc == 0 && renameat(d->dfd, tmp, d->dfd, name) != 0)
		rc = -errno;
	if (rc)
		return rc;
	if (fdp) { /* reopen for appending: the old descriptor names the old file */
		int nfd = openat(d->dfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (nfd < 0)
			return -errno;
		if (*fdp >= 0)
			close(*fdp);
		*fdp = nfd;
	}
	return 0;
}

/* After a replay that evicted: EventNetVertices.txt keeps the evicted
 * events' lines and gets the graph's; EventNetEdges.txt (append-only)
 * loses a torn last line and gets the lines of the journal's last causes
 * it lacks (a crash between the journal's write and its own). */
static int repair_texts(struct evd *d, struct evg *g)
{
	struct evg_gone *gone;
	size_t ngone;
	evg_take_gone(g, &gone, &ngone);
	struct evd_buf v = {0};
	evd_vertices_text(&v, g);
	int rc = v.oom ? -ENOMEM : evd_replace_vertices(d, g->base, gone, ngone, v.p, v.n);
	evd_buf_free(&v);
	for (size_t i = 0; i < ngone; i++)
		free(gone[i].text);
	free(gone);
	if (rc)
		return rc;
	int fd = openat(d->dfd, EDGES, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	struct stat st;
	uint64_t lines = 0, good = 0;
	if (fstat(fd, &st) == 0 && st.st_size > 0) {
		const char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			rc = -errno;
			close(fd);
			return rc;
		}
		for (const char *p = m, *end = m + st.st_size; p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl)
				break;
			lines++;
			good = (uint64_t)(nl + 1 - m);
			p = nl + 1;
		}
		munmap((void *)m, (size_t)st.st_size);
		if (good < (uint64_t)st.st_size && ftruncate(fd, (off_t)good) != 0)
			rc = -errno;
	}
	if (rc == 0 && lines < d->causes) { /* the journal's last P records */
		struct stat js;
		const char *j = fstat(d->jfd, &js) == 0 && js.st_size > 0
					? mmap(NULL, (size_t)js.st_size, PROT_READ, MAP_PRIVATE, d->jfd, 0)
					: MAP_FAILED;
		struct evd_buf e = {0};
		uint64_t k = d->jstart_p;
		for (const char *p = j, *end = j + js.st_size; j != MAP_FAILED && p < end;) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			if (!nl)
				break;
			if (p[0] == 'P' && k++ >= lines) { /* "P <id> <cause>" */
				const char *sp = memchr(p + 2, ' ', (size_t)(nl - p - 2));
				if (sp) {
					evd_buf_add(&e, sp + 1, (size_t)(nl - sp - 1));
					evd_buf_add(&e, ",", 1);
					evd_buf_add(&e, p + 2, (size_t)(sp - p - 2));
					evd_buf_add(&e, "\n", 1);
				}
			}
			p = nl + 1;
		}
		if (j != MAP_FAILED)
			munmap((void *)j, (size_t)js.st_size);
		rc = e.oom ? -ENOMEM : 0;
		if (rc == 0 && lseek(fd, 0, SEEK_END) >= 0)
			rc = write_all(fd, e.p, e.n);
		if (rc == 0 && fdatasync(fd) != 0)
			rc = -errno;
		evd_buf_free(&e);
	}
	close(fd);
	if (rc)
		return rc;
	int afd = openat(d->dfd, EDGES, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (afd < 0)
		return -errno;
	if (d->efd >= 0)
		close(d->efd);
	d->efd = afd;
	return 0;
}

static int rewrite_texts(struct evd *d, struct evg *g)
{
	if (g->base) /* not all in memory: repaired, not rebuilt */
		return repair_texts(d, g);
	struct evd_buf v = {0}, e = {0};
	evd_vertices_text(&v, g);
	for (uint32_t i = 0; i < g->n; i++) {
		const struct evg_event *ev = g->ev[i];
		for (uint32_t k = 0, np = evg_ev_nparents(ev); k < np; k++) {
			const struct evg_event *p = g->ev[evg_ev_parent(ev, k)];
			evd_buf_add(&e, evg_ev_id(p), p->id_len);
			evd_buf_add(&e, ",", 1);
			evd_buf_add(&e, evg_ev_id(ev), ev->id_len);
			evd_buf_add(&e, "\n", 1);
		}
		for (const char *r = evg_ev_rparents(ev); r && *r;) {
			const char *c = strchr(r, ',');
			size_t n = c ? (size_t)(c - r) : strlen(r);
			evd_buf_add(&e, r, n);
			evd_buf_add(&e, ",", 1);
			evd_buf_add(&e, evg_ev_id(ev), ev->id_len);
			evd_buf_add(&e, "\n", 1);
			r = c ? c + 1 : r + n;
		}
	}
	int rc = v.oom || e.oom ? -ENOMEM : replace_file(d, VERTICES, v.p, v.n, &d->vfd);
	if (rc == 0)
		rc = replace_file(d, EDGES, e.p, e.n, &d->efd);
	evd_buf_free(&v);
	evd_buf_free(&e);
	return rc;
}

int evd_open(struct evd *d, const char *dir, struct evg *g, char *err, size_t errlen)
{
	memset(d, 0, sizeof *d);
	d->dfd = d->lock_fd = d->jfd = d->vfd = d->efd = d->old_jfd = -1;
	d->rot_events = g->max_events;
	d->rot_bytes = g->max_bytes;
	snprintf(d->dir, sizeof d->dir, "%s", dir);
	if (mkdirp(dir) != 0 || (d->dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "eventnet_dir %s: %s", dir, strerror(errno));
		goto fail;
	}
	d->lock_fd = openat(d->dfd, "eventnet.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (d->lock_fd < 0 || flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		bool busy = d->lock_fd >= 0 && errno == EWOULDBLOCK;
		snprintf(err, errlen, "eventnet_dir %s: %s", dir,
			 busy ? "in use by another virgod" : strerror(errno));
		evd_close(d);
		return busy ? -2 : -1;
	}
	d->jfd = openat(d->dfd, JOURNAL, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (d->jfd < 0) {
		snprintf(err, errlen, "%s/%s: %s", dir, JOURNAL, strerror(errno));
		goto fail;
	}
	if (replay(d, g, err, errlen) != 0)
		goto fail;
	int rc = rewrite_texts(d, g);
	if (rc) {
		snprintf(err, errlen, "eventnet_dir %s: writing the text files: %s", dir,
			 strerror(-rc));
		goto fail;
	}
	return 0;
fail:
	evd_close(d);
	return -1;
}

void evd_close(struct evd *d)
{
	int *fds[] = {&d->jfd, &d->old_jfd, &d->vfd, &d->efd, &d->lock_fd, &d->dfd};
	for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

void evd_buf_add(struct evd_buf *b, const void *s, size_t n)
{
	if (b->oom || n == 0)
		return;
	char *p = evd_buf_room(b, n);
	if (!p)
		return;
	memcpy(p, s, n);
	b->n += n;
}

char *evd_buf_room(struct evd_buf *b, size_t n)
{
	if (b->oom)
		return NULL;
	if (b->n + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 65536;
		while (cap < b->n + n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return NULL;
		}
		b->p = p;
		b->cap = cap;
	}
	return b->p + b->n;
}

void evd_buf_free(struct evd_buf *b)
{
	free(b->p);
	*b = (struct evd_buf){0};
}

/* Renames the journal eventnet.journal.<E>-<P> (synced first) and
 * starts a new one.  0 or -errno (the old one stays current). */
static int rotate(struct evd *d)
{
	char name[128];
	snprintf(name, sizeof name, "%s.%" PRIu64 "-%" PRIu64, JOURNAL, d->jstart_e, d->jstart_p);
	if (fdatasync(d->jfd) != 0 || renameat(d->dfd, JOURNAL, d->dfd, name) != 0)
		return -errno;
	int fd = openat(d->dfd, JOURNAL, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		renameat(d->dfd, name, d->dfd, JOURNAL); /* back: nothing lost */
		return -e;
	}
	if (fsync(d->dfd) != 0) { /* the rename and the new file: durable */
		int e = errno;
		close(fd);
		return -e;
	}
	if (d->old_jfd >= 0)
		close(d->old_jfd);
	d->old_jfd = d->jfd;
	__atomic_store_n(&d->jfd, fd, __ATOMIC_RELEASE);
	d->jstart_e += d->jevents;
	d->jstart_p += d->jcauses;
	d->jevents = d->jcauses = d->jbytes = 0;
	d->rotations++;
	log_info("eventnet_journal_rotated dir=%s file=%s", d->dir, name);
	return 0;
}

int evd_append(struct evd *d, struct evd_buf *journal, struct evd_buf *vertices,
	       struct evd_buf *edges)
{
	if (journal->oom || vertices->oom || edges->oom)
		return -ENOMEM;
	d->jevents += journal->events;
	d->jcauses += journal->causes;
	journal->events = journal->causes = 0;
	d->jbytes += journal->n;
	int rc = write_all(d->jfd, journal->p, journal->n);
	if (rc == 0)
		rc = write_all(d->vfd, vertices->p, vertices->n);
	if (rc == 0)
		rc = write_all(d->efd, edges->p, edges->n);
	journal->n = vertices->n = edges->n = 0;
	if (rc == 0 && (d->jevents >= d->rot_events || d->jbytes >= d->rot_bytes)) {
		int r = rotate(d); /* written already: a failed rotation is retried later */
		if (r)
			log_warn_every("eventnet_journal_rotate_failed dir=%s err=%s", d->dir,
				       strerror(-r));
	}
	return rc;
}

int evd_sync(struct evd *d)
{
	/* the journal's descriptor may change under it (rotate): either one
	 * is still open, and the old one was synced before its rename */
	if (fdatasync(__atomic_load_n(&d->jfd, __ATOMIC_ACQUIRE)) != 0 || fdatasync(d->vfd) != 0 ||
	    fdatasync(d->efd) != 0)
		return -errno;
	return 0;
}

/* Copies bytes [0, n) of in to out.  0 or -errno. */
static int copy_prefix(int in, int out, uint64_t n)
{
	off_t off = 0;
	while ((uint64_t)off < n) {
		ssize_t c = copy_file_range(in, &off, out, NULL, (size_t)(n - (uint64_t)off), 0);
		if (c > 0)
			continue;
		if (c < 0 && errno == EINTR)
			continue;
		if (c < 0 && errno != EXDEV && errno != ENOSYS && errno != EOPNOTSUPP &&
		    errno != EINVAL)
			return -errno;
		break; /* no copy_file_range here: by hand */
	}
	char buf[65536];
	while ((uint64_t)off < n) {
		size_t want = n - (uint64_t)off < sizeof buf ? (size_t)(n - (uint64_t)off) : sizeof buf;
		ssize_t r = pread(in, buf, want, off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		int rc = write_all(out, buf, (size_t)r);
		if (rc)
			return rc;
		off += r;
	}
	return 0;
}

/* "<id> - <partakers> - <conversations>\n" of an evicted event. */
static void gone_line(struct evd_buf *b, const struct evg_gone *g)
{
	evd_buf_add(b, g->text, g->id_n);
	evd_buf_add(b, " - ", 3);
	evd_buf_add(b, g->text + g->id_n + 1, g->part_n);
	evd_buf_add(b, " - ", 3);
	evd_buf_add(b, g->text + g->id_n + 1 + g->part_n + 1, g->conv_n);
	evd_buf_add(b, "\n", 1);
}

/* Streams the lines of rfd from *voff on until line base (counting
 * *vlines) into fd, an evicted event's of gone[] in place of its own;
 * advances *voff by the bytes written.  Memory: a 1 MiB window (more for
 * a longer line).  0 or -errno. */
static int copy_lines(int rfd, int fd, uint64_t base, const struct evg_gone *gone, size_t ngone,
		      uint64_t *voff, uint64_t *vlines)
{
	size_t cap = 1 << 20, have = 0, used = 0, gi = 0;
	char *buf = malloc(cap);
	struct evd_buf out = {0};
	uint64_t pos = *voff, wrote = 0;
	int rc = buf ? 0 : -ENOMEM;
	while (gi < ngone && gone[gi].ord < *vlines)
		gi++;
	while (rc == 0 && *vlines < base) {
		char *nl = memchr(buf + used, '\n', have - used);
		if (!nl) { /* the window again, from the line's start */
			memmove(buf, buf + used, have - used);
			have -= used;
			used = 0;
			if (have == cap) { /* a line longer than the window */
				char *nb = realloc(buf, cap * 2);
				if (!nb) {
					rc = -ENOMEM;
					break;
				}
				buf = nb;
				cap *= 2;
			}
			ssize_t r = pread(rfd, buf + have, cap - have, (off_t)pos);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				rc = -errno;
			if (r <= 0)
				break; /* the end (a torn last line is not an evicted event's) */
			have += (size_t)r;
			pos += (uint64_t)r;
			continue;
		}
		size_t ll = (size_t)(nl + 1 - (buf + used));
		if (gi < ngone && gone[gi].ord == *vlines)
			gone_line(&out, &gone[gi++]); /* with its appended conversations */
		else
			evd_buf_add(&out, buf + used, ll);
		used += ll;
		(*vlines)++;
		if (out.n >= (1 << 20) || *vlines == base) {
			rc = out.oom ? -ENOMEM : write_all(fd, out.p, out.n);
			wrote += out.n;
			out.n = 0;
		}
	}
	if (rc == 0 && out.n) {
		rc = out.oom ? -ENOMEM : write_all(fd, out.p, out.n);
		wrote += out.n;
	}
	*voff += wrote;
	free(buf);
	evd_buf_free(&out);
	return rc;
}

int evd_replace_vertices(struct evd *d, uint64_t base, const struct evg_gone *gone, size_t ngone,
			 const char *text, size_t n)
{
	if (base == 0 && d->vlines == 0)
		return replace_file(d, VERTICES, text, n, &d->vfd);
	/* [0, voff) as it is; the lines of the events evicted since the last
	 * rewrite streamed from voff on; then the graph's part, text */
	int rfd = openat(d->dfd, VERTICES, O_RDONLY | O_CREAT | O_CLOEXEC, 0644);
	if (rfd < 0)
		return -errno;
	struct stat st;
	int rc = fstat(rfd, &st) == 0 ? 0 : -errno;
	uint64_t voff = d->voff, vlines = d->vlines;
	if (rc == 0 && voff > (uint64_t)st.st_size) { /* not the file we knew: counted again */
		voff = 0;
		vlines = 0;
	}
	char tmp[64];
	snprintf(tmp, sizeof tmp, "%s.tmp", VERTICES);
	int fd = rc == 0 ? openat(d->dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
	if (rc == 0 && fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = copy_prefix(rfd, fd, voff);
	if (rc == 0)
		rc = copy_lines(rfd, fd, base, gone, ngone, &voff, &vlines);
	close(rfd);
	if (rc == 0)
		rc = write_all(fd, text, n);
	if (rc == 0 && fdatasync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && renameat(d->dfd, tmp, d->dfd, VERTICES) != 0)
		rc = -errno;
	if (rc == 0) {
		int nfd = openat(d->dfd, VERTICES, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (nfd < 0) {
			rc = -errno;
		} else {
			if (d->vfd >= 0)
				close(d->vfd);
			d->vfd = nfd;
			d->voff = voff;
			d->vlines = vlines;
		}
	}
	return rc;
}

/* Line building without printf (this is the ingest path). */
#define PUT(str, len)                                                                              \
	do {                                                                                       \
		memcpy(b + n, (str), (len));                                                       \
		n += (len);                                                                        \
	} while (0)
#define PUTS(lit) PUT(lit, sizeof(lit) - 1)

/* The sequence number in decimal is usually also the Lamport time and
 * the node's own clock entry (one node, or one that leads): copied, not
 * formatted again (this runs under the graph's lock for every event). */
size_t evd_event_clocks(const struct evg_event *e, char *b)
{
	size_t n = evc_u64(b, e->node);
	b[n++] = ' ';
	char *seq = b + n;
	size_t sl = evc_u64(seq, e->seq);
	n += sl;
	b[n++] = ' ';
	if (e->lamport == e->seq) {
		memcpy(b + n, seq, sl);
		n += sl;
	} else {
		n += evc_u64(b + n, e->lamport);
	}
	b[n++] = ' ';
	struct evc_ent vc[EVC_MAX];
	unsigned vcn = evg_ev_clock(e, vc);
	if (vcn == 0) {
		b[n++] = '-';
		return n;
	}
	for (unsigned i = 0; i < vcn; i++) {
		if (i)
			b[n++] = ',';
		n += evc_u64(b + n, vc[i].node);
		b[n++] = ':';
		if (vc[i].c == e->seq) {
			memcpy(b + n, seq, sl);
			n += sl;
		} else {
			n += evc_u64(b + n, vc[i].c);
		}
	}
	return n;
}

void evd_journal_change(struct evd_buf *j, const struct evg_event *e, const struct evg_change *ch,
			const char *conv, size_t conv_len, const char *clocks, size_t clocks_n)
{
	char *b;
	size_t n = 0;
	if (ch->created) {
		/* formatted in place: "E <clocks> <id> <partakers|-> <conv>\n" */
		size_t pl = strlen(evg_ev_partakers(e));
		if (!(b = evd_buf_room(j, 2 + (clocks ? clocks_n : EVN_LINE_HEAD) + 1 + e->id_len + 1 +
						  pl + 2 + conv_len + 1)))
			return;
		PUTS("E ");
		if (clocks)
			PUT(clocks, clocks_n);
		else
			n += evd_event_clocks(e, b + n);
		b[n++] = ' ';
		PUT(evg_ev_id(e), e->id_len);
		b[n++] = ' ';
		if (pl)
			PUT(evg_ev_partakers(e), pl);
		else
			b[n++] = '-';
		b[n++] = ' ';
		if (conv_len)
			PUT(conv, conv_len);
		b[n++] = '\n';
		j->n += n;
		j->events++;
	} else if (ch->conv_appended) {
		if (!(b = evd_buf_room(j, 2 + e->id_len + 1 + conv_len + 1)))
			return;
		PUTS("C ");
		PUT(evg_ev_id(e), e->id_len);
		b[n++] = ' ';
		PUT(conv, conv_len);
		b[n++] = '\n';
		j->n += n;
	}
	for (unsigned k = 0; k < ch->nadded; k++) {
		if (!(b = evd_buf_room(j, 2 + e->id_len + 1 + ch->added[k].n + 1)))
			return;
		n = 0;
		PUTS("P ");
		PUT(evg_ev_id(e), e->id_len);
		b[n++] = ' ';
		PUT(ch->added[k].p, ch->added[k].n);
		b[n++] = '\n';
		j->n += n;
		j->causes++;
	}
}

static void vertex_line(struct evd_buf *v, const struct evg_event *e, const char *conv,
			size_t conv_len)
{
	/* formatted in place: "<id> - <partakers> - <conv>\n" */
	size_t n = 0, pl = strlen(evg_ev_partakers(e));
	char *b = evd_buf_room(v, e->id_len + 3 + pl + 3 + conv_len + 1);
	if (!b)
		return;
	PUT(evg_ev_id(e), e->id_len);
	PUTS(" - ");
	PUT(evg_ev_partakers(e), pl);
	PUTS(" - ");
	if (conv_len)
		PUT(conv, conv_len);
	b[n++] = '\n';
	v->n += n;
}

void evd_text_change(struct evd_buf *v, struct evd_buf *e, const struct evg_event *ev,
		     const struct evg_change *ch, const char *conv, size_t conv_len)
{
	if (ch->created)
		vertex_line(v, ev, conv, conv_len);
	for (unsigned k = 0; k < ch->nadded; k++) {
		size_t n = 0;
		char *b = evd_buf_room(e, ch->added[k].n + 1 + ev->id_len + 1);
		if (!b)
			return;
		PUT(ch->added[k].p, ch->added[k].n);
		b[n++] = ',';
		PUT(evg_ev_id(ev), ev->id_len);
		b[n++] = '\n';
		e->n += n;
	}
}

void evd_vertices_text(struct evd_buf *out, const struct evg *g)
{
	for (uint32_t i = 0; i < g->n; i++) {
		size_t cl;
		const char *c = evg_ev_conv(g->ev[i], &cl);
		vertex_line(out, g->ev[i], c, cl);
	}
}
