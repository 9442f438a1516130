/* codegen_cuda.c: fusion groups as CUDA modules (contract in
 * codegen_cuda.h).
 *
 * Why the C text as it is, rather than a CUDA generator of its own: the
 * C module is what the reference interpreter is tested against, bit for
 * bit, on every op and dtype; compiling that very text for the device
 * keeps one definition of every op, index expression and reduction order
 * instead of two that could drift. The text was written to be valid C++
 * as well (explicit casts from void *, no designated initialisers or
 * compound literals), and NVRTC's -default-device turns its functions,
 * including the libm prototypes of ops_c.h's prelude, into device
 * functions, which CUDA's math library then defines. What CUDA needs
 * beyond it is added at the end: the random-number functions, from
 * kernels/philox.c's own text, and the __global__ entry points.
 */
#include "codegen_cuda.h"

#include <string.h>

#include "codegen.h"
#include "fuse_impl.h"
#include "interp.h"
#include "kiln_err.h"
#include "philox_c_text.h"
#include "philox_h_text.h"

/* philox.h includes <stdint.h> and philox.c <math.h>: NVRTC has neither.
 * The module's prelude already typedefs the integer types (ops_c.h), and
 * CUDA declares the math functions, so these two only add UINT32_C. */
static const char stdint_text[] = "#define UINT32_C(c) c##U\n";
static const char *const header_texts[] = {JIT_PHILOX_H_TEXT, JIT_PHILOX_C_TEXT, stdint_text, ""};
static const char *const header_names[] = {"philox.h", "philox.c", "stdint.h", "math.h"};
_Static_assert(sizeof header_texts == sizeof header_names, "one name per header");

const char *const *jit_codegen_cuda_headers(int *n, const char *const **names)
{
    *n = (int) (sizeof header_names / sizeof header_names[0]);
    *names = header_names;
    return header_texts;
}

/* -default-device: functions without __global__ are device functions.
 * --fmad=false: no contraction into fused multiply-add (the CPU's
 * -ffp-contract=off). Division, square root and subnormals stay IEEE
 * (NVRTC's defaults, stated so that they stay so). Generated code
 * declares what a function might use (codegen.c's fn_head): the
 * unused-variable remarks (177, 550) are noise. */
static const char *const options[] = {
    "--gpu-architecture=" JIT_CUDA_ARCH,
    "--std=c++17",
    "-default-device",
    "--fmad=false",
    "--prec-div=true",
    "--prec-sqrt=true",
    "--ftz=false",
    "-diag-suppress=177,550",
};

const char *const *jit_codegen_cuda_options(int *n)
{
    *n = (int) (sizeof options / sizeof options[0]);
    return options;
}

/* kiln_rand_* of codegen.h's prelude, as codegen.c defines them for the
 * CPU: philox_block, then the dtype's rule. */
static const char random_fns[] =
    "#include \"philox.c\"\n"
    "float kiln_rand_uniform_f32(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_uniform_f32(r); }\n"
    "double kiln_rand_uniform_f64(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_uniform_f64(r); }\n"
    "float kiln_rand_normal_f32(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_normal_f32(r); }\n"
    "double kiln_rand_normal_f64(uint64_t seed, uint64_t ctr)\n"
    "{ uint32_t r[4]; philox_block(seed, ctr, r); return philox_normal_f64(r); }\n";

size_t jit_codegen_cuda_nbufs(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi)
{
    const struct jit_group *G = &p->groups[gi];
    bool extra = G->kind == JIT_GROUP_REDUCE || jit_kernel_scratch(g, p, gi);
    return (size_t) G->ninputs + G->nsinks + (extra ? 1 : 0);
}

static bool dt_float(int dt)
{
    return ir_dtype_info((enum ir_dtype) dt)->kind == IR_KIND_FLOAT;
}

/* Whether a REINDEX_REDUCE group scatters with atomics (integers: the
 * same bytes in any order) rather than in one thread's walk. */
static bool rr_atomic(const struct ir_graph *g, const struct jit_group *G)
{
    return !dt_float(g->nodes[G->reduce].dtype);
}

/* A __global__ entry `name` calling the module's function `fn`: over
 * [0, n) one element per call, grid-strided, or all of it in one call by
 * one thread (`serial`). */
static void entry(struct jit_buf *src, const char *name, const char *fn, bool serial)
{
    jit_buf_addf(src,
                 "extern \"C\" __global__ void %s(const __grid_constant__ struct kiln_args a, "
                 "int64_t n)\n{\n",
                 name);
    if (serial) {
        jit_buf_add(src, "    if (blockIdx.x == 0 && threadIdx.x == 0)\n");
        jit_buf_addf(src, "        %s((void **) a.b, a.p, 0, n);\n", fn);
    } else {
        jit_buf_add(src, "    const int64_t stride = (int64_t) gridDim.x * blockDim.x;\n");
        jit_buf_add(src, "    for (int64_t f = (int64_t) blockIdx.x * blockDim.x + threadIdx.x; "
                         "f < n; f += stride)\n");
        jit_buf_addf(src, "        %s((void **) a.b, a.p, f, f + 1);\n", fn);
    }
    jit_buf_add(src, "}\n");
}

/* ---- REDUCE ------------------------------------------------------------------
 *
 * The order (interp.h, codegen.c): per output element, blocks of
 * IR_REDUCE_BLOCK elements j; in a block, lane l = j % 16 combines its
 * elements in increasing j, the lanes fold by halves (l op= l + w for
 * w = 8, 4, 2, 1), and the block values combine in block order from the
 * identity. A work item (an output element, or one block of one) is done
 * by T threads:
 *   T = 16  a half-warp, thread l being lane l; the fold is shuffles
 *           down by w within the 16 (__shfl_down_sync, width 16), lane l
 *           taking lane l + w's value as its right operand, as the C text.
 *   T = 1   one thread with the 16 lanes in registers (unrolled).
 * Float max/min have one lane on the CPU (serial j); with T = 16 each
 * thread also keeps the index of the element its value came from, and
 * two lanes merge as "earlier, then later" by the same rule, which picks
 * the first NaN or the first maximal element: the serial walk's bytes,
 * signed zeros and NaN payloads included. Integers are exact in any
 * order. The plan picks T through n (n = items * T). */

static void reduce_dims(const struct ir_graph *g, const struct jit_group *G, int *nr, int *rd,
                        int *xrank)
{
    const struct ir_node *rn = &g->nodes[G->reduce];
    const struct ir_node *x = &g->nodes[rn->in[0]];
    *nr = 0;
    *xrank = x->rank;
    for (int d = 0; d < x->rank; d++)
        if (rn->attr.reduce.dims & (1u << d))
            rd[(*nr)++] = d;
}

/* `name`(P, j, c): c = the coordinates of flat index j over the n dims
 * of sizes P[pd[0]], ..., P[pd[n - 1]] (row-major). */
static void coords_fn(struct jit_buf *src, const char *name, int n, const int *pd)
{
    jit_buf_addf(src,
                 "static __forceinline__ void %s(const int64_t *P, int64_t j, int64_t *c)\n"
                 "{\n    (void) P; (void) j; (void) c;\n",
                 name);
    for (int k = n - 1; k > 0; k--)
        jit_buf_addf(src, "    c[%d] = j %% P[%d];\n    j /= P[%d];\n", k, pd[k], pd[k]);
    if (n > 0)
        jit_buf_add(src, "    c[0] = j;\n");
    jit_buf_add(src, "}\n");
}

/* Index helpers over the reduced dims (P[d], d in rd) and the output dims
 * (P[xrank + d]). */
static void reduce_index_fns(struct jit_buf *src, int nr, const int *rd, int xrank, int orank)
{
    jit_buf_add(src, "static __forceinline__ int64_t k_nred(const int64_t *P)\n{\n"
                     "    (void) P;\n    return (int64_t) 1");
    for (int k = 0; k < nr; k++)
        jit_buf_addf(src, " * P[%d]", rd[k]);
    jit_buf_add(src, ";\n}\n");
    jit_buf_add(src, "static __forceinline__ int64_t k_nout(const int64_t *P)\n{\n"
                     "    (void) P;\n    return (int64_t) 1");
    for (int d = 0; d < orank; d++)
        jit_buf_addf(src, " * P[%d]", xrank + d);
    jit_buf_add(src, ";\n}\n");
    coords_fn(src, "k_ic", nr, rd); /* the reduced coordinates of j < nred */
    /* ic += s (s >= 0) as an odometer: a division only on a wrap. */
    jit_buf_add(src, "static __forceinline__ void k_ic_add(const int64_t *P, int64_t *ic, int64_t s)\n"
                     "{\n    (void) P; (void) ic; (void) s;\n");
    for (int k = nr - 1; k > 0; k--)
        jit_buf_addf(src,
                     "    ic[%d] += s;\n    if (ic[%d] < P[%d])\n        return;\n"
                     "    s = ic[%d] / P[%d];\n    ic[%d] %%= P[%d];\n",
                     k, k, rd[k], k, rd[k], k, rd[k]);
    if (nr > 0)
        jit_buf_add(src, "    ic[0] += s;\n");
    jit_buf_add(src, "}\n");
    int od[KILN_LIMIT_RANK] = {0};
    for (int d = 0; d < orank; d++)
        od[d] = xrank + d;
    coords_fn(src, "k_oc", orank, od); /* the output coordinates of f < nout */
}

/* k_block: one block [jb, je) of output element oc done by T threads;
 * the block's value is returned on lane 0. */
static void reduce_block_fn(struct jit_buf *src, int nr, int orank, bool fminmax, bool flanes)
{
    (void) orank;
    if (fminmax)
        jit_buf_add(
            src,
            "/* Merges two lanes' (value, index of its element): the earlier then the later. */\n"
            "static __forceinline__ void k_merge(kiln_acc *a, int64_t *ja, kiln_acc y, int64_t jy)\n"
            "{\n"
            "    const bool yfirst = jy < *ja;\n"
            "    const kiln_acc e = yfirst ? y : *a, l = yfirst ? *a : y;\n"
            "    const int64_t je = yfirst ? jy : *ja, jl = yfirst ? *ja : jy;\n"
            "    kiln_acc r = e;\n"
            "    k_comb(&r, l);\n"
            "    *ja = __double_as_longlong(r) != __double_as_longlong(e) ? jl : je;\n"
            "    *a = r;\n"
            "}\n");
    jit_buf_addf(src,
                 "static __device__ kiln_acc k_block(void **b, const int64_t *P, const int64_t *oc, "
                 "int64_t jb, int64_t je, int T, int lane)\n{\n"
                 "    int64_t ic[%d];\n",
                 nr > 0 ? nr : 1);
    /* T = 16: thread = lane. */
    jit_buf_add(src, "    if (T == 16) {\n"
                     "        kiln_acc a = k_id();\n");
    if (fminmax)
        jit_buf_add(src, "        int64_t ja = (int64_t) 0x7fffffffffffffffll;\n");
    jit_buf_add(src, "        int64_t j = jb + lane;\n"
                     "        if (j < je)\n"
                     "            k_ic(P, j, ic);\n"
                     "        for (; j < je; j += 16) {\n"
                     "            const kiln_acc x = k_pt(b, P, 0, 0, oc, ic);\n");
    if (fminmax)
        jit_buf_add(src, "            const kiln_acc o = a;\n"
                         "            k_comb(&a, x);\n"
                         "            if (__double_as_longlong(a) != __double_as_longlong(o))\n"
                         "                ja = j;\n");
    else
        jit_buf_add(src, "            k_comb(&a, x);\n");
    jit_buf_add(src, "            if (j + 16 < je)\n"
                     "                k_ic_add(P, ic, 16);\n"
                     "        }\n"
                     "        for (int w = 8; w >= 1; w /= 2) {\n"
                     "            const kiln_acc y = __shfl_down_sync(0xffffffffu, a, w, 16);\n");
    if (fminmax)
        jit_buf_add(src, "            const int64_t jy = __shfl_down_sync(0xffffffffu, ja, w, 16);\n"
                         "            if (lane < w)\n"
                         "                k_merge(&a, &ja, y, jy);\n");
    else
        jit_buf_add(src, "            if (lane < w)\n"
                         "                k_comb(&a, y);\n");
    jit_buf_add(src, "        }\n"
                     "        return a;\n"
                     "    }\n");
    if (flanes) {
        /* T = 1, float add/mul/mean: the 16 lanes in registers. */
        jit_buf_add(src, "    kiln_acc a[16];\n"
                         "#pragma unroll\n"
                         "    for (int l = 0; l < 16; l++)\n"
                         "        a[l] = k_id();\n"
                         "    if (jb < je)\n"
                         "        k_ic(P, jb, ic);\n"
                         "    for (int64_t j = jb; j < je; j += 16) {\n"
                         "#pragma unroll\n"
                         "        for (int l = 0; l < 16; l++)\n"
                         "            if (j + l < je) {\n"
                         "                k_comb(&a[l], k_pt(b, P, 0, 0, oc, ic));\n"
                         "                k_ic_add(P, ic, 1);\n"
                         "            }\n"
                         "    }\n");
        /* The fold written out: constant indices keep the lanes in
         * registers. */
        for (int w = IR_REDUCE_LANES / 2; w >= 1; w /= 2)
            for (int l = 0; l < w; l++)
                jit_buf_addf(src, "    k_comb(&a[%d], a[%d]);\n", l, l + w);
        jit_buf_add(src, "    return a[0];\n");
    } else {
        /* T = 1, integers and float max/min: one lane, serial j (the same
         * bytes: integers are exact, and max/min's lane is serial). */
        jit_buf_add(src, "    kiln_acc a = k_id();\n"
                         "    if (jb < je)\n"
                         "        k_ic(P, jb, ic);\n"
                         "    for (int64_t j = jb; j < je; j++) {\n"
                         "        k_comb(&a, k_pt(b, P, 0, 0, oc, ic));\n"
                         "        k_ic_add(P, ic, 1);\n"
                         "    }\n"
                         "    return a;\n");
    }
    jit_buf_add(src, "}\n");
}

/* The entries stride over thread slots t < n a warp at a time, so that
 * all 32 threads of a warp reach every shuffle (full mask); a slot past n
 * is not `live`: it reduces an empty range and writes nothing. */
static const char warp_loop[] =
    "    const int64_t stride = (int64_t) gridDim.x * blockDim.x;\n"
    "    for (int64_t t0 = (int64_t) blockIdx.x * blockDim.x + (threadIdx.x & ~31u); t0 < n; "
    "t0 += stride) {\n"
    "        const int64_t t = t0 + (threadIdx.x & 31u);\n"
    "        const bool live = t < n;\n";

static void reduce_entries(struct jit_buf *src, size_t nbufs, int orank)
{
    const char *head = "(const __grid_constant__ struct kiln_args a, int64_t n)\n{\n"
                       "    void **b = (void **) a.b;\n"
                       "    const int64_t *P = a.p;\n"
                       "    const int64_t nred = k_nred(P), nout = k_nout(P);\n";
    jit_buf_addf(src,
                 "extern \"C\" __global__ void kiln_main%s"
                 "    if (nout <= 0)\n        return;\n"
                 "    const int T = n > nout ? 16 : 1;\n"
                 "%s"
                 "        const int64_t f = T == 16 ? t >> 4 : t;\n"
                 "        const int lane = (int) (t & (T - 1));\n"
                 "        int64_t oc[%d];\n"
                 "        k_oc(P, f, oc);\n"
                 "        kiln_acc tot = k_id();\n"
                 "        for (int64_t jb = 0; jb < nred; jb += %d) {\n"
                 "            const int64_t je = nred - jb > %d ? jb + %d : nred;\n"
                 "            const kiln_acc bv = k_block(b, P, oc, jb, live ? je : jb, T, lane);\n"
                 "            k_comb(&tot, bv);\n"
                 "        }\n"
                 "        if (live && lane == 0)\n"
                 "            k_epi(b, P, f, 0, tot);\n"
                 "    }\n}\n",
                 head, warp_loop, orank > 0 ? orank : 1, IR_REDUCE_BLOCK, IR_REDUCE_BLOCK,
                 IR_REDUCE_BLOCK);
    jit_buf_addf(src,
                 "extern \"C\" __global__ void kiln_init%s"
                 "    kiln_acc *part = (kiln_acc *) a.b[%zu];\n"
                 "    const int64_t items = (nred + %d) / %d * nout;\n"
                 "    if (items <= 0)\n        return;\n"
                 "    const int T = n > items ? 16 : 1;\n"
                 "%s"
                 "        const int64_t it = T == 16 ? t >> 4 : t;\n"
                 "        const int lane = (int) (t & (T - 1));\n"
                 "        const int64_t jb = it / nout * %d;\n"
                 "        int64_t oc[%d];\n"
                 "        k_oc(P, it %% nout, oc);\n"
                 "        const int64_t je = nred - jb > %d ? jb + %d : nred;\n"
                 "        const kiln_acc bv = k_block(b, P, oc, jb, live ? je : jb, T, lane);\n"
                 "        if (live && lane == 0)\n"
                 "            part[it] = bv;\n"
                 "    }\n}\n",
                 head, nbufs - 1, IR_REDUCE_BLOCK - 1, IR_REDUCE_BLOCK, warp_loop, IR_REDUCE_BLOCK,
                 orank > 0 ? orank : 1, IR_REDUCE_BLOCK, IR_REDUCE_BLOCK);
    entry(src, "kiln_fini", "k_fini", false);
}

/* ---- REINDEX_REDUCE ---------------------------------------------------------- */

/* kiln_rr_atomic(p, x): *p = (dtype) ((acc) *p op x) as one atomic step,
 * as the C text's in-place combine: a native atomic where it computes
 * exactly that, else a compare-and-swap loop (8-bit values: on the
 * aligned 32-bit word holding them, whose other bytes it leaves as they
 * are; buffers start 4-byte aligned). */
static void rr_atomic_fn(struct jit_buf *src, int op, int dt)
{
    const char *t = ir_dtype_ctype((enum ir_dtype) dt);
    size_t size = ir_dtype_size((enum ir_dtype) dt);
    jit_buf_addf(src, "static __device__ void kiln_rr_atomic(%s *p, kiln_acc x)\n{\n", t);
    if (op == IR_REDUCE_ADD && size >= 4) {
        const char *u = size == 4 ? "unsigned int" : "unsigned long long";
        jit_buf_addf(src, "    atomicAdd((%s *) p, (%s) x);\n", u, u);
    } else if ((op == IR_REDUCE_MAX || op == IR_REDUCE_MIN) && size >= 4) {
        const char *s = size == 4 ? "int" : "long long"; /* int32 and int64 are signed */
        jit_buf_addf(src, "    %s((%s *) p, (%s) x);\n",
                     op == IR_REDUCE_MAX ? "atomicMax" : "atomicMin", s, s);
    } else if (size >= 4) {
        const char *u = size == 4 ? "unsigned int" : "unsigned long long";
        jit_buf_addf(src,
                     "    %s *q = (%s *) p;\n"
                     "    %s old = *q, as;\n"
                     "    do {\n"
                     "        as = old;\n"
                     "        kiln_acc v = (kiln_acc) (%s) as;\n"
                     "        k_comb(&v, x);\n"
                     "        old = atomicCAS(q, as, (%s) (%s) v);\n"
                     "    } while (old != as);\n",
                     u, u, u, t, u, t);
    } else {
        jit_buf_addf(src,
                     "    const unsigned long long at = (unsigned long long) p;\n"
                     "    unsigned int *q = (unsigned int *) (at & ~3ull);\n"
                     "    const unsigned int sh = (unsigned int) (at & 3u) * 8u;\n"
                     "    unsigned int old = *q, as;\n"
                     "    do {\n"
                     "        as = old;\n"
                     "        kiln_acc v = (kiln_acc) (%s) (as >> sh);\n"
                     "        k_comb(&v, x);\n"
                     "        const unsigned int nv = (as & ~(0xffu << sh)) | "
                     "((unsigned int) (uint8_t) (%s) v << sh);\n"
                     "        old = atomicCAS(q, as, nv);\n"
                     "    } while (old != as);\n",
                     t, t);
    }
    jit_buf_add(src, "}\n");
}

int jit_codegen_cuda_group(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                           struct jit_buf *src)
{
    const struct jit_group *G = &p->groups[gi];
    if (G->kind != JIT_GROUP_ELEMENTWISE && G->kind != JIT_GROUP_REDUCE &&
        G->kind != JIT_GROUP_REINDEX_REDUCE)
        return KILN_EINTERNAL; /* relays are library calls, not modules */
    size_t nbufs = jit_codegen_cuda_nbufs(g, p, gi);
    size_t nparams = jit_kernel_nparams(g, p, gi);
    if (nparams == 0)
        nparams = 1; /* C++ has no empty arrays; the slot is never read */
    if (nbufs + nparams + 1 > JIT_CUDA_ARGS_MAX / 8)
        return KILN_ELIMIT;
    jit_buf_add(src, "/* kiln CUDA module (jit/codegen_cuda.c): codegen.c's C module, then what "
                     "CUDA needs */\n");
    int rc = jit_codegen_group_cuda(g, p, gi, src);
    if (rc != KILN_OK)
        return rc;
    jit_buf_add(src, random_fns);
    jit_buf_addf(src, "struct kiln_args { void *b[%zu]; int64_t p[%zu]; };\n", nbufs, nparams);
    switch (G->kind) {
    case JIT_GROUP_ELEMENTWISE:
        entry(src, "kiln_main", "k_main", false);
        break;
    case JIT_GROUP_REDUCE: {
        const struct ir_node *rn = &g->nodes[G->reduce];
        int nr, rd[KILN_LIMIT_RANK] = {0}, xrank, op = rn->attr.reduce.op;
        reduce_dims(g, G, &nr, rd, &xrank);
        bool fl = dt_float(rn->dtype);
        bool fminmax = fl && (op == IR_REDUCE_MAX || op == IR_REDUCE_MIN);
        reduce_index_fns(src, nr, rd, xrank, rn->rank);
        reduce_block_fn(src, nr, rn->rank, fminmax, fl && !fminmax);
        reduce_entries(src, nbufs, rn->rank);
        break;
    }
    default:
        entry(src, "kiln_init", "k_init", false);
        if (rr_atomic(g, G)) {
            rr_atomic_fn(src, g->nodes[G->reduce].attr.reindex->op, g->nodes[G->reduce].dtype);
            entry(src, "kiln_main", "k_scat", false);
        } else {
            entry(src, "kiln_main", "k_main", true);
        }
        if (jit_kernel_scratch(g, p, gi))
            entry(src, "kiln_fini", "k_fini", false);
        break;
    }
    return src->bad ? KILN_ENOMEM : KILN_OK;
}

/* ---- launch plans --------------------------------------------------------------- */

#define BLOCK_THREADS 256u
#define BLOCKS_PER_SM 32u /* the grid cap: grid-stride loops do the rest */

static void launch(struct jit_cuda_launch *l, const char *entry_name, int64_t n, uint32_t sms,
                   bool serial)
{
    l->entry = entry_name;
    l->n = n;
    l->shared = 0;
    if (serial) {
        l->grid = 1;
        l->block = 32;
        return;
    }
    uint64_t blocks = ((uint64_t) n + BLOCK_THREADS - 1) / BLOCK_THREADS;
    uint64_t cap = (uint64_t) sms * BLOCKS_PER_SM;
    l->grid = (uint32_t) (blocks < 1 ? 1 : blocks > cap ? cap : blocks);
    l->block = BLOCK_THREADS;
}

uint32_t jit_codegen_cuda_launches(const struct ir_graph *g, const struct jit_plan *p, uint32_t gi,
                                   uint32_t sms, struct jit_cuda_launch out[JIT_CUDA_LAUNCH_MAX],
                                   size_t *extra_bytes)
{
    const struct jit_group *G = &p->groups[gi];
    *extra_bytes = 0;
    if (sms == 0)
        sms = 1;
    int64_t main_n = g->nodes[G->space].numel;
    int64_t out_n = G->reduce >= 0 ? g->nodes[G->reduce].numel : 0;
    switch (G->kind) {
    case JIT_GROUP_ELEMENTWISE:
        if (main_n <= 0)
            return 0;
        launch(&out[0], "kiln_main", main_n, sms, false);
        return 1;
    case JIT_GROUP_REDUCE: {
        if (out_n <= 0)
            return 0;
        const struct ir_node *rn = &g->nodes[G->reduce];
        const struct ir_node *x = &g->nodes[rn->in[0]];
        int64_t nred = main_n / out_n;
        int64_t nb = (nred + IR_REDUCE_BLOCK - 1) / IR_REDUCE_BLOCK;
        bool inner = x->rank > 0 && (rn->attr.reduce.dims & (1u << (x->rank - 1)));
        /* Threads the device holds at once, about: the work wanted. */
        int64_t full = (int64_t) sms * 2048;
        /* Few output elements of more than one block each: every block of
         * every output element at once, then the combine (run.c's rule,
         * with the device's thread count for the CPU's worker count). */
        bool split = nb >= 2 && out_n * 16 < full;
        int64_t items = split ? nb * out_n : out_n;
        /* A half-warp per item where the lanes read consecutive memory
         * (the last dim reduced) or where there are too few items to fill
         * the device; one thread per item (coalesced along a kept last
         * dim, or for rows shorter than the lanes) otherwise. */
        int64_t T = nred > IR_REDUCE_LANES && (inner || items * 16 <= full) ? 16 : 1;
        if (!split) {
            launch(&out[0], "kiln_main", items * T, sms, false);
            return 1;
        }
        *extra_bytes = (size_t) items * sizeof(double);
        launch(&out[0], "kiln_init", items * T, sms, false);
        launch(&out[1], "kiln_fini", out_n, sms, false);
        return 2;
    }
    case JIT_GROUP_REINDEX_REDUCE: {
        if (out_n <= 0)
            return 0;
        uint32_t k = 0;
        launch(&out[k++], "kiln_init", out_n, sms, false);
        if (main_n > 0)
            launch(&out[k++], "kiln_main", main_n, sms, !rr_atomic(g, G));
        if (jit_kernel_scratch(g, p, gi)) {
            *extra_bytes = (size_t) out_n * sizeof(double);
            launch(&out[k++], "kiln_fini", out_n, sms, false);
        }
        return k;
    }
    default:
        return 0; /* relays: the executor's own */
    }
}
