/*
 * cpupool_plugin.c - dlopen/dlsym of plugin functions (cpupool_plugin.h).
 *
 * A library that defines virgo_plugin_functions[] (include/virgo.h) is
 * callable through that table only: it is copied at load (bounded by the
 * table symbol's ELF size, each name checked) and lookups never touch the
 * dynamic symbol table again.  A library without the table falls back to
 * dlsym, accepted only for a function symbol (STT_FUNC, via dladdr1's
 * symbol entry) that the library itself defines at exactly that address:
 * a data symbol (const char plugin_version[]) called as code was a remote
 * SIGSEGV.
 */
#include "cpupool_plugin.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon/knob.h"
#include "../daemon/log.h"
#include "cpupool_proto.h"

#define CP_MAX_PLUGINS 32
#define CP_MAX_EXPORTS 4096 /* entries of one library's table */

struct cp_export {
	char *name; /* owned copy */
	virgo_fn fn;
};

struct cp_lib {
	void *h;
	char path[256];
	struct link_map *lm;
	bool has_table;
	int nexp;
	struct cp_export *exp; /* has_table: the callable functions */
};

struct cp_plugins {
	int n;
	struct cp_lib lib[CP_MAX_PLUGINS];
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

/* The ELF symbol that addr is the start of, if lib itself defines it. */
static const ElfW(Sym) *own_symbol(const struct cp_lib *lib, const void *addr)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	if (dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) == 0 || !sym || !info.dli_fname ||
	    !lib->lm || strcmp(info.dli_fname, lib->lm->l_name) != 0 || info.dli_saddr != addr)
		return NULL; /* a dependency's (libc's system), or inside another symbol */
	return sym;
}

static const struct virgo_plugin_host cp_host = {1, vknob_var};

/* Sets the library's virgo_plugin_host pointer, if it defines one: a
 * data object of a pointer's size in the library itself, nothing else. */
static void host_attach(struct cp_lib *lib)
{
	void *addr = dlsym(lib->h, VIRGO_PLUGIN_HOST);
	const ElfW(Sym) *sym = addr ? own_symbol(lib, addr) : NULL;
	if (!sym || ELF64_ST_TYPE(sym->st_info) != STT_OBJECT ||
	    sym->st_size != sizeof(const struct virgo_plugin_host *))
		return;
	*(const struct virgo_plugin_host **)addr = &cp_host;
}

/* Copies the library's export table, if it has one.  0, or -1 (logged)
 * for a table that is malformed. */
static int load_table(struct cp_lib *lib)
{
	void *t = dlsym(lib->h, VIRGO_PLUGIN_TABLE);
	if (!t)
		return 0;
	const ElfW(Sym) *sym = own_symbol(lib, t);
	if (!sym) {
		log_warn("plugins: %s: %s comes from another library; ignored", lib->path,
			 VIRGO_PLUGIN_TABLE);
		return 0;
	}
	if (ELF64_ST_TYPE(sym->st_info) /* same bits in ELF32 */ != STT_OBJECT) {
		log_error("plugins: %s: %s is not an array", lib->path, VIRGO_PLUGIN_TABLE);
		return -1;
	}
	size_t max = sym->st_size / sizeof(struct virgo_plugin_function);
	if (max > CP_MAX_EXPORTS)
		max = CP_MAX_EXPORTS;
	const struct virgo_plugin_function *f = t;
	size_t n = 0;
	while (n < max && f[n].name)
		n++;
	if (n == max) {
		log_error("plugins: %s: %s has no {NULL, NULL} terminator within %zu entries",
			  lib->path, VIRGO_PLUGIN_TABLE, max);
		return -1;
	}
	lib->exp = calloc(n ? n : 1, sizeof *lib->exp);
	if (!lib->exp)
		return -1;
	lib->has_table = true;
	for (size_t i = 0; i < n; i++) {
		size_t len = strnlen(f[i].name, CP_NAME_MAX + 1);
		if (!f[i].fn || !cp_fn_name_ok((const uint8_t *)f[i].name, len)) {
			log_error("plugins: %s: entry %zu of %s has a bad name or no function",
				  lib->path, i, VIRGO_PLUGIN_TABLE);
			return -1;
		}
		lib->exp[i].name = strndup(f[i].name, len);
		if (!lib->exp[i].name)
			return -1;
		lib->exp[i].fn = f[i].fn;
		lib->nexp++;
	}
	return 0;
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
		if (p->n == CP_MAX_PLUGINS || strlen(t) >= sizeof p->lib[0].path) {
			log_error("plugins: too many libraries or path too long: %s", t);
			goto fail;
		}
		/* RTLD_LOCAL: one plugin's symbols never satisfy another's */
		void *h = dlopen(t, RTLD_NOW | RTLD_LOCAL);
		if (!h) {
			log_error("plugins: cannot load %s: %s", t, dlerror());
			goto fail;
		}
		struct cp_lib *lib = &p->lib[p->n++];
		lib->h = h;
		snprintf(lib->path, sizeof lib->path, "%s", t);
		if (dlinfo(h, RTLD_DI_LINKMAP, &lib->lm) != 0 || !lib->lm) {
			log_error("plugins: %s: no link map: %s", t, dlerror());
			goto fail;
		}
		if (load_table(lib) != 0)
			goto fail;
		host_attach(lib);
		if (lib->has_table)
			log_info("cpupool: plugin library %s loaded (%d functions in %s)", t, lib->nexp,
				 VIRGO_PLUGIN_TABLE);
		else
			log_info("cpupool: plugin library %s loaded (no %s: its function symbols are "
				 "callable)",
				 t, VIRGO_PLUGIN_TABLE);
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
	for (int i = 0; i < p->n; i++) {
		for (int k = 0; k < p->lib[i].nexp; k++)
			free(p->lib[i].exp[k].name);
		free(p->lib[i].exp);
		dlclose(p->lib[i].h);
	}
	free(p);
}

virgo_fn cp_plugins_find(struct cp_plugins *p, const char *name)
{
	for (int i = 0; p && i < p->n; i++) {
		const struct cp_lib *lib = &p->lib[i];
		if (lib->has_table) {
			for (int k = 0; k < lib->nexp; k++)
				if (strcmp(lib->exp[k].name, name) == 0)
					return lib->exp[k].fn;
			continue;
		}
		void *sym = dlsym(lib->h, name);
		if (!sym)
			continue;
		const ElfW(Sym) *es = own_symbol(lib, sym);
		if (!es || ELF64_ST_TYPE(es->st_info) /* same bits in ELF32 */ != STT_FUNC)
			continue; /* data, or not the library's own */
		virgo_fn fn;
		memcpy(&fn, &sym, sizeof fn);
		return fn;
	}
	return NULL;
}
