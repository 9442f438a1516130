/* kiln_limits.h: every size a client controls has a named limit here.
 *
 * The codec checks each of these with overflow-safe arithmetic before it
 * allocates anything, and a request over a limit gets a KILN_ELIMIT reply
 * naming the field. PROTOCOL.md lists the same numbers; a daemon reports
 * the limits it enforces in its HELLO reply, so clients need not hard-code
 * them. Raising a limit is a protocol change: update PROTOCOL.md too.
 */
#ifndef KILN_LIMITS_H
#define KILN_LIMITS_H

#include <stdint.h>

#define KILN_PROTO_VERSION_MIN 1 /* oldest protocol version this build speaks */
#define KILN_PROTO_VERSION_MAX 1 /* newest protocol version this build speaks */

#define KILN_LIMIT_MESSAGE_BYTES   (256u << 20) /* bytes in one message, either way */
#define KILN_LIMIT_DEPTH           16           /* msgpack nesting depth (top level is 1) */
#define KILN_LIMIT_CONTAINER_ITEMS (1u << 20)   /* elements of one array, pairs of one map */
#define KILN_LIMIT_OBJECTS         (1u << 20)   /* msgpack objects in one message */
#define KILN_LIMIT_STRING          4096         /* bytes of any string field */
#define KILN_LIMIT_NAME            128          /* bytes of a client or server name */
#define KILN_LIMIT_TOKEN           256          /* bytes of an auth token */
#define KILN_LIMIT_NODES           65536        /* nodes in one submitted graph */
#define KILN_LIMIT_RANK            8            /* dimensions of one tensor */
#define KILN_LIMIT_DIM             (INT64_C(1) << 40) /* size of one dimension */
#define KILN_LIMIT_ELEMENTS        (INT64_C(1) << 40) /* elements of one tensor */
#define KILN_LIMIT_VAR_IDS         65536        /* var ids named by one FETCH, RELEASE or keep list */
#define KILN_LIMIT_NODE_INPUTS     9            /* inputs of one node: x and up to 8 extras */
#define KILN_LIMIT_CONDS           32           /* overflow conditions of one node */
#define KILN_LIMIT_GRAD_PASSES     256          /* backward passes (distinct loss and seed) in one SUBMIT */
#define KILN_LIMIT_CONV_ATTR       (1 << 20)    /* a convolution's stride, padding, dilation or groups */
#define KILN_FETCH_TIMEOUT_DEFAULT_MS 60000     /* FETCH waits this long unless told */
#define KILN_FETCH_TIMEOUT_MAX_MS     600000    /* and never longer */

/* Index expressions (reindex, reindex_reduce; kernels/expr.h). */
#define KILN_LIMIT_EXPR_BYTES  1024 /* bytes of one expression's text */
#define KILN_LIMIT_EXPR_NODES  256  /* AST nodes of one expression */
#define KILN_LIMIT_EXPR_DEPTH  32   /* nesting of one expression */
#define KILN_LIMIT_EXPR_CONST  (INT64_C(1) << 62) /* magnitude of an integer literal */
#define KILN_LIMIT_EXPR_EXTRAS 8    /* extra inputs one reindex may read */

#endif
