/* opt.c - command-line option helpers shared by the tripletctl subcommands. */
#include "opt.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n] != '\0') return NULL;
    if (*i + 1 >= argc) {
        fprintf(stderr, "tripletctl %s: %s needs a value\n", cmd, name);
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int cli_parse_size(const char *cmd, const char *name, const char *v, size_t max, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v == '\0' || *v == '-' || *end != '\0' || errno || x == 0 || (max && x > max)) {
        if (max)
            fprintf(stderr, "tripletctl %s: %s: \"%s\" is not an integer in 1..%zu\n", cmd, name, v, max);
        else
            fprintf(stderr, "tripletctl %s: %s: \"%s\" is not a positive integer\n", cmd, name, v);
        return -1;
    }
    *out = (size_t)x;
    return 0;
}

int cli_parse_u64(const char *cmd, const char *name, const char *v, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (*v == '\0' || *v == '-' || *end != '\0' || errno) {
        fprintf(stderr, "tripletctl %s: %s: \"%s\" is not a non-negative integer\n", cmd, name, v);
        return -1;
    }
    *out = (uint64_t)x;
    return 0;
}

int cli_parse_labels(const char *cmd, const char *name, const char *s, int64_t *out, size_t *n) {
    const char *p = s;
    *n = 0;
    for (;;) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || (*end != ',' && *end != '\0')) {
            fprintf(stderr, "tripletctl %s: %s: \"%s\" is not a comma-separated list of integer labels\n", cmd, name,
                    s);
            return -1;
        }
        if (*n == CLI_MAX_LABELS) {
            fprintf(stderr, "tripletctl %s: %s: more than %d labels\n", cmd, name, CLI_MAX_LABELS);
            return -1;
        }
        out[(*n)++] = v;
        if (*end == '\0') return 0;
        p = end + 1;
    }
}
