/* dl.c: libraries into tables of entry points (see dl.h). */
#include "dl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

void *jit_dl_open_first(const char *const *names, size_t n, const char *what, char *why,
                        size_t whylen)
{
    char first[128] = "";
    for (size_t k = 0; k < n; k++) {
        dlerror();
        void *lib = dlopen(names[k], RTLD_NOW | RTLD_LOCAL);
        if (lib != NULL)
            return lib;
        const char *e = dlerror();
        if (k == 0 && e != NULL)
            snprintf(first, sizeof first, "%s", e);
    }
    snprintf(why, whylen, "no %s (%s)", what, first[0] ? first : "not found");
    return NULL;
}

bool jit_dl_resolve(void *lib, const struct jit_dl_sym *syms, size_t n, void *table, char *why,
                    size_t whylen, const char *libname)
{
    for (size_t k = 0; k < n; k++) {
        void *p = dlsym(lib, syms[k].name);
        if (p == NULL) {
            snprintf(why, whylen, "%s has no %s (too old?)", libname, syms[k].name);
            return false;
        }
        /* POSIX guarantees a data pointer from dlsym converts to a function pointer. */
        memcpy((char *) table + syms[k].off, &p, sizeof p);
    }
    return true;
}
