/* train_run.h - `tripletctl train`'s run: the parsed options, the run's state, the progress display and the
 * per-epoch learning-curve evaluation (cli/train_run.c). */
#ifndef TRAIN_RUN_H
#define TRAIN_RUN_H

#include <signal.h>
#include <stddef.h>

#include "data.h"
#include "train.h"
#include "train_history.h"

typedef struct {
    const char *data, *out, *arch, *activation, *metric, *loss, *mining, *resume, *csv, *svg, *checkpoint, *name,
        *description, *classes, *test, *input, *augment, *lr_schedule;
    trn_config cfg;
    int quiet, help, epochs_given;
} train_args;

typedef struct {
    trn *t;
    const train_args *a;
    const dat_set *q, *g; /* curve queries and gallery (g == q: leave-one-out) */
    size_t nq, ng;
    float *eq, *eg;
    history hist;
    int tty, quiet, warned_collapse;
    double t_start, t_last_draw, t_epoch;
    int64_t steps_at_start;
    int total_epochs;
    tr_err err;
    int failed;
} run_ctx;

/* Set by SIGINT (train_on_sigint); the progress callback then asks the trainer to stop. */
extern volatile sig_atomic_t train_interrupted;
void train_on_sigint(int sig);
double train_now(void);
/* The trainer's progress callback: the bar or log lines, per-epoch rows and Recall@1 into r->hist. */
int train_on_progress(void *user, trn_event ev, const trn_stats *st);
/* The learning curve's fixed query and gallery subsets and buffers; 0, or -1 after printing why. */
int train_setup_curve(run_ctx *r, trn *t, const train_args *a, const dat_set *train, const dat_set *test);

#endif
