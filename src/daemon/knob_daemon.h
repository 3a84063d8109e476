/*
 * knob_daemon.h - registers the daemon's own live knobs (mem_limit,
 * max_connections, log_level) in the knob registry (knob.h).
 */
#ifndef VIRGO_KNOB_DAEMON_H
#define VIRGO_KNOB_DAEMON_H

struct ma_acct;

/* acct and *max_conns (read with __atomic_load_n) must live until
 * vknob_daemon_unregister. */
void vknob_daemon_register(struct ma_acct *acct, int *max_conns);
void vknob_daemon_unregister(void);

#endif
