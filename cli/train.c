/* train.c - `tripletctl train`: train an embedding MLP with triplet mining on OpenBLAS. */
#include <cblas.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "data.h"
#include "eval.h"
#include "mlp.h"
#include "onnx_write.h"
#include "opt.h"
#include "train.h"
#include "train_history.h"
#include "train_run.h"

#define A(f) offsetof(train_args, f)
#define C(f) (offsetof(train_args, cfg) + offsetof(trn_config, f))
static const cli_opt_def opts[] = {
    {"--data", NULL, CLI_OPT_STR, A(data), 0, 0,
     "dataset: IDX dir/prefix, .csv or .jsonl (default: Fashion-MNIST, found)"},
    {"--test", NULL, CLI_OPT_STR, A(test), 0, 0, "held-out data for the learning curve (default: the IDX test split)"},
    {"--out", NULL, CLI_OPT_STR, A(out), 0, 0, "model file to write (required)"},
    {"--arch", NULL, CLI_OPT_STR, A(arch), 0, 0,
     "MLP widths, input first (default 784-256-128), or a layer list (README)"},
    {"--input", NULL, CLI_OPT_STR, A(input), 0, 0,
     "a layer list's input CxHxW, e.g. 1x28x28 (default: from IDX images)"},
    {"--activation", NULL, CLI_OPT_STR, A(activation), 0, 0, "MLP: relu|gelu|tanh|sigmoid|identity (default relu)"},
    {"--normalize", NULL, CLI_OPT_SET, C(normalize), 0, 0, "L2-normalise the embeddings (default)"},
    {"--no-normalize", NULL, CLI_OPT_CLEAR, C(normalize), 0, 0, "do not normalise"},
    {"--metric", NULL, CLI_OPT_STR, A(metric), 0, 0, "sqeuclidean|euclidean|cosine|dot (default sqeuclidean)"},
    {"--margin", NULL, CLI_OPT_DBL, C(margin), 0, 0, "margin (default 0.2)"},
    {"--loss", NULL, CLI_OPT_STR, A(loss), 0, 0,
     "triplet|triplet-soft|contrastive|contrastive-squared (default triplet)"},
    {"--mining", NULL, CLI_OPT_STR, A(mining), 0, 0, "batch-hard|semi-hard|batch-all (default semi-hard)"},
    {"--classes-per-batch", NULL, CLI_OPT_INT, C(classes_per_batch), 0, 0, "P classes per batch (default 10)"},
    {"--samples-per-class", NULL, CLI_OPT_INT, C(samples_per_class), 0, 0, "K samples per class (default 16)"},
    {"--epochs", NULL, CLI_OPT_INT, C(epochs), 0, 0, "epochs (default 10)"},
    {"--steps-per-epoch", NULL, CLI_OPT_INT, C(steps_per_epoch), 0, 0, "batches per epoch (default rows / (P*K))"},
    {"--lr", NULL, CLI_OPT_DBL, C(lr), 0, 0, "Adam learning rate (default 1e-3)"},
    {"--weight-decay", NULL, CLI_OPT_DBL, C(weight_decay), 0, 0, "Adam L2 weight decay on every parameter (default 0)"},
    {"--lr-schedule", NULL, CLI_OPT_STR, A(lr_schedule), 0, 0,
     "constant|cosine|step[:EVERY[:GAMMA]] (default constant)"},
    {"--augment", NULL, CLI_OPT_STR, A(augment), 0, 0,
     "images: crop<P>,flip (random crop after P-pixel zero padding; flips)"},
    {"--seed", NULL, CLI_OPT_U64, C(seed), 0, 0, "PRNG seed (default 1)"},
    {"--threads", NULL, CLI_OPT_INT, C(threads), 0, 0, "threads (default 1)"},
    {"--input-scale", NULL, CLI_OPT_DBL, C(input_scale), 0, 0,
     "x' = x * scale (default 1/255 for IDX bytes, else 1/max|x|)"},
    {"--classes", NULL, CLI_OPT_STR, A(classes), 0, 0,
     "train on these labels only, e.g. 0,1,2,3,4,5,6,7 (open-set runs)"},
    {"--resume", NULL, CLI_OPT_STR, A(resume), 0, 0,
     "continue from a checkpoint (its recipe wins; --epochs may extend it)"},
    {"--checkpoint", NULL, CLI_OPT_STR, A(checkpoint), 0, 0, "where Ctrl-C saves a checkpoint (default OUT.ckpt)"},
    {"--csv", NULL, CLI_OPT_STR, A(csv), 0, 0, "write per-epoch metrics as CSV at the end"},
    {"--svg", NULL, CLI_OPT_STR, A(svg), 0, 0, "write the learning curve (loss, Recall@1 per epoch) as SVG at the end"},
    {"--name", NULL, CLI_OPT_STR, A(name), 0, 0, "model name in the metadata"},
    {"--description", NULL, CLI_OPT_STR, A(description), 0, 0, "model description in the metadata"},
    {"--quiet", "-q", CLI_OPT_SET, A(quiet), 0, 0, "no progress output"},
    {"--help", "-h", CLI_OPT_SET, A(help), 0, 0, "this help"},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

static void usage(FILE *f) {
    fprintf(f, "usage: tripletctl train --out MODEL [options]\n\n");
    cli_opts_usage(f, opts, N_OPTS);
    fprintf(f, "\nCtrl-C saves a checkpoint; --resume CKPT continues from it.\n");
}

static int parse_args(int argc, char **argv, train_args *a) {
    unsigned char seen[N_OPTS];
    if (cli_opts_parse("train", opts, N_OPTS, argc, argv, a, seen)) return -1;
    a->epochs_given = cli_opt_seen(opts, N_OPTS, seen, "--epochs");
    return 0;
}

/* Resolve the string options into the config. */
static int resolve_config(train_args *a) {
    tr_err err;
    const char *bad = NULL, *what = NULL;
    if (a->arch && trn_parse_arch(a->arch, &a->cfg, &err)) {
        fprintf(stderr, "tripletctl train: --arch: %s\n", err.msg);
        return -1;
    }
    if (a->augment && trn_parse_augment(a->augment, &a->cfg, &err)) {
        fprintf(stderr, "tripletctl train: --augment: %s\n", err.msg);
        return -1;
    }
    if (a->lr_schedule && trn_parse_lr_schedule(a->lr_schedule, &a->cfg, &err)) {
        fprintf(stderr, "tripletctl train: --lr-schedule: %s\n", err.msg);
        return -1;
    }
    if (a->input && trn_parse_shape(a->input, &a->cfg.input_c, &a->cfg.input_h, &a->cfg.input_w)) {
        fprintf(stderr, "tripletctl train: --input: \"%s\" is not CxHxW (e.g. 1x28x28)\n", a->input);
        return -1;
    }
    if (a->activation && mdl_act_parse(a->activation, &a->cfg.act)) bad = a->activation, what = "--activation";
    if (a->metric && dist_parse(a->metric, &a->cfg.metric)) bad = a->metric, what = "--metric";
    if (a->loss && loss_parse(a->loss, &a->cfg.loss)) bad = a->loss, what = "--loss";
    if (a->mining && mine_parse(a->mining, &a->cfg.mining)) bad = a->mining, what = "--mining";
    if (bad) {
        fprintf(stderr, "tripletctl train: %s: unknown value \"%s\" (see --help)\n", what, bad);
        return -1;
    }
    if (trn_config_check(&a->cfg, &err)) {
        fprintf(stderr, "tripletctl train: --%s: %s\n", err.field, err.msg);
        return -1;
    }
    return 0;
}

/* ---- the run ---- */

/* The last two components of a path ("fashion-mnist/train-images-idx3-ubyte.gz"):
 * enough to name the data without recording where this machine keeps it. */
static const char *short_source(const char *s) {
    const char *last = strrchr(s, '/');
    if (last == NULL) return s;
    const char *p = last;
    while (p > s && p[-1] != '/') p--;
    return p;
}

/* A layer list as ONNX: the parameters, BN statistics, the `image` preprocessing and the metadata pairs
 * (extra: n_extra more); 0, or -1 after printing why. */
static int save_onnx(const run_ctx *r, const char *name, const char *description, const char *const *extra,
                     size_t n_extra) {
    const trn_config *c = trn_get_config(r->t);
    tr_err err;
    mdl_image img;
    char margin[32];
    const char *meta[64];
    size_t n = 0;
    snprintf(margin, sizeof margin, "%.17g", c->margin);
    const char *common[] = {"name",        name,
                            "description", description,
                            "normalize",   c->normalize ? "true" : "false",
                            "metric",      dist_name(c->metric),
                            "loss",        loss_name(c->loss),
                            "margin",      margin};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) meta[n++] = common[i];
    for (size_t i = 0; i < 2 * n_extra && n < sizeof meta / sizeof meta[0]; i++) meta[n++] = extra[i];
    if (trn_image(r->t, &img, &err) ||
        onx_write(r->a->out, trn_arch(r->t), trn_params(r->t, NULL), trn_state(r->t, NULL), &img, meta, n / 2, &err)) {
        fprintf(stderr, "tripletctl train: cannot write %s: %s\n", r->a->out, err.msg);
        return -1;
    }
    return 0;
}

/* The trained network: the MLP form as safetensors (mdl_save), a layer list as ONNX; 0, or -1 after printing why. */
static int save_model(const run_ctx *r, const dat_set *train) {
    const train_args *a = r->a;
    const trn_config *c = trn_get_config(r->t);
    int layers = trn_is_layers(r->t);
    mdl_model *m = NULL;
    tr_err err;
    char recipe[2048], arch[TRN_LAYERS_MAX], steps[32], r1[32], epochs[32], seed[32], desc[512], input[48];
    trn_recipe(c, recipe, sizeof recipe);
    trn_format_arch(c, arch, sizeof arch);
    const char *name = a->name ? a->name : layers ? "triplet-cnn" : "triplet-mlp";
    if (a->description)
        snprintf(desc, sizeof desc, "%s", a->description);
    else
        snprintf(desc, sizeof desc, "%s %.160s embedding trained with %s loss (%s mining) on %.120s; takes raw %s",
                 layers ? "network" : "MLP", arch, loss_name(c->loss), mine_name(c->mining),
                 short_source(train->source),
                 layers ? "pixels (preprocessing in the image metadata)"
                        : "inputs (preprocessing in input.mean/input.scale)");
    snprintf(steps, sizeof steps, "%" PRId64, trn_steps_done(r->t));
    snprintf(epochs, sizeof epochs, "%d", trn_epochs_done(r->t));
    snprintf(seed, sizeof seed, "%" PRIu64, c->seed);
    snprintf(r1, sizeof r1, "%.4f", r->hist.n ? r->hist.rows[r->hist.n - 1].recall1 : NAN);
    snprintf(input, sizeof input, "%dx%dx%d", c->input_c, c->input_h, c->input_w);
    const char *extra[] = {"recipe", recipe, "mining", mine_name(c->mining), "training.data",
                           short_source(train->source), "training.epochs", epochs, "training.steps", steps,
                           "training.curve_recall_at_1", r1, "seed", seed,
                           /* a layer list's own: what tripletctl eval rebuilds the untrained network from */
                           "training.arch", arch, "training.input", input};
    size_t n_extra = sizeof extra / sizeof extra[0] / 2;
    if (layers) return save_onnx(r, name, desc, extra, n_extra);
    if (trn_export(r->t, &m, &err)) {
        fprintf(stderr, "tripletctl train: cannot build the model: %s\n", err.msg);
        return -1;
    }
    snprintf(m->name, sizeof m->name, "%s", name);
    snprintf(m->description, sizeof m->description, "%s", desc);
    int rc = mdl_save(m, a->out, extra, n_extra - 2, &err); /* an MLP file carries its layout itself */
    if (rc) fprintf(stderr, "tripletctl train: cannot write %s: %s\n", a->out, err.msg);
    mdl_free(m);
    return rc ? -1 : 0;
}

/* The training data and the learning curve's held-out data (--test, the IDX
 * test split, or none: leave-one-out on training rows), both restricted to
 * --classes; 0, or -1 after printing why. */
static int load_data(train_args *a, const int64_t *classes, size_t n_classes, char *data_path, size_t cap,
                     dat_set **trainp, dat_set **testp) {
    dat_set *train = NULL, *test = NULL, *tmp = NULL;
    tr_err err;
    if (a->data == NULL) {
        if (dat_find_default(getenv("TRIPLET_DATA"), data_path, cap, &err)) {
            fprintf(stderr, "tripletctl train: %s\n", err.msg);
            return -1;
        }
        a->data = data_path;
    }
    dat_opts dopt;
    dat_opts_default(&dopt);
    if (dat_load(a->data, &dopt, &train, &err)) {
        fprintf(stderr, "tripletctl train: --data: %s\n", err.msg);
        return -1;
    }
    if (a->test) {
        if (dat_load(a->test, &dopt, &test, &err)) {
            fprintf(stderr, "tripletctl train: --test: %s\n", err.msg);
            goto fail;
        }
    } else {
        dopt.split = "test";
        if (dat_load(a->data, &dopt, &test, &err))
            test = NULL; /* no test split: leave-one-out curve on training rows */
    }
    if (test && test->dim != train->dim) {
        fprintf(stderr, "tripletctl train: test data has %zu features, training data %zu\n", test->dim, train->dim);
        goto fail;
    }
    if (n_classes) {
        if (dat_filter_classes(train, classes, n_classes, 1, &tmp, &err)) {
            fprintf(stderr, "tripletctl train: --classes: %s\n", err.msg);
            goto fail;
        }
        dat_free(train);
        train = tmp;
        tmp = NULL;
        if (test) {
            if (dat_filter_classes(test, classes, n_classes, 1, &tmp, &err))
                tmp = NULL; /* no such rows: no held-out curve */
            dat_free(test);
            test = tmp;
        }
    }
    *trainp = train;
    *testp = test;
    return 0;
fail:
    dat_free(train);
    dat_free(test);
    return -1;
}

/* A layer list's input shape: --input, else an IDX image's 1 x height x width; then the whole config is
 * checked. 0, or -1 after printing why. */
static int resolve_input(train_args *a, const dat_set *train) {
    trn_config *c = &a->cfg;
    tr_err err;
    if (c->layers[0] && c->input_c == 0) {
        if (train->height > 0 && train->width > 0 && (size_t)train->height * (size_t)train->width == train->dim) {
            c->input_c = 1;
            c->input_h = train->height;
            c->input_w = train->width;
        } else {
            fprintf(stderr, "tripletctl train: --input CxHxW is needed: the data (%zu features) are not IDX images\n",
                    train->dim);
            return -1;
        }
    }
    if (c->layers[0] && (size_t)c->input_c * (size_t)c->input_h * (size_t)c->input_w != train->dim) {
        fprintf(stderr, "tripletctl train: --input %dx%dx%d has %zu values, the data rows %zu\n", c->input_c,
                c->input_h, c->input_w, (size_t)c->input_c * (size_t)c->input_h * (size_t)c->input_w, train->dim);
        return -1;
    }
    if (trn_config_check(c, &err)) {
        fprintf(stderr, "tripletctl train: --%s: %s\n", err.field, err.msg);
        return -1;
    }
    return 0;
}

/* Ctrl-C: save a checkpoint (the epoch history as its note) and say how to resume; 0 or -1. */
static int save_on_interrupt(run_ctx *r) {
    const train_args *a = r->a;
    char ckpt[1100];
    tr_err err;
    char *hist = history_csv(&r->hist);
    if (a->checkpoint)
        snprintf(ckpt, sizeof ckpt, "%s", a->checkpoint);
    else
        snprintf(ckpt, sizeof ckpt, "%s.ckpt", a->out);
    int sr = hist ? trn_checkpoint_save(r->t, ckpt, hist, &err) : tr_seterr(&err, TR_ENOMEM, "", "out of memory");
    free(hist);
    if (sr) {
        fprintf(stderr, "\ntripletctl train: interrupted, and saving the checkpoint failed: %s\n", err.msg);
        return -1;
    }
    fprintf(stderr,
            "\ninterrupted at epoch %d, step %" PRId64
            "; checkpoint saved to %s\nresume with: tripletctl train --resume %s --out %s\n",
            trn_epochs_done(r->t) + 1, trn_steps_done(r->t), ckpt, ckpt, a->out);
    return 0;
}

/* --csv and --svg; 0, or -1 after printing why. */
static int write_history(const train_args *a, const history *h, const trn_config *cfg) {
    if (a->csv) {
        char *csv = history_csv(h);
        int bad = csv == NULL || history_write_text(a->csv, csv);
        free(csv);
        if (bad) return -1;
    }
    if (a->svg) {
        char title[1024], arch[TRN_LAYERS_MAX];
        trn_format_arch(cfg, arch, sizeof arch);
        snprintf(title, sizeof title, "%s: %s %s, %s loss, %s mining, %s", a->name ? a->name : "learning curve",
                 cfg->layers[0] ? "network" : "MLP", arch, loss_name(cfg->loss), mine_name(cfg->mining),
                 dist_name(cfg->metric));
        if (history_write_svg(a->svg, h, title)) return -1;
    }
    return 0;
}

/* --resume: the checkpoint's config (--epochs may extend it); 0, or 1 after printing why. */
static int resume_config(train_args *a) {
    tr_err err;
    int epochs = a->cfg.epochs;
    if (trn_checkpoint_config(a->resume, &a->cfg, &err)) {
        fprintf(stderr, "tripletctl train: --resume %s: %s\n", a->resume, err.msg);
        return 1;
    }
    if (a->epochs_given) a->cfg.epochs = epochs;
    return 0;
}

/* --resume: the checkpoint's weights and state, and the epoch history saved as its note; 0 or -1. */
static int resume(trn *t, const train_args *a, history *h) {
    tr_err err;
    char *note = NULL;
    int rc = -1;
    if (trn_checkpoint_load(t, a->resume, &note, &err))
        fprintf(stderr, "tripletctl train: --resume %s: %s\n", a->resume, err.msg);
    else if (history_parse(h, note))
        fprintf(stderr, "tripletctl train: --resume %s: the saved epoch history is malformed\n", a->resume);
    else
        rc = 0;
    free(note);
    if (rc == 0 && a->epochs_given) trn_set_epochs(t, a->cfg.epochs);
    return rc;
}

/* Train with Ctrl-C caught (a checkpoint is saved then), then write the
 * model and the history: 0, 1 on failure, 130 when interrupted. */
static int run_and_save(run_ctx *r, trn *t, train_args *a, dat_set *train) {
    const trn_config *cfg = trn_get_config(t);
    struct sigaction sa, old_sa;
    tr_err err;
    int rc = 1, stopped = 0;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = train_on_sigint;
    sigemptyset(&sa.sa_mask);
    int sig_installed = sigaction(SIGINT, &sa, &old_sa) == 0;
    if (!a->quiet) {
        char recipe[2048];
        trn_recipe(cfg, recipe, sizeof recipe);
        fprintf(stderr, "training on %s: %zu rows x %zu features%s\n%s\n", short_source(train->source), train->n,
                train->dim, a->resume ? " (resumed)" : "", recipe);
        if (a->resume)
            fprintf(stderr, "resuming at epoch %d, step %" PRId64 "\n", trn_epochs_done(t) + 1, trn_steps_done(t));
    }
    if (trn_run(t, train_on_progress, r, &stopped, &err)) {
        fprintf(stderr, "\ntripletctl train: %s\n", err.msg);
        goto done;
    }
    if (r->failed) {
        fprintf(stderr, "\ntripletctl train: learning-curve evaluation failed: %s\n", r->err.msg);
        goto done;
    }
    if (stopped) {
        rc = save_on_interrupt(r) ? 1 : 130;
        goto done;
    }
    if (save_model(r, train) || write_history(a, &r->hist, cfg)) goto done;
    if (!a->quiet)
        fprintf(stderr, "wrote %s (%d epochs, %" PRId64 " steps, %.1fs)\n", a->out, trn_epochs_done(t),
                trn_steps_done(t), train_now() - r->t_start);
    rc = 0;
done:
    if (sig_installed) sigaction(SIGINT, &old_sa, NULL);
    return rc;
}

int cmd_train(int argc, char **argv) {
    train_args a;
    memset(&a, 0, sizeof a);
    trn_config_default(&a.cfg);
    dat_set *train = NULL, *test = NULL;
    trn *t = NULL;
    char data_path[1024];
    int rc = 1;
    int64_t classes[CLI_MAX_LABELS];
    size_t n_classes = 0;
    tr_err err;
    run_ctx r;
    memset(&r, 0, sizeof r);

    if (parse_args(argc, argv, &a)) return 2;
    if (a.help) {
        usage(stdout);
        return 0;
    }
    if (a.out == NULL) {
        fprintf(stderr, "tripletctl train: --out MODEL is required (see --help)\n");
        return 2;
    }
    if (a.classes && cli_parse_labels("train", "--classes", a.classes, classes, &n_classes)) return 2;
    if ((rc = a.resume ? resume_config(&a) : resolve_config(&a) ? 2 : 0)) return rc;
    rc = 1;

    if (load_data(&a, classes, n_classes, data_path, sizeof data_path, &train, &test)) goto done;
    if (resolve_input(&a, train)) goto done;
    if (!a.resume && !a.cfg.layers[0] && a.cfg.input_scale == 0 && train->raw_max > 0)
        a.cfg.input_scale = 1.0 / train->raw_max;

    /* process-wide, and the library leaves it to us: a layer list and the evaluation run their GEMMs on their own
     * threads, each GEMM on one; the MLP form's few large GEMMs run on OpenBLAS's */
    openblas_set_num_threads(a.cfg.layers[0] ? 1 : a.cfg.threads);
    if (trn_new(&a.cfg, train->x, train->labels, train->n, train->dim, &t, &err)) {
        fprintf(stderr, "tripletctl train: %s\n", err.msg);
        goto done;
    }
    if (a.resume && resume(t, &a, &r.hist)) goto done;

    if (train_setup_curve(&r, t, &a, train, test)) goto done;
    rc = run_and_save(&r, t, &a, train);
done:
    free(r.eq);
    free(r.eg);
    free(r.hist.rows);
    trn_free(t);
    dat_free(train);
    dat_free(test);
    return rc;
}
