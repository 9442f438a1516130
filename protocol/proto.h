/* proto.h: the kiln wire protocol v1 in C — message kinds, the decoded
 * forms of requests and replies, and the codec that enforces every limit.
 *
 * PROTOCOL.md is the specification; this header is its C binding, used by
 * both the daemon and the C client. Framing: one NNG message carries one
 * msgpack object. A request is the array [kind, session, body]; a reply is
 * the array [code, body]; a body is a map with string keys.
 *
 * Decoding is two passes. proto_scan() walks the raw bytes without
 * allocating and rejects anything malformed or over a limit (depth, items
 * per container, objects per message, string lengths, trailing bytes).
 * Only then does msgpack-c unpack it, so its allocations are bounded by
 * the scan. Typed decoding then checks every field against the spec.
 *
 * Ownership: a decoded request or reply may point into the buffer it was
 * decoded from (zero-copy) and owns an unpack zone; call the matching
 * _fini() when done, and keep the buffer alive until then. _fini() is safe
 * on a zeroed object. All functions are thread-safe on distinct objects;
 * nothing here has global state.
 */
#ifndef KILN_PROTO_H
#define KILN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "kiln_err.h"
#include "kiln_limits.h"

enum proto_kind {
    PROTO_HELLO = 1,   /* open a session, negotiate the version */
    PROTO_PING = 2,    /* liveness; refreshes a session's idle timer */
    PROTO_STATUS = 3,  /* daemon-wide counters */
    PROTO_SUBMIT = 4,  /* a graph to run (one step) */
    PROTO_FETCH = 5,   /* values of vars the session keeps */
    PROTO_RELEASE = 6, /* drop vars from the session's table */
    PROTO_BYE = 7,     /* end the session */
    PROTO_CANCEL = 8,  /* drop the session's steps that have not started */
    PROTO_KIND_END
};

/* "HELLO", "PING", ...; "UNKNOWN" for any other number. */
const char *proto_kind_name(int kind);

#define PROTO_FIELD_MAX   64  /* bytes of a field path in an error, with NUL */
#define PROTO_MESSAGE_MAX 256 /* bytes of an error message, with NUL */

/* A typed error: what failed and where. `field` is a dotted path into the
 * message ("body.client", "body.vars[3]") or "" when the whole message is
 * at fault; `node` is the graph node at fault or -1. */
struct proto_error {
    int code; /* enum kiln_err */
    int64_t node;
    char field[PROTO_FIELD_MAX];
    char message[PROTO_MESSAGE_MAX];
};

/* Fill `e` (if non-NULL) and return `code`. `field` may be NULL. Text that
 * does not fit is truncated. */
int proto_error_set(struct proto_error *e, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Structural pass over raw bytes: exactly one msgpack object, no reserved
 * byte (0xc1), no ext types, depth <= KILN_LIMIT_DEPTH, every container
 * <= KILN_LIMIT_CONTAINER_ITEMS and no larger than the bytes left could
 * hold, <= KILN_LIMIT_OBJECTS objects, every str <= KILN_LIMIT_STRING,
 * nothing after the object. Allocates nothing. Returns KILN_OK or the error. */
int proto_scan(const void *buf, size_t len, struct proto_error *err);

/* ---- requests ---------------------------------------------------------- */

struct proto_hello {
    uint32_t proto_min; /* oldest version the client speaks, >= 1 */
    uint32_t proto_max; /* newest version the client speaks, >= proto_min */
    char client[KILN_LIMIT_NAME + 1]; /* client name, 1..KILN_LIMIT_NAME bytes, NUL-terminated */
    bool has_token;
    char token[KILN_LIMIT_TOKEN + 1];
};

struct proto_release {
    uint32_t count;
    uint64_t *ids; /* owned by the request (freed by proto_request_fini) */
};

/* A string inside the received message (not NUL-terminated). */
struct proto_str {
    const char *ptr;
    uint32_t len;
};

/* A number as the client sent it: an int (bool as 0/1) or a float. */
struct proto_number {
    bool is_float;
    int64_t i; /* when !is_float */
    double f;  /* when is_float */
};

/* One graph node of a SUBMIT, typed and limit-checked but not yet
 * validated against the op's rules (that is the daemon's ingest). `has`
 * is a bit set of the PROTO_NODE_* fields present. Pointers point into the
 * received message or the request's own allocations. */
enum proto_node_field {
    PROTO_NODE_IN = 1u << 0,
    PROTO_NODE_DTYPE = 1u << 1,
    PROTO_NODE_SHAPE = 1u << 2,
    PROTO_NODE_DATA = 1u << 3,
    PROTO_NODE_VALUE = 1u << 4,
    PROTO_NODE_DIM = 1u << 5,
    PROTO_NODE_DIST = 1u << 6,
    PROTO_NODE_SEED = 1u << 7,
    PROTO_NODE_OFFSET = 1u << 8,
    PROTO_NODE_DIMS = 1u << 9,
    PROTO_NODE_KEEPDIMS = 1u << 10,
    PROTO_NODE_REDUCE_OP = 1u << 11,
    PROTO_NODE_EXPRS = 1u << 12,
    PROTO_NODE_CONDS = 1u << 13,
    PROTO_NODE_OVERFLOW = 1u << 14,
    PROTO_NODE_STARTS = 1u << 15,
    PROTO_NODE_STOPS = 1u << 16,
    PROTO_NODE_STEPS = 1u << 17,
    PROTO_NODE_PADS = 1u << 18,
    PROTO_NODE_STRIDE = 1u << 19,
    PROTO_NODE_PADDING = 1u << 20,
    PROTO_NODE_DILATION = 1u << 21,
    PROTO_NODE_TRANS = 1u << 22,
    PROTO_NODE_GROUPS = 1u << 23,
};

/* The wire key of one PROTO_NODE_* bit ("in", "reduce_op", ...), or NULL
 * for anything that is not exactly one such bit. */
const char *proto_node_field_name(uint32_t bit);

struct proto_node {
    uint64_t id;  /* non-zero */
    uint32_t op;  /* any number: the ingest checks it names an op */
    uint32_t has; /* enum proto_node_field bits */
    uint32_t nin;
    uint64_t in[KILN_LIMIT_NODE_INPUTS];
    uint32_t dtype;
    uint32_t rank;
    int64_t shape[KILN_LIMIT_RANK]; /* each 0..KILN_LIMIT_DIM */
    const void *data;               /* points into the message; 1-byte aligned only */
    size_t data_len;
    struct proto_number value;
    uint32_t dim;
    uint32_t dist;
    uint64_t seed, offset;
    uint32_t ndims;
    uint32_t dims[KILN_LIMIT_RANK]; /* each < KILN_LIMIT_RANK */
    bool keepdims;
    uint32_t reduce_op;
    uint32_t nexprs;
    struct proto_str exprs[KILN_LIMIT_RANK]; /* each <= KILN_LIMIT_EXPR_BYTES */
    uint32_t nconds;
    struct proto_str *conds; /* nconds entries; decoded: owned by the request.
                                Kept out of line: most nodes have none. */
    struct proto_number overflow;
    /* slice's starts, stops and steps (each <= KILN_LIMIT_RANK entries) and
     * pad's pads (<= 2 * KILN_LIMIT_RANK), any int64. Out of line like
     * conds: most nodes have none. Decoded, they point into `ints`, one
     * block owned by the request; to encode, they are the caller's. */
    uint32_t nstarts, nstops, nsteps, npads;
    const int64_t *starts, *stops, *steps, *pads;
    /* conv2d and its gradients: stride, padding and dilation, (h, w) each
     * (<= 2 entries, checked by the ingest); matmul: trans, (a, b), 0 or
     * 1 each. Out of line in `ints` as the four above. */
    uint32_t nstride, npadding, ndilation, ntrans;
    const int64_t *stride, *padding, *dilation, *trans;
    uint32_t groups;
    int64_t *ints; /* decoded only; freed by proto_request_fini */
};

/* Where a SUBMIT asks its step to run (`device`). */
enum proto_submit_device {
    PROTO_DEVICE_CPU = 0,  /* absent, or "cpu" */
    PROTO_DEVICE_CUDA = 1, /* "cuda": the daemon's CUDA device, where it has one */
};

struct proto_submit {
    uint32_t nnodes; /* 1..KILN_LIMIT_NODES */
    struct proto_node *nodes; /* owned by the request */
    uint32_t nkeep;
    uint64_t *keep; /* owned by the request */
    uint8_t device; /* enum proto_submit_device */
    bool tf32;      /* `tf32`: device matmuls and convolutions may use TF32 */
};

struct proto_fetch {
    uint32_t count;
    uint64_t *ids;       /* owned by the request */
    uint64_t timeout_ms; /* KILN_FETCH_TIMEOUT_DEFAULT_MS when absent; <= ..._MAX_MS */
};

struct proto_request {
    int kind;         /* enum proto_kind */
    uint64_t session; /* 0: none */
    union {
        struct proto_hello hello;
        struct proto_release release;
        struct proto_submit submit;
        struct proto_fetch fetch;
    } u;
    /* The body map as unpacked. Points into `unpacked`'s zone. */
    const msgpack_object *body;
    msgpack_unpacked unpacked; /* internal: the unpack zone */
    bool has_unpacked;
};

/* Decode one request. On success returns KILN_OK and `req` must be given to
 * proto_request_fini(); on failure returns the code, fills `err` (the
 * field and message name the culprit; `err->node` is the position of the
 * SUBMIT node at fault, else -1) and leaves nothing to free.
 * Sessionless kinds (HELLO, PING, STATUS) accept session 0; HELLO requires
 * it. SUBMIT and FETCH are decoded into u.submit and u.fetch: types, limits
 * and non-zero ids are checked here; the graph rules of PROTOCOL.md §8
 * (unique ids, resolvable inputs, which fields each op takes, element
 * counts) are the daemon's ingest. */
int proto_request_decode(struct proto_request *req, const void *buf, size_t len,
                         struct proto_error *err);
void proto_request_fini(struct proto_request *req);

/* A one-line canonical description of a decoded request, used by the
 * shared test vectors: e.g. `HELLO session=0 proto_min=1 proto_max=1
 * client="demo" token=-`. Strings are quoted with \" \\ and \xNN escapes.
 * Returns the length it wanted to write (like snprintf). */
int proto_request_describe(const struct proto_request *req, char *buf, size_t n);

/* Encoders append one complete message to `sb` (which the caller owns and
 * has initialised with msgpack_sbuffer_init). They return KILN_OK, or
 * KILN_ENOMEM when the buffer cannot grow, or KILN_EARG when an argument
 * breaks a limit (so a client cannot build a request the daemon must refuse). */
int proto_encode_hello(msgpack_sbuffer *sb, const struct proto_hello *h);
/* PING, STATUS and BYE: requests with an empty body. */
int proto_encode_simple(msgpack_sbuffer *sb, int kind, uint64_t session);
int proto_encode_release(msgpack_sbuffer *sb, uint64_t session, const uint64_t *ids,
                         uint32_t count);
/* SUBMIT: only the fields whose bit is set in each node's `has` are sent.
 * KILN_EARG for session 0, a count, rank or length over its limit, a zero
 * id, an unknown `has` bit, a NULL pointer with a non-zero length, or a
 * message that would break a structural limit (message_bytes, objects);
 * on any failure `sb` is left as it was. */
int proto_encode_submit(msgpack_sbuffer *sb, uint64_t session, const struct proto_submit *s);
/* FETCH: `count` ids (non-zero, <= KILN_LIMIT_VAR_IDS) and the timeout
 * (<= KILN_FETCH_TIMEOUT_MAX_MS; always sent). */
int proto_encode_fetch(msgpack_sbuffer *sb, uint64_t session, const uint64_t *ids,
                       uint32_t count, uint64_t timeout_ms);

/* ---- replies ----------------------------------------------------------- */

struct proto_limits {
    uint64_t message_bytes, depth, container_items, objects, string, name, token;
    uint64_t nodes, rank, dim, elements, var_ids;
    uint64_t node_inputs, expr_bytes, expr_nodes, expr_depth, conds;
    uint64_t grad_passes; /* optional on decode: 0 from daemons that predate it */
};

/* The limits this build enforces (the KILN_LIMIT_* values). */
void proto_limits_default(struct proto_limits *l);

struct proto_hello_reply {
    uint32_t proto;   /* the version chosen: the highest both speak */
    uint64_t session; /* the new session's id, never 0 */
    char server[KILN_LIMIT_NAME + 1];
    uint64_t idle_timeout_ms; /* the session ends after this long without a request */
    struct proto_limits limits;
};

/* STATUS's `users` and `sessions` lists hold at most this many entries
 * each (the busiest); `users_total` and `sessions` give the full counts. */
#define PROTO_STATUS_LIST_MAX 32

/* One user in STATUS (the fair scheduler's and the quotas' view). */
struct proto_status_user {
    char name[KILN_LIMIT_NAME + 1];
    uint64_t weight;
    uint64_t sessions;   /* open now */
    uint64_t queued;     /* steps submitted and not finished (running included) */
    uint64_t running;    /* steps on a worker now */
    uint64_t steps;      /* steps finished since start */
    uint64_t kernel_ms;  /* kernel time its steps used since start */
    uint64_t mem;        /* bytes its sessions hold */
    uint64_t kernels;    /* kernels its steps compiled */
    uint64_t compile_ms; /* their compile time */
    uint64_t refused;    /* requests refused over its quotas */
};

/* One session in STATUS. Sessions are shown by number (the order they
 * opened), never by id: an id is what lets a client act on a session. */
struct proto_status_session {
    uint64_t number;
    char user[KILN_LIMIT_NAME + 1];
    char client[KILN_LIMIT_NAME + 1];
    uint64_t queued;    /* steps waiting (not running) */
    bool running;       /* a step on a worker now */
    uint64_t steps;     /* steps submitted */
    uint64_t kernel_ms; /* kernel time its steps used */
    uint64_t mem;       /* bytes it holds */
    uint64_t vars;      /* vars it keeps */
    uint64_t idle_ms;   /* since its latest request */
};

/* One memory tier in STATUS ("memory.tiers", top tier first: cuda, host, disk;
 * cuda while steps may run on the device). Counters count tensors and bytes moved
 * out of the tier to the one below it, and back. */
#define PROTO_TIERS_MAX     4  /* tiers a STATUS reply may list */
#define PROTO_TIER_NAME_MAX 15 /* bytes of a tier's name */
struct proto_tier {
    char name[PROTO_TIER_NAME_MAX + 1]; /* "host", "disk" */
    uint64_t in_use;         /* bytes held in this tier */
    uint64_t limit;          /* bytes allowed; 0: no limit */
    uint64_t moving;         /* bytes being written out of it now */
    uint64_t spills;         /* tensors moved out, to the tier below */
    uint64_t spilled_bytes;
    uint64_t spill_ms;       /* time spent writing them (on workers) */
    uint64_t restores;       /* tensors moved back in */
    uint64_t restored_bytes;
    uint64_t restore_ms;     /* time spent reading them */
    uint64_t refused;        /* charges refused (KILN_ENOMEM) after spilling */
};

/* One accelerator in STATUS ("devices.cuda"). */
#define PROTO_DEVICES_MAX        16  /* devices a STATUS reply may list */
#define PROTO_DEVICE_NAME_MAX    95  /* bytes of a device name */
#define PROTO_DEVICE_WHY_MAX     191 /* bytes of a reason */
#define PROTO_DEVICE_VERSION_MAX 15  /* bytes of a version ("13.0") */
struct proto_device {
    char name[PROTO_DEVICE_NAME_MAX + 1]; /* "NVIDIA H100 80GB HBM3" */
    uint64_t cc_major, cc_minor;          /* compute capability */
    uint64_t memory;                      /* bytes of device memory */
};

struct proto_status {
    char server[KILN_LIMIT_NAME + 1]; /* "kilnd 0.1.0" */
    uint32_t proto_min, proto_max;
    int64_t pid;
    uint64_t uptime_ms;
    uint64_t sessions;       /* open now */
    uint64_t sessions_total; /* opened since start */
    uint64_t requests;       /* answered since start, errors included */
    uint64_t workers;        /* worker threads */
    uint64_t errors[KILN_ERR_WIRE_COUNT]; /* error replies sent, by code */
    uint64_t mem_in_use;     /* bytes held for clients (tensors) */
    uint64_t mem_budget;     /* bytes allowed; 0: no budget */
    uint64_t mem_rss;        /* resident set size of kilnd */
    bool draining;           /* shutting down: takes no new sessions */
    /* Graph steps since start ("steps" map; optional on decode: absent
     * from daemons that predate it, which leaves them 0). */
    uint64_t steps_done;     /* finished with every kept value */
    uint64_t steps_failed;   /* failed while running (EXEC) */
    uint64_t steps_running;  /* on a worker now */
    uint64_t steps_queued;   /* waiting for an earlier step of their session */
    uint64_t step_run_ms;    /* worker time of all finished steps */
    uint64_t steps_merged;   /* of steps_done: ran as part of a merged step (optional on decode) */
    /* The JIT ("jit" map; optional on decode like "steps"). */
    bool jit_enabled;           /* false: steps run on the interpreter */
    uint64_t jit_kernels_compiled; /* kernel-cache misses compiled */
    uint64_t jit_kernel_hits;   /* kernel-cache hits */
    uint64_t jit_compile_us;    /* time spent generating and compiling kernels */
    uint64_t jit_plans;         /* graphs planned (plan-cache misses) */
    uint64_t jit_plan_hits;     /* plan-cache hits */
    uint64_t jit_kernels_run;   /* kernel launches (one per fused group per step) */
    uint64_t jit_kernels_cached; /* kernels held in the cache now */
    uint64_t jit_fallbacks;     /* steps the JIT handed to the interpreter */
    /* The second tier (optional inside "jit", like the map itself). */
    bool cc_enabled;            /* a system compiler rebuilds hot kernels */
    uint64_t cc_kernels;        /* cached kernels running its code now */
    uint64_t cc_promoted;       /* kernels queued for it */
    uint64_t cc_compiles;       /* kernels it built */
    uint64_t cc_failures;       /* kernels it could not build (they stay on libtcc) */
    uint64_t cc_compile_ms;     /* its compile time (in the background) */
    uint64_t cc_disk_hits;      /* objects loaded from the on-disk cache */
    /* Relay ops (matmul, conv2d; jit/relay.h). */
    bool relay_library;         /* oneDNN serves them */
    uint64_t relay_runs;        /* relay nodes run */
    uint64_t relay_library_runs; /* of which by the library */
    /* Users and sessions (optional: a daemon sends them to clients on a
     * local socket only). Decoded lists are owned by the reply. */
    uint64_t users_total;            /* users with an account (ever had a session) */
    uint32_t nusers, nsessions;      /* <= PROTO_STATUS_LIST_MAX each */
    struct proto_status_user *users;
    struct proto_status_session *session_list;
    bool has_lists;                  /* the reply carried them */
    /* Memory tiers ("memory.tiers"; optional on decode: absent from
     * daemons that predate it, which leaves ntiers 0). */
    uint32_t ntiers;
    struct proto_tier tiers[PROTO_TIERS_MAX];
    /* Accelerators ("devices"; optional on decode: absent from daemons
     * that predate it, which leaves has_devices false). */
    bool has_devices;
    uint32_t ndevices;
    struct proto_device devices[PROTO_DEVICES_MAX];
    char cuda_why[PROTO_DEVICE_WHY_MAX + 1];  /* no devices: why; "" else */
    uint64_t cuda_driver;                     /* driver version (13000); 0: none */
    char nvrtc[PROTO_DEVICE_VERSION_MAX + 1]; /* NVRTC version; "" absent */
    char nvrtc_why[PROTO_DEVICE_WHY_MAX + 1]; /* NVRTC absent: why; "" else */
    /* Whether steps that ask for CUDA run there (optional on decode:
     * "" from daemons that predate it): "ready", "off" (none is used:
     * cuda_why or the log says why) or "failed: <error>". */
    char cuda_state[PROTO_DEVICE_WHY_MAX + 1];
    uint64_t cuda_steps;     /* steps run on the device */
    uint64_t cuda_fallbacks; /* steps that asked for it and ran on the CPU */
};

struct proto_cancel_reply {
    uint64_t cancelled; /* queued steps dropped (their kept vars now fail) */
};

struct proto_release_reply {
    uint64_t released; /* ids that named a var and were dropped */
    uint64_t unknown;  /* ids that named nothing (not an error: release is idempotent) */
};

/* One fetched var: a FETCH reply carries these, and the daemon encodes
 * them. `data` is `bytes` bytes of elements, row-major, little-endian
 * (bool one byte 0 or 1), 1-byte aligned only. In a decoded reply it
 * points into the reply buffer (zero-copy), and for dtypes 1..7 the
 * decoder has checked that `bytes` is elements x dtype size. */
struct proto_tensor {
    uint64_t id;
    uint32_t dtype;
    uint32_t rank;                  /* <= KILN_LIMIT_RANK */
    int64_t shape[KILN_LIMIT_RANK]; /* each 0..KILN_LIMIT_DIM */
    const void *data;
    size_t bytes;
};

/* Something the daemon accepted but has to say (PROTOCOL.md, SUBMIT):
 * today, a `grad` node whose target the loss does not depend on. Shaped
 * like an error's location and message; text that does not fit is
 * truncated on decode. */
#define PROTO_WARNINGS_MAX 64 /* warnings in one SUBMIT reply; the rest are dropped */

struct proto_warning {
    int64_t node; /* position in the SUBMIT's nodes, or -1 */
    char field[PROTO_FIELD_MAX];
    char message[PROTO_MESSAGE_MAX];
};

struct proto_submit_reply {
    uint64_t step; /* the step's number in its session: 1, 2, ... */
    uint32_t nwarnings; /* <= PROTO_WARNINGS_MAX */
    struct proto_warning *warnings; /* owned by the reply (freed by proto_reply_fini) */
};

struct proto_fetch_reply {
    uint32_t count;            /* as many as the FETCH asked for, in its order */
    struct proto_tensor *vars; /* owned by the reply (freed by proto_reply_fini) */
};

struct proto_reply {
    int code;   /* KILN_OK, or the error code (then `error` is filled) */
    int kind;   /* the request kind this reply answers, as given to decode */
    struct proto_error error;
    union {
        struct proto_hello_reply hello;
        struct proto_status status;
        struct proto_release_reply release;
        struct proto_cancel_reply cancel;
        struct proto_submit_reply submit;
        struct proto_fetch_reply fetch;
    } u;
    const msgpack_object *body; /* the body map, for kinds decoded elsewhere */
    msgpack_unpacked unpacked;
    bool has_unpacked;
};

int proto_encode_reply_error(msgpack_sbuffer *sb, const struct proto_error *e);
/* PING and BYE: an empty body. */
int proto_encode_reply_empty(msgpack_sbuffer *sb);
int proto_encode_reply_hello(msgpack_sbuffer *sb, const struct proto_hello_reply *r);
int proto_encode_reply_status(msgpack_sbuffer *sb, const struct proto_status *s);
int proto_encode_reply_release(msgpack_sbuffer *sb, const struct proto_release_reply *r);
int proto_encode_reply_cancel(msgpack_sbuffer *sb, uint64_t cancelled);
/* SUBMIT: the step number (non-zero). */
int proto_encode_reply_submit(msgpack_sbuffer *sb, uint64_t step);
/* SUBMIT with `n` warnings (the `warnings` field is left out when n is 0).
 * KILN_EARG for step 0 or n over PROTO_WARNINGS_MAX; on failure `sb` is
 * left as it was. */
int proto_encode_reply_submit_warnings(msgpack_sbuffer *sb, uint64_t step,
                                       const struct proto_warning *w, uint32_t n);
/* FETCH: `n` (<= KILN_LIMIT_VAR_IDS) vars in the order asked. KILN_EARG for
 * a rank or dim over its limit, `bytes` that do not match the dtype and
 * shape (dtypes 1..7), or a reply over KILN_LIMIT_MESSAGE_BYTES (a daemon
 * configured smaller checks its own limit first and replies LIMIT); on
 * failure `sb` is left as it was. */
int proto_encode_reply_fetch(msgpack_sbuffer *sb, const struct proto_tensor *vars, uint32_t n);

/* Decode the reply to a request of `kind`. Returns KILN_OK when the reply
 * is well formed, whether it reports success or an error: check rep->code.
 * A reply that breaks the protocol gives KILN_EPROTO in `err`. Unknown
 * reply fields are ignored (daemons may add fields within a version).
 * Give a successfully decoded reply to proto_reply_fini(). */
int proto_reply_decode(struct proto_reply *rep, int kind, const void *buf, size_t len,
                       struct proto_error *err);
void proto_reply_fini(struct proto_reply *rep);

/* ---- addresses --------------------------------------------------------- */

/* The private runtime directory: $XDG_RUNTIME_DIR/kiln when that variable
 * is set, else /tmp/kiln-<uid>. Writes it to buf; returns KILN_OK or
 * KILN_ELIMIT if it does not fit. Does not create it. */
int kiln_runtime_dir(char *buf, size_t n);

/* Is `dir` (the runtime directory) safe to find a private daemon in?
 * lstat()s it, so a symlink is refused, never followed, and requires a
 * directory owned by getuid() with no group or other permission bits.
 * Returns KILN_OK; KILN_ECONNECT if it does not exist (so nothing can be
 * listening in it); KILN_EARG if it exists but is unsafe or cannot be
 * inspected. On failure writes one line naming `dir` and the fault to
 * `why` (n bytes, truncated to fit; may be NULL); on success `why` is "".
 * Clients apply it before dialling the default ipc:// address (PROTOCOL.md
 * §1, "Default address"); an address named explicitly is not checked. */
int kiln_runtime_dir_check(const char *dir, char *why, size_t n);

/* The address a client uses when none is given: $KILN_ADDRESS if set and
 * non-empty, else kiln_ipc_address(). Returns KILN_OK or KILN_ELIMIT. */
int kiln_default_address(char *buf, size_t n);

/* ipc://<runtime dir>/kilnd.sock: where kilnd listens when given no
 * --listen. Returns KILN_OK or KILN_ELIMIT. */
int kiln_ipc_address(char *buf, size_t n);

#endif
