/* rundir.h: the private runtime directory behind the default address.
 *
 * With no --listen, kilnd listens on ipc://<runtime dir>/kilnd.sock. Anyone
 * who can connect to that socket can use the daemon (there is no
 * authentication on ipc://), so the directory is the access control: it
 * must be a real directory (not a symlink), owned by us, with no group or
 * other permissions. rundir_prepare() creates it that way when missing and
 * refuses one that is not.
 */
#ifndef KILND_RUNDIR_H
#define KILND_RUNDIR_H

#include <stddef.h>

/* Create or check `dir`. Returns 0, or -1 with a sentence naming the
 * problem written to `why`. */
int rundir_prepare(const char *dir, char *why, size_t why_size);

#endif
