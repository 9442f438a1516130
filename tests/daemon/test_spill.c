/* test_spill.c: the spill file's extent allocator and the host -> disk
 * tier (daemon/spill.h) on a real session table and libuv loop, without a
 * daemon: spilling least recently used vars past the budget, pins, steps
 * and FETCH reading values back, ENOMEM when nothing can spill, counters,
 * and no file left behind. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "session.h"
#include "spill.h"
#include "spillfile.h"
#include "step.h"

#define KB ((uint64_t) 1 << 10)
#define MB ((uint64_t) 1 << 20)

static char dir[256];

static void make_dir(void)
{
    snprintf(dir, sizeof(dir), "%s/kiln-test-spill-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Entries in the directory besides . and .. */
static int dir_entries(void)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* ---- the file ------------------------------------------------------------- */

START_TEST(file_extents)
{
    make_dir();
    struct spill_file f;
    char why[256];
    ck_assert_int_eq(spill_file_open(&f, dir, 3 * SPILL_FILE_GROW, why, sizeof(why)), 0);
    ck_assert_int_eq(dir_entries(), 0); /* unnamed from the start */

    uint64_t a, b, c, d;
    ck_assert_int_eq(spill_file_alloc(&f, 1, &a), 0); /* one block */
    ck_assert_int_eq(spill_file_alloc(&f, 5000, &b), 0); /* two */
    ck_assert_int_eq(spill_file_alloc(&f, SPILL_FILE_ALIGN, &c), 0);
    ck_assert_uint_eq(a, 0);
    ck_assert_uint_eq(b, SPILL_FILE_ALIGN);
    ck_assert_uint_eq(c, 3 * SPILL_FILE_ALIGN);
    ck_assert_uint_eq(f.used, 4 * SPILL_FILE_ALIGN);
    ck_assert_uint_eq(f.size, SPILL_FILE_GROW);

    /* Freed neighbours coalesce; first fit reuses the hole. */
    spill_file_release(&f, a, 1);
    spill_file_release(&f, b, 5000);
    ck_assert_uint_eq(f.nfree, 2); /* [0, 3 blocks) and the tail */
    ck_assert_uint_eq(f.free[0].off, 0);
    ck_assert_uint_eq(f.free[0].len, 3 * SPILL_FILE_ALIGN);
    ck_assert_int_eq(spill_file_alloc(&f, 2 * SPILL_FILE_ALIGN, &d), 0);
    ck_assert_uint_eq(d, 0);

    /* Round trip through the file. */
    char out[5000], in[5000];
    for (size_t i = 0; i < sizeof(out); i++)
        out[i] = (char) (i * 7);
    ck_assert_int_eq(spill_file_write(f.fd, d, out, sizeof(out)), 0);
    ck_assert_int_eq(spill_file_read(f.fd, d, in, sizeof(in)), 0);
    ck_assert_mem_eq(in, out, sizeof(out));

    /* Growth stops at the cap: EFBIG, and nothing changes. */
    uint64_t big;
    ck_assert_int_eq(spill_file_alloc(&f, 2 * SPILL_FILE_GROW, &big), 0);
    uint64_t used = f.used, size = f.size;
    ck_assert_int_eq(spill_file_alloc(&f, SPILL_FILE_GROW, &big), EFBIG);
    ck_assert_uint_eq(f.used, used);
    ck_assert_uint_eq(f.size, size);
    ck_assert_uint_le(f.size, 3 * SPILL_FILE_GROW);
    ck_assert_int_eq(spill_file_alloc(&f, UINT64_MAX, &big), EFBIG);

    /* Everything back: the file is emptied. */
    spill_file_release(&f, d, 2 * SPILL_FILE_ALIGN);
    spill_file_release(&f, c, SPILL_FILE_ALIGN);
    spill_file_release(&f, SPILL_FILE_GROW - 0, 0); /* a zero-length release is harmless */
    ck_assert_uint_ne(f.used, 0);
    spill_file_close(&f);
    ck_assert_int_eq(dir_entries(), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(file_many_extents)
{
    make_dir();
    struct spill_file f;
    char why[256];
    ck_assert_int_eq(spill_file_open(&f, dir, 64 * MB, why, sizeof(why)), 0);
    enum { N = 300 };
    uint64_t off[N], len[N];
    for (int i = 0; i < N; i++) {
        len[i] = (uint64_t) (i % 7 + 1) * 3000;
        ck_assert_int_eq(spill_file_alloc(&f, len[i], &off[i]), 0);
    }
    /* No two extents overlap. */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            ck_assert(off[i] + spill_file_extent_len(len[i]) <= off[j] ||
                      off[j] + spill_file_extent_len(len[j]) <= off[i]);
    /* Free every other one, then the rest: all coalesces into nothing. */
    for (int i = 0; i < N; i += 2)
        spill_file_release(&f, off[i], len[i]);
    ck_assert_uint_gt(f.nfree, 100);
    for (int i = 1; i < N; i += 2)
        spill_file_release(&f, off[i], len[i]);
    ck_assert_uint_eq(f.used, 0);
    ck_assert_uint_eq(f.size, 0);
    ck_assert_uint_eq(f.nfree, 0);
    spill_file_close(&f);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- the tier --------------------------------------------------------------- */

struct fixture {
    uv_loop_t loop;
    struct log log;
    struct sess_table t;
    struct spill sp;
    struct sess *s;
};

static void fx_start(struct fixture *fx, uint64_t budget, uint64_t max)
{
    make_dir();
    ck_assert_int_eq(uv_loop_init(&fx->loop), 0);
    log_init(&fx->log, LOG_ERROR, STDERR_FILENO);
    sess_table_init(&fx->t, budget, &fx->log);
    struct spill_opts o = {.dir = dir, .max = max};
    ck_assert_int_eq(spill_init(&fx->sp, &fx->t, &fx->loop, &fx->log, &o), 0);
    struct proto_error err;
    ck_assert_int_eq(sess_open(&fx->t, "test", NULL, 0, &fx->s, &err), KILN_OK);
}

static void fx_stop(struct fixture *fx)
{
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    sess_table_fini(&fx->t);
    ck_assert_uint_eq(fx->sp.file.used, 0); /* every extent came back */
    spill_fini(&fx->sp);
    ck_assert_int_eq(uv_loop_close(&fx->loop), 0);
    ck_assert_int_eq(dir_entries(), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}

/* A READY var `id` of `bytes` bytes, each byte id + i; its charge must fit. */
static struct sess_var *add_var(struct fixture *fx, uint64_t id, uint64_t bytes)
{
    int64_t shape[1] = {(int64_t) bytes};
    struct sess_var *v;
    struct proto_error err;
    ck_assert_int_eq(sess_var_add(&fx->t, fx->s, id, IR_DTYPE_UINT8, 1, shape, &v, "", &err), KILN_OK);
    unsigned char *data = malloc(bytes);
    for (uint64_t i = 0; i < bytes; i++)
        data[i] = (unsigned char) (id + i);
    ck_assert_int_eq(sess_var_set_ready(&fx->t, v, data, bytes, NULL), KILN_OK);
    return v;
}

static void check_data(const struct sess_var *v)
{
    ck_assert_ptr_nonnull(v->data);
    const unsigned char *d = v->data;
    for (uint64_t i = 0; i < v->data_len; i++)
        ck_assert_uint_eq(d[i], (unsigned char) (v->id + i));
}

START_TEST(lru_spills_and_fetch_restores)
{
    struct fixture fx;
    fx_start(&fx, 1 * MB, 16 * MB);
    struct sess_var *v[6];
    for (int i = 0; i < 6; i++)
        v[i] = add_var(&fx, 10 + i, 300 * KB); /* 1.8M in all: over the budget */
    uv_run(&fx.loop, UV_RUN_DEFAULT); /* the writes finish */
    ck_assert_uint_le(fx.t.mem_in_use, 1 * MB);
    /* The least recently used went first. */
    ck_assert_int_eq(v[0]->spill.where, SPILL_DISK);
    ck_assert_int_eq(v[1]->spill.where, SPILL_DISK);
    ck_assert_int_eq(v[5]->spill.where, SPILL_RAM);
    ck_assert_ptr_null(v[0]->data);
    ck_assert_uint_eq(v[0]->data_len, 300 * KB);
    ck_assert_uint_ge(fx.sp.host.spills, 3);
    ck_assert_uint_eq(fx.sp.host.spilled_bytes, fx.sp.host.spills * 300 * KB);
    ck_assert_uint_eq(fx.sp.host.moving, 0);

    /* FETCH brings v[0] back (spilling others), bytes intact. */
    struct proto_error err;
    uint64_t ids[1] = {10};
    ck_assert_int_eq(spill_fetch(&fx.sp, fx.s, ids, 1, &err), KILN_OK);
    ck_assert_int_eq(v[0]->spill.where, SPILL_RAM);
    check_data(v[0]);
    ck_assert_uint_eq(fx.sp.host.restores, 1);
    ck_assert_uint_le(fx.t.mem_in_use, 1 * MB);

    /* Tiers for STATUS. */
    struct proto_tier tiers[PROTO_TIERS_MAX];
    ck_assert_uint_eq(spill_tiers(&fx.sp, &fx.t, tiers, PROTO_TIERS_MAX), 2);
    ck_assert_str_eq(tiers[0].name, "host");
    ck_assert_str_eq(tiers[1].name, "disk");
    ck_assert_uint_eq(tiers[0].in_use, fx.t.mem_in_use);
    ck_assert_uint_eq(tiers[1].in_use, fx.sp.file.used);
    ck_assert_uint_gt(tiers[1].in_use, 0);
    fx_stop(&fx);
}
END_TEST

START_TEST(step_reads_back_pinned_inputs)
{
    struct fixture fx;
    fx_start(&fx, 1 * MB, 16 * MB);
    struct sess_var *v[5];
    for (int i = 0; i < 5; i++)
        v[i] = add_var(&fx, 20 + i, 300 * KB);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(v[0]->spill.where, SPILL_DISK);

    /* A step reading v[0] and v[1]: charged and pinned at start, read back
     * on the "worker" (here), in memory after. */
    struct step st;
    memset(&st, 0, sizeof(st));
    ir_graph_init(&st.graph);
    struct sess_var *bind[3] = {v[0], v[1], v[0]}; /* v[0] bound twice: read once */
    const void *inputs[3] = {v[0]->data, v[1]->data, v[0]->data};
    st.bind = bind;
    st.nbind = 3;
    st.inputs = inputs;
    st.session = fx.s->id;
    st.number = 1;
    struct proto_error err;
    ck_assert_int_eq(spill_step_start(&fx.sp, &st, 0, &err), KILN_OK);
    ck_assert_int_eq(v[0]->spill.pins, 2);
    ck_assert_int_eq(v[0]->spill.where, SPILL_LOADING);
    /* A FETCH of a var being read back for a step waits for it. */
    uint64_t ids[1] = {20};
    ck_assert_int_eq(spill_fetch(&fx.sp, fx.s, ids, 1, &err), 1);
    /* More pressure spills others, never the pinned inputs. */
    struct sess_var *w = add_var(&fx, 30, 300 * KB);
    ck_assert_int_ne(v[0]->spill.where, SPILL_WRITING);
    ck_assert_int_ne(v[1]->spill.where, SPILL_WRITING);
    ck_assert_int_eq(spill_step_load(&st), KILN_OK);
    ck_assert_ptr_nonnull(st.inputs[0]);
    ck_assert_ptr_eq(st.inputs[2], st.inputs[0]);
    ck_assert_uint_eq(fx.sp.host.restores, 0); /* counted when the step is back */
    spill_step_done(&fx.sp, &st);
    ck_assert_uint_eq(fx.sp.host.restores, 2);
    ck_assert_ptr_null(st.spill);
    ck_assert_int_eq(v[0]->spill.pins, 0);
    ck_assert_int_eq(v[0]->spill.where, SPILL_RAM);
    check_data(v[0]);
    check_data(v[1]);
    check_data(w);
    ck_assert_uint_ge(fx.sp.host.restores, 1);
    ir_graph_fini(&st.graph);
    fx_stop(&fx);
}
END_TEST

START_TEST(no_room_is_enomem)
{
    /* A spill file of one block: nothing of 300K fits, so charges past
     * the budget are refused, counted, and change nothing. */
    struct fixture fx;
    fx_start(&fx, 1 * MB, 4 * KB);
    for (int i = 0; i < 3; i++)
        add_var(&fx, 40 + i, 300 * KB);
    uint64_t in_use = fx.t.mem_in_use;
    struct proto_error err;
    ck_assert_int_eq(sess_mem_charge(&fx.t, fx.s, 300 * KB, &err), KILN_ENOMEM);
    ck_assert(strstr(err.message, "memory budget") != NULL);
    ck_assert_uint_eq(fx.t.mem_in_use, in_use);
    ck_assert_uint_eq(fx.sp.host.refused, 1);
    ck_assert_uint_eq(fx.sp.host.spills, 0);
    fx_stop(&fx);
}
END_TEST

START_TEST(off_without_budget_or_max)
{
    struct fixture fx;
    fx_start(&fx, 0, 16 * MB); /* no budget: nothing spills, no file */
    ck_assert(!fx.sp.on);
    ck_assert(!fx.sp.file.open);
    add_var(&fx, 50, 300 * KB);
    ck_assert_uint_eq(fx.sp.host.spills, 0);
    fx_stop(&fx);

    fx_start(&fx, 1 * MB, 0); /* --spill-max 0 */
    ck_assert(!fx.sp.on);
    add_var(&fx, 51, 600 * KB);
    struct proto_error err;
    ck_assert_int_eq(sess_mem_charge(&fx.t, fx.s, 600 * KB, &err), KILN_ENOMEM);
    ck_assert_uint_eq(fx.sp.host.refused, 1);
    fx_stop(&fx);
}
END_TEST

START_TEST(taken_back_while_writing)
{
    /* A var chosen for spilling that a step needs before the write is
     * back is taken back: it stays in memory and the write is dropped. */
    struct fixture fx;
    fx_start(&fx, 1 * MB, 16 * MB);
    struct sess_var *v[4];
    for (int i = 0; i < 4; i++)
        v[i] = add_var(&fx, 60 + i, 300 * KB);
    ck_assert_int_eq(v[0]->spill.where, SPILL_WRITING); /* the job has not been run */
    struct step st;
    memset(&st, 0, sizeof(st));
    ir_graph_init(&st.graph);
    struct sess_var *bind[1] = {v[0]};
    const void *inputs[1] = {v[0]->data};
    st.bind = bind;
    st.nbind = 1;
    st.inputs = inputs;
    st.session = fx.s->id;
    struct proto_error err;
    ck_assert_int_eq(spill_step_start(&fx.sp, &st, 0, &err), KILN_OK);
    ck_assert_int_eq(v[0]->spill.where, SPILL_RAM);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(v[0]->spill.where, SPILL_RAM);
    check_data(v[0]);
    spill_step_done(&fx.sp, &st);
    ir_graph_fini(&st.graph);
    ck_assert_uint_le(fx.t.mem_in_use, 1 * MB);
    fx_stop(&fx);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("spill");
    TCase *tc = tcase_create("spill");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, file_extents);
    tcase_add_test(tc, file_many_extents);
    tcase_add_test(tc, lru_spills_and_fetch_restores);
    tcase_add_test(tc, step_reads_back_pinned_inputs);
    tcase_add_test(tc, no_room_is_enomem);
    tcase_add_test(tc, off_without_budget_or_max);
    tcase_add_test(tc, taken_back_while_writing);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed == 0 ? 0 : 1;
}
