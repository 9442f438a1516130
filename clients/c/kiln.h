/* kiln.h: libkiln, the C client of the kiln compute daemon.
 *
 * This is the one public header of the C client. It speaks protocol v1
 * (protocol/PROTOCOL.md) to a kilnd over NNG; nothing of NNG or msgpack
 * shows through it, so a program needs only this header, kiln_err.h and
 * the library.
 *
 * Connections. kiln_connect() dials a daemon and opens a session (HELLO);
 * every later call is one request and its reply on that session, and
 * kiln_close() ends it. A connection is used by one thread at a time:
 * calls on one kiln_conn must not overlap (the library takes no lock), but
 * different connections may be used from different threads at once (the
 * one exception: kiln_conn_new_id() may be called from any thread). A
 * graph builder (kiln_graph) is likewise used by one thread at a time. The
 * library has no global state; it starts no threads of its own (NNG runs
 * a few per process for its sockets).
 *
 * Blocking. Every call that talks to the daemon blocks until the reply
 * arrives, for at most the connection's timeout (connect option
 * timeout_ms, 10 s by default) to send the request and as long again to
 * receive the reply. If the daemon goes away after kiln_connect(), the
 * library keeps redialling in the background and calls fail with
 * KILN_ETIMEDOUT until it is back (the session is then gone, and calls
 * that need one fail with KILN_ESESSION). Dialling an address where
 * nothing listens fails at once with KILN_ECONNECT; it never retries.
 * (A tcp:// host that drops packets rather than refusing is the one
 * exception: the dial then lasts as long as the OS's connect timeout.)
 *
 * Errors. Every function that can fail returns KILN_OK (0) or a code of
 * enum kiln_err (kiln_err.h): codes from 100 up arose in this library,
 * codes below 100 were sent by the daemon (except KILN_ENOMEM, which also
 * reports the client's own allocation failures). If the caller passes a
 * struct kiln_error, it is filled on failure with the code, the field at
 * fault (when the daemon named one) and a message that names the culprit
 * (the address, the limit, the daemon's own words); it is left untouched
 * on success. kiln_err_name() and kiln_err_str() (kiln_err.h) give a
 * code's stable name and a general description.
 *
 * Ownership. Structs the caller passes in stay the caller's. A kiln_conn
 * belongs to the caller from kiln_connect() until kiln_close(); strings
 * and structs it hands out (kiln_conn_address(), kiln_conn_session())
 * live as long as the connection. Fetched values belong to the caller
 * (kiln_tensors_free()); a kiln_graph copies what it is given, except
 * kiln_graph_array_ref()'s data, and is freed with kiln_graph_free().
 *
 * Asynchrony. kiln_submit() returns as soon as the daemon has checked the
 * graph; the step then runs while the program goes on (submitting more
 * steps, which queue behind it). kiln_fetch() waits, up to a timeout, for
 * the values it names; kiln_fetch_poll() never waits for them.
 *
 * Growth. Option and result structs are read and filled field by field;
 * new fields are only ever added at the end, and a zeroed option struct
 * always means "all defaults".
 *
 * Linking. libkiln comes as a shared library (libkiln.so, exporting only
 * the functions marked KILN_API here and kiln_err_name()/kiln_err_str())
 * and a static one (libkiln.a, which also needs NNG, msgpack-c and
 * pthreads): `pkg-config --cflags --libs kiln`, or `--static` for the
 * latter. Both hold the protocol codec, so nothing else of kiln is needed.
 *
 * A program in one page (error checks left out):
 *
 *     kiln_conn *c;
 *     kiln_connect(&c, &(struct kiln_connect_opts){.address = addr}, NULL);
 *     kiln_graph *g = kiln_graph_new(c);
 *     float xs[3] = {1, 2, 3};
 *     uint64_t x = kiln_graph_array(g, KILN_DTYPE_FLOAT32, 1, (int64_t[]){3}, xs, sizeof xs);
 *     uint64_t y = kiln_graph_unary(g, KILN_OP_SIGMOID, x);
 *     kiln_graph_keep(g, y);
 *     kiln_graph_submit(g, NULL, NULL);          (returns once the daemon accepted it)
 *     struct kiln_tensor *t;
 *     kiln_fetch(c, &y, 1, 10000, &t, NULL);     (waits until y is computed)
 *     ... ((float *) t[0].data)[0..2] ...
 *     kiln_tensors_free(t);
 *     kiln_graph_free(g);
 *     kiln_close(c);
 */
#ifndef KILN_H
#define KILN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "kiln_err.h" /* inside extern "C": it has no guard of its own */

#define KILN_API __attribute__((visibility("default")))

#define KILN_TIMEOUT_DEFAULT_MS 10000 /* send and receive timeout when none is given */
#define KILN_ERROR_FIELD_MAX    64    /* bytes of kiln_error.field, with NUL */
#define KILN_ERROR_MESSAGE_MAX  256   /* bytes of kiln_error.message, with NUL */
#define KILN_NAME_MAX           128   /* bytes of a client or server name, without NUL */
#define KILN_ERROR_CODES        100   /* wire codes are 0..99: size of per-code tables */

/* What went wrong, filled by a failing call. */
struct kiln_error {
    int code;                             /* enum kiln_err */
    int64_t node;                         /* the graph node at fault, or -1 */
    char field[KILN_ERROR_FIELD_MAX];     /* "body.client", or "" for the whole message */
    char message[KILN_ERROR_MESSAGE_MAX]; /* one line, no trailing newline */
};

/* How to connect. A zeroed struct (or NULL) means every default. */
struct kiln_connect_opts {
    const char *address; /* "ipc://...", "tcp://host:port"; NULL: $KILN_ADDRESS or
                            ipc://<runtime dir>/kilnd.sock, the latter only
                            if the directory is safe (see kiln_connect) */
    int timeout_ms;      /* per send and per receive; 0: KILN_TIMEOUT_DEFAULT_MS,
                            < 0: wait forever */
    const char *client;  /* name shown by the daemon, 1..KILN_NAME_MAX bytes; NULL: "libkiln" */
    const char *token;   /* auth token for daemons that require one; NULL: $KILN_TOKEN, else none */
};

/* The limits a daemon enforces, as it announced them in HELLO. */
struct kiln_limits {
    uint64_t message_bytes, depth, container_items, objects, string, name, token;
    uint64_t nodes, rank, dim, elements, var_ids;
    uint64_t node_inputs, expr_bytes, expr_nodes, expr_depth, conds;
    uint64_t grad_passes; /* backward passes in one SUBMIT; 0 from older daemons */
};

/* The session kiln_connect() opened. */
struct kiln_session {
    uint64_t id;                    /* never 0 */
    uint32_t proto;                 /* protocol version in use */
    char server[KILN_NAME_MAX + 1]; /* "kilnd 0.1.0" */
    uint64_t idle_timeout_ms;       /* the daemon ends the session after this long idle */
    struct kiln_limits limits;
};

/* STATUS's lists of users and sessions hold at most this many each. */
#define KILN_STATUS_LIST_MAX 32

/* One user, as STATUS reports it (the busiest first). */
struct kiln_status_user {
    char name[KILN_NAME_MAX + 1];
    uint64_t weight;     /* its share of the workers when they are contended */
    uint64_t sessions;   /* open now */
    uint64_t queued;     /* steps submitted and not finished */
    uint64_t running;    /* of which on a worker now */
    uint64_t steps;      /* steps finished since the daemon started */
    uint64_t kernel_ms;  /* kernel time its steps used */
    uint64_t memory;     /* bytes its sessions hold */
    uint64_t kernels;    /* kernels its steps compiled */
    uint64_t compile_ms; /* their compile time */
    uint64_t refused;    /* requests refused over its quotas */
};

/* One session, as STATUS reports it: by number (order of opening), never
 * by id. */
struct kiln_status_session {
    uint64_t number;
    char user[KILN_NAME_MAX + 1];
    char client[KILN_NAME_MAX + 1];
    uint64_t queued;    /* steps waiting */
    bool running;       /* a step on a worker now */
    uint64_t steps;     /* steps submitted */
    uint64_t kernel_ms; /* kernel time its steps used */
    uint64_t memory;    /* bytes it holds */
    uint64_t vars;      /* vars it keeps */
    uint64_t idle_ms;   /* since its latest request */
};

#define KILN_TIERS_MAX 4 /* memory tiers STATUS may report */

/* One memory tier (host, then disk; a device tier will come first). The
 * counters count tensors and bytes moved out of it to the tier below
 * (spills) and back in (restores). */
struct kiln_tier {
    char name[16];           /* "host", "disk" */
    uint64_t in_use;         /* bytes held in the tier */
    uint64_t limit;          /* bytes allowed; 0: no limit */
    uint64_t moving;         /* bytes being written out of it now */
    uint64_t spills, spilled_bytes, spill_ms;
    uint64_t restores, restored_bytes, restore_ms;
    uint64_t refused;        /* requests refused with KILN_ENOMEM after spilling */
};

#define KILN_DEVICES_MAX 16 /* CUDA devices STATUS may list */

/* One CUDA device of the daemon's machine. */
struct kiln_device {
    char name[96];               /* "NVIDIA H100 80GB HBM3" */
    uint32_t cc_major, cc_minor; /* compute capability */
    uint64_t memory;             /* bytes of device memory */
};

/* Daemon-wide counters, as STATUS reports them. */
struct kiln_status {
    char server[KILN_NAME_MAX + 1];
    uint32_t proto_min, proto_max; /* versions the daemon speaks */
    int64_t pid;
    uint64_t uptime_ms;
    uint64_t sessions;                 /* open now */
    uint64_t sessions_total;           /* opened since start */
    uint64_t requests;                 /* answered since start, errors included */
    uint64_t workers;                  /* worker threads */
    uint64_t errors[KILN_ERROR_CODES]; /* error replies sent, indexed by code */
    uint64_t mem_in_use;               /* bytes held for clients */
    uint64_t mem_budget;               /* bytes allowed; 0: no budget */
    uint64_t mem_rss;                  /* resident set size of the daemon */
    bool draining;                     /* shutting down: takes no new sessions */
    uint64_t steps_done;               /* graph steps finished */
    uint64_t steps_failed;             /* graph steps that failed while running */
    uint64_t steps_running;            /* on a worker now */
    uint64_t steps_queued;             /* waiting behind an earlier step of their session */
    uint64_t step_run_ms;              /* worker time of all finished steps */
    /* The daemon's JIT (all zero from a daemon that does not report it). */
    bool jit_enabled;              /* false: steps run on the reference interpreter */
    uint64_t jit_kernels_compiled; /* kernel-cache misses compiled */
    uint64_t jit_kernel_hits;      /* kernel-cache hits */
    uint64_t jit_compile_us;       /* time spent generating and compiling kernels */
    uint64_t jit_plans;            /* graphs fused (plan-cache misses) */
    uint64_t jit_plan_hits;        /* plan-cache hits */
    uint64_t jit_kernels_run;      /* kernel launches: one per fused kernel per step */
    uint64_t jit_kernels_cached;   /* kernels held in the cache now */
    uint64_t jit_fallbacks;        /* steps the JIT handed to the interpreter */
    bool cc_enabled;               /* the second tier: a system compiler rebuilds hot kernels */
    uint64_t cc_kernels;           /* cached kernels running its code now */
    uint64_t cc_promoted;          /* kernels queued for it */
    uint64_t cc_compiles;          /* kernels it built */
    uint64_t cc_failures;          /* kernels it could not build (they stay on libtcc) */
    uint64_t cc_compile_ms;        /* its compile time (in the background) */
    uint64_t cc_disk_hits;         /* objects loaded from the on-disk cache */
    bool relay_library;            /* matmul and conv2d run in oneDNN */
    uint64_t relay_runs;           /* relay nodes (matmul, conv2d...) run */
    uint64_t relay_library_runs;   /* of which by the library */
    /* Users and sessions: a daemon lists them for clients on its local
     * socket only (has_lists false otherwise, and from older daemons). */
    bool has_lists;
    uint64_t users_total; /* users the daemon has seen */
    uint32_t nusers, nsessions;
    struct kiln_status_user users[KILN_STATUS_LIST_MAX];
    struct kiln_status_session session_list[KILN_STATUS_LIST_MAX];
    /* Memory tiers (none from a daemon that does not report them). */
    uint32_t ntiers;
    struct kiln_tier tiers[KILN_TIERS_MAX];
    uint64_t steps_merged;         /* of steps_done: ran merged with other queued steps of
                                      their session (0 from daemons that do not report it) */
    /* Accelerators (has_devices false from a daemon that does not report
     * them). No device: cuda_why says why. */
    bool has_devices;
    uint32_t ndevices;
    struct kiln_device devices[KILN_DEVICES_MAX];
    char cuda_why[192];   /* "no NVIDIA driver (...)"; "" when there are devices */
    uint64_t cuda_driver; /* the driver's CUDA version (13000); 0: no driver */
    char nvrtc[16];       /* the daemon's CUDA compiler version ("13.0"); "" none */
    char nvrtc_why[192];  /* why no NVRTC; "" when there is */
    char cuda_state[192]; /* "ready", "off" or "failed: <error>"; "" older daemon */
    uint64_t cuda_steps;     /* steps run on the CUDA device */
    uint64_t cuda_fallbacks; /* steps that asked for it and ran on the CPU */
};

typedef struct kiln_conn kiln_conn;

/* Dial the daemon at opts->address and open a session. On success *out is
 * a new connection, to be given to kiln_close(). On failure *out is NULL
 * and the code is one of: KILN_EARG (bad option: the field names it),
 * KILN_ECONNECT (nothing listens at the address; fails at once),
 * KILN_ETIMEDOUT (the daemon did not answer HELLO in time), KILN_EPROTO
 * (a reply that breaks the protocol, or a daemon that chose a protocol
 * version outside the client's range: that session is ended with a BYE),
 * KILN_EIO, KILN_ENOMEM, or the daemon's refusal (KILN_EVERSION,
 * KILN_EAUTH, KILN_EBUSY, KILN_ESHUTDOWN, ...). Blocks for the dial
 * (see above) and then at most twice the timeout, plus at most 2 s for
 * the BYE that ends a session opened with a foreign protocol version.
 *
 * The default address is vetted before it is dialled. When neither
 * opts->address nor $KILN_ADDRESS names an address, the runtime directory
 * must be a directory (not a symlink) owned by the caller's user id with
 * no group or other permissions; otherwise nothing is dialled and the
 * call fails with KILN_ECONNECT, field "address", and a message naming
 * the directory and the fault, because another local user may have
 * created it to receive the token. A runtime directory that does not
 * exist gives KILN_ECONNECT with an empty field, like any address where
 * nothing listens. Addresses named explicitly are dialled unchecked. */
KILN_API int kiln_connect(kiln_conn **out, const struct kiln_connect_opts *opts,
                          struct kiln_error *err);

/* One PING round trip on the session (it also keeps the session from
 * going idle). Time it from the outside to measure latency. Fails with
 * KILN_ETIMEDOUT, KILN_ESESSION (the session expired), KILN_ESHUTDOWN,
 * KILN_EPROTO, KILN_EIO, KILN_ENOMEM or KILN_EARG (c is NULL). */
KILN_API int kiln_ping(kiln_conn *c, struct kiln_error *err);

/* Fetch the daemon's counters into *st (fully overwritten on success,
 * untouched on failure). Fails like kiln_ping(). */
KILN_API int kiln_status(kiln_conn *c, struct kiln_status *st, struct kiln_error *err);

/* End the session (a best-effort BYE, waiting at most the timeout, or
 * 1 s if that is shorter) and free the connection. Safe on NULL. */
KILN_API void kiln_close(kiln_conn *c);

/* ---- graphs ------------------------------------------------------------
 *
 * A session runs graphs of meta-operators (PROTOCOL.md §8). kiln_submit()
 * sends one graph (a "step"): nodes in topological order, each defining
 * one var named by a caller-chosen non-zero id, and the ids of the vars
 * the session keeps once the step has run (the rest are temporaries). The
 * daemon checks the whole graph before it answers and then runs it in the
 * background; kiln_fetch() waits for kept vars and copies their values
 * out; kiln_release() drops kept vars. Steps of one session run in the
 * order they were submitted. Ids are per session: a connection only ever
 * sees its own vars, and closing it frees them all. */

#define KILN_MAX_RANK           8    /* dimensions of one tensor (the protocol's `rank` limit) */
#define KILN_MAX_INPUTS         9    /* inputs of one node (`node_inputs`) */
#define KILN_MAX_CONDS          32   /* overflow conditions of one node (`conds`) */
#define KILN_MAX_EXPR           1024 /* bytes of one index expression or condition (`expr_bytes`) */
#define KILN_FETCH_WAIT_DEFAULT -1   /* kiln_fetch timeout_ms: the daemon's default, 60 s */
#define KILN_FETCH_WAIT_MAX     600000 /* the longest kiln_fetch may ask the daemon to wait */

/* Element types; numbers as on the wire (PROTOCOL.md §8, "Dtypes"). */
enum kiln_dtype {
    KILN_DTYPE_BOOL = 1, /* one byte, 0 or 1 */
    KILN_DTYPE_INT8 = 2,
    KILN_DTYPE_UINT8 = 3,
    KILN_DTYPE_INT32 = 4,
    KILN_DTYPE_INT64 = 5,
    KILN_DTYPE_FLOAT32 = 6,
    KILN_DTYPE_FLOAT64 = 7,
    /* 8 float16 and 9 bfloat16 are reserved: daemons refuse them (UNSUPPORTED). */
};

/* Bytes of one element of `dtype`, or 0 for a number this build does not
 * know. Thread-safe. */
KILN_API size_t kiln_dtype_size(int dtype);

/* "bool", "int8", ..., "float64"; "float16" and "bfloat16" for the reserved
 * numbers; NULL for any other number. Thread-safe. */
KILN_API const char *kiln_dtype_name(int dtype);

/* Op numbers, stable forever (PROTOCOL.md §8, "Ops", says what each takes
 * and computes). */
enum kiln_op {
    KILN_OP_ARRAY = 1,   /* dtype, shape, data */
    KILN_OP_CONST = 2,   /* dtype, shape, value */
    KILN_OP_INDEX = 3,   /* dtype, shape, dim */
    KILN_OP_RANDOM = 4,  /* dtype, shape, dist, seed, offset */
    KILN_OP_RESHAPE = 8, /* x; shape */
    KILN_OP_NEG = 16,
    KILN_OP_ABS = 17,
    KILN_OP_EXP = 18,
    KILN_OP_LOG = 19,
    KILN_OP_SQRT = 20,
    KILN_OP_RSQRT = 21,
    KILN_OP_SIN = 22,
    KILN_OP_COS = 23,
    KILN_OP_TAN = 24,
    KILN_OP_TANH = 25,
    KILN_OP_SIGMOID = 26,
    KILN_OP_ERF = 27,
    KILN_OP_FLOOR = 28,
    KILN_OP_CEIL = 29,
    KILN_OP_ROUND = 30,
    KILN_OP_SIGN = 31,
    KILN_OP_LOGICAL_NOT = 32,
    KILN_OP_BITWISE_NOT = 33,
    KILN_OP_CAST = 34, /* x; dtype */
    KILN_OP_ADD = 48,
    KILN_OP_SUB = 49,
    KILN_OP_MUL = 50,
    KILN_OP_DIV = 51,
    KILN_OP_FLOOR_DIV = 52,
    KILN_OP_MOD = 53,
    KILN_OP_POW = 54,
    KILN_OP_MAXIMUM = 55,
    KILN_OP_MINIMUM = 56,
    KILN_OP_EQ = 57,
    KILN_OP_NE = 58,
    KILN_OP_LT = 59,
    KILN_OP_LE = 60,
    KILN_OP_GT = 61,
    KILN_OP_GE = 62,
    KILN_OP_LOGICAL_AND = 63,
    KILN_OP_LOGICAL_OR = 64,
    KILN_OP_LOGICAL_XOR = 65,
    KILN_OP_BITWISE_AND = 66,
    KILN_OP_BITWISE_OR = 67,
    KILN_OP_BITWISE_XOR = 68,
    KILN_OP_SHL = 69,
    KILN_OP_SHR = 70,
    KILN_OP_WHERE = 80,          /* cond, a, b */
    KILN_OP_BROADCAST_TO = 96,   /* x; shape, dims */
    KILN_OP_REINDEX = 97,        /* x, extras...; shape, exprs, conds, overflow_value */
    KILN_OP_REDUCE = 98,         /* x; reduce_op, dims, keepdims */
    KILN_OP_REINDEX_REDUCE = 99, /* x, extras...; shape, reduce_op, exprs, conds */
    /* Relays (PROTOCOL.md §8, "Relay ops"): contractions a library runs. */
    KILN_OP_MATMUL = 104,            /* a, b; trans */
    KILN_OP_CONV2D = 105,            /* x, w; stride, padding, dilation, groups */
    KILN_OP_CONV2D_BWD_DATA = 106,   /* dy, w; shape (x's), stride, padding, dilation, groups */
    KILN_OP_CONV2D_BWD_WEIGHT = 107, /* x, dy; shape (w's), stride, padding, dilation, groups */
    /* Lowered by the daemon to the ops above (PROTOCOL.md §8, "Lowered ops"). */
    KILN_OP_TRANSPOSE = 112, /* x; dims (a permutation: y.shape[k] = x.shape[dims[k]]) */
    KILN_OP_SLICE = 113,     /* x; starts, stops, steps (Python semantics, per dim) */
    KILN_OP_CONCAT = 114,    /* x0, x1, ...; dim */
    KILN_OP_PAD = 115,       /* x; pads (before, after per dim), value (default 0) */
    KILN_OP_FLIP = 116,      /* x; dims */
    /* Gradients (PROTOCOL.md §8, "Gradients"): expanded by the daemon. */
    KILN_OP_GRAD = 128,      /* loss, target[, seed]: d sum(seed * loss) / d target */
    KILN_OP_STOP_GRAD = 129, /* x: x unchanged, a constant to grad */
};

/* `reduce_op` values, and `dist` values of random. */
enum kiln_reduce_op {
    KILN_REDUCE_ADD = 1,
    KILN_REDUCE_MUL = 2,
    KILN_REDUCE_MAX = 3,
    KILN_REDUCE_MIN = 4,
    KILN_REDUCE_MEAN = 5, /* reduce only */
};
enum kiln_dist { KILN_DIST_UNIFORM = 1, KILN_DIST_NORMAL = 2 };

/* The optional fields of a node. A field is sent if and only if its bit
 * is set in kiln_node.has: there is no "zero means absent" rule, because
 * zero is a meaningful value of most fields (dim 0, seed 0, value 0, a
 * rank-0 shape). Which fields an op takes is in PROTOCOL.md's op table;
 * the daemon refuses a field the op does not take (FIELD). */
enum kiln_node_field {
    KILN_NODE_IN = 1u << 0,
    KILN_NODE_DTYPE = 1u << 1,
    KILN_NODE_SHAPE = 1u << 2,
    KILN_NODE_DATA = 1u << 3,
    KILN_NODE_VALUE = 1u << 4,
    KILN_NODE_DIM = 1u << 5,
    KILN_NODE_DIST = 1u << 6,
    KILN_NODE_SEED = 1u << 7,
    KILN_NODE_OFFSET = 1u << 8,
    KILN_NODE_DIMS = 1u << 9,
    KILN_NODE_KEEPDIMS = 1u << 10,
    KILN_NODE_REDUCE_OP = 1u << 11,
    KILN_NODE_EXPRS = 1u << 12,
    KILN_NODE_CONDS = 1u << 13,
    KILN_NODE_OVERFLOW_VALUE = 1u << 14,
    KILN_NODE_STARTS = 1u << 15,
    KILN_NODE_STOPS = 1u << 16,
    KILN_NODE_STEPS = 1u << 17,
    KILN_NODE_PADS = 1u << 18,
    KILN_NODE_STRIDE = 1u << 19,
    KILN_NODE_PADDING = 1u << 20,
    KILN_NODE_DILATION = 1u << 21,
    KILN_NODE_TRANS = 1u << 22,
    KILN_NODE_GROUPS = 1u << 23,
};

/* A scalar as the wire carries it: an integer (a bool is the integer 0 or
 * 1) or a double (which a daemon converts to the node's dtype). */
struct kiln_number {
    bool is_float;
    int64_t i; /* when !is_float */
    double f;  /* when is_float */
};

/* One node of a graph, mirroring the wire's node map (PROTOCOL.md §8).
 * `id` and `op` are always sent; every other field only when its bit is
 * in `has`. A zeroed node plus id and op is a complete node of an op that
 * takes nothing else. Pointers are borrowed: they must stay valid for the
 * kiln_submit() call only (the library copies what it sends). */
struct kiln_node {
    uint64_t id;  /* the var this node defines; non-zero */
    uint32_t op;  /* enum kiln_op */
    uint32_t has; /* enum kiln_node_field bits */
    uint32_t nin; /* KILN_NODE_IN: inputs, in the op's order */
    uint64_t in[KILN_MAX_INPUTS];
    uint32_t dtype; /* KILN_NODE_DTYPE: enum kiln_dtype */
    uint32_t rank;  /* KILN_NODE_SHAPE: 0 (a scalar) .. KILN_MAX_RANK */
    int64_t shape[KILN_MAX_RANK];
    const void *data;         /* KILN_NODE_DATA: elements row-major, little-endian, */
    size_t data_len;          /*   bool one byte 0/1; exactly elements x dtype size bytes */
    struct kiln_number value; /* KILN_NODE_VALUE: const's value */
    uint32_t dim;             /* KILN_NODE_DIM: index's dimension */
    uint32_t dist;            /* KILN_NODE_DIST: enum kiln_dist */
    uint64_t seed, offset;    /* KILN_NODE_SEED, KILN_NODE_OFFSET: random's key and counter */
    uint32_t ndims;           /* KILN_NODE_DIMS: dimension numbers, each < KILN_MAX_RANK */
    uint32_t dims[KILN_MAX_RANK];
    bool keepdims;      /* KILN_NODE_KEEPDIMS */
    uint32_t reduce_op; /* KILN_NODE_REDUCE_OP: enum kiln_reduce_op */
    uint32_t nexprs;    /* KILN_NODE_EXPRS: NUL-terminated, each <= KILN_MAX_EXPR bytes */
    const char *exprs[KILN_MAX_RANK];
    uint32_t nconds; /* KILN_NODE_CONDS: likewise */
    const char *conds[KILN_MAX_CONDS];
    struct kiln_number overflow_value; /* KILN_NODE_OVERFLOW_VALUE */
    uint32_t nstarts, nstops, nsteps;  /* KILN_NODE_STARTS, _STOPS, _STEPS: slice's */
    int64_t starts[KILN_MAX_RANK];     /*   bounds and steps, one per dim of x */
    int64_t stops[KILN_MAX_RANK];
    int64_t steps[KILN_MAX_RANK];
    uint32_t npads;                  /* KILN_NODE_PADS: pad's, before and after */
    int64_t pads[2 * KILN_MAX_RANK]; /*   each dim of x in turn */
    /* The relays' attributes, each a pair: (h, w) for a convolution's
     * stride, padding and dilation, (a, b) for matmul's trans (1 reads
     * that operand with its last two dims swapped). Counts are 0..2; the
     * daemon wants 2. */
    uint32_t nstride, npadding, ndilation; /* KILN_NODE_STRIDE, _PADDING, _DILATION */
    int64_t stride[2], padding[2], dilation[2];
    uint32_t ntrans; /* KILN_NODE_TRANS */
    int64_t trans[2];
    uint32_t groups; /* KILN_NODE_GROUPS: a convolution's channel groups */
};

/* A fetched value, owned by the caller (see kiln_fetch). */
struct kiln_tensor {
    uint64_t id;
    uint32_t dtype; /* enum kiln_dtype (a newer daemon may send one this build does not know) */
    uint32_t rank;
    int64_t shape[KILN_MAX_RANK];
    void *data;   /* `bytes` bytes, row-major, little-endian, bool one byte 0/1; */
    size_t bytes; /*   aligned for any element type; NULL when bytes is 0 */
};

/* Submit one graph of `n` nodes and keep the `nkeep` vars listed in `keep`
 * (may be NULL when nkeep is 0). On success *step (if step is not NULL) is
 * the step's number in this session (1, 2, ...; never 0): the graph was
 * valid and now runs in the background; its failures while running show
 * up in kiln_fetch() as KILN_EEXEC. A refused graph changes nothing in the
 * session; the error names the culprit: err->node is the index into
 * `nodes` of the node at fault (or -1), err->field the path
 * ("body.nodes[3].shape[1]") and err->message the reason.
 *
 * The library checks what it must before sending, and fails with
 * KILN_EARG (node and field set as the daemon would set them) for: c or
 * nodes NULL, n of 0 or over the daemon's `nodes` limit, nkeep over
 * `var_ids`, an id or input or keep entry of 0, an unknown `has` bit, a
 * count over its KILN_MAX_* bound (pads: 2 x KILN_MAX_RANK; stride,
 * padding, dilation, trans: 2), a shape size that is negative or over
 * `dim`, a dims entry >= KILN_MAX_RANK, a NULL pointer where data or a
 * string is due, an expression over KILN_MAX_EXPR bytes, or a graph whose
 * message would exceed the daemon's `message_bytes` (a daemon does not
 * answer such a message at all). Everything else about what the graph
 * means (ops, dtypes, shapes, unknown inputs) is the daemon's to refuse:
 * KILN_EVALUE, KILN_EFIELD, KILN_EMISSING, KILN_ENOTFOUND, KILN_ELIMIT,
 * KILN_EUNSUPPORTED. Also fails like kiln_ping(). Blocks like kiln_ping(). */
KILN_API int kiln_submit(kiln_conn *c, const struct kiln_node *nodes, size_t n,
                         const uint64_t *keep, size_t nkeep, uint64_t *step,
                         struct kiln_error *err);

/* Fetch the values of `n` vars the session keeps (ids may be NULL when n
 * is 0), waiting up to timeout_ms (0: not at all; KILN_FETCH_WAIT_DEFAULT:
 * the daemon's default of 60 s; at most KILN_FETCH_WAIT_MAX) for the
 * steps that compute them. The connection's receive timeout is lengthened
 * by the wait for this call, so a long wait is not cut short here.
 *
 * On success *out is an array of n tensors in the order of `ids`, their
 * data copied out of the reply into memory the caller owns: give the
 * array to kiln_tensors_free() once (it frees the data too). When n is 0,
 * *out is NULL. On failure *out is NULL and nothing is to be freed; codes:
 * KILN_ENOTFOUND (an id the session does not keep: err->field is
 * "body.vars[i]"), KILN_ENOTREADY (the wait ran out), KILN_EEXEC (the step
 * that computes a var failed; err->node is that step's node), KILN_ELIMIT
 * (the values do not fit in one reply of the daemon's `message_bytes`:
 * fetch fewer vars per call), KILN_EARG (c or out NULL, an id of 0, n over
 * `var_ids`, a timeout out of range), KILN_EPROTO (a reply with other ids
 * or data that does not match its shape), or as kiln_ping(). */
KILN_API int kiln_fetch(kiln_conn *c, const uint64_t *ids, size_t n, int timeout_ms,
                        struct kiln_tensor **out, struct kiln_error *err);

/* Free what kiln_fetch() returned: the array and every tensor's data.
 * Safe on NULL. */
KILN_API void kiln_tensors_free(struct kiln_tensor *vars);

/* Drop the session's submitted steps that have not started running (one
 * that is running finishes). Their kept vars fail: fetching one gives
 * KILN_EEXEC saying it was cancelled. *cancelled (may be NULL) is how many
 * steps were dropped. Fails as kiln_ping(). */
KILN_API int kiln_cancel(kiln_conn *c, uint64_t *cancelled, struct kiln_error *err);

/* Drop `n` kept vars from the session (a var still being computed is
 * freed when its step ends). Idempotent: ids the session does not keep
 * are counted in *unknown, not refused. *released and *unknown may be
 * NULL. An id of 0 names nothing and counts as unknown. Fails with
 * KILN_EARG (ids NULL with n > 0, n over `var_ids`) or as kiln_ping(). */
KILN_API int kiln_release(kiln_conn *c, const uint64_t *ids, size_t n, uint64_t *released,
                          uint64_t *unknown, struct kiln_error *err);

/* Something the daemon accepted but has to say about a submitted graph
 * (today: a `grad` node whose loss does not depend on its target, which
 * gets zeros). Located like an error: node and field. */
#define KILN_WARNINGS_MAX 64 /* a daemon sends at most this many per SUBMIT */
struct kiln_warning {
    int64_t node;                         /* position in the graph's nodes, or -1 */
    char field[KILN_ERROR_FIELD_MAX];     /* "body.nodes[7].in[1]" */
    char message[KILN_ERROR_MESSAGE_MAX]; /* one sentence */
};

/* The warnings of the last kiln_submit() (or kiln_graph_submit()) on c,
 * and in *n how many (0 after a failed or a clean submit). Valid until the
 * next submit on c or kiln_close(). */
KILN_API const struct kiln_warning *kiln_conn_warnings(const kiln_conn *c, size_t *n);

/* kiln_fetch() with no wait: the values if every var is computed, else
 * KILN_ENOTREADY at once (one round trip; the daemon does not wait for
 * the steps). Use it to do other work while steps run, and kiln_fetch()
 * with a timeout to wait. Same arguments, results and errors as
 * kiln_fetch(). */
KILN_API int kiln_fetch_poll(kiln_conn *c, const uint64_t *ids, size_t n, struct kiln_tensor **out,
                             struct kiln_error *err);

/* A fresh var id for this connection's session: 1, 2, 3, ... in the order
 * asked, never 0 and never repeated by this connection. Graph builders
 * draw their ids here; a program that also writes struct kiln_node by
 * hand should take its ids here too, so that they never meet the
 * builders'. Thread-safe (an atomic counter): the one call on a
 * connection that may overlap others. Returns 0 only for a NULL c. */
KILN_API uint64_t kiln_conn_new_id(kiln_conn *c);

/* ---- the graph builder -------------------------------------------------
 *
 * kiln_graph builds one SUBMIT without struct kiln_node bookkeeping: every
 * kiln_graph_* call that adds a node takes its fields as arguments,
 * copies what it is given (data, shapes, expressions), draws a fresh id
 * from the connection (kiln_conn_new_id) and returns it. Ids name vars in
 * later calls, in later graphs (once kept) and in kiln_fetch() and
 * kiln_release(). Each op's fields are PROTOCOL.md §8's; the op number
 * picks among ops of one shape of call (kiln_graph_unary(g, KILN_OP_EXP,
 * x)).
 *
 * Errors are sticky, so calls can be nested without a check after each:
 * a call that fails returns 0 and records the first failure in the graph
 * (KILN_EARG for a bad argument, KILN_ENOMEM); later calls given an input
 * of 0 quietly return 0, and kiln_graph_submit() reports the first
 * failure without sending anything. kiln_graph_error() reads it: its
 * field names the call ("reshape", "concat"), its node the position the
 * node would have had, its message what was wrong. The
 * builder checks only what it must to copy an argument (counts against
 * the KILN_MAX_* bounds, NULL pointers); kiln_graph_submit() checks the
 * rest like kiln_submit(), and the daemon checks what the graph means
 * (its errors name the node by its position, in the order of the calls).
 *
 * Shapes are `rank` sizes (shape may be NULL when rank is 0). A graph
 * belongs to the connection it was made for and must be freed before the
 * connection is closed; it is used by one thread at a time (building
 * graphs for one connection on several threads at once is fine). */

typedef struct kiln_graph kiln_graph;

/* An int or a float scalar for const, pad and reindex's overflow. */
static inline struct kiln_number kiln_number_int(int64_t i)
{
    struct kiln_number n = {false, i, 0};
    return n;
}
static inline struct kiln_number kiln_number_float(double f)
{
    struct kiln_number n = {true, 0, f};
    return n;
}

/* A new, empty graph for c's session; NULL when c is NULL or memory is
 * short. Free it with kiln_graph_free(). */
KILN_API kiln_graph *kiln_graph_new(kiln_conn *c);

/* Free the graph and everything it copied. Safe on NULL. The vars it
 * submitted stay in the session. */
KILN_API void kiln_graph_free(kiln_graph *g);

/* Empty the graph (nodes, keep list and sticky error) so it can build the
 * next step; keeps its memory for reuse. Ids are never handed out twice. */
KILN_API void kiln_graph_reset(kiln_graph *g);

/* KILN_OK, or the first failure while building (copied to err, if given). */
KILN_API int kiln_graph_error(const kiln_graph *g, struct kiln_error *err);

/* The nodes built so far, in order (valid until the next call that adds a
 * node, kiln_graph_reset() or kiln_graph_free()), and how many. */
KILN_API const struct kiln_node *kiln_graph_nodes(const kiln_graph *g, size_t *n);

/* Keep var `id` once the step has run (a node of this graph, else the
 * daemon refuses the step). Returns KILN_OK or the sticky error. */
KILN_API int kiln_graph_keep(kiln_graph *g, uint64_t id);

/* Send the graph with kiln_submit() (see there: returns once the daemon
 * has checked and accepted it; the step then runs in the background). A
 * graph with a sticky error is not sent: that error is returned. The
 * graph is unchanged either way: reset or free it. */
KILN_API int kiln_graph_submit(kiln_graph *g, uint64_t *step, struct kiln_error *err);

/* Add a node given whole, for anything the calls below do not cover. Its
 * id is used as given, or drawn from the connection when 0; data, exprs
 * and conds are copied. Returns the id. */
KILN_API uint64_t kiln_graph_add_node(kiln_graph *g, const struct kiln_node *n);

/* Also send node `id`'s optional `dtype` (unless 0) and `shape` (unless
 * rank is -1), for the daemon to check against what it infers: a cheap
 * assertion that the graph means what its author thinks. `id` must be a
 * node of this graph. Returns KILN_OK or the sticky error. */
KILN_API int kiln_graph_expect(kiln_graph *g, uint64_t id, uint32_t dtype, int rank,
                               const int64_t *shape);

/* Sources. */
/* array: `bytes` bytes of data (row-major, little-endian; bool 0/1 bytes),
 * copied now. */
KILN_API uint64_t kiln_graph_array(kiln_graph *g, uint32_t dtype, uint32_t rank,
                                   const int64_t *shape, const void *data, size_t bytes);
/* array without the copy: data must stay unchanged until the last
 * kiln_graph_submit() of this graph has returned. For large uploads. */
KILN_API uint64_t kiln_graph_array_ref(kiln_graph *g, uint32_t dtype, uint32_t rank,
                                       const int64_t *shape, const void *data, size_t bytes);
/* const: every element `value`. */
KILN_API uint64_t kiln_graph_const(kiln_graph *g, uint32_t dtype, uint32_t rank,
                                   const int64_t *shape, struct kiln_number value);
/* const with `value` sent as the dtype wants it: a float for float
 * dtypes, else an int (value must then be a whole number: KILN_EARG). */
KILN_API uint64_t kiln_graph_fill(kiln_graph *g, uint32_t dtype, uint32_t rank,
                                  const int64_t *shape, double value);
/* kiln_graph_fill() of rank 0. */
KILN_API uint64_t kiln_graph_scalar(kiln_graph *g, uint32_t dtype, double value);
/* index: each element's coordinate along `dim` (dtype int32 or int64). */
KILN_API uint64_t kiln_graph_index(kiln_graph *g, uint32_t dtype, uint32_t rank,
                                   const int64_t *shape, uint32_t dim);
/* random: Philox numbers, enum kiln_dist, counter of element 0 `offset`. */
KILN_API uint64_t kiln_graph_random(kiln_graph *g, uint32_t dtype, uint32_t rank,
                                    const int64_t *shape, uint32_t dist, uint64_t seed,
                                    uint64_t offset);

/* Element-wise. `op` must be an op of the kind the call's name says
 * (KILN_EARG otherwise): unary 16..33, binary 48..70. */
KILN_API uint64_t kiln_graph_unary(kiln_graph *g, uint32_t op, uint64_t x);
KILN_API uint64_t kiln_graph_binary(kiln_graph *g, uint32_t op, uint64_t a, uint64_t b);
KILN_API uint64_t kiln_graph_cast(kiln_graph *g, uint64_t x, uint32_t dtype);
KILN_API uint64_t kiln_graph_where(kiln_graph *g, uint64_t cond, uint64_t a, uint64_t b);

/* Shapes and reductions. */
KILN_API uint64_t kiln_graph_reshape(kiln_graph *g, uint64_t x, uint32_t rank,
                                     const int64_t *shape);
/* `dims` (ndims of them; may be NULL when 0) are the output dims that are
 * new; x's dims fill the others in order, each equal or 1 (stretched). */
KILN_API uint64_t kiln_graph_broadcast_to(kiln_graph *g, uint64_t x, uint32_t rank,
                                          const int64_t *shape, uint32_t ndims,
                                          const uint32_t *dims);
/* enum kiln_reduce_op over `dims`; keepdims keeps them as size 1. */
KILN_API uint64_t kiln_graph_reduce(kiln_graph *g, uint32_t reduce_op, uint64_t x, uint32_t ndims,
                                    const uint32_t *dims, bool keepdims);

/* reindex and reindex_reduce: the output `shape`, one index expression per
 * dim of x (reindex) or of the output (reindex_reduce), optional overflow
 * conditions, and extra inputs read by @e0, @e1, ... All strings are
 * copied. A zeroed struct plus shape and exprs is the common case. */
struct kiln_reindex {
    uint32_t rank;
    const int64_t *shape;
    uint32_t nexprs;
    const char *const *exprs;
    uint32_t nconds; /* 0..KILN_MAX_CONDS */
    const char *const *conds;
    uint32_t nextras; /* 0..KILN_MAX_INPUTS - 1 */
    const uint64_t *extras;
    bool has_overflow; /* reindex only: send overflow_value (default 0) */
    struct kiln_number overflow_value;
};
KILN_API uint64_t kiln_graph_reindex(kiln_graph *g, uint64_t x, const struct kiln_reindex *r);
KILN_API uint64_t kiln_graph_reindex_reduce(kiln_graph *g, uint32_t reduce_op, uint64_t x,
                                            const struct kiln_reindex *r);

/* The lowered ops (112..116). */
/* dims: a permutation of x's dims; output dim k is x's dim dims[k]. */
KILN_API uint64_t kiln_graph_transpose(kiln_graph *g, uint64_t x, uint32_t ndims,
                                       const uint32_t *dims);
/* x[starts[d]:stops[d]:steps[d]] for each of x's n dims, with Python's
 * rules; a NULL array is left out (start and stop: the ends; step 1). */
KILN_API uint64_t kiln_graph_slice(kiln_graph *g, uint64_t x, uint32_t n, const int64_t *starts,
                                   const int64_t *stops, const int64_t *steps);
/* n inputs (1..KILN_MAX_INPUTS) joined along `dim`. */
KILN_API uint64_t kiln_graph_concat(kiln_graph *g, uint32_t n, const uint64_t *xs, uint32_t dim);
/* pads: before and after for each dim of x (npads = 2 x rank; negative
 * crops); value: the fill, or NULL for the default 0. */
KILN_API uint64_t kiln_graph_pad(kiln_graph *g, uint64_t x, uint32_t npads, const int64_t *pads,
                                 const struct kiln_number *value);
KILN_API uint64_t kiln_graph_flip(kiln_graph *g, uint64_t x, uint32_t ndims, const uint32_t *dims);

/* The relays (104..107): float32 or float64 contractions the daemon hands
 * to a library (PROTOCOL.md §8, "Relay ops"). */
/* a @ b over the last two dims (equal batch dims before them); trans_a
 * and trans_b read that operand with its last two dims swapped. */
KILN_API uint64_t kiln_graph_matmul(kiln_graph *g, uint64_t a, uint64_t b, bool trans_a,
                                    bool trans_b);

/* A 2-D convolution's attributes, (h, w) each: the window's step, the
 * zeros added on each side and the spacing of its taps, and the channel
 * groups. Every field is sent as given (a zero stride is the daemon's to
 * refuse), so start from kiln_conv_default(); a NULL kiln_conv sends none
 * and the daemon takes the same defaults. */
struct kiln_conv {
    int64_t stride[2];   /* >= 1 */
    int64_t padding[2];  /* >= 0 */
    int64_t dilation[2]; /* >= 1 */
    uint32_t groups;     /* >= 1, dividing both channel counts */
};
static inline struct kiln_conv kiln_conv_default(void)
{
    struct kiln_conv c = {{1, 1}, {0, 0}, {1, 1}, 1};
    return c;
}
/* conv2d: x [N, C, H, W], w [O, C/groups, kh, kw] -> [N, O, oh, ow]
 * (cross-correlation with zero padding). */
KILN_API uint64_t kiln_graph_conv2d(kiln_graph *g, uint64_t x, uint64_t w,
                                    const struct kiln_conv *c);
/* The gradients of conv2d(x, w, c) with respect to x (given dy, the
 * gradient of its output, and w) and to w (given x and dy). The shape of
 * the result, x's or w's, is not implied by the inputs, so it is given:
 * four sizes. */
KILN_API uint64_t kiln_graph_conv2d_bwd_data(kiln_graph *g, uint64_t dy, uint64_t w,
                                             const int64_t x_shape[4], const struct kiln_conv *c);
KILN_API uint64_t kiln_graph_conv2d_bwd_weight(kiln_graph *g, uint64_t x, uint64_t dy,
                                               const int64_t w_shape[4], const struct kiln_conv *c);

/* Gradients: the gradient of `loss` (a float scalar, or any shape with a
 * seed of its shape) with respect to `target` (seed 0: none), in
 * target's dtype and shape. Request every gradient of one loss with the
 * same loss id, one call after another: they share one backward pass. */
KILN_API uint64_t kiln_graph_grad(kiln_graph *g, uint64_t loss, uint64_t target, uint64_t seed);
KILN_API uint64_t kiln_graph_stop_grad(kiln_graph *g, uint64_t x);

/* The address used when none is given: $KILN_ADDRESS if set and not
 * empty, else ipc://<runtime dir>/kilnd.sock, where the runtime dir is
 * $XDG_RUNTIME_DIR/kiln or /tmp/kiln-<uid>. Writes it to buf; returns
 * KILN_OK, or KILN_ELIMIT if it does not fit in n bytes. It only names
 * the address: the runtime directory is checked by kiln_connect() when
 * given no address, not here. (Implemented by the protocol library, which
 * kilnd shares; proto.h declares the same.) */
KILN_API int kiln_default_address(char *buf, size_t n);

/* The address the connection dialled. */
KILN_API const char *kiln_conn_address(const kiln_conn *c);

/* The session opened by kiln_connect(). */
KILN_API const struct kiln_session *kiln_conn_session(const kiln_conn *c);

#ifdef __cplusplus
}
#endif

#endif
