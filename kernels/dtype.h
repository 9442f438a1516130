/* dtype.h: the element types of kiln's IR and how they combine.
 *
 * The numbers of enum ir_dtype go on the wire (a SUBMIT names each node's
 * dtype by number), so they are stable forever: add new types at the end,
 * never renumber or reuse one. 0 is deliberately not a type, so that a
 * zeroed struct is caught as invalid instead of silently being bool.
 *
 * Type promotion follows numpy's rules for array-array operations, which
 * Jittor follows too (numpy >= 2, NEP 50); see ir_dtype_promote for the one
 * deviation forced by our smaller set of types.
 *
 * Threads: everything here is pure and reads only const tables; any thread
 * may call any function. Nothing allocates.
 */
#ifndef KILN_IR_DTYPE_H
#define KILN_IR_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum ir_dtype {
    IR_DTYPE_INVALID = 0, /* never a valid type; a zeroed field reads as this */
    IR_DTYPE_BOOL = 1,
    IR_DTYPE_INT8 = 2,
    IR_DTYPE_UINT8 = 3,
    IR_DTYPE_INT32 = 4,
    IR_DTYPE_INT64 = 5,
    IR_DTYPE_FLOAT32 = 6,
    IR_DTYPE_FLOAT64 = 7,
    /* 8 and 9 are reserved for float16 and bfloat16: the names are
     * recognised and refused with KILN_EUNSUPPORTED until they are built.
     * Any later type (int16, uint32, ...) takes 10 and up. */
    IR_DTYPE_COUNT = 8 /* first number that is not an implemented type */
};

#define IR_DTYPE_RESERVED_FLOAT16  8
#define IR_DTYPE_RESERVED_BFLOAT16 9

/* Longest wire name, in bytes, without the terminating NUL ("bfloat16"). */
#define IR_DTYPE_NAME_MAX 8

/* What kind of number a dtype holds. Ordered: promotion never goes down
 * this order (bool < integers < floats; signed and unsigned integers are
 * one step, told apart by their value bits). */
enum ir_dtype_kind {
    IR_KIND_BOOL = 0,
    IR_KIND_INT = 1,  /* signed integer */
    IR_KIND_UINT = 2, /* unsigned integer */
    IR_KIND_FLOAT = 3,
};

/* One row of the dtype table. */
struct ir_dtype_info {
    const char *name;  /* wire and log name: "float32" */
    const char *ctype; /* C type codegen declares elements with: "float", "uint8_t" */
    uint8_t size;      /* bytes per element */
    uint8_t kind;      /* enum ir_dtype_kind */
    uint8_t digits;    /* value bits: mantissa digits of a float, magnitude bits of an int */
};

/* 1 if t is an implemented dtype (a number from 1 to IR_DTYPE_COUNT - 1). */
int ir_dtype_valid(int t);

/* The table row of t, or NULL if t is not valid. The row is static and
 * const; never free it. */
const struct ir_dtype_info *ir_dtype_info(enum ir_dtype t);

/* Shorthands for the row's fields. For an invalid t: name "invalid",
 * ctype NULL, size 0. */
const char *ir_dtype_name(enum ir_dtype t);
const char *ir_dtype_ctype(enum ir_dtype t);
size_t ir_dtype_size(enum ir_dtype t);

/* Checks a dtype number read from the wire. KILN_OK and *out set for an
 * implemented type; KILN_EUNSUPPORTED for a reserved number (float16,
 * bfloat16); KILN_EVALUE for any other number. *out is untouched on failure. */
int ir_dtype_from_wire(int64_t code, enum ir_dtype *out);

/* Looks a dtype up by wire name. name need not be NUL-terminated: exactly
 * len bytes are read, so a name straight out of a message is fine. Case
 * matters ("float32", not "Float32"). KILN_OK and *out set on a match;
 * KILN_EUNSUPPORTED for "float16" and "bfloat16"; KILN_EVALUE for any other
 * name, including one longer than IR_DTYPE_NAME_MAX. */
int ir_dtype_from_name(const char *name, size_t len, enum ir_dtype *out);

/* The dtype of `a op b` for two arrays, numpy's np.result_type(a, b):
 *  - bool promotes to anything; same kind: the wider type;
 *  - signed with unsigned: the smallest signed type that holds both;
 *  - an integer with a float: the smallest float at least as wide as the
 *    float operand whose mantissa holds the integer (int32 + float32 is
 *    float64, as in numpy); int64 + float gives float64 (lossy, as numpy).
 * Deviation: numpy gives int16 for int8 + uint8; we have no int16, so the
 * same rule picks the next signed type up: int32. Every other pair matches
 * numpy exactly (tests/kernels checks the whole table against numpy). A
 * consequence: folding three or more dtypes is order-dependent when int8
 * and uint8 both take part ((int8 + uint8) + float32 is float64, but
 * int8 + (uint8 + float32) is float32, numpy's answer); n-ary ops should
 * fold floats first or decide explicitly.
 * Commutative. Returns IR_DTYPE_INVALID if either argument is invalid. */
enum ir_dtype ir_dtype_promote(enum ir_dtype a, enum ir_dtype b);

/* The kind of a literal that came from a host language, e.g. Python's
 * `x + 1` or `x * 0.5`. */
enum ir_scalar_kind {
    IR_SCALAR_BOOL = 0,
    IR_SCALAR_INT = 1,
    IR_SCALAR_FLOAT = 2,
};

/* The dtype of `array op scalar` where the scalar is a host-language
 * literal ("weak" scalar, numpy >= 2 / NEP 50, also Jittor): the scalar
 * never widens the array's dtype within the array's kind (int8 array + 1 is
 * int8, float32 array + 0.5 is float32). When the scalar is of a higher kind
 * the result is that kind's default type, as in numpy: int64 for an int
 * scalar with a bool array, float64 for a float scalar with a bool or
 * integer array. (Jittor's default float is float32; a client that wants
 * that sends the scalar as a float32 array or casts.) Whether an int
 * scalar's value fits the result is a separate check: ir_dtype_int_fits.
 * Returns IR_DTYPE_INVALID for an invalid array dtype or scalar kind. */
enum ir_dtype ir_dtype_promote_scalar(enum ir_dtype array, enum ir_scalar_kind scalar);

/* 1 if the integer v is representable in t without change (for bool: 0 or
 * 1; for a float: exactly representable). numpy >= 2 raises OverflowError
 * for `uint8_array + 300`; callers refuse such a scalar with KILN_EVALUE. */
int ir_dtype_int_fits(enum ir_dtype t, int64_t v);

/* The smallest and largest value of a bool or integer dtype (int64's for
 * anything else). */
void ir_dtype_int_range(enum ir_dtype t, int64_t *lo, int64_t *hi);

#endif
