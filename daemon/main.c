/* main.c: kilnd's entry point: flags in, exit status out.
 *
 * Everything else lives in the kiln_daemon library so that tests can link
 * it; this file only parses the command line and runs the daemon. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "auth.h"
#include "daemon.h"
#include "spill.h"

int main(int argc, char **argv)
{
    /* A client that hangs up mid-reply must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    /* A long-running server gives memory back: buffers of 128 KiB and up
     * (tensors, messages) are mapped on their own and unmapped when freed.
     * Setting the threshold turns off glibc's habit of raising it after
     * each big free, which would keep the next big buffers in the heap,
     * out of reach of the OS, after the client that needed them is gone,
     * and tensors spilled to disk leave the process (spill.h, rule 3). */
    /* Few arenas: with one per thread (NNG's, the workers', the kernel
     * pool's) freed memory scatters over many heaps that each keep some.
     * An operator's MALLOC_* environment variables win. */
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL)
        mallopt(M_MMAP_THRESHOLD, SPILL_MMAP_THRESHOLD);
    if (getenv("MALLOC_TRIM_THRESHOLD_") == NULL)
        mallopt(M_TRIM_THRESHOLD, 1 << 20);
    if (getenv("MALLOC_ARENA_MAX") == NULL)
        mallopt(M_ARENA_MAX, 4);

    struct cfg cfg;
    switch (cfg_parse(&cfg, argc, argv, stdout, stderr)) {
    case CFG_EXIT:
        cfg_fini(&cfg);
        return 0;
    case CFG_ERROR:
        cfg_fini(&cfg);
        return 2;
    case CFG_RUN:
        break;
    }
    if (cfg.hash_token) { /* kilnd --hash-token < token-file */
        char tok[KILN_LIMIT_TOKEN + 2], hex[65];
        size_t n = fread(tok, 1, sizeof tok, stdin);
        while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r'))
            n--;
        cfg_fini(&cfg);
        if (n == 0 || n > KILN_LIMIT_TOKEN) {
            fprintf(stderr, "kilnd: --hash-token reads a token of 1..%d bytes from stdin\n",
                    KILN_LIMIT_TOKEN);
            return 2;
        }
        auth_hash_hex(tok, n, hex);
        printf("%s\n", hex);
        return 0;
    }
    int status = kilnd_run(&cfg);
    cfg_fini(&cfg);
    return status;
}
