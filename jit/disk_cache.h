/* disk_cache.h: what the on-disk caches of compiled code share: the cc
 * tier's objects (cc_disk.c) and NVRTC's PTX (cuda_disk.c).
 *
 * One entry format, told apart by its magic. Integers little-endian:
 *     0  magic (8 bytes; the last two are the format version and '\n')
 *     8  u32 nkeys, u32 zero
 *    16  u64 payload bytes
 *    24  SHA-256 of bytes [0, 24) ++ keys ++ payload
 *    56  nkeys keys of 32 bytes: everything the payload serves
 *        then the payload
 * The file must be exactly that long. Everything a reader uses is covered
 * by the checksum, so any flipped or missing byte is caught; a whole entry
 * stored under the wrong name (a foreign entry) is caught by the key list.
 *
 * Writers never modify a file in place: an entry is written to a unique
 * temporary file in the same directory and renamed over its name (atomic
 * on POSIX file systems). No fsync: an entry torn by a crash fails its
 * checksum and is discarded like any other bad one. A bad entry is deleted
 * by its reader, unless a writer replaced it meanwhile.
 *
 * The directory holds code the daemon will run, so it must be ours:
 * created 0700, refused when it is a symlink or another user's, its mode
 * tightened to 0700 when it is ours but open to others. Files we do not
 * own are ignored, never read or deleted.
 *
 * Threads: the functions share no state; any thread.
 */
#ifndef KILN_JIT_DISK_CACHE_H
#define KILN_JIT_DISK_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JIT_DISK_HEADER 56 /* magic, nkeys, 0, payload bytes, checksum */
#define JIT_DISK_KEY    32 /* bytes of a key */

/* One kind of entry. */
struct jit_disk_format {
    char magic[8];
    uint32_t max_keys;    /* an entry with more is bad */
    uint64_t max_payload; /* bytes; an entry with a larger payload is bad */
};

/* An entry read and checked: its keys and payload (both malloc'd; free
 * with jit_disk_entry_fini, which is safe on a zeroed entry). */
struct jit_disk_entry {
    void *keys; /* nkeys * JIT_DISK_KEY bytes */
    uint32_t nkeys;
    uint8_t *payload;
    size_t payload_bytes;
};

void jit_disk_entry_fini(struct jit_disk_entry *e);

/* Reads the entry at `path` and checks that it is whole, of format `f`
 * and lists `key`; a good entry's modification time is set to now (it
 * says when the entry was last used). KILN_OK; KILN_ENOTFOUND when there
 * is none, or there was a bad one (then deleted, and *discarded set);
 * KILN_ENOMEM. */
int jit_disk_read(const struct jit_disk_format *f, const char *path,
                  const uint8_t key[JIT_DISK_KEY], struct jit_disk_entry *out, bool *discarded);

/* Creates `tmp` (which must not exist; mode 0600) holding an entry of
 * format `f` with keys[0..n) and the payload. KILN_OK, KILN_ELIMIT (n or
 * the payload out of the format's range) or KILN_EINTERNAL (an I/O error:
 * `tmp` is then removed). The caller renames it into place. */
int jit_disk_write_temp(const struct jit_disk_format *f, const char *tmp, const void *keys,
                        uint32_t n, const uint8_t *payload, size_t payload_bytes);

/* Keeps the entries of `dir` whose names end in `suffix` under `max`
 * bytes: when they are over it, those used longest ago are deleted until
 * they take 90 % of it. Returns how many were deleted. Another process
 * sharing the directory may be reading one of them: it then finds no
 * entry, as after any other miss. */
uint64_t jit_disk_trim(const char *dir, const char *suffix, uint64_t max);

/* Writes all n bytes to fd (through EINTR and short writes): true, or
 * false with errno set. */
bool jit_disk_write_all(int fd, const void *p, size_t n);

/* Makes `dir` (and missing parents) 0700, or checks an existing one is a
 * real directory owned by us, tightening its mode to 0700. 0, or -1 with
 * a sentence in why. */
int jit_disk_dir_prepare(const char *dir, char *why, size_t whylen);

#endif
