/* nvrtc_main.h: the main() of the suites that need NVRTC (test_cuda.c,
 * test_cuda_disk.c). Where NVRTC cannot be loaded there is nothing to
 * test: it says why and returns 77 (meson: SKIP); otherwise it makes and
 * runs the suite and returns EXIT_SUCCESS or EXIT_FAILURE. */
#ifndef KILN_TESTS_JIT_NVRTC_MAIN_H
#define KILN_TESTS_JIT_NVRTC_MAIN_H

#include <check.h>

/* make: builds the suite; what: the test in words, for the skip message
 * ("CUDA compile test"). */
int nvrtc_suite_main(Suite *(*make)(void), const char *what);

#endif
