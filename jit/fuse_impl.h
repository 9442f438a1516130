/* fuse_impl.h: internals shared by fuse.c (planning) and fuse_sig.c
 * (signatures). Not part of the jit/ contract; see fuse.h. */
#ifndef KILN_JIT_FUSE_IMPL_H
#define KILN_JIT_FUSE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "ir.h"

/* ARRAY and EXTERN: buffers, never computed. */
bool jit_op_is_input(int op);

/* Whole-shape equality: the only way the planner looks at sizes. */
bool jit_same_shape(const struct ir_node *a, const struct ir_node *b);

#endif
