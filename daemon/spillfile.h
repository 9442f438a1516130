/* spillfile.h: the file that holds spilled tensors, and its extents.
 *
 * One file per daemon, opened with O_TMPFILE (or created and unlinked at
 * once where the file system lacks it), so it has no name and nothing is
 * left on disk when kilnd exits or crashes. Space is handed out in
 * extents of whole SPILL_FILE_ALIGN blocks from a sorted, coalesced list
 * of free extents (first fit); when none fits, the file grows by at least
 * SPILL_FILE_GROW, never past `cap`. Growth reserves the blocks with
 * fallocate(2), so a full disk shows up here as ENOSPC, at the moment a
 * tensor is chosen for spilling, and not later in a write on a worker.
 * (On a file system without fallocate the file grows sparse, and a full
 * disk shows up as a failed write instead.) A long free tail is given back
 * with ftruncate.
 *
 * Threads: open/close/alloc/release belong to one thread (the loop
 * thread); spill_file_write and spill_file_read take only the descriptor
 * and may run on any thread, for extents that thread's caller owns.
 */
#ifndef KILND_SPILLFILE_H
#define KILND_SPILLFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPILL_FILE_ALIGN ((uint64_t) 4096)     /* extents are whole blocks */
#define SPILL_FILE_GROW  ((uint64_t) 64 << 20) /* the file grows by this much at least */

struct spill_extent {
    uint64_t off, len;
};

struct spill_file {
    int fd;              /* valid while `open` */
    bool open;
    bool sparse;         /* no fallocate here: space is not reserved ahead */
    uint64_t cap;        /* bytes the file may reach */
    uint64_t size;       /* its length now */
    uint64_t used;       /* bytes in extents handed out */
    struct spill_extent *free; /* free extents inside [0, size), by offset, coalesced */
    uint32_t nfree, free_cap;
};

/* Open an unnamed file in `dir` that may grow to `cap` bytes. Returns 0, or
 * -1 with a sentence naming the problem in `why`. */
int spill_file_open(struct spill_file *f, const char *dir, uint64_t cap, char *why,
                    size_t why_size);
/* Close it (its blocks go back to the file system). Safe on a zeroed struct. */
void spill_file_close(struct spill_file *f);

/* An extent of at least `len` bytes at *off. Returns 0, EINVAL for 0, EFBIG
 * when the file would pass its cap, ENOSPC when the disk is full, ENOMEM,
 * or another errno from fallocate/ftruncate. */
int spill_file_alloc(struct spill_file *f, uint64_t len, uint64_t *off);
/* Give back an extent from spill_file_alloc with the same `len`. */
void spill_file_release(struct spill_file *f, uint64_t off, uint64_t len);

/* Bytes an extent for `len` bytes takes (rounded up to whole blocks). */
uint64_t spill_file_extent_len(uint64_t len);

/* Write or read `len` bytes at `off`, retrying short transfers and EINTR.
 * Return 0 or an errno (EIO for an unexpected end of file). */
int spill_file_write(int fd, uint64_t off, const void *p, uint64_t len);
int spill_file_read(int fd, uint64_t off, void *p, uint64_t len);

#endif
