/*
 * knob.h - the node's live knobs: settings that modules let the kernel
 * analytics service (or anything else in the node) change while running.
 *
 * A module registers a knob by name with one callback that validates a
 * new value and, only if it is valid, applies it (so a refused value
 * leaves the old one in force), and one that prints the value in force.
 * The analytics service calls vknob_set for a variable that names a knob
 * and stores the value only when the knob took it; it never reaches into
 * another module's internals.  Modules also register reporters that
 * publish what the node learns (its load, per-function runtimes) as
 * read-only variables.  Two node-level knobs live here because no one
 * module owns them: the placement weight and the bulk bandwidth cap.
 * Process-wide (one virgod is one node); thread-safe.
 */
#ifndef VIRGO_KNOB_H
#define VIRGO_KNOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VKNOB_MAX 32
#define VKNOB_WHY 160 /* bytes of a refusal's reason */

/* Validates value (NUL-terminated) and applies it: 0, or -EINVAL with a
 * sentence in why (the old value stays).  Called with the registry's
 * apply lock held: must not call vknob_* itself. */
typedef int (*vknob_set_fn)(void *ctx, const char *value, char *why, size_t why_cap);
/* Prints the value in force into buf (NUL-terminated). */
typedef void (*vknob_get_fn)(void *ctx, char *buf, size_t cap);

/* 0, -EEXIST (name taken), -ENOSPC (VKNOB_MAX knobs).  name and doc are
 * static strings; ctx must live until vknob_unregister(ctx). */
int vknob_register(const char *name, const char *doc, vknob_set_fn set, vknob_get_fn get,
		   void *ctx);
/* Removes every knob and reporter registered with ctx. */
void vknob_unregister(void *ctx);

/* 0 (applied), -ENOENT (no such knob), -EINVAL (refused: why says why). */
int vknob_set(const char *name, const char *value, char *why, size_t why_cap);
/* 0 and the value in force, or -ENOENT. */
int vknob_get(const char *name, char *buf, size_t cap);
bool vknob_exists(const char *name);
/* Calls fn for every knob, in registration order. */
void vknob_foreach(void (*fn)(void *arg, const char *name, const char *doc), void *arg);

/* ---- learnt variables ----------------------------------------------------
 * A reporter emits (key, value) pairs of what its module learnt; the
 * analytics service calls vknob_report() once a second and publishes
 * them read-only.  Reporters run without the registry's locks held. */
typedef void (*vknob_emit_fn)(void *arg, const char *key, const char *value);
typedef void (*vknob_report_fn)(void *ctx, vknob_emit_fn emit, void *arg);
int vknob_add_reporter(vknob_report_fn fn, void *ctx);
void vknob_report(vknob_emit_fn emit, void *arg);

/* ---- a read-only view of the variables for other modules ---------------
 * The analytics service registers how to read its variables, so that
 * plugins (virgo_analytics_value) and programs the cpupool runs (an
 * environment snapshot) can see them without depending on the service. */
typedef int (*vknob_var_fn)(void *ctx, const char *key, char *buf, size_t cap);
/* env: writes "VIRGO_AN_<key>=<value>" strings (key's non-alphanumerics as
 * '_') into buf, NUL-separated, at most cap bytes; returns how many. */
typedef int (*vknob_env_fn)(void *ctx, char *buf, size_t cap);
void vknob_set_vars(vknob_var_fn get, vknob_env_fn env, void *ctx);
/* The variable's value (NUL-terminated, truncated to cap): its length,
 * or -ENOENT (no such variable or no analytics service). */
int vknob_var(const char *key, char *buf, size_t cap);
/* See vknob_env_fn; 0 without an analytics service. */
int vknob_env(char *buf, size_t cap);

/* ---- node-level knobs kept here (registered by vknob_node_init) --------
 * weight: 0..1000 (default 100), the placement weight clients' balancers
 * use (0: place nothing new here).  MaxNetworkBandwidth: Mbit/s cap on
 * the node's bulk transfers (0: no cap). */
void vknob_node_init(void);
int vknob_weight(void);
uint64_t vknob_bandwidth_mbit(void);

#endif
