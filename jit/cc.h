/* cc.h: the second compiler tier — kernels rebuilt by the system C
 * compiler at -O3 -march=native, in batches, kept in an on-disk cache.
 *
 * Every kernel starts on libtcc (tcc.h), which compiles in well under a
 * millisecond but optimises nothing. A kernel that turns out to be hot is
 * handed to this tier (the executor decides when: run.h), which runs the
 * system compiler (`cc`, or another found at start-up) on the same C text
 * codegen gave libtcc and loads the shared object it makes with dlopen.
 * The executor swaps the new code in between runs. Nothing here runs on a
 * step's critical path except jit_cc_lookup, which reads one file.
 *
 * Bit-identical results. The flags (JIT_CC_FLAGS) keep the C semantics
 * libtcc gives: -ffp-contract=off (no fused multiply-add: FACTS.md measured
 * gcc bit-identical to tcc with it), no fast-math of any kind, no strict
 * aliasing. Two flags change no result and let gcc vectorise: with
 * -fno-trapping-math it may compute both arms of a ?: on floats and
 * blend (the branch-free kernels/vmath.h relies on it: without it gcc
 * turns a clamp into control flow and vectorises nothing), and
 * -fno-math-errno lets sqrt be an instruction (kernels never read errno;
 * floating-point exceptions are never enabled or read either). The text declares the libm functions it calls itself (it has no
 * headers); the object is linked against the system libm, the one the
 * daemon and the reference interpreter call, so an exp is the same exp.
 * The functions of jit_codegen_symbols() (random numbers) cannot be linked
 * in: the translation unit defines them as calls through a table,
 * `kiln__imports`, that the loader fills with the daemon's own addresses
 * (jit_codegen_imports_c()).
 *
 * Batches. The compiler's start-up is most of a one-kernel compile, so
 * jit_cc_build puts many kernels in one translation unit: the common
 * prelude once (jit_codegen_prelude), then each kernel's own text with its
 * file-scope names (k_main, k_init, k_fini, kx<N>) renamed by #define to
 * names derived from its key. A batch the compiler refuses is split in
 * halves until the bad kernel is alone; it fails, the rest are built.
 * (Unless the compiler fails on a trivial module too: then the toolchain
 * is broken, every later build fails at once, and kernels stay on libtcc.)
 *
 * The disk cache. An entry is one compiled object for one kernel key:
 *     key = SHA-256(format version, compiler path and `--version` line,
 *                   flags, CPU identity from /proc/cpuinfo, kernel source)
 * stored as <cache_dir>/<hex key>.kcc: a header (magic, the keys of every
 * kernel in the object, the object's size, a SHA-256 over header and
 * object) followed by the object. A batch's object is written once and
 * hard-linked under each of its keys. Writes go to a unique temporary
 * file that is rename()d over the entry, so a reader sees a whole entry or
 * none, and two processes writing one entry at once leave one of their
 * two (equal) versions. A reader checks size, magic, checksum and that the
 * header lists its key: an entry that fails is deleted, counted in
 * disk_discarded, and rebuilt by the next compile. The cache directory is
 * code the daemon runs, so it must be ours: created 0700, refused when it
 * is a symlink or another user's, and its mode tightened to 0700 when it
 * is ours but open to others. Objects are loaded from the bytes that were
 * checked (copied to a memfd), never by reopening the path.
 *
 * Loaded objects are refcounted (one reference per kernel handed out) and
 * unloaded with dlclose when the last goes; while an object is loaded, all
 * its kernels are found in memory by jit_cc_lookup without touching disk.
 *
 * The compiler runs as a child process (posix_spawn, no shell) with a
 * small fixed environment, no descriptors of the daemon's, output to a
 * memfd; jit_cc_new runs `cc --version` once (2-4 ms), a build once per
 * batch (50 ms for one kernel, 220 ms for 50: FACTS.md).
 *
 * Threads: every function may be called from any thread; builds may run
 * concurrently (each has its own temporary files). A build blocks for the
 * compiler's run time (tens to hundreds of ms): call it from a background
 * thread. jit_cc_free only after every kernel was released.
 */
#ifndef KILN_JIT_CC_H
#define KILN_JIT_CC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tcc.h"

#define JIT_CC_KEY_BYTES 32
#define JIT_CC_MAX_BATCH 256 /* kernels one jit_cc_build call accepts */

/* The compiler flags, one string per argument (the object is then linked
 * with -lm -lgcc). Part of every cache key. */
#define JIT_CC_FLAGS                                                                               \
    "-O3", "-march=native", "-ffp-contract=off", "-fno-fast-math", "-fno-trapping-math",           \
        "-fno-math-errno", "-fno-strict-aliasing",                                                 \
        "-fPIC", "-shared", "-nostdlib", "-nostdinc", "-fvisibility=hidden", "-std=gnu11",         \
        "-pipe", "-w", "-s", "-Wl,-z,noexecstack"

#define JIT_CC_CACHE_MAX_DEFAULT ((uint64_t) 1 << 30) /* bytes of disk cache */

struct jit_cc_opts {
    /* The compiler: a path, or a name looked up in $PATH; NULL: "cc". */
    const char *compiler;
    /* Where entries are kept (created 0700 if missing, parents too); NULL
     * or "": no disk cache (kernels are still compiled). */
    const char *cache_dir;
    /* Where compiles put their temporary files; NULL: <cache_dir>/.work,
     * or without a cache a private directory made under $TMPDIR (or /tmp)
     * at the first build and removed by jit_cc_free. */
    const char *work_dir;
    /* Bytes the cache directory's entries may take: past it, the entries
     * used longest ago are deleted after each write (0: 1 GiB). */
    uint64_t cache_max_bytes;
};

struct jit_cc_stats {
    uint64_t compiles;       /* kernels compiled (each kernel of a batch counts) */
    uint64_t batches;        /* compiler runs that made an object */
    uint64_t failures;       /* kernels the compiler or loader refused */
    uint64_t compile_ns;     /* wall time of all compiler runs, failed ones too */
    uint64_t mem_hits;       /* lookups answered by an object already loaded */
    uint64_t disk_hits;      /* lookups answered by loading a disk entry */
    uint64_t disk_misses;    /* lookups that found no entry */
    uint64_t disk_discarded; /* entries found corrupt, truncated or foreign, deleted */
    uint64_t disk_evicted;   /* entries deleted to keep the cache under its size */
    uint64_t disk_writes;    /* entries written (one per kernel key) */
    uint64_t disk_errors;    /* entries that could not be written */
    uint32_t libs_loaded;    /* shared objects loaded now */
};

struct jit_cc_key {
    uint8_t b[JIT_CC_KEY_BYTES];
};

struct jit_cc;
struct jit_cc_lib; /* one loaded shared object */

/* A kernel's entry points in a loaded object, and the reference that
 * keeps the object loaded. init and fini may be NULL (codegen.h says
 * when a module has them); main never is. */
struct jit_cc_kernel {
    struct jit_cc_lib *lib;
    jit_kernel_fn init, main, fini;
};

/* Finds the compiler and asks it for its version (one short run), reads
 * the CPU identity and prepares the cache directory. Returns:
 *   KILN_OK            *out is ready. If the cache directory is unusable,
 *                      the tier works without it and `why` says why
 *                      (otherwise `why` is "").
 *   KILN_EUNSUPPORTED  no compiler, or it did not answer: `why` says
 *                      which; kiln runs on libtcc alone.
 *   KILN_ENOMEM
 * `why` (whylen bytes, may be NULL/0) is always NUL-terminated. */
int jit_cc_new(const struct jit_cc_opts *o, struct jit_cc **out, char *why, size_t whylen);

/* Kills a compile in progress and makes later builds fail at once: for
 * shutdown, before joining the thread that builds. */
void jit_cc_cancel(struct jit_cc *cc);

/* Frees everything; every kernel must have been released. NULL ok. */
void jit_cc_free(struct jit_cc *cc);

/* "<resolved path> (<version line>)", for logs. */
const char *jit_cc_compiler(const struct jit_cc *cc);
/* The cache directory in use, or NULL. */
const char *jit_cc_cache_dir(const struct jit_cc *cc);

/* The cache key of a kernel's source text (as jit_codegen_group made it). */
void jit_cc_key(const struct jit_cc *cc, const char *source, struct jit_cc_key *key);

/* The file name of key's entry, "<cache_dir>/<64 hex digits>.kcc", into
 * buf; false if there is no cache directory or it does not fit. For
 * tests and tools. */
bool jit_cc_entry_path(const struct jit_cc *cc, const struct jit_cc_key *key, char *buf, size_t n);

/* The compiled kernel of `key`, from an object already loaded or else
 * from the disk cache. KILN_OK: *out holds a reference (release it);
 * KILN_ENOTFOUND: not compiled yet (a bad entry found on the way was
 * deleted); KILN_ENOMEM. On failure out->lib is NULL. */
int jit_cc_lookup(struct jit_cc *cc, const struct jit_cc_key *key, struct jit_cc_kernel *out);

/* Compiles sources[0..n) (1 <= n <= JIT_CC_MAX_BATCH, each the text of one
 * jit_codegen_group call) into one object, writes its entries to the disk
 * cache, loads it, and fills out[i] for each source: a referenced kernel,
 * or out[i].lib == NULL for a source that did not compile (its compiler
 * diagnostics, if diag is given, in diag: diaglen bytes, NUL-terminated).
 * Returns KILN_OK when at least one kernel was built; KILN_EINTERNAL when
 * none was; KILN_ESHUTDOWN after jit_cc_cancel; KILN_ENOMEM. Sources that
 * are equal share one kernel (each out[i] has its own reference).
 * KILN_EUNSUPPORTED once the compiler was found broken. */
int jit_cc_build(struct jit_cc *cc, size_t n, const char *const *sources, struct jit_cc_kernel *out,
                 char *diag, size_t diaglen);

/* Releases a kernel's reference (the object is unloaded with its last);
 * then zeroes *k. A zeroed kernel is a no-op. */
void jit_cc_kernel_release(struct jit_cc *cc, struct jit_cc_kernel *k);

void jit_cc_stats(struct jit_cc *cc, struct jit_cc_stats *out);

#endif
