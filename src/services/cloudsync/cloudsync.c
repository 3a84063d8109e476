/*
 * cloudsync.c - the cluster lock service (port 40000 + port_offset; the
 * notes' cloudsync module, §891 item 6, §912, §991-§993).
 *
 * Glue between the pure parser (cloudsync_proto.c), the lock table
 * (cloudsync_table.c) and the connection.  A lock is held by the
 * connection that took it: closing the connection releases it at once.  A
 * lock request that has to wait answers "QUEUED <ticket> <position>" and
 * then holds the connection (VSVC_WAIT: later requests on it wait behind
 * it) until the table delivers the grant or the wait's timeout on this
 * connection's loop.  Errors are "ERR <CODE> <sentence>".
 */
#include <errno.h>
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/errcode.h"
#include "../../daemon/config.h"
#include "../../daemon/log.h"
#include "../../daemon/service.h"
#include "cloudsync_epoch.h"
#include "cloudsync_proto.h"
#include "cloudsync_settings.h"
#include "cloudsync_table.h"
#include "cloudsync_zk.h"

#define CS_LS_MAX 1000 /* lines of one ls reply */

struct cloudsync {
	struct cs_table *tab; /* local backend; NULL when the state dir is unusable */
	struct cs_zk *zk; /* zookeeper backend */
	unsigned node_id;
	char why[512]; /* why locks are off (tab NULL) */
};

struct cs_conn {
	struct frame_state fs;
	struct cs_owner ow;
	struct cs_zk_owner zow;
	bool blocked; /* a lock request waits: its reply is still to come */
	bool ident_set; /* ow.ident is filled (once, before the table sees ow) */
};

static void cs_deliver(struct vconn *c, void *arg)
{
	struct cs_delivery *d = arg;
	if (c) {
		struct cs_conn *cc = vconn_state(c);
		struct evbuffer *out = vconn_out(c);
		cc->blocked = false;
		if (d->err)
			evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(d->err),
					    d->msg ? d->msg : "gave up waiting for the lock");
		else
			evbuffer_add_printf(out, "OK %" PRIu64 " %" PRIu64 "\r\n", d->token, d->ttl_ms);
	}
	free(d);
	if (c)
		vconn_resume(c);
}

static int cloudsync_init(const struct vd_node *node, void **out)
{
	const struct cs_settings *st = node->settings;
	struct cloudsync *cs = calloc(1, sizeof *cs);
	if (!cs)
		return -ENOMEM;
	cs->node_id = node->cfg->node_id;
	uint64_t epoch = 0;
	char err[400];
	if (strcmp(st->lock_backend, "zookeeper") == 0) {
		if (!st->zookeeper[0]) {
			log_error("lock_backend = zookeeper needs zookeeper = host:port,...");
			free(cs);
			return -EINVAL;
		}
		cs->zk = cs_zk_new(st->zookeeper, st->zookeeper_wait_ms, (unsigned)st->lock_max,
				   cs_deliver, err, sizeof err);
		if (!cs->zk) {
			log_error("cloudsync: %s", err);
			free(cs);
			return -EIO;
		}
		log_info("cloudsync_ready backend=zookeeper hosts=%s", st->zookeeper);
		*out = cs;
		return 0;
	}
	if (strcmp(st->lock_backend, "local") != 0) {
		log_error("lock_backend must be local or zookeeper, not '%s'", st->lock_backend);
		free(cs);
		return -EINVAL;
	}
	int rc = cs_epoch_next(st->lock_state_dir, cs->node_id, &epoch, err, sizeof err);
	if (rc == 0) {
		cs->tab = cs_table_new(epoch, (unsigned)st->lock_max, cs_deliver);
		if (!cs->tab) {
			free(cs);
			return -ENOMEM;
		}
		log_info("cloudsync_ready epoch=%" PRIu64 " state_dir=%s", epoch, st->lock_state_dir);
	} else {
		/* the node's other services still run; every lock request
		 * says why locks are off */
		snprintf(cs->why, sizeof cs->why, "locks are off: %s (set lock_state_dir)", err);
		log_warn("cloudsync_disabled reason=\"%s\"", err);
	}
	*out = cs;
	return 0;
}

static void cloudsync_fini(void *svc)
{
	struct cloudsync *cs = svc;
	cs_table_free(cs->tab);
	cs_zk_free(cs->zk);
	free(cs);
}

static void reply_err(struct evbuffer *out, int code, const char *msg)
{
	evbuffer_add_printf(out, "ERR %s %s\r\n", ec_name(code), msg);
}

static const char cloudsync_help[] =
	"HELP lock <name> [<ttl_ms> [<wait_ms>]]  -> OK <token> <ttl_ms> "
	"(or QUEUED <ticket> <pos>, later OK ... | ERR ETIMEDOUT)\r\n"
	"HELP trylock <name> [<ttl_ms>]           -> OK <token> <ttl_ms> | ERR EBUSY\r\n"
	"HELP renew <name> [<ttl_ms>]             -> OK <token> <ttl_ms> | ERR ENOLCK\r\n"
	"HELP unlock <name>                       -> OK | ERR ENOLCK\r\n"
	"HELP ls [<name>]                         -> STAT lock <name> <token> <holder> "
	"<lease_ms_left> <waiters> lines (STAT waiter <ticket> <peer> <wait_ms_left|-> with a "
	"name), END\r\n"
	"HELP stats | ping | help | quit\r\n"
	"END\r\n";

static void reply_stats(struct cloudsync *cs, struct evbuffer *out)
{
	struct cs_stats s = {0};
	if (cs->tab)
		cs_table_stats(cs->tab, &s);
	if (cs->zk)
		cs_zk_stats(cs->zk, &s);
	evbuffer_add_printf(out,
			    "STAT node_id %u\r\nSTAT enabled %d\r\nSTAT epoch %" PRIu64 "\r\n"
			    "STAT locks %" PRIu64 "\r\nSTAT holders %" PRIu64 "\r\n"
			    "STAT waiters %" PRIu64 "\r\nSTAT grants %" PRIu64 "\r\n"
			    "STAT handoffs %" PRIu64 "\r\nSTAT expired %" PRIu64 "\r\n"
			    "STAT timeouts %" PRIu64 "\r\nSTAT released_on_close %" PRIu64 "\r\n"
			    "END\r\n",
			    cs->node_id, cs->tab || cs->zk, s.epoch, s.locks, s.holders, s.waiters,
			    s.grants, s.handoffs, s.expired, s.timeouts, s.releases_on_close);
}

static const char not_held[] = "not held by this connection (lease ended, released, or never taken)";
static const char held_by_other[] = "held by another identity (only its holder may renew or unlock it)";

/* lock/trylock/renew/unlock/ls on the zookeeper backend. */
static int cloudsync_exec_zk(struct vconn *c, struct cloudsync *cs, struct cs_conn *cc,
			     const struct cs_req *r, struct evbuffer *out)
{
	uint64_t token = 0;
	const char *msg = NULL;
	int rc;
	switch (r->op) {
	case CS_OP_LOCK:
	case CS_OP_TRYLOCK:
		rc = cs_zk_lock(cs->zk, &cc->zow, c, r, r->op == CS_OP_TRYLOCK, &msg);
		if (rc) {
			reply_err(out, rc, msg);
			return VSVC_KEEP;
		}
		cc->blocked = true;
		return VSVC_WAIT;
	case CS_OP_RENEW:
		rc = cs_zk_renew(cs->zk, &cc->zow, r->name, r->name_len, r->ttl_ms, &token);
		if (rc == 0)
			evbuffer_add_printf(out, "OK %" PRIu64 " %" PRIu64 "\r\n", token, r->ttl_ms);
		else
			reply_err(out, ENOLCK, not_held);
		return VSVC_KEEP;
	case CS_OP_UNLOCK:
		rc = cs_zk_unlock(cs->zk, &cc->zow, r->name, r->name_len);
		if (rc == 0)
			evbuffer_add(out, "OK\r\n", 4);
		else
			reply_err(out, ENOLCK, not_held);
		return VSVC_KEEP;
	case CS_OP_LS:
		cs_zk_ls(cs->zk, r->name_len ? r->name : NULL, r->name_len, CS_LS_MAX, out);
		return VSVC_KEEP;
	default:
		return VSVC_CLOSE;
	}
}

/* Runs one request: VSVC_KEEP, VSVC_CLOSE (quit) or VSVC_WAIT (queued). */
static int cloudsync_exec(struct vconn *c, struct cloudsync *cs, struct cs_conn *cc,
			  const struct cs_req *r, struct evbuffer *out)
{
	uint64_t token = 0;
	int rc;
	if (!cc->ident_set) { /* the table compares it to other holders' */
		cc->ow.ident = vconn_identity_id(c);
		cc->ident_set = true;
	}
	switch (r->op) {
	case CS_OP_PING:
		evbuffer_add_printf(out, "PONG %u\r\n", cs->node_id);
		return VSVC_KEEP;
	case CS_OP_HELP:
		evbuffer_add(out, cloudsync_help, sizeof cloudsync_help - 1);
		return VSVC_KEEP;
	case CS_OP_STATS:
		reply_stats(cs, out);
		return VSVC_KEEP;
	case CS_OP_QUIT:
		return VSVC_CLOSE;
	default:
		break;
	}
	if (cs->zk)
		return cloudsync_exec_zk(c, cs, cc, r, out);
	if (!cs->tab) {
		reply_err(out, EIO, cs->why);
		return VSVC_KEEP;
	}
	switch (r->op) {
	case CS_OP_LOCK:
	case CS_OP_TRYLOCK: {
		unsigned pos = 0;
		int err = 0;
		const char *msg = NULL;
		enum cs_lock_result res = cs_table_lock(cs->tab, &cc->ow, c, r, r->op == CS_OP_TRYLOCK,
							&token, &pos, &err, &msg);
		if (res == CS_LOCK_GRANTED) {
			evbuffer_add_printf(out, "OK %" PRIu64 " %" PRIu64 "\r\n", token, r->ttl_ms);
			return VSVC_KEEP;
		}
		if (res == CS_LOCK_FAILED) {
			reply_err(out, err, msg);
			return VSVC_KEEP;
		}
		evbuffer_add_printf(out, "QUEUED %" PRIu64 " %u\r\n", token, pos);
		cc->blocked = true;
		return VSVC_WAIT;
	}
	case CS_OP_RENEW:
		rc = cs_table_renew(cs->tab, &cc->ow, r->name, r->name_len, r->ttl_ms, &token);
		if (rc == 0)
			evbuffer_add_printf(out, "OK %" PRIu64 " %" PRIu64 "\r\n", token, r->ttl_ms);
		else
			reply_err(out, -rc, rc == -EACCES ? held_by_other : not_held);
		return VSVC_KEEP;
	case CS_OP_UNLOCK:
		rc = cs_table_unlock(cs->tab, &cc->ow, r->name, r->name_len);
		if (rc == 0)
			evbuffer_add(out, "OK\r\n", 4);
		else
			reply_err(out, -rc, rc == -EACCES ? held_by_other : not_held);
		return VSVC_KEEP;
	case CS_OP_LS:
		cs_table_ls(cs->tab, r->name_len ? r->name : NULL, r->name_len, CS_LS_MAX, out);
		return VSVC_KEEP;
	default:
		return VSVC_CLOSE;
	}
}

static int cloudsync_on_input(struct vconn *c, struct evbuffer *in, bool eof)
{
	struct cloudsync *cs = vconn_svc(c);
	struct cs_conn *cc = vconn_state(c);
	struct evbuffer *out = vconn_out(c);
	/* waiting for a grant: the rest of the input waits behind it; a
	 * client that hangs up leaves the queue (conn_close) */
	if (cc->blocked)
		return eof ? VSVC_CLOSE : VSVC_WAIT;
	for (;;) {
		size_t len = evbuffer_get_length(in);
		if (len == 0)
			break;
		if (vconn_out_full(c))
			return VSVC_MORE;
		const uint8_t *buf = evbuffer_pullup(in, -1);
		struct cs_req req;
		size_t used;
		int code;
		const char *msg;
		enum cs_parse_result pr = cs_parse(&cc->fs, buf, len, eof, &req, &used, &code, &msg);
		int rc = VSVC_KEEP;
		if (pr == CS_REQ)
			rc = cloudsync_exec(c, cs, cc, &req, out);
		else if (pr == CS_ERROR)
			reply_err(out, code, msg);
		evbuffer_drain(in, used);
		if (rc == VSVC_CLOSE)
			return VSVC_CLOSE;
		if (rc == VSVC_WAIT)
			return eof ? VSVC_CLOSE : VSVC_WAIT;
		if (pr == CS_MORE)
			break;
	}
	return VSVC_KEEP;
}

static void cloudsync_conn_close(struct vconn *c)
{
	struct cloudsync *cs = vconn_svc(c);
	struct cs_conn *cc = vconn_state(c);
	if (cs->tab)
		cs_table_owner_gone(cs->tab, &cc->ow);
	if (cs->zk)
		cs_zk_owner_gone(cs->zk, &cc->zow);
}

/* The first tick comes once the node listens: only then may the
 * zookeeper backend open its client connection. */
static void cloudsync_tick(void *svc)
{
	struct cloudsync *cs = svc;
	if (cs->zk)
		cs_zk_start(cs->zk);
}

const struct vsvc cloudsync_service = {
	.name = "cloudsync",
	.base_port = 40000,
	.conn_size = sizeof(struct cs_conn),
	.movable = false,
	.keys = cs_settings_keys,
	.settings_size = sizeof(struct cs_settings),
	.settings_defaults = cs_settings_defaults,
	.init = cloudsync_init,
	.fini = cloudsync_fini,
	.on_input = cloudsync_on_input,
	.conn_close = cloudsync_conn_close,
	.tick = cloudsync_tick,
};
