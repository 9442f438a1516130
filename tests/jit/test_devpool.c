/* test_devpool.c: the caching device-memory pool (jit/devpool.h) over a
 * malloc backend.
 *
 * The backend keeps each block's size in a hidden prefix (a free with the
 * wrong size fails), counts the bytes it has out, and can be given a
 * budget smaller than the pool's limit to play a device that is full.
 * Cases: rounding and reuse (and the slack rule), stream tags, the limit
 * and trimming, the reclaim hook, backend refusals, and many random
 * operations checked against a model (no two live blocks overlap, a
 * tagged block never goes to another tag before its release, the
 * counters add up), then two threads at once. */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devpool.h"
#include "kiln_err.h"

#define KiB ((size_t) 1 << 10)
#define MiB ((size_t) 1 << 20)

/* ---- the backend ----------------------------------------------------------- */

struct tback {
    pthread_mutex_t lock;
    size_t out;    /* bytes handed out now */
    size_t budget; /* 0: any */
    unsigned allocs, frees, refusals;
    /* reclaim: blocks the owner may move away (freed with tag 0) */
    struct jit_devpool *pool;
    uint64_t cold[8];
    size_t cold_bytes[8];
    unsigned ncold, reclaim_calls;
    size_t last_need;
};

static int tb_alloc(void *ctx, size_t bytes, uint64_t *ptr)
{
    struct tback *t = ctx;
    pthread_mutex_lock(&t->lock);
    bool refuse = t->budget != 0 && t->out + bytes > t->budget;
    if (!refuse)
        t->out += bytes, t->allocs++;
    else
        t->refusals++;
    pthread_mutex_unlock(&t->lock);
    if (refuse)
        return KILN_ENOMEM;
    uint64_t *p = malloc(bytes + 16);
    ck_assert_ptr_nonnull(p);
    p[0] = bytes;
    *ptr = (uint64_t) (uintptr_t) (p + 2);
    return KILN_OK;
}

static void tb_free(void *ctx, uint64_t ptr, size_t bytes)
{
    struct tback *t = ctx;
    uint64_t *p = (uint64_t *) (uintptr_t) ptr - 2;
    ck_assert_uint_eq(p[0], bytes);
    free(p);
    pthread_mutex_lock(&t->lock);
    ck_assert_uint_ge(t->out, bytes);
    t->out -= bytes;
    t->frees++;
    pthread_mutex_unlock(&t->lock);
}

static size_t tb_reclaim(void *ctx, size_t need)
{
    struct tback *t = ctx;
    t->reclaim_calls++;
    t->last_need = need;
    if (t->ncold == 0)
        return 0;
    t->ncold--;
    jit_devpool_free(t->pool, t->cold[t->ncold], t->cold_bytes[t->ncold], 0);
    return t->cold_bytes[t->ncold];
}

static struct tback tb;
static struct jit_devpool *pool;

static void make(size_t limit, bool with_reclaim)
{
    memset(&tb, 0, sizeof tb);
    pthread_mutex_init(&tb.lock, NULL);
    struct jit_devpool_backend be = {
        .ctx = &tb,
        .alloc = tb_alloc,
        .free = tb_free,
        .reclaim = with_reclaim ? tb_reclaim : NULL,
    };
    ck_assert_int_eq(jit_devpool_new(&be, limit, &pool), KILN_OK);
    tb.pool = pool;
}

/* Frees the pool: the backend must then have nothing out. */
static void teardown(void)
{
    jit_devpool_free_pool(pool);
    pool = NULL;
    ck_assert_uint_eq(tb.out, 0);
    pthread_mutex_destroy(&tb.lock);
}

static struct jit_devpool_stats stats(void)
{
    struct jit_devpool_stats s;
    jit_devpool_stats(pool, &s);
    /* What the pool holds is what the backend has out. */
    ck_assert_uint_eq(s.in_use + s.cached, tb.out);
    ck_assert_uint_le(s.in_use + s.cached, s.limit);
    return s;
}

static uint64_t get(size_t bytes, uint64_t tag)
{
    uint64_t p = 0;
    ck_assert_int_eq(jit_devpool_alloc(pool, bytes, tag, &p), KILN_OK);
    ck_assert_uint_ne(p, 0);
    memset((void *) (uintptr_t) p, 0xab, bytes); /* ASan: the block is that big */
    return p;
}

/* ---- cases ----------------------------------------------------------------- */

START_TEST(rounding_and_reuse)
{
    make(0, false);
    uint64_t a = get(1000, 0), z = get(0, 0);
    ck_assert_uint_ne(a, z);
    struct jit_devpool_stats s = stats();
    ck_assert_uint_eq(s.in_use, 1024 + 512);
    ck_assert_uint_eq(s.limit, UINT64_MAX);
    jit_devpool_free(pool, a, 1000, 0);
    ck_assert_uint_eq(get(900, 0), a); /* same rounded size */
    jit_devpool_free(pool, a, 900, 0);
    /* 1 MiB and up rounds to 2 MiB multiples. */
    uint64_t big = get(MiB, 0);
    ck_assert_uint_eq(stats().in_use, 2 * MiB + 512); /* a is cached */
    jit_devpool_free(pool, big, MiB, 0);
    /* Best fit: the 1 KiB block, not the 2 MiB one, serves 600 B. */
    ck_assert_uint_eq(get(600, 0), a);
    /* Slack: a 2 MiB block does not serve 4 KiB, but does 1.5 MiB. */
    uint64_t small = get(4 * KiB, 0);
    ck_assert_uint_ne(small, big);
    ck_assert_uint_eq(get(MiB + MiB / 2, 0), big);
    s = stats();
    ck_assert_uint_eq(s.allocs, 7);
    ck_assert_uint_eq(s.cache_hits, 3);
    ck_assert_uint_eq(s.backend_allocs, 4);
    ck_assert_uint_eq(s.backend_frees, 0);
    ck_assert_uint_eq(s.cached, 0);
    ck_assert_uint_eq(s.peak, 2 * MiB + 1024 + 512 + 4 * KiB);
    jit_devpool_free(pool, small, 4 * KiB, 0);
    jit_devpool_trim(pool);
    s = stats();
    ck_assert_uint_eq(s.cached, 0);
    ck_assert_uint_eq(s.backend_frees, 1);
}
END_TEST

START_TEST(tags)
{
    make(0, false);
    uint64_t a = get(10 * KiB, 1);
    jit_devpool_free(pool, a, 10 * KiB, 1);
    /* Stream 2 and untagged work must not get it while stream 1 may use it. */
    uint64_t b = get(10 * KiB, 2), c = get(10 * KiB, 0);
    ck_assert_uint_ne(b, a);
    ck_assert_uint_ne(c, a);
    /* Trimming leaves it alone. */
    jit_devpool_free(pool, c, 10 * KiB, 0);
    jit_devpool_trim(pool);
    struct jit_devpool_stats s = stats();
    ck_assert_uint_eq(s.cached, 10 * KiB);
    ck_assert_uint_eq(s.backend_frees, 1);
    /* Its own stream gets it back. */
    ck_assert_uint_eq(get(10 * KiB, 1), a);
    jit_devpool_free(pool, a, 10 * KiB, 1);
    jit_devpool_release_tag(pool, 3); /* another stream: no change */
    ck_assert_uint_ne(get(10 * KiB, 3), a);
    jit_devpool_release_tag(pool, 1);
    ck_assert_uint_eq(get(10 * KiB, 2), a);
    /* An untagged block serves any stream. */
    jit_devpool_free(pool, b, 10 * KiB, 0);
    ck_assert_uint_eq(get(10 * KiB, 7), b);
}
END_TEST

START_TEST(limit_and_trim)
{
    make(4 * MiB, false);
    uint64_t a = get(2 * MiB, 0), b = get(2 * MiB, 0);
    uint64_t x;
    /* Full and nothing cached: refused. */
    ck_assert_int_eq(jit_devpool_alloc(pool, 512, 0, &x), KILN_ENOMEM);
    ck_assert_int_eq(jit_devpool_alloc(pool, 5 * MiB, 0, &x), KILN_ENOMEM);
    ck_assert_uint_eq(stats().refused, 2);
    /* A cached block (the least recently freed) goes back to make room. */
    jit_devpool_free(pool, a, 2 * MiB, 0);
    jit_devpool_free(pool, b, 2 * MiB, 0);
    uint64_t c = get(KiB, 0);
    struct jit_devpool_stats s = stats();
    ck_assert_uint_eq(s.backend_frees, 1);
    ck_assert_uint_eq(s.cached, 2 * MiB);
    ck_assert_uint_eq(get(2 * MiB, 0), b); /* b stayed */
    /* A tagged cached block cannot be given back: short of memory, a
     * same-tag request takes it whatever its slack. */
    jit_devpool_free(pool, b, 2 * MiB, 5);
    ck_assert_int_eq(jit_devpool_alloc(pool, 3 * MiB, 0, &x), KILN_ENOMEM);
    uint64_t d = get(MiB - 512, 0), e = get(MiB - 512, 0); /* now full */
    ck_assert_uint_eq(get(4 * KiB, 5), b);
    jit_devpool_free(pool, b, 4 * KiB, 5);
    jit_devpool_free(pool, c, KiB, 0);
    jit_devpool_free(pool, d, MiB - 512, 0);
    jit_devpool_free(pool, e, MiB - 512, 0);
    jit_devpool_trim(pool);
    s = stats();
    ck_assert_uint_eq(s.cached, 2 * MiB); /* the tagged one */
    jit_devpool_release_tag(pool, 5);
    jit_devpool_trim(pool);
    s = stats();
    ck_assert_uint_eq(s.cached, 0);
    ck_assert_uint_eq(s.in_use, 0);
    ck_assert_uint_eq(s.peak, 4 * MiB);
}
END_TEST

START_TEST(reclaim_is_called_and_used)
{
    make(6 * MiB, true);
    /* Three live 2 MiB buffers, two of them cold (movable to host). */
    uint64_t hot = get(2 * MiB, 0);
    for (unsigned k = 0; k < 2; k++) {
        tb.cold[k] = get(2 * MiB, 0);
        tb.cold_bytes[k] = 2 * MiB;
    }
    tb.ncold = 2;
    /* 4 MiB more: reclaim must run twice, its blocks given back and the
     * memory obtained again as one block. */
    uint64_t big = get(4 * MiB, 1);
    struct jit_devpool_stats s = stats();
    ck_assert_uint_eq(s.reclaims, 2);
    ck_assert_uint_eq(s.reclaimed_bytes, 4 * MiB);
    ck_assert_uint_eq(s.in_use, 6 * MiB);
    ck_assert_uint_eq(tb.reclaim_calls, 2);
    ck_assert_uint_eq(tb.last_need, 2 * MiB); /* the second call: 2 MiB short */
    /* A reclaimed block that fits is reused as it is. */
    jit_devpool_free(pool, big, 4 * MiB, 1);
    jit_devpool_release_tag(pool, 1);
    jit_devpool_trim(pool);
    tb.cold[0] = get(4 * MiB, 0);
    tb.cold_bytes[0] = 4 * MiB;
    tb.ncold = 1;
    ck_assert_uint_eq(get(4 * MiB, 0), tb.cold[0]);
    s = stats();
    ck_assert_uint_eq(s.reclaims, 3);
    ck_assert_uint_eq(s.cache_hits, 1);
    /* Nothing left to move: refused after one more call. */
    uint64_t x;
    ck_assert_int_eq(jit_devpool_alloc(pool, 2 * MiB, 0, &x), KILN_ENOMEM);
    s = stats();
    ck_assert_uint_eq(s.reclaims, 4);
    ck_assert_uint_eq(s.refused, 1);
    jit_devpool_free(pool, hot, 2 * MiB, 0);
}
END_TEST

START_TEST(backend_refusal)
{
    /* The pool may take 64 MiB, the "device" has 6. */
    make(64 * MiB, true);
    tb.budget = 6 * MiB - 1;
    uint64_t a = get(2 * MiB, 0), b = get(2 * MiB, 0), c = get(KiB, 0);
    jit_devpool_free(pool, a, 2 * MiB, 0);
    jit_devpool_free(pool, b, 2 * MiB, 0);
    /* 4 MiB: the backend refuses, the pool gives back its cache, and the
     * second try succeeds without reclaim. */
    uint64_t d = get(4 * MiB, 0);
    struct jit_devpool_stats s = stats();
    ck_assert_uint_eq(tb.refusals, 1);
    ck_assert_uint_eq(s.backend_frees, 2);
    ck_assert_uint_eq(s.reclaims, 0);
    /* Now the device is full with nothing cached: reclaim moves a cold
     * buffer (c's 1 KiB block is not enough: called again, then none). */
    tb.cold[0] = c;
    tb.cold_bytes[0] = KiB;
    tb.ncold = 1;
    uint64_t x;
    ck_assert_int_eq(jit_devpool_alloc(pool, 2 * MiB, 0, &x), KILN_ENOMEM);
    s = stats();
    ck_assert_uint_eq(s.reclaims, 2);
    ck_assert_uint_eq(s.reclaimed_bytes, KiB);
    ck_assert_uint_eq(tb.last_need, 2 * MiB);
    ck_assert_uint_eq(s.refused, 1);
    /* A cold 4 MiB buffer makes it: its block serves the request. */
    tb.cold[0] = d;
    tb.cold_bytes[0] = 4 * MiB;
    tb.ncold = 1;
    ck_assert_uint_eq(get(2 * MiB, 0), d);
    s = stats();
    ck_assert_uint_eq(s.reclaims, 3);
    ck_assert_uint_eq(s.cache_hits, 1);
    ck_assert_uint_eq(tb.out, 4 * MiB);
}
END_TEST

/* ---- random operations against a model ----------------------------------- */

struct live {
    uint64_t ptr;
    size_t bytes;
    uint64_t tag; /* what it was allocated for */
};

struct pending {
    uint64_t ptr, tag; /* freed with tag, not released yet */
};

static uint64_t rnd_state = 0x2545F4914F6CDD1DULL;

static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static size_t rnd_size(uint64_t (*r)(void))
{
    switch (r() % 4) {
    case 0:
        return (size_t) (r() % 600);
    case 1:
        return (size_t) (r() % (64 * KiB));
    case 2:
        return (size_t) (r() % MiB);
    default:
        return MiB + (size_t) (r() % (6 * MiB));
    }
}

START_TEST(random_operations)
{
    make(48 * MiB, false);
    enum { OPS = 20000, MAXLIVE = 64, MAXPEND = 4096 };
    static struct live lv[MAXLIVE];
    static struct pending pd[MAXPEND];
    unsigned nlv = 0, npd = 0, refused = 0;
    for (unsigned op = 0; op < OPS; op++) {
        unsigned what = (unsigned) (rnd() % 16);
        if (what < 7 && nlv < MAXLIVE) {
            size_t bytes = rnd_size(rnd);
            uint64_t tag = rnd() % 4, p;
            if (jit_devpool_alloc(pool, bytes, tag, &p) != KILN_OK) {
                refused++;
                continue;
            }
            for (unsigned k = 0; k < nlv; k++)
                ck_assert_msg(p + bytes <= lv[k].ptr || lv[k].ptr + lv[k].bytes <= p,
                              "op %u: block %#llx overlaps a live one", op, (unsigned long long) p);
            for (unsigned k = 0; k < npd; k++)
                if (pd[k].ptr == p) {
                    ck_assert_msg(pd[k].tag == tag, "op %u: tag %llu got tag %llu's block", op,
                                  (unsigned long long) tag, (unsigned long long) pd[k].tag);
                    pd[k] = pd[--npd];
                    break;
                }
            memset((void *) (uintptr_t) p, (int) op, bytes);
            lv[nlv++] = (struct live){p, bytes, tag};
        } else if (what < 14 && nlv > 0) {
            unsigned k = (unsigned) (rnd() % nlv);
            uint64_t tag = rnd() % 2 ? lv[k].tag : 0;
            jit_devpool_free(pool, lv[k].ptr, lv[k].bytes, tag);
            if (tag != 0) {
                ck_assert_uint_lt(npd, MAXPEND);
                pd[npd++] = (struct pending){lv[k].ptr, tag};
            }
            lv[k] = lv[--nlv];
        } else if (what == 14) {
            uint64_t tag = 1 + rnd() % 3;
            jit_devpool_release_tag(pool, tag);
            for (unsigned k = 0; k < npd;)
                if (pd[k].tag == tag)
                    pd[k] = pd[--npd];
                else
                    k++;
        } else if (rnd() % 8 == 0) {
            jit_devpool_trim(pool);
        }
        if (op % 500 == 0) {
            struct jit_devpool_stats s = stats();
            size_t want = 0;
            for (unsigned k = 0; k < nlv; k++) {
                size_t g = lv[k].bytes < MiB ? 512 : 2 * MiB;
                want += lv[k].bytes ? (lv[k].bytes + g - 1) / g * g : 512;
            }
            ck_assert_uint_le(want, s.in_use); /* a hit may be up to twice as big */
        }
    }
    struct jit_devpool_stats s = stats();
    ck_assert_uint_eq(s.refused, refused);
    ck_assert_uint_gt(s.cache_hits, OPS / 8);
    ck_assert_uint_gt(s.backend_frees, 0);
    for (unsigned k = 0; k < nlv; k++)
        jit_devpool_free(pool, lv[k].ptr, lv[k].bytes, 0);
    s = stats();
    ck_assert_uint_eq(s.in_use, 0);
}
END_TEST

/* ---- two threads ----------------------------------------------------------- */

struct hammer {
    uint64_t tag, seed;
    unsigned errors;
};

static __thread uint64_t thr_state;

static uint64_t thr_rnd(void)
{
    thr_state ^= thr_state << 13;
    thr_state ^= thr_state >> 7;
    thr_state ^= thr_state << 17;
    return thr_state;
}

/* Each thread fills its blocks with its tag and checks them before it
 * frees them: a block handed to both threads at once shows. */
static void *hammer(void *arg)
{
    struct hammer *h = arg;
    thr_state = h->seed;
    enum { N = 16 };
    uint64_t ptr[N] = {0};
    size_t bytes[N] = {0};
    for (unsigned op = 0; op < 20000; op++) {
        unsigned k = (unsigned) (thr_rnd() % N);
        if (ptr[k] != 0) {
            const unsigned char *m = (const unsigned char *) (uintptr_t) ptr[k];
            for (size_t i = 0; i < bytes[k]; i += 64)
                h->errors += m[i] != (unsigned char) h->tag;
            jit_devpool_free(pool, ptr[k], bytes[k], thr_rnd() % 2 ? h->tag : 0);
            ptr[k] = 0;
            if (thr_rnd() % 16 == 0)
                jit_devpool_release_tag(pool, h->tag);
            continue;
        }
        size_t n = rnd_size(thr_rnd) / 4;
        if (jit_devpool_alloc(pool, n, thr_rnd() % 4 ? h->tag : 0, &ptr[k]) != KILN_OK) {
            ptr[k] = 0;
            continue;
        }
        bytes[k] = n;
        memset((void *) (uintptr_t) ptr[k], (int) h->tag, n);
        if (thr_rnd() % 64 == 0)
            jit_devpool_trim(pool);
    }
    for (unsigned k = 0; k < N; k++)
        if (ptr[k] != 0)
            jit_devpool_free(pool, ptr[k], bytes[k], h->tag);
    return NULL;
}

START_TEST(two_threads)
{
    make(24 * MiB, false);
    struct hammer h[2] = {{.tag = 1, .seed = 0x9E3779B97F4A7C15ULL},
                          {.tag = 2, .seed = 0xD1B54A32D192ED03ULL}};
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        ck_assert_int_eq(pthread_create(&t[k], NULL, hammer, &h[k]), 0);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    ck_assert_uint_eq(h[0].errors + h[1].errors, 0);
    struct jit_devpool_stats s = stats();
    ck_assert_uint_eq(s.in_use, 0);
    ck_assert_uint_eq(s.allocs, s.cache_hits + s.backend_allocs + s.refused);
    jit_devpool_release_tag(pool, 1);
    jit_devpool_release_tag(pool, 2);
    jit_devpool_trim(pool);
    ck_assert_uint_eq(stats().cached, 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("devpool");
    TCase *tc = tcase_create("devpool");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, rounding_and_reuse);
    tcase_add_test(tc, tags);
    tcase_add_test(tc, limit_and_trim);
    tcase_add_test(tc, reclaim_is_called_and_used);
    tcase_add_test(tc, backend_refusal);
    tcase_add_test(tc, random_operations);
    tcase_add_test(tc, two_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
