/* cuda_relay_none.c: cuda_relay.h for a kilnd built with -Dcuda=disabled.
 *
 * The same API as cuda_relay.c, so callers never test how kiln was built:
 * no library is loaded, every relay is unavailable, and handles cannot be
 * made. */
#include "cuda_relay.h"

#include <stdio.h>
#include <stdlib.h>

#include "kiln_err.h"

#define NONE "kilnd was built without CUDA support"

struct jit_cuda_relay {
    struct jit_cuda_relay_info info;
};

int jit_cuda_relay_open(struct jit_cuda_relay **out)
{
    struct jit_cuda_relay *r = calloc(1, sizeof *r);
    if (r == NULL)
        return KILN_ENOMEM;
    snprintf(r->info.driver_why, sizeof r->info.driver_why, NONE);
    snprintf(r->info.cublas_why, sizeof r->info.cublas_why, NONE);
    snprintf(r->info.cudnn_why, sizeof r->info.cudnn_why, NONE);
    *out = r;
    return KILN_OK;
}

void jit_cuda_relay_close(struct jit_cuda_relay *r)
{
    free(r);
}

const struct jit_cuda_relay_info *jit_cuda_relay_info(const struct jit_cuda_relay *r)
{
    return &r->info;
}

char *jit_cuda_relay_describe(const struct jit_cuda_relay *r, char *buf, size_t len)
{
    (void) r;
    if (len > 0)
        snprintf(buf, len, NONE);
    return buf;
}

bool jit_cuda_relay_available(const struct jit_cuda_relay *r, int op, const char **why)
{
    (void) r, (void) op;
    if (why != NULL)
        *why = NONE;
    return false;
}

int jit_cuda_relay_handles_new_ex(struct jit_cuda_relay *r, void *stream,
                                  struct jit_cuda_relay_handles **out, struct ir_error *err)
{
    (void) r, (void) stream;
    *out = NULL;
    ir_error_set(err, KILN_EUNSUPPORTED, NULL, NONE);
    return KILN_EUNSUPPORTED;
}

int jit_cuda_relay_handles_new(struct jit_cuda_relay *r, void *stream,
                               struct jit_cuda_relay_handles **out)
{
    return jit_cuda_relay_handles_new_ex(r, stream, out, NULL);
}

void jit_cuda_relay_handles_free(struct jit_cuda_relay_handles *h)
{
    (void) h; /* never made */
}

size_t jit_cuda_relay_workspace(struct jit_cuda_relay_handles *h, const struct ir_graph *g,
                                uint32_t n)
{
    (void) h, (void) g, (void) n;
    return 0;
}

int jit_cuda_relay_workspace_for(struct jit_cuda_relay_handles *h, const struct ir_graph *g,
                                 uint32_t n, bool tf32, size_t *bytes, struct ir_error *err)
{
    (void) h, (void) g, (void) tf32;
    *bytes = 0;
    if (err != NULL) {
        ir_error_set(err, KILN_EUNSUPPORTED, NULL, NONE);
        err->node = n;
    }
    return KILN_EUNSUPPORTED;
}

int jit_cuda_relay_run(struct jit_cuda_relay_handles *h, const struct ir_graph *g, uint32_t n,
                       uint64_t a, uint64_t b, uint64_t y, uint64_t ws, size_t ws_bytes, bool tf32,
                       struct ir_error *err)
{
    (void) h, (void) g, (void) a, (void) b, (void) y, (void) ws, (void) ws_bytes, (void) tf32;
    if (err != NULL) {
        ir_error_set(err, KILN_EUNSUPPORTED, NULL, NONE);
        err->node = n;
    }
    return KILN_EUNSUPPORTED;
}
