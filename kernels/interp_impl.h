/* interp_impl.h: what interp.c and interp_scalar.c share. Internal to
 * the reference interpreter; nothing outside kernels/ includes it. */
#ifndef KILN_INTERP_IMPL_H
#define KILN_INTERP_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir.h"

bool ir_interp_dt_is_float(int dt);
size_t ir_interp_dt_size(int dt);
double ir_interp_load_float(const void *buf, int dt, int64_t k);
int64_t ir_interp_float_to_int(double x, int dt);
int64_t ir_interp_load_int(const void *buf, int dt, int64_t k);
bool ir_interp_truthy(const void *buf, int dt, int64_t k);
void ir_interp_store_int(void *buf, int dt, int64_t k, uint64_t v);
void ir_interp_store_float(void *buf, int dt, int64_t k, double v);
void ir_interp_copy_elem(void *dst, int64_t k, const void *src, int64_t j, int dt);
void ir_interp_store_scalar(void *buf, int dt, int64_t k, struct ir_scalar v);
void ir_interp_coords_next(int rank, const int64_t *shape, int64_t *c);
int64_t ir_interp_dot(int rank, const int64_t *c, const int64_t *stride);
uint64_t ir_interp_int_unary(int op, int64_t a, int dt);
uint64_t ir_interp_int_binary(int op, int64_t a, int64_t b, int dt);
double ir_interp_float_unary(int op, int dt, double x);
double ir_interp_float_binary(int op, double a, double b);
bool ir_interp_compare(int op, const void *x, const void *y, int dt, int64_t k);

#endif
