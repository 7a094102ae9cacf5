/* main.c - tripletctl entry point: finds the subcommand in one table and runs it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    {"train", cmd_train, "train a model on a labelled data set with a triplet loss"},
    {"eval", cmd_eval, "evaluate a model: Recall@k and MAP@R over exact kNN"},
    {"index", cmd_index, "embed a data set into a gallery file for kNN search"},
    {"inspect", cmd_inspect, "validate a model file and print its layers, metadata, sha256"},
    {"embed", cmd_embed, "embed JSON-lines or CSV vectors from stdin, JSON lines to stdout"},
    {"client", cmd_client, "call a running tripletd (GET/POST a route) and print the answer"},
    {"top", cmd_top, "a running tripletd's live figures (requests/s, latency, errors), refreshed like top"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f) {
    fprintf(f, "usage: tripletctl COMMAND [options]\n"
               "       tripletctl help COMMAND | COMMAND --help\n"
               "       tripletctl --version\n\ncommands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
}

static int find(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return (int)i;
    return -1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *c = argv[1];
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(c, "--version") == 0 || strcmp(c, "version") == 0) {
        printf("tripletctl %s\n", TRIPLETCTL_VERSION);
        return 0;
    }
    if (strcmp(c, "help") == 0) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        int k = find(argv[2]);
        if (k < 0) {
            fprintf(stderr, "tripletctl: unknown command \"%s\" (see tripletctl --help)\n", argv[2]);
            return 2;
        }
        char *hargv[] = {argv[2], "--help", NULL};
        return commands[k].fn(2, hargv);
    }
    int k = find(c);
    if (k < 0) {
        fprintf(stderr, "tripletctl: unknown command \"%s\" (see tripletctl --help)\n", c);
        return 2;
    }
    return commands[k].fn(argc - 1, argv + 1);
}
