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

static const cli_opt_def *opt_find(const cli_opt_def *defs, size_t n, const char *name) {
    for (size_t k = 0; k < n; k++)
        if (strcmp(defs[k].name, name) == 0 || (defs[k].alias && strcmp(defs[k].alias, name) == 0)) return &defs[k];
    return NULL;
}

/* Store val into the option's field; 0, or -1 after printing why not. */
static int opt_store(const char *cmd, const cli_opt_def *o, const char *val, char *p) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case CLI_OPT_STR:
        *(const char **)p = val;
        return 0;
    case CLI_OPT_SIZE:
        return cli_parse_size(cmd, o->name, val, (size_t)o->hi, (size_t *)p);
    case CLI_OPT_U64:
        return cli_parse_u64(cmd, o->name, val, (uint64_t *)p);
    case CLI_OPT_INT: {
        long v = strtol(val, &end, 10);
        if (v < INT32_MIN || v > INT32_MAX) errno = ERANGE;
        *(int *)p = (int)v;
        break;
    }
    case CLI_OPT_DBL: {
        double v = strtod(val, &end);
        *(double *)p = v;
        if (o->lo < o->hi && *end == '\0' && !errno && !(v > o->lo && v < o->hi)) {
            fprintf(stderr, "tripletctl %s: %s: \"%s\" is not a number in (%g, %g)\n", cmd, o->name, val, o->lo, o->hi);
            return -1;
        }
        break;
    }
    default:
        return 0;
    }
    if (*val == '\0' || *end != '\0' || errno) {
        fprintf(stderr, "tripletctl %s: %s: \"%s\" is not a valid number\n", cmd, o->name, val);
        return -1;
    }
    return 0;
}

int cli_opts_parse(const char *cmd, const cli_opt_def *defs, size_t n, int argc, char **argv, void *base,
                   unsigned char *seen) {
    if (seen) memset(seen, 0, n);
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i], *val = NULL, *eq = strchr(name, '=');
        char key[64];
        if (eq && name[0] == '-' && (size_t)(eq - name) < sizeof key) {
            memcpy(key, name, (size_t)(eq - name));
            key[eq - name] = '\0';
            name = key;
            val = eq + 1;
        }
        const cli_opt_def *o = opt_find(defs, n, name);
        if (o == NULL) {
            fprintf(stderr, "tripletctl %s: unknown option \"%s\" (see --help)\n", cmd, argv[i]);
            return -1;
        }
        if (seen) seen[o - defs] = 1;
        char *p = (char *)base + o->off;
        if (o->type == CLI_OPT_SET || o->type == CLI_OPT_CLEAR) {
            if (val) {
                fprintf(stderr, "tripletctl %s: %s takes no value\n", cmd, name);
                return -1;
            }
            *(int *)p = o->type == CLI_OPT_SET;
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tripletctl %s: %s needs a value\n", cmd, name);
                return -1;
            }
            val = argv[++i];
        }
        if (opt_store(cmd, o, val, p)) return -1;
    }
    return 0;
}

int cli_opt_seen(const cli_opt_def *defs, size_t n, const unsigned char *seen, const char *name) {
    const cli_opt_def *o = opt_find(defs, n, name);
    return o != NULL && seen[o - defs];
}

void cli_opts_usage(FILE *f, const cli_opt_def *defs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (defs[i].help == NULL) continue;
        const char *arg = defs[i].type == CLI_OPT_SET || defs[i].type == CLI_OPT_CLEAR ? ""
                          : defs[i].type == CLI_OPT_STR                                ? " S"
                                                                                       : " N";
        fprintf(f, "  %s%-*s %s\n", defs[i].name, (int)(22 - strlen(defs[i].name)), arg, defs[i].help);
    }
}
