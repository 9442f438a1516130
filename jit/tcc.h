/* tcc.h: the libtcc compiler tier: C source in, callable kernels out.
 *
 * This is the first compiler tier of kiln (DESIGN.md "Fusion and code
 * generation"): libtcc compiles one generated kernel in well under a
 * millisecond, so a new graph runs at once; hot kernels are recompiled
 * later by the system cc tier. Only kiln's own codegen feeds this wrapper:
 * no byte from a client is ever part of `source`.
 *
 * Kernel calling convention. Every generated kernel has this C type:
 *
 *     void kname(void **bufs, const int64_t *shapes, int64_t begin, int64_t end);
 *
 *  - bufs:   one pointer per input and output buffer, in the order the
 *            plan lists them; the kernel casts each to its element type.
 *  - shapes: the dimension sizes the kernel needs, flattened in an order
 *            its codegen fixed (kernels are rank-specialised, size-generic).
 *  - [begin, end): the slice of the outermost loop this call computes, so
 *            the executor can split one kernel across threads. A kernel
 *            writes only the outputs of that slice and keeps no state.
 * jit_kernel_fn is that type.
 *
 * What generated code sees: nothing but itself and the symbols handed over
 * in `symbols` (-nostdinc -nostdlib: no headers, no libc, no libtcc1.a, and
 * no dlsym fallback, so an undeclared call cannot reach system()). Math
 * functions come from jit_tcc_math_symbols(); codegen declares their
 * prototypes itself (including <math.h> would cost 1.5-3.5 ms per kernel).
 * Generated code must not write to static storage: the module's memory is
 * read+execute only. It must avoid conversions that libtcc lowers to
 * libtcc1.a helpers (float to unsigned 64-bit, alloca, va_arg), which our
 * dtype set never needs.
 *
 * Memory: each module owns one private anonymous mapping that ends up
 * read+execute and is never writable while any code in it runs. libtcc
 * relocates into it, and in doing so briefly maps those pages
 * read-write-execute itself before we seal them (its own default would
 * leave heap pages read-write-execute for good). On a host whose policy
 * forbids writable+executable mappings (systemd MemoryDenyWriteExecute,
 * the kernel's MDWE prctl, SELinux execmem denials) libtcc cannot work at
 * all, and it would call exit(1) from inside relocation: so
 * jit_compiler_init() tries the same mapping sequence first and returns
 * KILN_EUNSUPPORTED when the policy refuses it, letting the daemon turn
 * the tier off with a clear message instead of dying.
 *
 * Threads: libtcc 0.9.27 keeps process-wide state and takes a process-wide
 * lock around compiles, so compiles cannot run in parallel: callers must
 * serialise them (DESIGN: one compile worker). struct jit_compiler carries
 * the mutex that does so; create exactly one per process and pass it in
 * every jit_tcc_opts. Modules are immutable once returned: any thread may
 * look symbols up and call kernels concurrently; jit_module_free must not
 * race with calls into the module (the caller refcounts kernels).
 *
 * Failures: every function returns a kiln_err code. A compile or link
 * error means kiln generated bad code, so it is KILN_EINTERNAL, with
 * libtcc's diagnostics in errbuf ("<string>:LINE: error: ..."). Known
 * hazard: libtcc itself calls exit(1) if malloc fails inside it; that is
 * outside our control.
 */
#ifndef KILN_JIT_TCC_H
#define KILN_JIT_TCC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

typedef void (*jit_kernel_fn)(void **bufs, const int64_t *shapes, int64_t begin, int64_t end);

/* Serialises libtcc and counts its work. Plain data with a mutex: embed it
 * (or allocate it) and call jit_compiler_init/fini; fini is safe on a zeroed
 * object that was never initialised. One per process. */
struct jit_compiler {
    pthread_mutex_t lock;
    int initialised;
    /* Guarded by lock; read with jit_compiler_stats. */
    uint64_t compiles;   /* jit_tcc_compile calls that returned a module */
    uint64_t failures;   /* calls that failed after taking the lock */
    uint64_t compile_ns; /* total time of successful compiles */
};

struct jit_compiler_stats {
    uint64_t compiles, failures, compile_ns;
};

/* KILN_OK; KILN_EUNSUPPORTED when the process may not map pages
 * writable and executable (see "Memory" above: the tier is unusable);
 * KILN_ENOMEM / KILN_EINTERNAL if the mutex cannot be made. */
int jit_compiler_init(struct jit_compiler *c);

/* The W^X policy check jit_compiler_init() runs: KILN_OK when a private
 * page can be made read-write-execute (what libtcc needs), else
 * KILN_EUNSUPPORTED. Exposed for tests. */
int jit_tcc_policy_check(void);
void jit_compiler_fini(struct jit_compiler *c);
/* A consistent snapshot of the counters (takes the lock briefly). */
void jit_compiler_stats(struct jit_compiler *c, struct jit_compiler_stats *out);

/* A name generated code may call or read, and its address in our process. */
struct jit_symbol {
    const char *name;
    const void *addr;
};

struct jit_tcc_opts {
    struct jit_compiler *compiler; /* required: serialises libtcc */
    /* Extra libtcc options from kiln's own code (e.g. "-g"), or NULL.
     * -nostdinc -nostdlib are always set first; do not undo them. */
    const char *options;
};

/* A compiled, relocated and sealed unit of code: one or more kernels. */
struct jit_module;

/* Compiles `source` (NUL-terminated C99) with libtcc, links it against
 * exactly `symbols[0..nsym)` (nsym may be 0, symbols then may be NULL),
 * and returns the module in *out. Symbol names and addresses are copied
 * by libtcc; the caller keeps its array.
 *
 * errbuf (errlen bytes, may be NULL/0) receives libtcc's diagnostics, one
 * per line, truncated to fit and always NUL-terminated when errlen > 0; on
 * success it holds any warnings (often empty). Returns:
 *   KILN_OK        *out is a new module; free it with jit_module_free.
 *   KILN_EINTERNAL the source did not compile or link (syntax error,
 *                  undefined symbol): errbuf says where.
 *   KILN_ENOMEM    no memory for libtcc's state or the code mapping.
 * On failure *out is NULL. Blocks on opts->compiler's lock. */
int jit_tcc_compile(const struct jit_tcc_opts *opts, const char *source,
                    const struct jit_symbol *symbols, size_t nsym, struct jit_module **out,
                    char *errbuf, size_t errlen);

/* The address of the global function or object `name` defined by the
 * module's source, or NULL. Symbols handed over in `symbols` are not the
 * module's and are not found. Thread-safe; no allocation. */
void *jit_module_lookup(const struct jit_module *mod, const char *name);

/* jit_module_lookup cast to the kernel calling convention. */
jit_kernel_fn jit_module_kernel(const struct jit_module *mod, const char *name);

/* Nanoseconds this module's compile took: libtcc state creation, compile,
 * relocation and sealing (not the wait for the lock). For STATUS. */
uint64_t jit_module_compile_ns(const struct jit_module *mod);

/* Bytes of the code mapping (a whole number of pages). */
size_t jit_module_code_bytes(const struct jit_module *mod);

/* Unmaps the code and frees the module. NULL is a no-op. No thread may be
 * running, or later call, any of its kernels. */
void jit_module_free(struct jit_module *mod);

/* libm functions generated code may call, as a static table of
 * {name, address}: expf, exp, logf, log, tanhf, sqrtf, powf, ... for float
 * and double. Pass it (or a subset) as `symbols`; *n gets its length. */
const struct jit_symbol *jit_tcc_math_symbols(size_t *n);

#endif
