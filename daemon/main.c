/* main.c: kilnd's entry point: flags in, exit status out.
 *
 * Everything else lives in the kiln_daemon library so that tests can link
 * it; this file only parses the command line and runs the daemon. */
#include <signal.h>
#include <stdio.h>

#include "config.h"
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
    int status = kilnd_run(&cfg);
    cfg_fini(&cfg);
    return status;
}
