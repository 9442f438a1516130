/* dl.h: libraries opened with dlopen into tables of entry points (the
 * CUDA driver, NVRTC, cuBLAS, cuDNN: cuda_dl.c, cuda_relay_load.c).
 *
 * A table is a struct of function pointers; a const list of jit_dl_sym
 * names the symbol behind each field by its offset, so adding an entry
 * point is one line in the struct and one in the list. */
#ifndef KILN_JIT_DL_H
#define KILN_JIT_DL_H

#include <stdbool.h>
#include <stddef.h>

struct jit_dl_sym {
    const char *name; /* the symbol (the _v2 one where a header #defines the name to it) */
    size_t off;       /* offsetof its field in the table */
};

/* The first of names[0..n) that dlopen loads (RTLD_NOW | RTLD_LOCAL), or
 * NULL with why = "no <what> (<the loader's words for names[0]>)". */
void *jit_dl_open_first(const char *const *names, size_t n, const char *what, char *why,
                        size_t whylen);

/* Fills `table` from `lib`; on a missing symbol writes why ("<libname> has
 * no <symbol> (too old?)") and returns false. */
bool jit_dl_resolve(void *lib, const struct jit_dl_sym *syms, size_t n, void *table, char *why,
                    size_t whylen, const char *libname);

#endif
