/* spillfile.c: the spill file and its free-extent list (see spillfile.h).
 *
 * The free list is a sorted array: the number of extents is at most the
 * number of spilled tensors plus one, inserts are a binary search and a
 * memmove, and allocation walks it once. That is plenty for thousands of
 * tensors; a size-ordered tree would only pay off far beyond that. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spillfile.h"

uint64_t spill_file_extent_len(uint64_t len)
{
    if (len > UINT64_MAX - (SPILL_FILE_ALIGN - 1))
        return 0;
    return (len + SPILL_FILE_ALIGN - 1) & ~(SPILL_FILE_ALIGN - 1);
}

int spill_file_open(struct spill_file *f, const char *dir, uint64_t cap, char *why,
                    size_t why_size)
{
    memset(f, 0, sizeof(*f));
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
        /* No O_TMPFILE on this file system: a named file, unlinked at once. */
        char path[4096];
        if (snprintf(path, sizeof(path), "%s/kilnd-spill-XXXXXX", dir) >= (int) sizeof(path)) {
            snprintf(why, why_size, "the spill directory name is too long: %s", dir);
            return -1;
        }
        fd = mkostemp(path, O_CLOEXEC);
        if (fd >= 0 && unlink(path) != 0) {
            snprintf(why, why_size, "cannot unlink %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (fd < 0) {
        snprintf(why, why_size, "cannot create a spill file in %s: %s", dir, strerror(errno));
        return -1;
    }
    f->fd = fd;
    f->open = true;
    f->cap = cap & ~(SPILL_FILE_ALIGN - 1);
    return 0;
}

void spill_file_close(struct spill_file *f)
{
    if (f->open)
        close(f->fd);
    free(f->free);
    memset(f, 0, sizeof(*f));
}

/* Insert [off, off+len) into the free list, merging with its neighbours. */
static int free_insert(struct spill_file *f, uint64_t off, uint64_t len)
{
    uint32_t lo = 0, hi = f->nfree;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (f->free[mid].off < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* lo: the first extent after `off`. */
    bool prev = lo > 0 && f->free[lo - 1].off + f->free[lo - 1].len == off;
    bool next = lo < f->nfree && off + len == f->free[lo].off;
    if (prev && next) {
        f->free[lo - 1].len += len + f->free[lo].len;
        memmove(&f->free[lo], &f->free[lo + 1], (f->nfree - lo - 1) * sizeof(f->free[0]));
        f->nfree--;
        return 0;
    }
    if (prev) {
        f->free[lo - 1].len += len;
        return 0;
    }
    if (next) {
        f->free[lo].off = off;
        f->free[lo].len += len;
        return 0;
    }
    if (f->nfree == f->free_cap) {
        uint32_t cap = f->free_cap ? f->free_cap * 2 : 16;
        struct spill_extent *grown = realloc(f->free, (size_t) cap * sizeof(*grown));
        if (grown == NULL)
            return ENOMEM;
        f->free = grown;
        f->free_cap = cap;
    }
    memmove(&f->free[lo + 1], &f->free[lo], (f->nfree - lo) * sizeof(f->free[0]));
    f->free[lo] = (struct spill_extent){off, len};
    f->nfree++;
    return 0;
}

/* Take `len` bytes from the first free extent that holds them. */
static bool take_first_fit(struct spill_file *f, uint64_t len, uint64_t *off)
{
    for (uint32_t i = 0; i < f->nfree; i++) {
        if (f->free[i].len < len)
            continue;
        *off = f->free[i].off;
        f->free[i].off += len;
        f->free[i].len -= len;
        if (f->free[i].len == 0) {
            memmove(&f->free[i], &f->free[i + 1], (f->nfree - i - 1) * sizeof(f->free[0]));
            f->nfree--;
        }
        return true;
    }
    return false;
}

/* Make the file `grow` bytes longer, reserving the blocks. */
static int grow_file(struct spill_file *f, uint64_t grow)
{
    if (!f->sparse) {
        if (fallocate(f->fd, 0, (off_t) f->size, (off_t) grow) == 0)
            return 0;
        if (errno != EOPNOTSUPP && errno != ENOSYS)
            return errno;
        f->sparse = true;
    }
    return ftruncate(f->fd, (off_t) (f->size + grow)) == 0 ? 0 : errno;
}

int spill_file_alloc(struct spill_file *f, uint64_t len, uint64_t *off)
{
    if (len == 0)
        return EINVAL;
    len = spill_file_extent_len(len);
    if (len == 0)
        return EFBIG;
    if (take_first_fit(f, len, off))
        goto done;
    /* Grow: a free extent at the end of the file counts towards it. */
    uint64_t tail = 0;
    if (f->nfree > 0 && f->free[f->nfree - 1].off + f->free[f->nfree - 1].len == f->size)
        tail = f->free[f->nfree - 1].len;
    uint64_t need = len - tail;
    if (f->size > f->cap || need > f->cap - f->size)
        return EFBIG;
    uint64_t grow = need < SPILL_FILE_GROW ? SPILL_FILE_GROW : need;
    if (grow > f->cap - f->size)
        grow = f->cap - f->size;
    int rc = grow_file(f, grow);
    if (rc == ENOSPC && grow > need) /* the disk may still hold what is needed */
        rc = grow_file(f, grow = need);
    if (rc != 0)
        return rc;
    if ((rc = free_insert(f, f->size, grow)) != 0) {
        if (ftruncate(f->fd, (off_t) f->size) != 0) {
            /* The file stays longer than we track; harmless. */
        }
        return rc;
    }
    f->size += grow;
    if (!take_first_fit(f, len, off))
        return EFBIG; /* cannot happen: the tail now holds len */
done:
    f->used += len;
    return 0;
}

void spill_file_release(struct spill_file *f, uint64_t off, uint64_t len)
{
    len = spill_file_extent_len(len);
    if (len == 0)
        return; /* nothing was allocated (alloc refuses 0 bytes) */
    f->used -= len <= f->used ? len : f->used;
    if (free_insert(f, off, len) != 0)
        return; /* out of memory for the list: the extent is lost until the file empties */
    if (f->used == 0) {
        /* Empty: give every block back. */
        if (ftruncate(f->fd, 0) == 0) {
            f->size = 0;
            f->nfree = 0;
        }
        return;
    }
    /* A long free tail goes back to the file system, but for one step of
     * growth, so that a loop that spills and restores the same tensors
     * does not truncate and reserve the same blocks over and over. */
    struct spill_extent *t = &f->free[f->nfree - 1];
    if (t->off + t->len == f->size && t->len >= 2 * SPILL_FILE_GROW) {
        uint64_t cut = t->len - SPILL_FILE_GROW;
        if (ftruncate(f->fd, (off_t) (f->size - cut)) == 0) {
            f->size -= cut;
            t->len -= cut;
        }
    }
}

int spill_file_write(int fd, uint64_t off, const void *p, uint64_t len)
{
    const char *c = p;
    while (len > 0) {
        size_t chunk = len > ((size_t) 1 << 30) ? (size_t) 1 << 30 : (size_t) len;
        ssize_t n = pwrite(fd, c, chunk, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return ENOSPC;
        c += n;
        off += (uint64_t) n;
        len -= (uint64_t) n;
    }
    return 0;
}

int spill_file_read(int fd, uint64_t off, void *p, uint64_t len)
{
    char *c = p;
    while (len > 0) {
        size_t chunk = len > ((size_t) 1 << 30) ? (size_t) 1 << 30 : (size_t) len;
        ssize_t n = pread(fd, c, chunk, (off_t) off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno;
        if (n == 0)
            return EIO; /* the file is shorter than what we wrote: never expected */
        c += n;
        off += (uint64_t) n;
        len -= (uint64_t) n;
    }
    return 0;
}
