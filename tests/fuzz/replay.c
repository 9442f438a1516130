/* replay.c: run the fuzz target over a saved corpus and the shared vectors
 * without libFuzzer, so every CI build (gcc, ASan) replays them.
 * Usage: fuzz_replay DIR...  (files in each DIR are inputs) */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = malloc(cap);
    size_t got;
    while (buf != NULL && (got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            uint8_t *grown = realloc(buf, cap *= 2);
            if (grown == NULL) {
                free(buf);
                buf = NULL;
            }
            buf = grown;
        }
    }
    fclose(f);
    if (buf == NULL)
        return -1;
    /* An exact-size copy, so a read past the end is caught by ASan. */
    uint8_t *exact = malloc(len ? len : 1);
    memcpy(exact, buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        DIR *d = opendir(argv[i]);
        if (d == NULL) {
            fprintf(stderr, "fuzz_replay: cannot open %s\n", argv[i]);
            return 1;
        }
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (run_file(path) != 0) {
                fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
                closedir(d);
                return 1;
            }
            files++;
        }
        closedir(d);
    }
    const char *sets[] = {"requests.txt", "replies.txt"};
    int vectors = 0;
    for (int s = 0; s < 2; s++) {
        char path[4096];
        struct vector_set set;
        vectors_path(path, sizeof(path), sets[s]);
        if (vectors_load(&set, path, s == 0 ? 3 : 4) != 0)
            return 1;
        for (size_t i = 0; i < set.n; i++)
            LLVMFuzzerTestOneInput(set.v[i].bytes, set.v[i].len);
        vectors += (int) set.n;
        vectors_free(&set);
    }
    printf("fuzz_replay: %d corpus files and %d vectors replayed\n", files, vectors);
    return files > 0 && vectors > 0 ? 0 : 1;
}
