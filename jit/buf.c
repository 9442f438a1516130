/* buf.c: the growable text buffer of buf.h. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void jit_buf_init(struct jit_buf *b)
{
    memset(b, 0, sizeof(*b));
}

void jit_buf_fini(struct jit_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void jit_buf_clear(struct jit_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Make room for `more` bytes plus the NUL. */
static bool reserve(struct jit_buf *b, size_t more)
{
    if (b->bad)
        return false;
    if (more >= SIZE_MAX / 2 - b->len) {
        b->bad = true;
        return false;
    }
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (grown == NULL) {
        b->bad = true;
        return false;
    }
    b->data = grown;
    b->cap = cap;
    return true;
}

void jit_buf_add(struct jit_buf *b, const char *s)
{
    size_t n = strlen(s);
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n + 1);
    b->len += n;
}

void jit_buf_addf(struct jit_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->bad = true;
        return;
    }
    if (!reserve(b, (size_t) n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}
