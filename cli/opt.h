/* opt.h - command-line option helpers shared by the tripletctl subcommands; messages start "tripletctl CMD: ". */
#ifndef CLI_OPT_H
#define CLI_OPT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_LABELS 1024 /* labels in a --classes list */

/* A table-driven option parser: a subcommand lists its options once. */
typedef enum {
    CLI_OPT_STR,  /* const char * */
    CLI_OPT_INT,  /* int, any 32-bit value */
    CLI_OPT_SIZE, /* size_t in 1..hi (hi 0: no upper bound) */
    CLI_OPT_DBL,  /* double; in the open interval (lo, hi) when lo < hi */
    CLI_OPT_U64,  /* uint64_t, non-negative */
    CLI_OPT_SET,  /* int flag set to 1; takes no value */
    CLI_OPT_CLEAR /* int flag set to 0; takes no value */
} cli_opt_type;

typedef struct {
    const char *name;  /* "--model" */
    const char *alias; /* "-h", or NULL */
    cli_opt_type type;
    size_t off;       /* of the value in the caller's argument struct */
    double lo, hi;    /* CLI_OPT_SIZE: hi is the maximum; CLI_OPT_DBL: (lo, hi) */
    const char *help; /* one line for cli_opts_usage, or NULL */
} cli_opt_def;

/* Parse argv[1..] ("NAME V", "NAME=V", flags) into the struct at base.
 * seen (may be NULL) has one entry per def, set to 1 for each option given.
 * 0, or -1 after printing "tripletctl CMD: ..." (unknown option, missing or
 * superfluous value, a number that is not one or is out of range). */
int cli_opts_parse(const char *cmd, const cli_opt_def *defs, size_t n, int argc, char **argv, void *base,
                   unsigned char *seen);
/* Whether option name was given, from cli_opts_parse's seen. */
int cli_opt_seen(const cli_opt_def *defs, size_t n, const unsigned char *seen, const char *name);
/* "  NAME V   help" per option, for a generated usage. */
void cli_opts_usage(FILE *f, const cli_opt_def *defs, size_t n);

/* For hand-rolled parsers (embed's multi-value --image): the value of
 * option name at argv[*i], given as "NAME=V" or "NAME V" (then
 * *i moves past V). NULL when argv[*i] is another option; NULL with
 * *missing = 1, after printing "NAME needs a value", when V is absent. */
const char *cli_opt_value(const char *cmd, int argc, char **argv, int *i, const char *name, int *missing);
/* A positive integer, at most max when max > 0; 0, or -1 after printing
 * NAME: "V" is not ... */
int cli_parse_size(const char *cmd, const char *name, const char *v, size_t max, size_t *out);
/* A non-negative 64-bit integer (a seed); 0, or -1 after printing why. */
int cli_parse_u64(const char *cmd, const char *name, const char *v, uint64_t *out);
/* Comma-separated integer labels ("0,1,7") into out[0..CLI_MAX_LABELS);
 * *n receives the count. 0, or -1 after printing why. */
int cli_parse_labels(const char *cmd, const char *name, const char *s, int64_t *out, size_t *n);

#endif
