/* main.c: kilnd's entry point: flags in, exit status out.
 *
 * Everything else lives in the kiln_daemon library so that tests can link
 * it; this file only parses the command line and runs the daemon. */
#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "auth.h"
#include "daemon.h"

int main(int argc, char **argv)
{
    /* A client that hangs up mid-reply must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);

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
