/* buf.h: a growable text buffer for code generation.
 *
 * Codegen appends many small pieces; a failed allocation is remembered
 * (the buffer goes "bad") and reported once at the end, so generators need
 * not check every append. Text is always NUL-terminated when not bad.
 * Not thread-safe; one buffer per generator. jit_buf_fini is safe on a
 * zeroed buffer.
 */
#ifndef KILN_JIT_BUF_H
#define KILN_JIT_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct jit_buf {
    char *data;
    size_t len, cap;
    bool bad; /* an allocation failed; data is unusable */
};

void jit_buf_init(struct jit_buf *b);
void jit_buf_fini(struct jit_buf *b);
void jit_buf_clear(struct jit_buf *b);
void jit_buf_add(struct jit_buf *b, const char *s);
void jit_buf_addf(struct jit_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
