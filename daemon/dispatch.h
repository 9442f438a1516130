/* dispatch.h: one request in, one reply out.
 *
 * disp_request() is the server's handler: it decodes the request with the
 * protocol codec (which enforces every limit), resolves the session, runs
 * the kind's handler, encodes the reply and counts it. Anything wrong with
 * the request becomes a typed error reply built from the proto_error that
 * names the culprit; nothing a client sends can make it assert or abort.
 *
 * Loop thread only. `struct disp` borrows everything it points to; the
 * daemon owns those and sets `draining` when shutdown begins.
 */
#ifndef KILND_DISPATCH_H
#define KILND_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

#include <msgpack.h>
#include <uv.h>

#include "config.h"
#include "exec.h"
#include "log.h"
#include "session.h"
#include "stats.h"

struct auth;
struct srv;

struct jit_cuda_info;

struct disp {
    const struct cfg *cfg;
    const struct log *log;
    struct sess_table *sessions;
    struct stats *stats;
    struct exec *exec; /* runs SUBMITted steps, answers FETCH */
    uv_loop_t *loop;   /* its clock times sessions */
    const struct srv *srv;   /* which transport a request came over */
    const struct auth *auth; /* users and tokens (empty: none configured) */
    const struct jit_cuda_info *cuda; /* what the CUDA probe found; NULL: not probed */
    bool draining;   /* new work is refused with KILN_ESHUTDOWN */
};

/* An srv_handler_fn; `arg` is a struct disp. */
void disp_request(void *arg, const void *buf, size_t len, msgpack_sbuffer *reply);

#endif
