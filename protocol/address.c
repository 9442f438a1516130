/* address.c: where a kiln daemon is found when no address is given.
 *
 * The default is an ipc:// socket inside a per-user runtime directory, so
 * that on a laptop nothing needs configuring and other users of the machine
 * cannot reach the daemon (kilnd creates the directory with mode 0700).
 * Third-party clients follow the same rule; PROTOCOL.md states it.
 *
 * /tmp is shared, so anyone can create /tmp/kiln-<uid> before its owner
 * does and listen there. A client that dials the default address without
 * looking would hand its token to that listener; kiln_runtime_dir_check()
 * is the look. It uses lstat, never stat, so that a symlink planted at the
 * path is refused rather than followed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int kiln_runtime_dir_check(const char *dir, char *why, size_t n)
{
    char dummy[1];
    if (why == NULL || n == 0) {
        why = dummy;
        n = sizeof(dummy);
    }
    struct stat st;
    if (lstat(dir, &st) != 0) {
        int e = errno;
        if (e == ENOENT) {
            snprintf(why, n, "%s does not exist", dir);
            return KILN_ECONNECT;
        }
        snprintf(why, n, "cannot inspect %s: %s", dir, strerror(e));
        return KILN_EARG;
    }
    uid_t me = getuid();
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, n, "%s is %s, not a directory", dir,
                 S_ISLNK(st.st_mode) ? "a symbolic link" : "another kind of file");
        return KILN_EARG;
    }
    if (st.st_uid != me) {
        snprintf(why, n, "%s belongs to uid %u, not to uid %u: another user may have made it", dir,
                 (unsigned) st.st_uid, (unsigned) me);
        return KILN_EARG;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(why, n, "%s has mode %04o, open to other users; it must be 0700", dir,
                 (unsigned) (st.st_mode & 07777));
        return KILN_EARG;
    }
    why[0] = '\0';
    return KILN_OK;
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
