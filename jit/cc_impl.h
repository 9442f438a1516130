/* cc_impl.h: what cc.c (the compiler and the loaded objects) and
 * cc_disk.c (the on-disk entries) share. Not a contract: see cc.h. */
#ifndef KILN_JIT_CC_IMPL_H
#define KILN_JIT_CC_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cc.h"
#include "disk_cache.h"
#include "sha256.h"

#define CC_MAGIC        "KILNCC\x01\n" /* 8 bytes; the last two are the format version */
#define CC_MAX_OBJECT   ((uint64_t) 256 << 20)
#define CC_MAX_KEYS     4096
#define CC_MAP_BUCKETS  1024

struct jit_cc_lib {
    struct jit_cc_lib *next; /* cc->libs */
    void *handle;
    int name; /* N of the "/proc/self/fd/N" it was loaded as, or -1 */
    uint32_t refs;
    uint32_t nkeys;
    struct jit_cc_key *keys; /* the kernels in it */
    uint8_t *mapped;         /* per key: the map points here */
};

struct cc_mapent {
    struct cc_mapent *next;
    struct jit_cc_key key;
    struct jit_cc_lib *lib;
    uint32_t index; /* in lib->keys */
};

struct jit_cc {
    char *path;        /* resolved compiler */
    char *describe;    /* "<path> (<version>)" */
    uint8_t ident[32]; /* SHA-256 of everything besides the source that a key covers */
    char *cache_dir;   /* NULL: none */
    uint64_t cache_max; /* bytes its entries may take */
    char *work_dir;    /* NULL until made (or given) */
    bool work_owned;   /* we made it: removed by jit_cc_free */
    char *prelude;     /* jit_codegen_prelude's text */
    size_t prelude_len;
    struct jit_sha256 keyed_prelude; /* the key hash after ident and prelude */
    pthread_mutex_t lock;            /* everything below */
    struct jit_cc_lib *libs;
    struct cc_mapent *map[CC_MAP_BUCKETS];
    struct jit_cc_stats st;
    uint64_t seq; /* temporary file names */
    int *names;   /* the N of every lib loaded (or loading) as /proc/self/fd/N */
    size_t nnames, capnames;
    int cancelled; /* atomic */
    int works;     /* atomic: the compiler built something (1), a trivial module failed (-1) */
};

/* ---- cc_disk.c -------------------------------------------------------------- */

_Static_assert(JIT_CC_KEY_BYTES == JIT_DISK_KEY, "a cc key is a disk cache key");

/* An entry read from disk and checked: the object's bytes and its keys
 * (both malloc'd; free with cc_entry_fini). */
struct cc_entry {
    uint8_t *object;
    size_t object_bytes;
    struct jit_cc_key *keys;
    uint32_t nkeys;
};

void cc_entry_fini(struct cc_entry *e);

/* Reads and checks key's entry. KILN_OK; KILN_ENOTFOUND when there is
 * none, or there was a bad one (then deleted and counted, *discarded set);
 * KILN_ENOMEM. */
int cc_disk_read(struct jit_cc *cc, const struct jit_cc_key *key, struct cc_entry *out,
                 bool *discarded);

/* Writes one object under each of keys[0..n): KILN_OK or an error (the
 * cache is best effort; the caller counts it). */
int cc_disk_write(struct jit_cc *cc, const struct jit_cc_key *keys, uint32_t n,
                  const uint8_t *object, size_t object_bytes);

/* Unique temporary name "<dir>/.<tag><pid>-<seq>" into buf; false if it
 * does not fit. */
bool cc_temp_name(struct jit_cc *cc, const char *dir, const char *tag, char *buf, size_t n);

void cc_key_hex(const struct jit_cc_key *key, char *hex /* 65 bytes */);

#endif
