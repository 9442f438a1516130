/* address.c: where a kiln daemon is found when no address is given.
 *
 * The default is an ipc:// socket inside a per-user runtime directory, so
 * that on a laptop nothing needs configuring and other users of the machine
 * cannot reach the daemon (kilnd creates the directory with mode 0700).
 * Third-party clients follow the same rule; PROTOCOL.md states it. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"

static int fits(int want, size_t n)
{
    return want >= 0 && (size_t) want < n ? KILN_OK : KILN_ELIMIT;
}

int kiln_runtime_dir(char *buf, size_t n)
{
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int want;
    if (xdg != NULL && xdg[0] == '/')
        want = snprintf(buf, n, "%s/kiln", xdg);
    else
        want = snprintf(buf, n, "/tmp/kiln-%u", (unsigned) getuid());
    return fits(want, n);
}

int kiln_ipc_address(char *buf, size_t n)
{
    char dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    if (kiln_runtime_dir(dir, sizeof(dir)) != KILN_OK)
        return KILN_ELIMIT;
    /* The socket path itself must fit in sun_path. */
    if (fits(snprintf(NULL, 0, "%s/kilnd.sock", dir), sizeof(dir)) != KILN_OK)
        return KILN_ELIMIT;
    return fits(snprintf(buf, n, "ipc://%s/kilnd.sock", dir), n);
}

int kiln_default_address(char *buf, size_t n)
{
    const char *env = getenv("KILN_ADDRESS");
    if (env != NULL && env[0] != '\0')
        return fits(snprintf(buf, n, "%s", env), n);
    return kiln_ipc_address(buf, n);
}
