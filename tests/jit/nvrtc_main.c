/* nvrtc_main.c: see nvrtc_main.h. */
#include "nvrtc_main.h"

#include <stdio.h>
#include <stdlib.h>

#include "cuda_dl.h"
#include "kiln_err.h"

int nvrtc_suite_main(Suite *(*make)(void), const char *what)
{
    struct jit_cuda *c = NULL;
    if (jit_cuda_open(JIT_CUDA_NVRTC, &c) != KILN_OK)
        return EXIT_FAILURE;
    if (!jit_cuda_info(c)->nvrtc) {
        printf("SKIP: no NVRTC, so no %s: %s\n", what, jit_cuda_info(c)->nvrtc_why);
        jit_cuda_close(c);
        return 77;
    }
    jit_cuda_close(c);
    SRunner *sr = srunner_create(make());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
