/* cuda_dl_none.c: cuda_dl.h for a kilnd built with -Dcuda=disabled.
 *
 * The same API as cuda_dl.c, so callers never test how kiln was built: the
 * info says there is no driver and no NVRTC, and why. */
#include "cuda_dl.h"

#include <stdio.h>
#include <stdlib.h>

#include "cuda_impl.h"
#include "kiln_err.h"

struct jit_cuda {
    struct jit_cuda_info info;
};

int jit_cuda_open(unsigned what, struct jit_cuda **out)
{
    (void) what;
    struct jit_cuda *c = calloc(1, sizeof *c);
    if (c == NULL)
        return KILN_ENOMEM;
    snprintf(c->info.why, sizeof c->info.why, "kilnd was built without CUDA support");
    snprintf(c->info.nvrtc_why, sizeof c->info.nvrtc_why, "kilnd was built without CUDA support");
    *out = c;
    return KILN_OK;
}

void jit_cuda_close(struct jit_cuda *c)
{
    free(c);
}

const struct jit_cuda_info *jit_cuda_info(const struct jit_cuda *c)
{
    return &c->info;
}

int jit_cuda_compile_ptx(struct jit_cuda *c, const char *src, const char *name, int nheaders,
                         const char *const *headers, const char *const *names, int nopts,
                         const char *const *opts, char **ptx, size_t *ptx_len, char **log)
{
    (void) c, (void) src, (void) name, (void) nheaders, (void) headers, (void) names;
    (void) nopts, (void) opts;
    *ptx = NULL;
    *ptx_len = 0;
    if (log != NULL)
        *log = NULL;
    return KILN_EUNSUPPORTED;
}

const struct jit_cu_fns *jit_cuda_driver(const struct jit_cuda *c)
{
    (void) c;
    return NULL;
}

const char *jit_cuda_strerror(const struct jit_cuda *c, cu_result r, char *buf, size_t len)
{
    (void) c;
    snprintf(buf, len, "CUDA error %u", r);
    return buf;
}

int jit_cuda_error_is_sticky(cu_result r)
{
    (void) r;
    return 0;
}
