/*
 * cpupool_plugin.c - dlopen/dlsym of plugin functions (cpupool_plugin.h).
 */
#include "cpupool_plugin.h"

#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon/log.h"

#define CP_MAX_PLUGINS 32

struct cp_plugins {
	int n;
	void *h[CP_MAX_PLUGINS];
	char path[CP_MAX_PLUGINS][256];
};

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

int cp_plugins_open(const char *list, struct cp_plugins **out)
{
	struct cp_plugins *p = calloc(1, sizeof *p);
	if (!p)
		return -1;
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", list);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		t = trim(t);
		if (!*t)
			continue;
		if (p->n == CP_MAX_PLUGINS || strlen(t) >= sizeof p->path[0]) {
			log_error("plugins: too many libraries or path too long: %s", t);
			goto fail;
		}
		/* RTLD_LOCAL: one plugin's symbols never satisfy another's */
		void *h = dlopen(t, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			log_error("plugins: cannot load %s: %s", t, dlerror());
			goto fail;
		}
		snprintf(p->path[p->n], sizeof p->path[0], "%s", t);
		p->h[p->n++] = h;
		log_info("cpupool: plugin library %s loaded", t);
	}
	*out = p;
	return 0;
fail:
	cp_plugins_free(p);
	return -1;
}

void cp_plugins_free(struct cp_plugins *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		dlclose(p->h[i]);
	free(p);
}

virgo_fn cp_plugins_find(struct cp_plugins *p, const char *name)
{
	for (int i = 0; p && i < p->n; i++) {
		void *sym = dlsym(p->h[i], name);
		if (!sym)
			continue;
		struct link_map *lm = NULL;
		Dl_info info;
		if (dlinfo(p->h[i], RTLD_DI_LINKMAP, &lm) != 0 || !lm || dladdr(sym, &info) == 0 ||
		    !info.dli_fname || strcmp(info.dli_fname, lm->l_name) != 0)
			continue; /* found in a dependency, not the plugin */
		virgo_fn fn;
		memcpy(&fn, &sym, sizeof fn);
		return fn;
	}
	return NULL;
}
