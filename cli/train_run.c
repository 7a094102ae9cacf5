/* train_run.c - `tripletctl train`'s progress display and per-epoch learning-curve evaluation. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "eval.h"
#include "train_run.h"

#define CURVE_QUERIES 2000  /* fixed test subset for the per-epoch Recall@1 */
#define CURVE_GALLERY 10000 /* fixed training subset used as its gallery */

volatile sig_atomic_t train_interrupted;
void train_on_sigint(int sig) {
    (void)sig;
    train_interrupted = 1;
}

double train_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double curve_recall(run_ctx *r) {
    evl_opts o;
    evl_result res;
    evl_opts_default(&o);
    o.threads = r->a->cfg.threads;
    o.map_at_r = 0;
    o.exclude_self = r->q == r->g;
    if (trn_embed(r->t, r->q->x, r->nq, r->eq, &r->err)) return NAN;
    if (r->q != r->g && trn_embed(r->t, r->g->x, r->ng, r->eg, &r->err)) return NAN;
    const trn_config *c = trn_get_config(r->t);
    size_t od = trn_out_dim(r->t);
    if (evl_retrieval(c->metric, r->eq, r->q->labels, r->nq, r->q == r->g ? r->eq : r->eg, r->g->labels,
                      r->q == r->g ? r->nq : r->ng, od, &o, &res, &r->err))
        return NAN;
    return res.recall_at_1;
}

static void fmt_time(double s, char *buf, size_t len) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, len, "--:--");
        return;
    }
    long v = (long)(s + 0.5);
    if (v >= 3600)
        snprintf(buf, len, "%ld:%02ld:%02ld", v / 3600, v / 60 % 60, v % 60);
    else
        snprintf(buf, len, "%ld:%02ld", v / 60, v % 60);
}

int train_on_progress(void *user, trn_event ev, const trn_stats *st) {
    run_ctx *r = user;
    double t = train_now();
    if (ev == TRN_EV_STEP) {
        int spe = st->steps_per_epoch;
        double rate = (double)(st->step - r->steps_at_start) / (t - r->t_start + 1e-9);
        int64_t left = (int64_t)r->total_epochs * spe - st->step;
        char eta[32];
        fmt_time(rate > 0 ? (double)left / rate : -1, eta, sizeof eta);
        if (r->quiet) {
        } else if (r->tty) {
            if (t - r->t_last_draw >= 0.1 || st->step_in_epoch == spe) {
                int width = 20, fill = (int)((double)st->step_in_epoch / spe * width);
                char bar[32];
                for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : i == fill ? '>' : ' ';
                bar[width] = '\0';
                char line[512];
                snprintf(
                    line, sizeof line,
                    "epoch %d/%d [%s] %d/%d %.0f steps/s ETA %s %sloss %.4f active %.2f hard/semi/easy %.2f/%.2f/%.2f",
                    st->epoch + 1, r->total_epochs, bar, st->step_in_epoch, spe, rate, eta,
                    st->collapsed ? "COLLAPSED " : "", st->loss, st->active, st->share[LOSS_CAT_HARD],
                    st->share[LOSS_CAT_SEMI_HARD], st->share[LOSS_CAT_EASY]);
                /* one terminal row, or \r cannot redraw it */
                struct winsize ws;
                if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1 && ws.ws_col < sizeof line)
                    line[ws.ws_col - 1] = '\0';
                fprintf(stderr, "\r%s\033[K", line);
                fflush(stderr);
                r->t_last_draw = t;
            }
        } else if (st->step_in_epoch % (spe >= 10 ? spe / 10 : 1) == 0 || st->step == 1) {
            fprintf(stderr,
                    "epoch %d/%d step %d/%d loss %.4f active %.3f hard %.3f semi-hard %.3f easy %.3f d_ap %.4f d_an "
                    "%.4f%s %.0f steps/s ETA %s\n",
                    st->epoch + 1, r->total_epochs, st->step_in_epoch, spe, st->loss, st->active,
                    st->share[LOSS_CAT_HARD], st->share[LOSS_CAT_SEMI_HARD], st->share[LOSS_CAT_EASY], st->mean_d_ap,
                    st->mean_d_an, st->collapsed ? " COLLAPSED" : "", rate, eta);
        }
        return train_interrupted != 0;
    }
    epoch_row row;
    memset(&row, 0, sizeof row);
    row.epoch = st->epoch;
    row.loss = st->loss;
    row.active = st->active;
    memcpy(row.share, st->share, sizeof row.share);
    row.d_ap = st->mean_d_ap;
    row.d_an = st->mean_d_an;
    row.collapsed = st->collapsed;
    row.seconds = t - r->t_epoch;
    row.recall1 = curve_recall(r);
    if (isnan(row.recall1)) {
        r->failed = 1;
        return 1;
    }
    r->t_epoch = train_now();
    if (history_add(&r->hist, &row)) {
        tr_seterr(&r->err, TR_ENOMEM, "", "out of memory");
        r->failed = 1;
        return 1;
    }
    if (!r->quiet) {
        fprintf(stderr,
                "%sepoch %d/%d done: loss %.4f active %.3f hard %.3f semi-hard %.3f easy %.3f d_ap %.4f d_an %.4f "
                "Recall@1 %.4f (%.1fs)\n",
                r->tty ? "\r\033[K" : "", st->epoch + 1, r->total_epochs, st->loss, st->active,
                st->share[LOSS_CAT_HARD], st->share[LOSS_CAT_SEMI_HARD], st->share[LOSS_CAT_EASY], st->mean_d_ap,
                st->mean_d_an, row.recall1, row.seconds);
        if (st->collapsed && !r->warned_collapse) {
            fprintf(stderr,
                    "warning: the embedding has collapsed (mean d_ap %.2g and d_an %.2g are both ~0): every input maps "
                    "to one point. "
                    "Batch-hard mining from a random start does this; use --mining semi-hard or batch-all.\n",
                    st->mean_d_ap, st->mean_d_an);
            r->warned_collapse = 1;
        }
    }
    return train_interrupted != 0;
}

/* The run's context: the learning curve's fixed query and gallery subsets
 * (test rows, or leave-one-out on training rows) and their buffers; 0 or -1. */
int train_setup_curve(run_ctx *r, trn *t, const train_args *a, const dat_set *train, const dat_set *test) {
    const trn_config *cfg = trn_get_config(t);
    size_t od = trn_out_dim(t);
    r->t = t;
    r->a = a;
    r->g = train;
    r->ng = train->n < CURVE_GALLERY ? train->n : CURVE_GALLERY;
    r->q = test ? test : train;
    r->nq = r->q->n < CURVE_QUERIES ? r->q->n : CURVE_QUERIES;
    if (r->q == r->g) r->ng = r->nq;
    r->eq = malloc(r->nq * od * sizeof(float));
    r->eg = malloc(r->ng * od * sizeof(float));
    if (r->eq == NULL || r->eg == NULL) {
        fprintf(stderr, "tripletctl train: out of memory\n");
        return -1;
    }
    r->tty = isatty(STDERR_FILENO);
    r->quiet = a->quiet;
    r->total_epochs = cfg->epochs;
    r->t_start = r->t_epoch = train_now();
    r->steps_at_start = trn_steps_done(t);
    return 0;
}
