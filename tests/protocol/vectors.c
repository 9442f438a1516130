/* vectors.c: a reader for the tab-separated vector files. The files are
 * checked in and trusted, but the reader still fails cleanly on a bad line
 * so that a broken edit is reported, not crashed on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int unhex(const char *s, uint8_t **out, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 != 0)
        return -1;
    uint8_t *b = malloc(n / 2 + 1);
    if (b == NULL)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(b);
            return -1;
        }
        b[i] = (uint8_t) (hi << 4 | lo);
    }
    *out = b;
    *len = n / 2;
    return 0;
}

void vectors_path(char *buf, size_t n, const char *file)
{
    const char *root = getenv("KILN_SOURCE_ROOT");
    snprintf(buf, n, "%s/protocol/vectors/%s", root ? root : ".", file);
}

int vectors_load(struct vector_set *set, const char *path, int columns)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "cannot open %s\n", path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int rc = 0;
    memset(set, 0, sizeof(*set));
    while ((got = getline(&line, &cap, f)) > 0) {
        if (line[got - 1] == '\n')
            line[--got] = '\0';
        if (got == 0 || line[0] == '#')
            continue;
        /* Split on single tabs; a column may be empty (the empty message). */
        char *col[4] = {0};
        char *p = line;
        int c = 0;
        while (c < columns && p != NULL) {
            col[c++] = p;
            p = strchr(p, '\t');
            if (p != NULL)
                *p++ = '\0';
        }
        if (p != NULL)
            c = columns + 1; /* too many columns */
        struct vector v = {0};
        int hexcol = columns == 4 ? 2 : 1;
        if (c != columns || unhex(col[hexcol], &v.bytes, &v.len) != 0) {
            fprintf(stderr, "%s: bad vector line starting \"%.40s\"\n", path, line);
            rc = -1;
            break;
        }
        v.name = strdup(col[0]);
        v.kind = columns == 4 ? strdup(col[1]) : NULL;
        v.expected = strdup(col[columns - 1]);
        struct vector *grown = realloc(set->v, (set->n + 1) * sizeof(*grown));
        if (grown != NULL)
            set->v = grown;
        if (grown == NULL || v.name == NULL || v.expected == NULL) {
            free(v.name);
            free(v.kind);
            free(v.bytes);
            free(v.expected);
            rc = -1;
            break;
        }
        set->v[set->n++] = v;
    }
    free(line);
    fclose(f);
    if (rc != 0)
        vectors_free(set);
    return rc;
}

void vectors_free(struct vector_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->v[i].name);
        free(set->v[i].kind);
        free(set->v[i].bytes);
        free(set->v[i].expected);
    }
    free(set->v);
    memset(set, 0, sizeof(*set));
}
