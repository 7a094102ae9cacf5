/* opt.h - command-line option helpers shared by the tripletctl subcommands; messages start "tripletctl CMD: ". */
#ifndef CLI_OPT_H
#define CLI_OPT_H

#include <stddef.h>
#include <stdint.h>

#define CLI_MAX_LABELS 1024 /* labels in a --classes list */

/* The value of option name at argv[*i], given as "NAME=V" or "NAME V" (then
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
