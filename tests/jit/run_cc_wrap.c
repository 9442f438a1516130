/* run_cc_wrap.c: test_run.c again, every kernel on the cc tier.
 *
 * meson compiles test_run.c a second time with jit_runtime_new,
 * jit_runtime_free and jit_run renamed to the functions below, so each of
 * its cases (every op and dtype on special values, random graphs, conv,
 * the cache rules) runs unchanged against the system compiler's code:
 *  - the runtime gets a cc tier with threshold 0 (a kernel is promoted
 *    after its first run) and a private disk cache;
 *  - each jit_run runs the graph once (libtcc code, which queues every
 *    kernel it launched), frees those outputs, waits for the cc worker,
 *    and runs it again: the second run's results are what test_run.c
 *    compares with the interpreter, and every kernel it launched must be
 *    cc code;
 *  - at teardown every promoted kernel must have been swapped in, with
 *    no compile failures.
 * The run counters the cases check (compiled kernels, plan hits) are
 * those of the first run, as if the second had not happened.
 */
#undef jit_runtime_new
#undef jit_runtime_free
#undef jit_run

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cc.h"
#include "kiln_err.h"
#include "run.h"

int ccw_runtime_new(const struct jit_runtime_opts *o, struct jit_runtime **out);
void ccw_runtime_free(struct jit_runtime *rt);
int ccw_run(struct jit_runtime *rt, const struct ir_graph *g, const bool *is_output,
            const void *const *externs, struct jit_mem *mem, size_t max_bytes, void ***out,
            struct jit_run_info *info, struct ir_error *err);

/* Each runtime a case makes (a fixture's, and one a case makes beside it)
 * has its own cc tier and cache directory. */
#define CCW_MAX 4
static struct ccw {
    struct jit_runtime *rt;
    struct jit_cc *cc;
    char dir[256];
} ccw[CCW_MAX];

int ccw_runtime_new(const struct jit_runtime_opts *o, struct jit_runtime **out)
{
    struct ccw *w = NULL;
    for (int k = 0; k < CCW_MAX && w == NULL; k++)
        if (ccw[k].cc == NULL)
            w = &ccw[k];
    ck_assert_ptr_nonnull(w);
    const char *t = getenv("TMPDIR");
    snprintf(w->dir, sizeof w->dir, "%s/kiln-test-run-cc-XXXXXX", t && *t ? t : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(w->dir));
    char why[512];
    struct jit_cc_opts co = {.cache_dir = w->dir};
    ck_assert_msg(jit_cc_new(&co, &w->cc, why, sizeof why) == KILN_OK, "no cc tier: %s", why);
    struct jit_runtime_opts ro = *o;
    ro.cc = w->cc;
    ro.cc_threshold_ns = 0;
    int rc = jit_runtime_new(&ro, out);
    w->rt = rc == KILN_OK ? *out : NULL;
    return rc;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void) st;
    (void) flag;
    (void) f;
    return remove(path);
}

void ccw_runtime_free(struct jit_runtime *rt)
{
    struct jit_runtime_stats s;
    jit_runtime_stats(rt, &s);
    if (getenv("KILN_TEST_VERBOSE"))
        fprintf(stderr, "cc tier: %llu kernels promoted, %llu compiled in %llu runs, %.1f s\n",
                (unsigned long long) s.kernels_promoted, (unsigned long long) s.cc_compiles,
                (unsigned long long) s.cc_batches, (double) s.cc_compile_ns / 1e9);
    jit_runtime_free(rt);
    for (int k = 0; k < CCW_MAX; k++)
        if (ccw[k].rt == rt) {
            jit_cc_free(ccw[k].cc);
            nftw(ccw[k].dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            ccw[k] = (struct ccw){0};
        }
    ck_assert(s.cc_enabled);
    ck_assert_uint_eq(s.cc_failures, 0);
    ck_assert_uint_eq(s.kernels_promoted, s.cc_swapped);
}

static void free_outputs(const struct ir_graph *g, const bool *is_output, struct jit_mem *mem,
                         void **out)
{
    for (uint32_t i = 0; i < g->count; i++)
        if (is_output[i])
            jit_mem_free(mem, out[i],
                         (size_t) g->nodes[i].numel * ir_dtype_size(g->nodes[i].dtype));
    free(out);
}

int ccw_run(struct jit_runtime *rt, const struct ir_graph *g, const bool *is_output,
            const void *const *externs, struct jit_mem *mem, size_t max_bytes, void ***out,
            struct jit_run_info *info, struct ir_error *err)
{
    struct jit_run_info first, second;
    int rc = jit_run(rt, g, is_output, externs, mem, max_bytes, out, &first, err);
    if (info)
        *info = first;
    if (rc != KILN_OK)
        return rc;
    free_outputs(g, is_output, mem, *out);
    *out = NULL;
    ck_assert(jit_runtime_cc_drain(rt, (uint64_t) 300 * 1000000000u));
    rc = jit_run(rt, g, is_output, externs, mem, max_bytes, out, &second, err);
    ck_assert_int_eq(rc, KILN_OK);
    ck_assert_uint_eq(second.kernels_compiled, 0);
    ck_assert_uint_eq(second.launched, first.launched);
    ck_assert_msg(second.cc_groups == second.launched, "%u of %u kernels ran cc code",
                  second.cc_groups, second.launched);
    return rc;
}
