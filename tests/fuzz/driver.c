/* driver.c - replay inputs through a fuzz target without libFuzzer: each argument is a file or a directory of files. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Feed one file; the buffer is exactly the file's size so that ASan sees any read past its end. */
static int run_file(const char *path) {
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    long sz;
    if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (sz = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot read\n", path);
        if (fp) fclose(fp);
        return 1;
    }
    buf = malloc(sz ? (size_t)sz : 1);
    if (buf == NULL || fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
        fprintf(stderr, "%s: cannot read %ld bytes\n", path, sz);
        free(buf);
        fclose(fp);
        return 1;
    }
    fclose(fp);
    LLVMFuzzerTestOneInput(buf, (size_t)sz);
    free(buf);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order (replays are reproducible). */
static int run_dir(const char *dir, size_t *count) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int bad = 0;
    if (d == NULL) {
        fprintf(stderr, "%s: cannot open directory\n", dir);
        return 1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **q = realloc(names, cap * sizeof *q);
            if (q == NULL) break;
            names = q;
        }
        size_t l = strlen(dir) + strlen(e->d_name) + 2;
        if ((names[n] = malloc(l)) == NULL) break;
        snprintf(names[n], l, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
            bad |= run_file(names[i]);
            ++*count;
        }
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv) {
    int bad = 0;
    size_t count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "%s: no such file or directory\n", argv[i]);
            bad = 1;
        } else if (S_ISDIR(sb.st_mode)) {
            bad |= run_dir(argv[i], &count);
        } else {
            bad |= run_file(argv[i]);
            count++;
        }
    }
    printf("%s: %zu inputs replayed\n", argc > 0 ? argv[0] : "driver", count);
    return bad;
}
