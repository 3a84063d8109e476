/*
 * virgo.h - the public C API of libvirgo, the VIRGO cluster client.
 *
 * These are the notes' system calls (virgo_malloc/set/get/free, later
 * virgo_clone, virgo_open/read/write/close, ...) as library calls that talk
 * to virgod nodes over TCP.  Every call is thread-safe: the library owns a
 * connection pool per node and serialises nothing on the caller's behalf
 * beyond what correctness needs.  Every call returns 0 (or a non-negative
 * count) on success and a negative errno-style code on failure; pass it to
 * virgo_strerror() for a sentence.  Memory returned to the caller is always
 * released with free(); the comment on each call says when that applies.
 */
#ifndef VIRGO_H
#define VIRGO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VIRGO_VERSION "0.1.0"

/* A VIRGO Unique ID: 64 bits, cluster-unique.  Bits 63..48 hold the owning
 * node's id, bit 47 marks an allocation that spans nodes, bits 46..0 are the
 * owning node's sequence number. */
typedef uint64_t virgo_vuid_t;

/* Errors beyond the errno values (all negative when returned). */
#define VIRGO_EPROTO_BASE 2000
enum {
	VIRGO_ENONODE = VIRGO_EPROTO_BASE + 1, /* no node reachable / configured */
	VIRGO_EBADREPLY = VIRGO_EPROTO_BASE + 2, /* node answered something unparsable */
	VIRGO_ECONF = VIRGO_EPROTO_BASE + 3, /* client configuration invalid */
};

/* Initialise the process-wide client from a virgo_client.conf.  path may be
 * NULL: then $VIRGO_CLIENT_CONF, $VIRGO_CONF_DIR/virgo_client.conf,
 * /etc/virgo/virgo_client.conf and finally the built-in loopback cluster
 * (nodes 1..3 at port offsets 0..2) are tried in that order.  Calling any
 * other function first initialises with path NULL.  Calling virgo_init
 * again after virgo_fini re-reads the configuration. */
int virgo_init(const char *path);

/* Close every pooled connection and forget the configuration.  Waits for
 * async jobs (virgo_clone_submit, ...) still running; their results stay
 * waitable.  No other virgo_* call may be running in another thread of
 * the caller's at that moment. */
void virgo_fini(void);

/* A human sentence for a code returned by any virgo_* call (static string). */
const char *virgo_strerror(int err);

/* What went wrong in the calling thread's last virgo_* call, in more
 * words than its code: when a node failed it or answered an error,
 * "node <id> (<host>:<port>): <operation>: <the node's own sentence, or
 * the transport error>", e.g. "node 2 (127.0.0.1:10001): clone 'nosuchfn':
 * no such function (not a built-in, not in a plugin library)"; for a
 * configuration error, the file, line and reason; else "<operation>:
 * <reason>", or "" when there is nothing to add to virgo_strerror(rc).
 * Read it right after a call that returned an error: after a success it
 * is "" or describes a failure the call recovered from (a node it
 * skipped).  Control bytes from the node are shown as '?'.
 * virgo_job_wait hands over the job thread's detail.  The string belongs
 * to the library and to this thread: never NULL, do not free it; valid
 * until the thread's next virgo_* call (virgo_strerror and
 * virgo_last_error itself leave it alone). */
const char *virgo_last_error(void);

/* ---- memory pooling (notes §887, §894, §947) ---------------------------- */

/* Allocate size bytes somewhere in the cluster; the node is chosen by the
 * configured policy.  Sizes above the configured chunk_size are split into
 * chunks on several nodes; the returned VUID names the whole span.
 * -EINVAL for size 0; -ENOMEM when the nodes cannot hold it, and at once
 * (without asking any node) for a size above chunk_size * 65536, the most
 * one span can hold (so virgo_malloc(SIZE_MAX) is -ENOMEM).  It carries
 * the process's default owner tag (virgo_owner_default: "<host>:<pid>"). */
int virgo_malloc(size_t size, virgo_vuid_t *vuid);

/* Replace the value: write len bytes at offset 0 and make len the stored
 * length (get returns exactly these bytes).  len may not exceed the size. */
int virgo_set(virgo_vuid_t vuid, const void *data, size_t len);

/* Patch: write len bytes at offset; the stored length grows to cover them
 * if needed.  offset+len may not exceed the allocation's size. */
int virgo_set_at(virgo_vuid_t vuid, size_t offset, const void *data, size_t len);

/* ---- leases, owner tags, listing (docs/PROTOCOL.md "Finding memory") ---- */

/* Options of virgo_malloc_ex; a zeroed struct (or NULL) is virgo_malloc. */
struct virgo_malloc_opts {
	uint64_t ttl_ms; /* lease: the node frees it this long after the last
			  * malloc/renew (counted in whole seconds, checked
			  * about once a second); 0: never */
	const char *owner; /* tag for virgo_free_owner/virgo ls: 1..64 chars of
			    * A-Z a-z 0-9 . _ - : @ / (borrowed); NULL: the
			    * process's default, virgo_owner_default(); "": no
			    * tag at all */
	/* Identities (docs/SECURITY.md): on a node with client certificates
	 * or a token, an allocation belongs to the identity that made it and
	 * others get -EACCES; shared = 1 lets every identity use it. */
	int shared;
};
/* The owner tag every malloc of this process carries unless it names one
 * (virgo_malloc too): $VIRGO_OWNER when that is a valid tag, else
 * "<host>:<pid>" (the host name cut to 53 bytes, characters a tag cannot
 * hold as '_'), so `virgo free --owner <host>:<pid>` reclaims what a
 * crashed program left.  A static per-thread string (do not free), valid
 * until this thread's next call of it. */
const char *virgo_owner_default(void);
/* (Every malloc carries a request id: a malloc that got no reply is sent
 * again by a later malloc/free call of this process and what it allocated
 * freed; docs/PROTOCOL.md "Finding memory again".)
 * virgo_malloc with a lease and/or owner tag; a span's chunks and its
 * descriptor all get them.  -EINVAL for a bad tag. */
int virgo_malloc_ex(size_t size, const struct virgo_malloc_opts *opts, virgo_vuid_t *vuid);
/* Restart an allocation's lease: ttl_ms from now (0 removes the lease).
 * For a span, every chunk and the descriptor.  0, -ENOENT, ... */
int virgo_renew(virgo_vuid_t vuid, uint64_t ttl_ms);
/* Free every allocation tagged owner on every configured node; *freed
 * (may be NULL) gets how many.  Nodes that do not answer are skipped and
 * the first such error returned (after asking the others). */
int virgo_free_owner(const char *owner, uint64_t *freed);

/* One allocation as a node lists it. */
struct virgo_alloc_info {
	virgo_vuid_t vuid;
	uint64_t size; /* bytes allocated */
	uint64_t len; /* stored length (what a whole-value get returns) */
	uint64_t age_s; /* seconds since the malloc */
	uint64_t idle_s; /* seconds since the last set/get/renew */
	int64_t ttl_s; /* seconds left of its lease; -1: no lease */
	char owner[65]; /* owner tag, "" if none */
};
/* One page of the idx-th node's allocations (0-based, virgo_node_info):
 * pass *cursor = 0 for the first page; it is set to the next page's cursor,
 * 0 after the last.  max: entries wanted (1..1000; a page may hold a few
 * more, as the node ends pages between hash buckets).  *out is malloc'd
 * (caller frees; NULL when *n is 0).  Allocations that exist for the whole
 * listing are listed exactly once. */
int virgo_ls(int idx, uint64_t *cursor, size_t max, struct virgo_alloc_info **out, size_t *n);

/* Read the stored value.  On success *data is a malloc'd buffer the caller
 * frees (NULL when *len is 0) and *len its length.  -E2BIG when one
 * unspanned allocation holds more than its node's max_value (no reply is
 * larger): read it in pieces with virgo_get_at. */
int virgo_get(virgo_vuid_t vuid, void **data, size_t *len);

/* Read exactly len bytes at offset into buf (bytes never written read as
 * zero).  offset+len may not exceed the allocation's size. */
int virgo_get_at(virgo_vuid_t vuid, size_t offset, void *buf, size_t len);

/* Release the allocation (every chunk of a span).  If a chunk's node
 * cannot be reached, the chunks that could be are freed, the span itself
 * is kept and that node's error (-ETIMEDOUT, -ECONNREFUSED, ...) is
 * returned: call virgo_free again once the node is back to free the rest.
 * (Chunks a failed virgo_malloc could not free back are remembered and
 * freed by later virgo_malloc/virgo_free calls once their node answers.)
 * A free whose connection broke after it was sent is not re-sent, so a
 * second virgo_free may then answer -ENOENT. */
int virgo_free(virgo_vuid_t vuid);

/* Format a VUID as the wire does (bare lowercase hex); buf needs 17 bytes. */
void virgo_vuid_format(virgo_vuid_t vuid, char buf[17]);
/* Parse bare hex (optionally 0x-prefixed or double-quoted); 0 or -EINVAL. */
int virgo_vuid_parse(const char *s, virgo_vuid_t *vuid);
/* The id of the node that owns the VUID (for a span: the descriptor's node). */
unsigned virgo_vuid_node(virgo_vuid_t vuid);

/* ---- CPU pooling: virgo_clone (notes §888-§890, §937) -------------------- */

/* THE signature of a plugin function.  A node's config lists plugin
 * libraries (plugins = /path/libfoo.so); `virgo_clone("name", ...)` runs the
 * exported function `name` of that signature on a worker thread of the
 * chosen node.  arg/arg_len: the caller's bytes (binary; may hold NULs).
 * On success return 0 and set *out to a malloc'd buffer (the node frees it)
 * and *out_len to its length (*out may stay NULL when *out_len is 0).  On
 * failure return a negative errno; the caller gets that error.  *cancel
 * becomes non-zero when the client went away or the job timed out: a long
 * function should poll it (__atomic_load_n(cancel, __ATOMIC_ACQUIRE) keeps
 * thread sanitizers quiet) and return -ECANCELED.  Functions run
 * concurrently on several threads and must be thread-safe. */
typedef int (*virgo_fn)(const void *arg, size_t arg_len, void **out, size_t *out_len,
			const volatile int *cancel);

/* A plugin's export table: the functions clients may call by name.  A
 * plugin library defines, with default visibility,
 *
 *   const struct virgo_plugin_function virgo_plugin_functions[] = {
 *       {"wordcount", wordcount},
 *       {NULL, NULL},
 *   };
 *
 * and then exactly the entries before the {NULL, NULL} terminator are
 * callable (names [A-Za-z_][A-Za-z0-9_]*; the first library listing a name
 * wins).  Nothing else the library exports is reachable, so a data symbol
 * or a helper of another signature can never be called by a client.  A
 * library without the table is still accepted: then a name is callable
 * only if it is a function symbol (ELF STT_FUNC) defined in that library
 * itself; declare it with the virgo_fn signature, since nothing can check
 * the signature. */
struct virgo_plugin_function {
	const char *name;
	virgo_fn fn;
};
#define VIRGO_PLUGIN_TABLE "virgo_plugin_functions"

/* Optional in a plugin library: what the node offers its functions.  A
 * library that defines (default visibility)
 *   const struct virgo_plugin_host *virgo_plugin_host;
 * finds it set when the node loads it.  analytics_get copies the node's
 * kernel analytics variable key (see "kernel analytics" below) into buf,
 * NUL-terminated and truncated to cap, and returns the value's length,
 * or -ENOENT; callable from any plugin function, any thread. */
struct virgo_plugin_host {
	int version; /* 1 */
	int (*analytics_get)(const char *key, char *buf, size_t cap);
};
#define VIRGO_PLUGIN_HOST "virgo_plugin_host"

/* Placement policies (virgo_client.conf `clone_policy`, or per call). */
enum virgo_policy {
	VIRGO_POLICY_DEFAULT = 0, /* the configured clone_policy */
	VIRGO_POLICY_RANDOM, /* the notes' PRG balancer (§890) */
	VIRGO_POLICY_ROUND_ROBIN,
	VIRGO_POLICY_LEAST_LOADED, /* load table refreshed from the nodes (§889) */
	VIRGO_POLICY_POWER_OF_TWO, /* two random nodes, the lighter one */
	VIRGO_POLICY_LEARNED, /* lowest expected completion time (§898) */
};
/* Name of a policy ("random", ...) or NULL; and back (-EINVAL if unknown). */
const char *virgo_policy_name(int policy);
int virgo_policy_parse(const char *name);

/* Per-call options; a NULL pointer or zeroed struct means defaults. */
struct virgo_call_opts {
	int policy; /* enum virgo_policy */
	unsigned node_id; /* run on exactly this node (0: let the policy pick) */
	int timeout_ms; /* job deadline on the node and client wait (0: config) */
};

/* Run function fn (a built-in such as virgo_cloud_test, or a plugin
 * function) on the node the policy picks, with arg_len bytes of argument.
 * On success *out is the malloc'd result (caller frees; NULL if *out_len
 * is 0).  Errors: -ENOENT (no such function), -EBUSY (node full),
 * -ETIMEDOUT, -ECONNRESET (node died mid-job), or the function's own. */
int virgo_clone(const char *fn, const void *arg, size_t arg_len, void **out, size_t *out_len);
/* virgo_clone with options; *ran_on (may be NULL) gets the node id used. */
int virgo_clone_ex(const char *fn, const void *arg, size_t arg_len,
		   const struct virgo_call_opts *opts, void **out, size_t *out_len,
		   unsigned *ran_on);

/* Result of running a program. */
struct virgo_run_result {
	int exit_code; /* exit status, or 128+signal when killed by one */
	int signaled; /* 1 if term_signal killed it */
	int term_signal;
	int truncated; /* stdout or stderr exceeded the node's output_cap */
	void *out, *err; /* malloc'd stdout / stderr (free with the call below) */
	size_t out_len, err_len;
	unsigned node_id; /* node it ran on */
};
/* Run an allow-listed program (argv[0]: a name from the node's allow_exec)
 * with the NULL-terminated argv, never through a shell; 0 with *res filled
 * (even if the program failed: look at exit_code), or -EACCES (not
 * allowed), -ENOENT, -ETIMEDOUT (killed at the deadline), -EBUSY, ... */
int virgo_run(const char *const argv[], struct virgo_run_result *res);
int virgo_run_ex(const char *const argv[], const struct virgo_call_opts *opts,
		 struct virgo_run_result *res);
void virgo_run_result_free(struct virgo_run_result *res);

/* Async form: submit returns at once with a job id; the call runs on a
 * library thread (at most 1024 outstanding: beyond, -EAGAIN).  virgo_fini
 * waits for those still running. */
typedef uint64_t virgo_job_t;
int virgo_clone_submit(const char *fn, const void *arg, size_t arg_len,
		       const struct virgo_call_opts *opts, virgo_job_t *job);
int virgo_run_submit(const char *const argv[], const struct virgo_call_opts *opts,
		     virgo_job_t *job);
/* 1 if finished, 0 if still running, -ENOENT for an unknown job id. */
int virgo_job_poll(virgo_job_t job);
/* Waits up to timeout_ms (<0: forever) for the job.  -ETIMEDOUT if it is
 * still running (the id stays valid); otherwise the call's return code and,
 * for a run, *res filled; for a clone, res->out/out_len hold the result.
 * The id is released once this returns anything but -ETIMEDOUT. */
int virgo_job_wait(virgo_job_t job, int timeout_ms, struct virgo_run_result *res);

/* A node's load, as its cpupool reports it (the `load` command). */
struct virgo_load {
	unsigned node_id;
	int cores;
	double load1, load5, load15;
	int running, queued, workers, queue_max;
	uint64_t mem_free, mem_total;
	uint64_t jobs_done, jobs_failed, jobs_rejected, jobs_cancelled;
	int weight; /* placement weight 0..1000 (analytics knob `weight`; 0: drained) */
};
/* Fetch the idx-th configured node's load (0-based). */
int virgo_load(int idx, struct virgo_load *load);

/* ---- cluster locks: cloudsync (notes §912, §991; docs/PROTOCOL.md) -------
 * A named lock lives on its home node (ketama of the name over the
 * configured nodes: every client with the same node list asks the same
 * node).  Waiters are served first come, first served; each grant carries
 * a fencing token, strictly increasing per lock, also across restarts of
 * the home node.  A hold is a lease: renew it within ttl_ms or the node
 * passes the lock on, and a hold ends at once when its connection drops
 * (the process died).  So protect a resource with the token, not with the
 * belief that you still hold the lock: pass it along with every write
 * (virgo_set_fenced) and the node refuses writes of an older holder. */
typedef struct virgo_lock virgo_lock_t;

struct virgo_lock_opts {
	uint64_t ttl_ms; /* lease length; 0: 30000 (at most 86400000) */
	int64_t wait_ms; /* virgo_lock: give up after this long (-ETIMEDOUT);
			  * 0: wait for ever */
};
/* Take the lock, waiting in line (opts may be NULL).  On success *lock is
 * a handle (freed by virgo_unlock) and 0 is returned; -ETIMEDOUT, -EINVAL
 * (bad name: 1-128 of A-Z a-z 0-9 . _ - : @ /), -EDEADLK, transport
 * errors (the home node is down: the lock is unavailable until it is
 * back; another node is never asked, which would break exclusion). */
int virgo_lock(const char *name, const struct virgo_lock_opts *opts, virgo_lock_t **lock);
/* Take the lock only if it is free now: 0, or -EBUSY. */
int virgo_trylock(const char *name, const struct virgo_lock_opts *opts, virgo_lock_t **lock);
/* The hold's fencing token (never 0). */
uint64_t virgo_lock_token(const virgo_lock_t *lock);
/* The lock's name (owned by the handle). */
const char *virgo_lock_name(const virgo_lock_t *lock);
/* Milliseconds of lease left by this process's clock, counted from when
 * the last lock/renew request was sent (a grant that waited in line: from
 * its arrival less a round trip), so not longer than the node's;
 * <= 0: assume the lock is lost. */
int64_t virgo_lock_left_ms(const virgo_lock_t *lock);
/* Restart the lease (ttl_ms from now): 0, or -ENOLCK when the hold has
 * already ended (lease over, lock passed on), or a transport error (the
 * hold is then lost too: its connection is closed).  Thread-safe against
 * virgo_lock_left_ms, so a renewal thread may run beside the holder. */
int virgo_lock_renew(virgo_lock_t *lock);
/* Release the lock and free the handle (always freed): 0, -ENOLCK (the
 * hold had ended already), or a transport error. */
int virgo_unlock(virgo_lock_t *lock);
/* virgo_set guarded by a fencing token: the allocation's node refuses the
 * write with -ESTALE if it has seen a newer token of lock_name (a newer
 * holder wrote, or the node is the lock's home and granted one).  Not for
 * a span (-EINVAL): its chunks live on several nodes. */
int virgo_set_fenced(virgo_vuid_t vuid, const void *data, size_t len, const char *lock_name,
		     uint64_t token);
/* The home node of a lock name (0-based index, virgo_node_info), or an error. */
int virgo_lock_home(const char *name);
/* The idx-th node's locks as text, one per line:
 * "lock <name> <token> <holder> <lease_ms_left> <waiters>"; with name
 * non-NULL that lock and its "waiter <ticket> <peer> <wait_ms_left|->"
 * lines.  *text is malloc'd (caller frees). */
int virgo_lock_ls(int idx, const char *name, char **text);
/* ---- Cloud file system: virgo_open/read/write/close (notes §902/§903) -----
 * Files on any node, under that node's export root (cloudfs_export_root).
 * A path names its node with a prefix: "node2:/data/x" or "2:/data/x"
 * (the node id of virgo_client.conf); without one, the first configured
 * node.  A descriptor is 64 bits with the owning node in bits 63..48, and
 * lives on a connection of its own: the node closes it if this process
 * goes away.  When that connection breaks (the node restarted, or closed
 * it after idle_timeout), the next positioned call (pread/pwrite/fstat/
 * fsync/ftruncate) reopens the file and goes on; writes acknowledged
 * before the break may be lost, which the next virgo_fsync or virgo_close
 * reports as -EIO, once.  Calls at the descriptor's own position (pos < 0)
 * cannot resume: -ECONNRESET.  A write returned to the caller is visible to every later
 * read on any connection; virgo_fsync makes it durable.  Any size is moved
 * in chunks of at most 1 MiB, so memory stays bounded. */
typedef uint64_t virgo_fd_t;

/* The notes' call: opens path read-write, creating it (mode 0644) if
 * missing, as the original did.  0 and *fd. */
int virgo_open(const char *path, virgo_fd_t *fd);
/* With open(2) flags (O_RDONLY/O_WRONLY/O_RDWR, O_CREAT, O_TRUNC, O_EXCL,
 * O_APPEND; others -EINVAL) and the mode of a created file. */
int virgo_open_ex(const char *path, int flags, unsigned mode, virgo_fd_t *fd);
/* The notes' argument order: reads up to size bytes at pos (pos < 0: at the
 * descriptor's position, which then advances).  Bytes read (0 at the end of
 * the file), or a negative error. */
ssize_t virgo_read(virgo_fd_t fd, void *buf, size_t size, int64_t pos);
/* Writes size bytes at pos (pos < 0: at the descriptor's position).  size
 * on success, or a negative error (part may have been written). */
ssize_t virgo_write(virgo_fd_t fd, const void *data, size_t size, int64_t pos);
/* Closes fd (also when its node is unreachable: the descriptor is gone). */
int virgo_close(virgo_fd_t fd);
/* As virgo_close (every write acknowledged first, and their errors
 * returned), without waiting for the node's answer to the close itself:
 * the node frees its descriptor a moment after this returns.  For a
 * caller nobody waits on (virgofs's release). */
int virgo_close_nowait(virgo_fd_t fd);
ssize_t virgo_pread(virgo_fd_t fd, void *buf, size_t size, uint64_t offset);
ssize_t virgo_pwrite(virgo_fd_t fd, const void *data, size_t size, uint64_t offset);
int virgo_fsync(virgo_fd_t fd);
/* Write-behind (virgofs uses it): positioned writes on fd return once
 * sent, with at most window (<= 32) of them not yet acknowledged by the
 * node; 0 turns it off.  A failed one is reported by a later
 * virgo_pwrite, virgo_flush, virgo_fsync or virgo_close.  Over TLS it
 * stays off.  0 or -EBADF. */
int virgo_writebehind(virgo_fd_t fd, unsigned window);
/* Waits until every write on fd is acknowledged by the node (visible to
 * any later read, not yet durable: virgo_fsync).  0, the error of a
 * write-behind write, or -EIO if the connection broke with writes in
 * flight; the error stays for the next write, fsync or close. */
int virgo_flush(virgo_fd_t fd);
int virgo_ftruncate(virgo_fd_t fd, uint64_t size);

struct virgo_stat {
	char type; /* 'f' file, 'd' directory, 'l' symlink, 'p', 's', 'c', 'b' */
	unsigned mode; /* permission bits (07777) */
	uint64_t size, nlink, ino, blocks; /* blocks of 512 bytes */
	unsigned uid, gid;
	int64_t atime_ns, mtime_ns, ctime_ns; /* since the epoch */
};
int virgo_stat(const char *path, struct virgo_stat *st); /* follows a final symlink */
int virgo_lstat(const char *path, struct virgo_stat *st);
int virgo_fstat(virgo_fd_t fd, struct virgo_stat *st);
/* virgo_open_ex and, in the same round trip, *st: the opened file's
 * attributes (as virgo_fstat would give right after the open; a node
 * older than this call costs a second round trip for them). */
int virgo_open_stat(const char *path, int flags, unsigned mode, virgo_fd_t *fd,
		    struct virgo_stat *st);
/* virgo_flush, and *st: the file's attributes as the node's reply to the
 * last write-behind write gave them, when fd was opened by virgo_open_stat
 * and no other request on it came after that write (st->type 0
 * otherwise: ask virgo_fstat). */
int virgo_flush_stat(virgo_fd_t fd, struct virgo_stat *st);
/* The ctime (ns) of a directory just before and just after a call that
 * may have changed it, as the node saw them; -1 when the node did not
 * say.  pre equal to a ctime seen earlier: nothing else changed the
 * directory in between (up to the file system's timestamp grain). */
struct virgo_dirchange {
	int64_t pre_ctime_ns, post_ctime_ns;
};
/* virgo_open_stat, and *dc: the ctime of path's directory around the
 * open, in the same round trip (-1s from a node older than this call). */
int virgo_open_dirchange(const char *path, int flags, unsigned mode, virgo_fd_t *fd,
			 struct virgo_stat *st, struct virgo_dirchange *dc);
int virgo_unlink(const char *path);
int virgo_mkdir(const char *path, unsigned mode);
/* virgo_mkdir and, in the same round trip, *st: the new directory's
 * attributes (a node older than this call costs a virgo_lstat). */
int virgo_mkdir_stat(const char *path, unsigned mode, struct virgo_stat *st);
int virgo_rmdir(const char *path);
/* Both paths on one node (else -EXDEV). */
int virgo_rename(const char *from, const char *to);
int virgo_truncate(const char *path, uint64_t size);
int virgo_chmod(const char *path, unsigned mode);
/* Times in ns since the epoch; VIRGO_TIME_NOW or VIRGO_TIME_OMIT. */
#define VIRGO_TIME_NOW (-1)
#define VIRGO_TIME_OMIT (-2)
int virgo_utimens(const char *path, int64_t atime_ns, int64_t mtime_ns);
/* linkpath (with its node prefix) becomes a symlink holding target as is. */
int virgo_symlink(const char *target, const char *linkpath);
/* The target into buf (NUL-terminated, cap bytes): its length, or -ERANGE. */
ssize_t virgo_readlink(const char *path, char *buf, size_t cap);

struct virgo_dirent {
	char name[256];
	char type; /* as in virgo_stat */
	unsigned mode;
	uint64_t size;
	int64_t mtime_ns;
};
/* One page of a directory (up to max entries, 1..4096), from *cursor (0:
 * the start); *cursor becomes the next page's start, 0 after the last.
 * *out is malloc'd (caller frees), *n entries.  "." and ".." are left out. */
int virgo_readdir(const char *path, uint64_t *cursor, size_t max, struct virgo_dirent **out,
		  size_t *n);
struct virgo_direntplus {
	char name[256];
	struct virgo_stat st; /* as virgo_lstat gives it */
};
/* virgo_readdir with every entry's full attributes, in the same replies
 * (-EINVAL from a node older than this call: use virgo_readdir). */
int virgo_readdir_plus(const char *path, uint64_t *cursor, size_t max,
		       struct virgo_direntplus **out, size_t *n);

struct virgo_statfs {
	uint64_t bsize, blocks, bfree, bavail, files, ffree, namemax;
};
/* The file system of the node path names (only its prefix matters). */
int virgo_statfs(const char *path, struct virgo_statfs *st);

/* ---- cluster view -------------------------------------------------------- */

struct virgo_node_info {
	unsigned id; /* node id as configured in virgo_client.conf */
	char host[64]; /* address clients connect to */
	int port_offset; /* added to every service's base port */
	int up; /* 1 unless its mempool failed recently and is in back-off */
};

/* Number of configured nodes (negative on configuration error). */
int virgo_node_count(void);
/* Fill *info for the idx-th configured node (0-based). */
int virgo_node_info(int idx, struct virgo_node_info *info);
/* Ping the idx-th node's mempool service; *rtt_us gets the round trip.
 * A node answering with another id than virgo_client.conf gives it:
 * -EPROTO, *node_id the id it gave; it is then not used for placement
 * (virgo_malloc, virgo_clone check each node's id once the same way). */
int virgo_ping(int idx, unsigned *node_id, double *rtt_us);
/* Share node health with later processes through the file at path
 * (created mode 0600; the virgo command uses $XDG_RUNTIME_DIR/
 * virgo-health): services of nodes that did not answer within the timeout
 * less than max_age_ms ago, as recorded there, start in back-off now, so
 * virgo_malloc, virgo_clone and virgo_run place work on other nodes first
 * (as after such a timeout in this process), and virgo_fini records this
 * process's view (timeouts only; a node that answered again is dropped).
 * Calls addressed to one node (virgo_ping, stats, a VUID's get/set/free)
 * still ask it.  Call after virgo_init.  0; -EPERM for a file that is
 * not a regular file owned by this user (then it is not used); -EINVAL. */
int virgo_health_cache(const char *path, int max_age_ms);
/* Which configured node owns a memcached key (1..250 bytes) under ketama
 * consistent hashing over every configured node (docs/PROTOCOL.md,
 * "Key placement"): returns its 0-based index (see virgo_node_info), or
 * -EINVAL, -VIRGO_ENONODE, -VIRGO_ECONF. */
int virgo_key_owner(const void *key, size_t len);
/* The idx-th node's mempool statistics as "name value" lines; *text is
 * malloc'd (caller frees). */
int virgo_mempool_stats(int idx, char **text);
/* The idx-th node's memcache statistics (its memcached port's `stats`:
 * get_hits, get_misses, evictions, curr_items, ...) as "name value"
 * lines; *text is malloc'd (caller frees).  A node whose memcache port is
 * off answers -ECONNREFUSED. */
int virgo_memcache_stats(int idx, char **text);

/* ---- durable queue / KingCobra (notes §897, §922; docs/PROTOCOL.md "queue")
 * A topic lives on one node: the calls without an index use the node
 * virgo_key_owner(topic) names; the _ex forms take a node index
 * (virgo_node_info).  A push returns once the node has the record on disk
 * (queue_fsync = always: fdatasync'd; see PROTOCOL.md for `interval`); a
 * push whose reply was lost is never re-sent (it may have been stored). */

/* One record as delivered.  data is malloc'd by the library: release
 * with virgo_queue_msg_free (or virgo_queue_msgs_free for an array). */
struct virgo_queue_msg {
	char topic[65];
	uint64_t offset; /* per topic, from 0 */
	uint64_t lamport; /* the node's Lamport timestamp when stored */
	char stamp[96]; /* "<client ip>:<sec>.<nsec>", the notes' stamp */
	void *data;
	size_t len;
};
void virgo_queue_msg_free(struct virgo_queue_msg *m);
void virgo_queue_msgs_free(struct virgo_queue_msg *msgs, size_t n);

/* Append len bytes (any bytes, at most the node's queue_max_record) to
 * topic (1..64 of A-Z a-z 0-9 . _ -); *offset (may be NULL) gets its
 * offset.  0 or a negative error. */
int virgo_queue_push(const char *topic, const void *data, size_t len, uint64_t *offset);
int virgo_queue_push_ex(int idx, const char *topic, const void *data, size_t len,
			uint64_t *offset, uint64_t *lamport);

/* Replay: up to max records (1..10000) from offset from into *msgs (a
 * malloc'd array, *n entries; free with virgo_queue_msgs_free); *next
 * (may be NULL) gets the offset to continue from. */
int virgo_queue_read(const char *topic, uint64_t from, size_t max, struct virgo_queue_msg **msgs,
		     size_t *n, uint64_t *next);
int virgo_queue_read_ex(int idx, const char *topic, uint64_t from, size_t max,
			struct virgo_queue_msg **msgs, size_t *n, uint64_t *next);

/* A subscription or group membership: a dedicated connection. */
struct virgo_queue_sub;
#define VIRGO_QUEUE_END UINT64_MAX /* virgo_queue_sub from: only new records */
/* Every record of topic from offset from (VIRGO_QUEUE_END: from now on),
 * in order.  *out: close with virgo_queue_close. */
int virgo_queue_sub(const char *topic, uint64_t from, struct virgo_queue_sub **out);
int virgo_queue_sub_ex(int idx, const char *topic, uint64_t from, struct virgo_queue_sub **out);
/* Join consumer group `group` of topic: each record goes to one member,
 * at most max_inflight (1..1024, 0: 16) unacknowledged at once; one not
 * acked within the node's queue_ack_timeout_ms, or whose member goes
 * away, is delivered again (at least once). */
int virgo_queue_join(const char *topic, const char *group, int max_inflight,
		     struct virgo_queue_sub **out);
int virgo_queue_join_ex(int idx, const char *topic, const char *group, int max_inflight,
			struct virgo_queue_sub **out);
/* The next record: 0 and *msg (free with virgo_queue_msg_free),
 * -ETIMEDOUT after timeout_ms (-1: wait for ever), -ERANGE when the node
 * dropped a subscriber that fell behind retention, -ECONNRESET when the
 * node went away. */
int virgo_queue_next(struct virgo_queue_sub *s, int timeout_ms, struct virgo_queue_msg *msg);
/* A group member is done with offset (no reply is awaited). */
int virgo_queue_ack(struct virgo_queue_sub *s, uint64_t offset);
/* The socket, to poll for readability alongside other work. */
int virgo_queue_fd(const struct virgo_queue_sub *s);
void virgo_queue_close(struct virgo_queue_sub *s);

/* A topic's statistics ("STAT name value" lines, then "STAT group ..."
 * lines) or, with topic NULL, the node's topics ("STAT topic <name>
 * <first> <next> <records> <bytes> <segments>" lines); *text is malloc'd
 * (caller frees).  virgo_queue_stat with a topic asks its owner node. */
int virgo_queue_stat(const char *topic, char **text);
int virgo_queue_stat_ex(int idx, const char *topic, char **text);

/* Format a record in the original KingCobra's text form,
 * "REQUEST#<client ip>#<sec>:<nsec>#<payload> $$" (payload bytes as they
 * are); returns a malloc'd NUL-terminated line without newline, or NULL. */
char *virgo_queue_kingcobra_line(const struct virgo_queue_msg *m);
/* ---- kernel analytics (notes §898, §907, §775; docs/PROTOCOL.md) ------ *
 * Each node holds key=value variables, with a per-node revision for every
 * change; variables that name a live knob (README: cpu_workers, weight,
 * mem_limit, ...) change what the node does at once.  idx is the 0-based
 * node index (virgo_node_info).  Values are at most 1024 bytes, names 1-128
 * of A-Z a-z 0-9 _ . : / -. */
#define VIRGO_ANALYTICS_NOW UINT64_MAX /* watch: only changes from now on */
/* One variable or change; returning nonzero stops the walk or watch. */
typedef int (*virgo_analytics_fn)(void *arg, uint64_t rev, const char *key, const char *value);
/* The value (NUL-terminated, truncated to cap) and, if rev is not NULL,
 * its revision (0: a knob never set, shown as the value in force).
 * 0, -ENOENT, or another negative error. */
int virgo_analytics_get(int idx, const char *key, char *value, size_t cap, uint64_t *rev);
/* Sets key=value on the idx-th node, or on every node when idx < 0 (the
 * first failure is returned; the others are still tried).  A value a
 * knob refuses: -EINVAL, the old value stays and virgo_last_error()
 * says why.  -EACCES: a read-only (learnt) variable, or this address may
 * not publish there.  *rev (may be NULL) gets the change's revision. */
int virgo_analytics_set(int idx, const char *key, const char *value, uint64_t *rev);
/* Every variable whose name starts with prefix (NULL or "": all), by name. */
int virgo_analytics_ls(int idx, const char *prefix, virgo_analytics_fn fn, void *arg);
/* The kept values of key (the last 500), oldest first. */
int virgo_analytics_history(int idx, const char *key, virgo_analytics_fn fn, void *arg);
/* Calls fn for every change on the idx-th node after revision after_rev
 * (VIRGO_ANALYTICS_NOW: from now on), in order, each exactly once: when
 * the connection breaks it reconnects (with back-off) and resumes after
 * the last revision delivered.  Returns 0 once fn returned nonzero,
 * -ETIMEDOUT after timeout_ms without a change (< 0: wait for ever),
 * -ERANGE when the node no longer holds changes that were missed; a node
 * refusing the credentials (token, certificate) ends it at once (-EACCES,
 * -ECONNREFUSED with the reason in virgo_last_error). */
int virgo_analytics_watch(int idx, uint64_t after_rev, int timeout_ms, virgo_analytics_fn fn,
			  void *arg);
/* ---- EventNet: a causal event graph across the cluster (notes §913, §923,
 * §994; docs/PROTOCOL.md "EventNet") ---------------------------------------
 * Events (an id, the partakers, their conversations) and the causes they
 * were logged after; each node gives every event it records a Lamport
 * time and a vector clock over the nodes, so "happened before" and
 * "concurrent" can be told apart across the cluster. */

/* Logs an event without waiting: the call checks its arguments and queues
 * the event; a library thread sends the queue in batches to this
 * process's home node.  id: 1..128 printable bytes without blanks, '#',
 * ',' or '@'.  partakers: a csv without blanks or '#' (NULL: none); conv:
 * the conversation (NULL: none; no control bytes, at most 60 KiB);
 * after: a csv of up to 16 causes, events logged before (NULL: none) --
 * on any node: a cause recorded elsewhere is looked up and its clock sent
 * along.  Logging an id again appends the conversation and the causes to
 * it (the notes' vertex update).  0 once queued; -EINVAL, -EAGAIN (16 MiB
 * queued and not yet sent: the nodes do not keep up), -ENOMEM.  Errors a
 * node reports come back from virgo_eventnet_flush. */
int virgo_eventnet_log(const char *id, const char *partakers, const char *conv,
		       const char *after);
/* Waits until every event this process logged so far is recorded (or
 * timeout_ms passes): 0, -ETIMEDOUT, or the first error since the last
 * flush (virgo_last_error says which event and why, e.g. -ELOOP for a
 * cycle).  virgo_fini flushes (up to 5 s) before it returns. */
int virgo_eventnet_flush(int timeout_ms);

/* An event as a node recorded it.  The strings are the library's (one
 * block per event), released by virgo_events_free. */
struct virgo_event {
	char id[129];
	unsigned node; /* the node that recorded it */
	uint64_t seq; /* its place in that node's order (1, 2, ...) */
	uint64_t lamport; /* its Lamport time */
	char *clock; /* its vector clock, "<node>:<count>,..." */
	char *partakers; /* csv, "" when none */
	char *causes; /* csv of the events it was logged after, "" when none */
	char *conv; /* its conversations ('#'-joined), "" when none */
};
/* Frees an array of n events returned by the calls below (and the array). */
void virgo_events_free(struct virgo_event *evs, size_t n);
/* The event id, from whichever node recorded it: *ev is an array of one
 * (virgo_events_free(*ev, 1)).  0, -ENOENT, -EINVAL, transport errors. */
int virgo_eventnet_get(const char *id, struct virgo_event **ev);

enum {
	VIRGO_EV_EQUAL = 0, /* the same clock (the same event) */
	VIRGO_EV_BEFORE = 1, /* a happened before b */
	VIRGO_EV_AFTER = 2, /* b happened before a */
	VIRGO_EV_CONCURRENT = 3, /* neither: no causal path either way */
};
/* How event a relates to b by their vector clocks: a VIRGO_EV_* value, or
 * a negative error (-ENOENT when either is recorded nowhere). */
int virgo_eventnet_before(const char *a, const char *b);
/* The same for two events already fetched. */
int virgo_eventnet_compare(const struct virgo_event *a, const struct virgo_event *b);
/* id's causal history across the cluster: its ancestors through the
 * logged causes, then id itself last, in causal order (by Lamport time,
 * then node and sequence).  *evs: virgo_events_free(*evs, *n). */
int virgo_eventnet_why(const char *id, struct virgo_event **evs, size_t *n);
/* As virgo_eventnet_why, and *truncated (NULL when none; the caller
 * free()s it): the space-separated ids of causes met on the way that their
 * node has evicted from memory (eventnet_max_events / _bytes), where the
 * history listed stops (those events and their causes are in that node's
 * EventNetVertices.txt / EventNetEdges.txt).  truncated may be NULL. */
int virgo_eventnet_why_truncated(const char *id, struct virgo_event **evs, size_t *n,
				 char **truncated);
/* Every event of every node, merged in causal order. */
int virgo_eventnet_dump(struct virgo_event **evs, size_t *n);
/* As virgo_eventnet_dump, and *evicted (may be NULL): how many older
 * events the nodes have evicted from memory (eventnet_max_events /
 * _bytes) and so left out (they are in the nodes' text files). */
int virgo_eventnet_dump_evicted(struct virgo_event **evs, size_t *n, uint64_t *evicted);
/* Follows every node: cb gets each new event as it is recorded (in the
 * order each node records them) until it returns non-zero (then 0 is
 * returned) or every node's feed ends (-VIRGO_ENONODE when none could be
 * followed).  A node tells a subscriber too slow to keep up how many it
 * skipped; those are not passed to cb. */
int virgo_eventnet_tail(int (*cb)(const struct virgo_event *ev, void *arg), void *arg);

enum {
	VIRGO_EV_DOT = 0, /* graphviz: a cluster per node, an edge per cause */
	VIRGO_EV_JSON = 1, /* {"events": [{"id", "node", "seq", "lamport", "clock", ...}]} */
	VIRGO_EV_SHIVIZ = 2, /* GoVector's log format, which ShiViz reads */
};
/* The n events as text in a format: *text is malloc'd (caller frees),
 * *len its length.  0, -EINVAL, -ENOMEM. */
int virgo_eventnet_export(const struct virgo_event *evs, size_t n, int format, char **text,
			  size_t *len);

#ifdef __cplusplus
}
#endif
#endif /* VIRGO_H */
