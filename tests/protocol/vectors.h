/* vectors.h: reading the shared protocol test vectors (protocol/vectors/)
 * for the C tests and the fuzz corpus replay. */
#ifndef KILN_TEST_VECTORS_H
#define KILN_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>

struct vector {
    char *name;
    char *kind;     /* replies only: the request kind column; else NULL */
    uint8_t *bytes;
    size_t len;
    char *expected; /* "ok ..." or "error NAME FIELD" */
};

struct vector_set {
    struct vector *v;
    size_t n;
};

/* Load a vector file: 3 columns (requests) or 4 (replies). Returns 0, or
 * -1 with a message on stderr. */
int vectors_load(struct vector_set *set, const char *path, int columns);
void vectors_free(struct vector_set *set);

/* $KILN_SOURCE_ROOT/protocol/vectors/<file>, or a path relative to the
 * working directory when the variable is unset. */
void vectors_path(char *buf, size_t n, const char *file);

#endif
