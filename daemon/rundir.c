/* rundir.c: create or vet the runtime directory (see rundir.h).
 *
 * mkdir then lstat, never stat: if another user planted a symlink or a
 * directory of their own at the path first, we must notice rather than
 * follow it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rundir.h"

int rundir_prepare(const char *dir, char *why, size_t why_size)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(why, why_size, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(why, why_size, "cannot inspect %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, why_size, "%s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, why_size, "%s belongs to uid %u, not to us (uid %u)", dir,
                 (unsigned) st.st_uid, (unsigned) geteuid());
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(why, why_size, "%s has mode %03o; it must be 0700 (chmod 700 %s)", dir,
                 (unsigned) (st.st_mode & 0777), dir);
        return -1;
    }
    return 0;
}
