/* gpu_check.h: runs test graphs on a CUDA device and compares every
 * output with the reference interpreter (tests/gpu/run.sh's op tests).
 *
 * gpu_check_open() returns NULL where there is no device (no driver, or
 * none found), and the callers then only compile. On tests/jit's stand-in
 * driver (fakecuda.c, the normal suite) every graph still goes through
 * the device executor, launch plans, module loads and memory checks
 * included, but its launches compute nothing, so no output is compared.
 * With KILN_GPU_SUBSET set (compute-sanitizer runs) only every 8th graph
 * runs. */
#ifndef KILN_TESTS_JIT_GPU_CHECK_H
#define KILN_TESTS_JIT_GPU_CHECK_H

#include <stdbool.h>

#include "ir.h"

struct gpu_check;

struct gpu_check *gpu_check_open(void);
void gpu_check_close(struct gpu_check *gc); /* prints its counts; NULL ok */

/* Runs g (outputs `out`, NULL: every node) on the device and on the
 * interpreter with the same random externs and asserts (Check) that
 * every output agrees: bit for bit, except where the device's math
 * library may differ from glibc's (float64 transcendentals, normal random
 * numbers) and relay ops (the libraries' summation order), which must
 * agree within a relative 1e-5 (float32) or 1e-12 (float64). */
void gpu_check_graph(struct gpu_check *gc, const struct ir_graph *g, const bool *out,
                     const char *what);

#endif
