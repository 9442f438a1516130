/* test_dtype.c: the dtype table, wire numbers and names, and type promotion
 * checked pair by pair against numpy's answers (promote_numpy.h, generated
 * by gen_promote.py next to this file). */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "kiln_err.h"
#include "promote_numpy.h"

#define NDT ((int) (sizeof numpy_dtypes / sizeof numpy_dtypes[0]))

/* Where kiln knowingly differs from numpy: numpy's answer is not in our
 * set of dtypes. Each entry is (a, b, numpy's answer, ours). */
static const struct {
    const char *a, *b, *numpy, *ours;
} deviations[] = {
    {"int8", "uint8", "int16", "int32"},
    {"uint8", "int8", "int16", "int32"},
};

static enum ir_dtype by_name(const char *name)
{
    enum ir_dtype t = IR_DTYPE_INVALID;
    ck_assert_int_eq(ir_dtype_from_name(name, strlen(name), &t), KILN_OK);
    return t;
}

/* ---- the table ----------------------------------------------------------- */

START_TEST(wire_numbers_are_stable)
{
    /* These numbers are on the wire: this test fails if anyone renumbers. */
    ck_assert_int_eq(IR_DTYPE_INVALID, 0);
    ck_assert_int_eq(IR_DTYPE_BOOL, 1);
    ck_assert_int_eq(IR_DTYPE_INT8, 2);
    ck_assert_int_eq(IR_DTYPE_UINT8, 3);
    ck_assert_int_eq(IR_DTYPE_INT32, 4);
    ck_assert_int_eq(IR_DTYPE_INT64, 5);
    ck_assert_int_eq(IR_DTYPE_FLOAT32, 6);
    ck_assert_int_eq(IR_DTYPE_FLOAT64, 7);
    ck_assert_int_eq(IR_DTYPE_RESERVED_FLOAT16, 8);
    ck_assert_int_eq(IR_DTYPE_RESERVED_BFLOAT16, 9);
}
END_TEST

START_TEST(table_rows)
{
    static const struct {
        enum ir_dtype t;
        const char *name, *ctype;
        size_t size;
        int kind;
    } want[] = {
        {IR_DTYPE_BOOL, "bool", "uint8_t", 1, IR_KIND_BOOL},
        {IR_DTYPE_INT8, "int8", "int8_t", 1, IR_KIND_INT},
        {IR_DTYPE_UINT8, "uint8", "uint8_t", 1, IR_KIND_UINT},
        {IR_DTYPE_INT32, "int32", "int32_t", 4, IR_KIND_INT},
        {IR_DTYPE_INT64, "int64", "int64_t", 8, IR_KIND_INT},
        {IR_DTYPE_FLOAT32, "float32", "float", 4, IR_KIND_FLOAT},
        {IR_DTYPE_FLOAT64, "float64", "double", 8, IR_KIND_FLOAT},
    };
    ck_assert_int_eq(sizeof want / sizeof want[0], IR_DTYPE_COUNT - 1);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct ir_dtype_info *info = ir_dtype_info(want[i].t);
        ck_assert_ptr_nonnull(info);
        ck_assert_str_eq(info->name, want[i].name);
        ck_assert_str_eq(ir_dtype_name(want[i].t), want[i].name);
        ck_assert_str_eq(info->ctype, want[i].ctype);
        ck_assert_str_eq(ir_dtype_ctype(want[i].t), want[i].ctype);
        ck_assert_uint_eq(info->size, want[i].size);
        ck_assert_uint_eq(ir_dtype_size(want[i].t), want[i].size);
        ck_assert_int_eq(info->kind, want[i].kind);
        ck_assert_uint_le(strlen(info->name), IR_DTYPE_NAME_MAX);
        ck_assert(ir_dtype_valid(want[i].t));
    }
}
END_TEST

START_TEST(invalid_dtypes)
{
    static const int bad[] = {0, -1, IR_DTYPE_COUNT, 8, 9, 10, 1000, INT32_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert(!ir_dtype_valid(bad[i]));
        ck_assert_ptr_null(ir_dtype_info((enum ir_dtype) bad[i]));
        ck_assert_str_eq(ir_dtype_name((enum ir_dtype) bad[i]), "invalid");
        ck_assert_ptr_null(ir_dtype_ctype((enum ir_dtype) bad[i]));
        ck_assert_uint_eq(ir_dtype_size((enum ir_dtype) bad[i]), 0);
        ck_assert_int_eq(ir_dtype_promote((enum ir_dtype) bad[i], IR_DTYPE_FLOAT32),
                         IR_DTYPE_INVALID);
        ck_assert_int_eq(ir_dtype_promote(IR_DTYPE_INT8, (enum ir_dtype) bad[i]), IR_DTYPE_INVALID);
        ck_assert_int_eq(ir_dtype_promote_scalar((enum ir_dtype) bad[i], IR_SCALAR_INT),
                         IR_DTYPE_INVALID);
        ck_assert(!ir_dtype_int_fits((enum ir_dtype) bad[i], 0));
    }
    ck_assert_int_eq(ir_dtype_promote_scalar(IR_DTYPE_INT8, (enum ir_scalar_kind) 7),
                     IR_DTYPE_INVALID);
}
END_TEST

/* ---- wire numbers and names ---------------------------------------------- */

START_TEST(from_wire)
{
    enum ir_dtype t = IR_DTYPE_INVALID;
    for (int64_t c = 1; c < IR_DTYPE_COUNT; c++) {
        ck_assert_int_eq(ir_dtype_from_wire(c, &t), KILN_OK);
        ck_assert_int_eq(t, c);
    }
    t = IR_DTYPE_INT8;
    ck_assert_int_eq(ir_dtype_from_wire(8, &t), KILN_EUNSUPPORTED);
    ck_assert_int_eq(ir_dtype_from_wire(9, &t), KILN_EUNSUPPORTED);
    static const int64_t bad[] = {0,   -1,        10,        255,
                                  256, INT64_MAX, INT64_MIN, (INT64_C(1) << 32) + 1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(ir_dtype_from_wire(bad[i], &t), KILN_EVALUE);
    ck_assert_int_eq(t, IR_DTYPE_INT8); /* untouched on failure */
}
END_TEST

START_TEST(from_name)
{
    enum ir_dtype t = IR_DTYPE_INVALID;
    for (int c = 1; c < IR_DTYPE_COUNT; c++) {
        const char *n = ir_dtype_name((enum ir_dtype) c);
        ck_assert_int_eq(ir_dtype_from_name(n, strlen(n), &t), KILN_OK);
        ck_assert_int_eq(t, c);
    }
    /* Not NUL-terminated: only len bytes are read. */
    char buf[7] = {'f', 'l', 'o', 'a', 't', '6', '4'};
    ck_assert_int_eq(ir_dtype_from_name(buf, sizeof buf, &t), KILN_OK);
    ck_assert_int_eq(t, IR_DTYPE_FLOAT64);
    /* A prefix of a real name is not that name. */
    ck_assert_int_eq(ir_dtype_from_name("float32", 5, &t), KILN_EVALUE);
    t = IR_DTYPE_BOOL;
    ck_assert_int_eq(ir_dtype_from_name("float16", 7, &t), KILN_EUNSUPPORTED);
    ck_assert_int_eq(ir_dtype_from_name("bfloat16", 8, &t), KILN_EUNSUPPORTED);
    static const char *const bad[] = {"Float32",  "float", "int", "int16", "invalid",
                                      "float32 ", " bool", "",    "uint64"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(ir_dtype_from_name(bad[i], strlen(bad[i]), &t), KILN_EVALUE);
    ck_assert_int_eq(ir_dtype_from_name("bool", 5, &t), KILN_EVALUE); /* NUL inside */
    ck_assert_int_eq(ir_dtype_from_name(NULL, 0, &t), KILN_EVALUE);
    /* Over-long names are refused on length alone. */
    char big[4096];
    memset(big, 'a', sizeof big);
    ck_assert_int_eq(ir_dtype_from_name(big, sizeof big, &t), KILN_EVALUE);
    ck_assert_int_eq(ir_dtype_from_name("float32float32", 14, &t), KILN_EVALUE);
    ck_assert_int_eq(t, IR_DTYPE_BOOL);
}
END_TEST

/* ---- promotion ----------------------------------------------------------- */

static const char *deviation(const char *a, const char *b, const char *numpy)
{
    for (size_t i = 0; i < sizeof deviations / sizeof deviations[0]; i++)
        if (!strcmp(deviations[i].a, a) && !strcmp(deviations[i].b, b) &&
            !strcmp(deviations[i].numpy, numpy))
            return deviations[i].ours;
    return NULL;
}

START_TEST(promote_matches_numpy)
{
    ck_assert_int_eq(NDT, IR_DTYPE_COUNT - 1); /* regenerate after adding a dtype */
    int checked = 0, deviated = 0;
    for (int i = 0; i < NDT; i++) {
        for (int j = 0; j < NDT; j++) {
            enum ir_dtype a = by_name(numpy_dtypes[i]), b = by_name(numpy_dtypes[j]);
            const char *got = ir_dtype_name(ir_dtype_promote(a, b));
            const char *want = numpy_promote[i][j];
            const char *ours = deviation(numpy_dtypes[i], numpy_dtypes[j], want);
            if (ours != NULL) {
                ck_assert_msg(!strcmp(got, ours), "%s + %s: got %s, documented deviation %s",
                              numpy_dtypes[i], numpy_dtypes[j], got, ours);
                deviated++;
            } else {
                ck_assert_msg(!strcmp(got, want), "%s + %s: got %s, numpy says %s", numpy_dtypes[i],
                              numpy_dtypes[j], got, want);
            }
            checked++;
        }
    }
    ck_assert_int_eq(checked, NDT * NDT);
    /* Every listed deviation was needed: numpy's answer really is missing. */
    ck_assert_int_eq(deviated, (int) (sizeof deviations / sizeof deviations[0]));
}
END_TEST

START_TEST(promote_is_a_lattice)
{
    /* Commutative, idempotent, associative, and never narrower than an input. */
    for (int a = 1; a < IR_DTYPE_COUNT; a++) {
        ck_assert_int_eq(ir_dtype_promote(a, a), a);
        for (int b = 1; b < IR_DTYPE_COUNT; b++) {
            enum ir_dtype ab = ir_dtype_promote(a, b);
            ck_assert_int_eq(ab, ir_dtype_promote(b, a));
            ck_assert_uint_ge(ir_dtype_size(ab), ir_dtype_size(a));
            ck_assert_int_ge(
                ir_dtype_info(ab)->kind == IR_KIND_UINT ? IR_KIND_INT : ir_dtype_info(ab)->kind,
                ir_dtype_info(a)->kind == IR_KIND_UINT ? IR_KIND_INT : ir_dtype_info(a)->kind);
            for (int c = 1; c < IR_DTYPE_COUNT; c++) {
                int i8 = a == IR_DTYPE_INT8 || b == IR_DTYPE_INT8 || c == IR_DTYPE_INT8;
                int u8 = a == IR_DTYPE_UINT8 || b == IR_DTYPE_UINT8 || c == IR_DTYPE_UINT8;
                if (i8 && u8)
                    continue; /* the int16 deviation; see promote_not_associative */
                ck_assert_int_eq(ir_dtype_promote(ab, c),
                                 ir_dtype_promote(a, ir_dtype_promote(b, c)));
            }
        }
    }
}
END_TEST

/* Without int16, int8 + uint8 overshoots to int32, so the order of a fold
 * matters where numpy's does not: (int8 + uint8) + float32 is float64, while
 * int8 + (uint8 + float32) is float32 (numpy: float32 both ways). */
START_TEST(promote_not_associative)
{
    ck_assert_int_eq(
        ir_dtype_promote(ir_dtype_promote(IR_DTYPE_INT8, IR_DTYPE_UINT8), IR_DTYPE_FLOAT32),
        IR_DTYPE_FLOAT64);
    ck_assert_int_eq(
        ir_dtype_promote(IR_DTYPE_INT8, ir_dtype_promote(IR_DTYPE_UINT8, IR_DTYPE_FLOAT32)),
        IR_DTYPE_FLOAT32);
}
END_TEST

START_TEST(promote_scalar_matches_numpy)
{
    static const enum ir_scalar_kind kinds[] = {IR_SCALAR_BOOL, IR_SCALAR_INT, IR_SCALAR_FLOAT};
    for (int i = 0; i < NDT; i++) {
        for (int k = 0; k < 3; k++) {
            const char *got =
                ir_dtype_name(ir_dtype_promote_scalar(by_name(numpy_dtypes[i]), kinds[k]));
            ck_assert_msg(!strcmp(got, numpy_scalar[i][k]),
                          "%s array + scalar kind %d: got %s, numpy says %s", numpy_dtypes[i], k,
                          got, numpy_scalar[i][k]);
        }
    }
}
END_TEST

START_TEST(int_fits)
{
    ck_assert(ir_dtype_int_fits(IR_DTYPE_BOOL, 0));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_BOOL, 1));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_BOOL, 2));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_BOOL, -1));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_INT8, -128));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_INT8, 127));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_INT8, 128));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_INT8, -129));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_UINT8, 255));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_UINT8, 256));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_UINT8, -1));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_INT32, INT32_MIN));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_INT32, INT32_MAX));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_INT32, (int64_t) INT32_MAX + 1));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_INT32, (int64_t) INT32_MIN - 1));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_INT64, INT64_MIN));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_INT64, INT64_MAX));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_FLOAT32, 1 << 24));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_FLOAT32, -(1 << 24)));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_FLOAT32, (1 << 24) + 1));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_FLOAT32, INT64_MIN)); /* -2^63 */
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_FLOAT32, INT64_MAX));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_FLOAT64, (INT64_C(1) << 53)));
    ck_assert(!ir_dtype_int_fits(IR_DTYPE_FLOAT64, (INT64_C(1) << 53) + 1));
    ck_assert(ir_dtype_int_fits(IR_DTYPE_FLOAT64, 0));
    /* Cross-check the float cases with the C conversions themselves. */
    for (int64_t v = -(1 << 25) - 8; v < -(1 << 25) + 8; v++)
        ck_assert_int_eq(ir_dtype_int_fits(IR_DTYPE_FLOAT32, v), (int64_t) (float) v == v);
}
END_TEST

static Suite *dtype_suite(void)
{
    Suite *s = suite_create("kernels/dtype");
    TCase *tc = tcase_create("dtype");
    tcase_add_test(tc, wire_numbers_are_stable);
    tcase_add_test(tc, table_rows);
    tcase_add_test(tc, invalid_dtypes);
    tcase_add_test(tc, from_wire);
    tcase_add_test(tc, from_name);
    tcase_add_test(tc, promote_matches_numpy);
    tcase_add_test(tc, promote_is_a_lattice);
    tcase_add_test(tc, promote_not_associative);
    tcase_add_test(tc, promote_scalar_matches_numpy);
    tcase_add_test(tc, int_fits);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dtype_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
