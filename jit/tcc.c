/* tcc.c: compiling generated kernels with libtcc into sealed private memory.
 *
 * libtcc's convenient path (tcc_relocate with TCC_RELOCATE_AUTO) leaves code
 * in heap pages mapped read-write-execute and keeps the whole TCCState
 * alive as long as the code. Instead we ask libtcc for the image size,
 * relocate into our own anonymous mapping, seal it read+execute, copy out
 * the addresses of the module's own symbols and delete the TCCState at
 * once: a module is then just a mapping plus a small name table, cheap to
 * keep in a kernel cache by the thousand.
 *
 * Diagnostics go through tcc_set_error_func into a per-compile context on
 * the stack (no globals), appended to the caller's buffer.
 */
#include "tcc.h"

#include <assert.h>
#include <errno.h>
#include <libtcc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kiln_err.h"

struct jit_module_sym {
    const char *name; /* points into jit_module.names */
    void *addr;
};

struct jit_module {
    void *code;          /* the sealed mapping */
    size_t code_bytes;   /* its length, whole pages */
    uint64_t compile_ns; /* see jit_module_compile_ns */
    size_t nsyms;
    struct jit_module_sym *syms;
    char *names; /* all symbol names, NUL-separated, one allocation */
};

/* ---- the compiler object ------------------------------------------------- */

int jit_tcc_policy_check(void)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t size = page > 0 ? (size_t) page : 4096;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return KILN_EUNSUPPORTED;
    /* The same step libtcc's relocation takes; refused under MDWE-style
     * policies, where libtcc would exit(1) instead of failing. */
    int rc = mprotect(p, size, PROT_READ | PROT_WRITE | PROT_EXEC) == 0 ? KILN_OK
                                                                          : KILN_EUNSUPPORTED;
    munmap(p, size);
    return rc;
}

int jit_compiler_init(struct jit_compiler *c)
{
    memset(c, 0, sizeof *c);
    if (jit_tcc_policy_check() != KILN_OK)
        return KILN_EUNSUPPORTED;
    int rc = pthread_mutex_init(&c->lock, NULL);
    if (rc != 0)
        return rc == ENOMEM ? KILN_ENOMEM : KILN_EINTERNAL;
    c->initialised = 1;
    return KILN_OK;
}

void jit_compiler_fini(struct jit_compiler *c)
{
    if (c == NULL || !c->initialised)
        return;
    pthread_mutex_destroy(&c->lock);
    c->initialised = 0;
}

void jit_compiler_stats(struct jit_compiler *c, struct jit_compiler_stats *out)
{
    pthread_mutex_lock(&c->lock);
    out->compiles = c->compiles;
    out->failures = c->failures;
    out->compile_ns = c->compile_ns;
    pthread_mutex_unlock(&c->lock);
}

/* ---- diagnostics --------------------------------------------------------- */

/* Where libtcc's messages go during one compile. */
struct jit_diag {
    char *buf;   /* the caller's buffer, or NULL */
    size_t cap;  /* its size */
    size_t used; /* bytes written, excluding the NUL */
};

static void jit_diag_append(struct jit_diag *d, const char *msg)
{
    if (d->buf == NULL || d->cap == 0)
        return;
    size_t room = d->cap - 1 - d->used; /* used <= cap - 1 always */
    size_t n = strlen(msg);
    if (d->used > 0 && room > 0) {
        d->buf[d->used++] = '\n';
        room--;
    }
    if (n > room)
        n = room;
    memcpy(d->buf + d->used, msg, n);
    d->used += n;
    d->buf[d->used] = '\0';
}

static void jit_diag_from_tcc(void *opaque, const char *msg)
{
    jit_diag_append(opaque, msg);
}

/* ---- symbols of a finished module ---------------------------------------- */

/* The module's own symbols, collected from libtcc before its state is
 * deleted: a first pass counts them and sizes the name block, a second
 * fills them in. Symbols outside the mapping (those we handed over) are
 * skipped. */
struct jit_symscan {
    const char *lo, *hi; /* the mapping */
    size_t nsyms, name_bytes;
    struct jit_module *mod; /* NULL in the counting pass */
    char *next_name;
};

static void jit_symscan_cb(void *ctx, const char *name, const void *val)
{
    struct jit_symscan *s = ctx;
    const char *p = val;
    if (p < s->lo || p >= s->hi || name == NULL || name[0] == '\0')
        return;
    size_t len = strlen(name) + 1;
    if (s->mod == NULL) {
        s->nsyms++;
        s->name_bytes += len;
        return;
    }
    if (s->mod->nsyms >= s->nsyms) /* libtcc listed more than it did before */
        return;
    memcpy(s->next_name, name, len);
    s->mod->syms[s->mod->nsyms].name = s->next_name;
    s->mod->syms[s->mod->nsyms].addr = (void *) p;
    s->mod->nsyms++;
    s->next_name += len;
}

static int jit_module_collect_syms(TCCState *s, struct jit_module *mod)
{
    struct jit_symscan scan = {
        .lo = mod->code,
        .hi = (const char *) mod->code + mod->code_bytes,
    };
    tcc_list_symbols(s, &scan, jit_symscan_cb);
    if (scan.nsyms == 0)
        return KILN_OK;
    mod->syms = calloc(scan.nsyms, sizeof *mod->syms);
    mod->names = malloc(scan.name_bytes);
    if (mod->syms == NULL || mod->names == NULL)
        return KILN_ENOMEM;
    scan.mod = mod;
    scan.next_name = mod->names;
    tcc_list_symbols(s, &scan, jit_symscan_cb);
    return KILN_OK;
}

/* ---- compiling ----------------------------------------------------------- */

/* Functions libtcc's code generator may call on its own (struct copies and
 * zeroing), present in every module. */
static const struct jit_symbol jit_tcc_implicit[] = {
    {"memcpy", (const void *) memcpy},
    {"memmove", (const void *) memmove},
    {"memset", (const void *) memset},
};

static uint64_t jit_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
}

static void jit_module_release(struct jit_module *mod)
{
    if (mod->code != NULL)
        munmap(mod->code, mod->code_bytes);
    free(mod->syms);
    free(mod->names);
    free(mod);
}

/* The body of jit_tcc_compile, run with the compiler's lock held. */
static int jit_tcc_compile_locked(const struct jit_tcc_opts *opts, const char *source,
                                  const struct jit_symbol *symbols, size_t nsym,
                                  struct jit_module *mod, struct jit_diag *diag)
{
    TCCState *s = tcc_new();
    if (s == NULL) {
        jit_diag_append(diag, "tcc_new failed");
        return KILN_ENOMEM;
    }
    int rc = KILN_EINTERNAL;
    tcc_set_error_func(s, diag, jit_diag_from_tcc);
    /* Before the output type: it is tcc_set_output_type that adds the
     * default include paths unless -nostdinc is set. */
    tcc_set_options(s, "-nostdinc -nostdlib");
    if (opts->options != NULL)
        tcc_set_options(s, opts->options);
    if (tcc_set_output_type(s, TCC_OUTPUT_MEMORY) < 0) {
        rc = KILN_EINTERNAL;
        goto out;
    }
    if (tcc_compile_string(s, source) < 0) {
        rc = KILN_EINTERNAL;
        goto out;
    }
    for (size_t i = 0; i < sizeof jit_tcc_implicit / sizeof jit_tcc_implicit[0]; i++)
        tcc_add_symbol(s, jit_tcc_implicit[i].name, jit_tcc_implicit[i].addr);
    for (size_t i = 0; i < nsym; i++)
        tcc_add_symbol(s, symbols[i].name, symbols[i].addr);

    /* Sizing pass: links the image (resolving symbols, building the GOT
     * and PLT) and reports undefined symbols; -1 on any error. */
    int size = tcc_relocate(s, NULL);
    if (size < 0) {
        rc = KILN_EINTERNAL;
        goto out;
    }
    long page = sysconf(_SC_PAGESIZE);
    size_t pg = page > 0 ? (size_t) page : 4096;
    mod->code_bytes = ((size_t) size + pg - 1) / pg * pg;
    if (mod->code_bytes == 0)
        mod->code_bytes = pg;
    void *mem =
        mmap(NULL, mod->code_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        jit_diag_append(diag, "mmap of the code image failed");
        rc = KILN_ENOMEM;
        goto out;
    }
    mod->code = mem;
    /* libtcc copies the sections in and briefly marks the code pages
     * read-write-execute itself; nothing in the mapping runs before the
     * mprotect below takes write access away from the whole of it. */
    if (tcc_relocate(s, mem) < 0) {
        rc = KILN_EINTERNAL;
        goto out;
    }
    if (mprotect(mem, mod->code_bytes, PROT_READ | PROT_EXEC) != 0) {
        jit_diag_append(diag, "mprotect(PROT_READ|PROT_EXEC) of the code image failed");
        rc = errno == ENOMEM ? KILN_ENOMEM : KILN_EINTERNAL;
        goto out;
    }
    __builtin___clear_cache((char *) mem, (char *) mem + mod->code_bytes);
    rc = jit_module_collect_syms(s, mod);
out:
    tcc_delete(s);
    return rc;
}

int jit_tcc_compile(const struct jit_tcc_opts *opts, const char *source,
                    const struct jit_symbol *symbols, size_t nsym, struct jit_module **out,
                    char *errbuf, size_t errlen)
{
    assert(opts != NULL && opts->compiler != NULL && opts->compiler->initialised);
    assert(source != NULL && out != NULL && (symbols != NULL || nsym == 0));
    *out = NULL;
    struct jit_diag diag = {.buf = errbuf, .cap = errlen};
    if (errbuf != NULL && errlen > 0)
        errbuf[0] = '\0';
    struct jit_module *mod = calloc(1, sizeof *mod);
    if (mod == NULL) {
        jit_diag_append(&diag, "out of memory for the module");
        return KILN_ENOMEM;
    }
    struct jit_compiler *c = opts->compiler;
    pthread_mutex_lock(&c->lock);
    uint64_t t0 = jit_now_ns();
    int rc = jit_tcc_compile_locked(opts, source, symbols, nsym, mod, &diag);
    uint64_t dt = jit_now_ns() - t0;
    if (rc == KILN_OK) {
        c->compiles++;
        c->compile_ns += dt;
    } else {
        c->failures++;
    }
    pthread_mutex_unlock(&c->lock);
    if (rc != KILN_OK) {
        jit_module_release(mod);
        return rc;
    }
    mod->compile_ns = dt;
    *out = mod;
    return KILN_OK;
}

/* ---- modules ------------------------------------------------------------- */

void *jit_module_lookup(const struct jit_module *mod, const char *name)
{
    for (size_t i = 0; i < mod->nsyms; i++)
        if (strcmp(mod->syms[i].name, name) == 0)
            return mod->syms[i].addr;
    return NULL;
}

jit_kernel_fn jit_module_kernel(const struct jit_module *mod, const char *name)
{
    /* POSIX guarantees object and function pointers convert both ways. */
    void *p = jit_module_lookup(mod, name);
    jit_kernel_fn fn;
    memcpy(&fn, &p, sizeof fn);
    return fn;
}

uint64_t jit_module_compile_ns(const struct jit_module *mod)
{
    return mod->compile_ns;
}

size_t jit_module_code_bytes(const struct jit_module *mod)
{
    return mod->code_bytes;
}

void jit_module_free(struct jit_module *mod)
{
    if (mod != NULL)
        jit_module_release(mod);
}
