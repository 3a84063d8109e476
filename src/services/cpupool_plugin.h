/*
 * cpupool_plugin.h - plugin libraries for the cpupool: the shared objects
 * the node's config lists (plugins = a.so, b.so) are dlopen()ed at start;
 * clone <name> finds a function of signature virgo_fn (include/virgo.h)
 * by its plain (unmangled) name in the first library that exports it:
 * through the library's virgo_plugin_functions[] table when it has one,
 * else among its own function symbols.
 */
#ifndef VIRGO_CPUPOOL_PLUGIN_H
#define VIRGO_CPUPOOL_PLUGIN_H

#include "../../include/virgo.h"

struct cp_plugins;

/* Opens every library of the comma-separated list.  0 with *out (free with
 * cp_plugins_free), or -1 after logging which library failed and why. */
int cp_plugins_open(const char *list, struct cp_plugins **out);
void cp_plugins_free(struct cp_plugins *p);

/* The function called name, or NULL.  A library with an export table:
 * only its entries.  Without one: only a function symbol (STT_FUNC) that
 * the library itself defines; dlsym() also searches a library's
 * dependencies (libc's system() would be found through any plugin) and
 * finds data symbols too, and both are refused. */
virgo_fn cp_plugins_find(struct cp_plugins *p, const char *name);

#endif
