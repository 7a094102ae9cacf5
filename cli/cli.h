/* cli.h - tripletctl subcommands: each is `int cmd_xxx(int argc, char **argv)` with argv[0] the
 * subcommand name; it returns the process exit status (0 ok, 1 failure, 2 usage error). */
#ifndef CLI_H
#define CLI_H

#define TRIPLETCTL_VERSION "0.1.0"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_index(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_top(int argc, char **argv);

#endif
