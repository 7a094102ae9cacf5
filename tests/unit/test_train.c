/* test_train.c - trainer: gradients (finite differences, PyTorch), determinism, convergence, resume. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cblas.h>
#include <cmocka.h>

#include "../golden/golden_train.h"
#include "../tmpdir.h"
#include "grad.h"
#include "mine.h"
#include "ref_loss.h"
#include "train.h"

static const char *const LOSSES[] = {"triplet", "triplet-soft", "contrastive", "contrastive-squared"};
static const char *const METRICS[] = {"sqeuclidean", "euclidean", "cosine", "dot"};
static const char *const MININGS[] = {"batch-hard", "semi-hard", "batch-all"};

static void golden_config(trn_config *c, const char *loss, const char *metric, int normalize, const char *mining) {
    tr_err err;
    trn_config_default(c);
    assert_int_equal(trn_parse_arch(GT_ARCH, c, &err), TR_OK);
    assert_int_equal(loss_parse(loss, &c->loss), 0);
    assert_int_equal(dist_parse(metric, &c->metric), 0);
    assert_int_equal(mine_parse(mining, &c->mining), 0);
    c->normalize = normalize;
    c->margin = GT_MARGIN;
    c->classes_per_batch = GT_P;
    c->samples_per_class = GT_K;
    c->input_scale = 1.0;
    c->seed = 7;
}

/* ---- an independent float64 reference of the MLP's batch loss ---- */

static double ref_act(mdl_act a, double z) {
    switch (a) {
    case MDL_ACT_RELU:
        return z > 0 ? z : 0;
    case MDL_ACT_GELU:
        return 0.5 * z * (1 + erf(z / sqrt(2.0)));
    case MDL_ACT_TANH:
        return tanh(z);
    case MDL_ACT_SIGMOID:
        return 1 / (1 + exp(-z));
    default:
        return z;
    }
}

static double ref_loss(const trn_config *c, const double *w, const float *x, const int64_t *labels, size_t n) {
    size_t maxd = 0;
    for (int l = 0; l <= c->n_layers; l++)
        if ((size_t)c->dims[l] > maxd) maxd = (size_t)c->dims[l];
    double *h = calloc(n * maxd, sizeof *h), *o = calloc(n * maxd, sizeof *o);
    assert_non_null(h);
    assert_non_null(o);
    for (size_t i = 0; i < n * (size_t)c->dims[0]; i++) h[i] = x[i];
    size_t off = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t in = (size_t)c->dims[l], out = (size_t)c->dims[l + 1];
        const double *W = w + off, *b = w + off + in * out;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < out; j++) {
                double s = b[j];
                for (size_t k = 0; k < in; k++) s += W[j * in + k] * h[i * in + k];
                o[i * out + j] = l + 1 < c->n_layers ? ref_act(c->act, s) : s;
            }
        off += in * out + out;
        double *tmp = h;
        h = o;
        o = tmp;
    }
    double loss = ref_embedding_loss(c, h, n, (size_t)c->dims[c->n_layers], labels);
    free(h);
    free(o);
    return loss;
}

static void test_fd_every_combination(void **state) {
    (void)state;
    for (size_t li = 0; li < 4; li++)
        for (size_t mi = 0; mi < 4; mi++)
            for (int norm = 0; norm <= 1; norm++)
                for (size_t si = 0; si < (li < 2 ? 3u : 1u); si++) {
                    trn_config c;
                    golden_config(&c, LOSSES[li], METRICS[mi], norm, MININGS[si]);
                    check_fd(&c, ref_loss, gt_x, gt_labels, GT_N, GT_DIM, gt_w);
                }
}

static void test_fd_activations(void **state) {
    (void)state;
    static const mdl_act acts[] = {MDL_ACT_GELU, MDL_ACT_TANH, MDL_ACT_SIGMOID, MDL_ACT_IDENTITY};
    for (size_t i = 0; i < 4; i++) {
        trn_config c;
        golden_config(&c, "triplet-soft", "euclidean", 1, "batch-all");
        c.act = acts[i];
        check_fd(&c, ref_loss, gt_x, gt_labels, GT_N, GT_DIM, gt_w);
    }
    /* three layers, and the trainer's own seeded initial weights */
    trn_config c;
    tr_err err;
    golden_config(&c, "triplet", "sqeuclidean", 0, "batch-all");
    assert_int_equal(trn_parse_arch("6-7-5-3", &c, &err), TR_OK);
    check_fd(&c, ref_loss, gt_x, gt_labels, GT_N, GT_DIM, NULL);
}

static void test_golden_pytorch(void **state) {
    (void)state;
    size_t nc = sizeof golden_train_cases / sizeof golden_train_cases[0];
    assert_int_equal(nc, 80);
    for (size_t k = 0; k < nc; k++) {
        const golden_train_case *gc = &golden_train_cases[k];
        trn_config c;
        trn *t = NULL;
        tr_err err;
        trn_stats st;
        golden_config(&c, gc->loss, gc->metric, gc->normalize, gc->mining);
        assert_int_equal(trn_new(&c, gt_x, gt_labels, GT_N, GT_DIM, &t, &err), TR_OK);
        size_t np;
        float *w = trn_params(t, &np);
        assert_int_equal(np, GT_NPARAMS);
        memcpy(w, gt_w, sizeof gt_w);
        assert_int_equal(trn_loss_grad(t, gt_x, gt_labels, GT_N, &st, &err), TR_OK);
        if (fabs(st.loss - gc->loss_value) > 1e-5 * (1 + fabs(gc->loss_value))) {
            print_error("case %zu %s/%s/%d/%s: loss %.9g, torch %.9g\n", k, gc->loss, gc->metric, gc->normalize,
                        gc->mining, st.loss, gc->loss_value);
            fail();
        }
        const float *g = trn_grads(t);
        for (size_t i = 0; i < np; i++)
            if (fabs(g[i] - gc->grad[i]) > 1e-5 + 1e-4 * fabs(gc->grad[i])) {
                print_error("case %zu %s/%s/%d/%s: grad[%zu] %.9g, torch %.9g\n", k, gc->loss, gc->metric,
                            gc->normalize, gc->mining, i, (double)g[i], gc->grad[i]);
                fail();
            }
        trn_free(t);
    }
}

static void test_adam_pytorch(void **state) {
    (void)state;
    trn_config c;
    trn *t = NULL;
    tr_err err;
    trn_stats st;
    golden_config(&c, "triplet", "sqeuclidean", 1, "batch-all");
    c.lr = 1e-2;
    c.weight_decay = 0.01;
    assert_int_equal(trn_new(&c, gt_x, gt_labels, GT_N, GT_DIM, &t, &err), TR_OK);
    size_t np;
    float *w = trn_params(t, &np);
    memcpy(w, gt_w, sizeof gt_w);
    for (int k = 0; k < 3; k++) assert_int_equal(trn_step_batch(t, gt_x, gt_labels, GT_N, &st, &err), TR_OK);
    assert_int_equal(st.step, 3);
    double moved = 0;
    for (size_t i = 0; i < np; i++) {
        moved += fabs(w[i] - gt_w[i]);
        if (fabs(w[i] - gt_adam_w3[i]) > 2e-5) {
            print_error("param %zu after 3 Adam steps: %.9g, torch.optim.Adam %.9g\n", i, (double)w[i], gt_adam_w3[i]);
            fail();
        }
    }
    assert_true(moved > 0.1); /* the steps did move the weights */
    trn_free(t);
}

static void test_grad_edges(void **state) {
    (void)state;
    /* euclidean at distance 0 and cosine with a zero row: finite, zero gradients */
    double E[3 * 2] = {1, 2, 1, 2, 0, 0}, D[9], G[9] = {0, 1, 1, 1, 0, 1, 1, 1, 0}, dE[6], work[9 + 6 + 3];
    tr_err err;
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++) D[i * 3 + j] = ref_dist(DIST_EUCLIDEAN, E + 2 * i, E + 2 * j, 2);
    assert_int_equal(grd_dist_backward(DIST_EUCLIDEAN, E, 3, 2, D, G, dE, work, &err), TR_OK);
    for (int i = 0; i < 6; i++) assert_true(isfinite(dE[i]));
    /* rows 0 and 1 coincide: only the pairs with row 2 move them, away from row 2's... towards increasing D */
    assert_true(fabs(dE[0] - dE[2]) < 1e-12);
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 3; j++) D[i * 3 + j] = ref_dist(DIST_COSINE, E + 2 * i, E + 2 * j, 2);
    assert_int_equal(grd_dist_backward(DIST_COSINE, E, 3, 2, D, G, dE, NULL, &err), TR_OK);
    assert_true(dE[4] == 0 && dE[5] == 0);
    for (int i = 0; i < 6; i++) assert_true(isfinite(dE[i]));
    /* normalisation of a zero row follows torch: gradient / eps */
    double x[2] = {0, 0}, g[2] = {1e-13, -2e-13};
    grd_l2norm_backward(x, 1, 2, g);
    assert_true(fabs(g[0] - 0.1) < 1e-12 && fabs(g[1] + 0.2) < 1e-12);
    double L = 0;
    int64_t lab[3] = {0, 0, 1};
    assert_int_equal(grd_pairs(LOSS_TRIPLET, D, lab, 3, 0.2, G, &L, NULL, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "not a pair loss"));
}

/* ---- synthetic clustered data ---- */

typedef struct {
    float *x;
    int64_t *y;
    size_t n, dim;
} synth;

static synth make_synth(size_t classes, size_t per, size_t dim, uint64_t seed) {
    synth s = {malloc(classes * per * dim * sizeof(float)), malloc(classes * per * sizeof(int64_t)), classes * per,
               dim};
    assert_non_null(s.x);
    assert_non_null(s.y);
    uint64_t r = seed;
#define NEXTU() ((r = r * 6364136223846793005ull + 1442695040888963407ull) >> 11) * (1.0 / 9007199254740992.0)
    double *centre = malloc(classes * dim * sizeof *centre);
    assert_non_null(centre);
    for (size_t i = 0; i < classes * dim; i++) centre[i] = 4 * NEXTU();
    for (size_t i = 0; i < s.n; i++) {
        s.y[i] = (int64_t)(i % classes) * 3 + 1; /* non-contiguous labels */
        for (size_t d = 0; d < dim; d++) {
            double g = 0;
            for (int k = 0; k < 4; k++) g += NEXTU() - 0.5; /* ~ N(0, 1/3) */
            s.x[i * dim + d] = (float)(128 + 20 * (centre[(i % classes) * dim + d] + 1.5 * g));
        }
    }
#undef NEXTU
    free(centre);
    return s;
}

static void synth_free(synth *s) {
    free(s->x);
    free(s->y);
}

static void synth_config(trn_config *c, const synth *s) {
    tr_err err;
    char arch[64];
    trn_config_default(c);
    snprintf(arch, sizeof arch, "%zu-16-8", s->dim);
    assert_int_equal(trn_parse_arch(arch, c, &err), TR_OK);
    c->classes_per_batch = 4;
    c->samples_per_class = 6;
    c->epochs = 3;
    c->steps_per_epoch = 5;
    c->lr = 3e-3;
    c->seed = 42;
}

static void test_determinism(void **state) {
    (void)state;
    synth s = make_synth(6, 30, 12, 1);
    trn_config c;
    synth_config(&c, &s);
    trn *a = NULL, *b = NULL, *d = NULL;
    tr_err err;
    assert_int_equal(trn_new(&c, s.x, s.y, s.n, s.dim, &a, &err), TR_OK);
    assert_int_equal(trn_new(&c, s.x, s.y, s.n, s.dim, &b, &err), TR_OK);
    c.seed = 43;
    assert_int_equal(trn_new(&c, s.x, s.y, s.n, s.dim, &d, &err), TR_OK);
    assert_int_equal(trn_run(a, NULL, NULL, NULL, &err), TR_OK);
    assert_int_equal(trn_run(b, NULL, NULL, NULL, &err), TR_OK);
    assert_int_equal(trn_run(d, NULL, NULL, NULL, &err), TR_OK);
    assert_int_equal(trn_steps_done(a), 15);
    assert_true(trn_done(a));
    size_t np;
    float *wa = trn_params(a, &np), *wb = trn_params(b, NULL), *wd = trn_params(d, NULL);
    assert_memory_equal(wa, wb, np * sizeof(float));
    assert_memory_not_equal(wa, wd, np * sizeof(float));
    /* the initial weights follow torch.nn.Linear's bound 1/sqrt(fan_in) */
    trn *e = NULL;
    assert_int_equal(trn_new(&c, s.x, s.y, s.n, s.dim, &e, &err), TR_OK);
    float *we = trn_params(e, NULL), mx = 0;
    for (size_t i = 0; i < 12 * 16; i++) mx = fabsf(we[i]) > mx ? fabsf(we[i]) : mx;
    assert_true(mx <= 1 / sqrtf(12) && mx > 0.9f / sqrtf(12));
    /* the untrained-baseline model has exactly these initial weights */
    mdl_model *m0 = NULL;
    assert_int_equal(trn_init_model(&c, &m0, &err), TR_OK);
    assert_memory_equal(mdl_mlp(m0)->layers[0].w, we, 12 * 16 * sizeof(float));
    assert_memory_equal(mdl_mlp(m0)->layers[1].b, we + 12 * 16 + 16 + 16 * 8, 8 * sizeof(float));
    assert_true(mdl_mlp(m0)->in_scale[0] == 1.0f && m0->normalize == 1);
    mdl_free(m0);
    /* input scale resolved from the data (max |x|) */
    assert_true(trn_input_scale(e) > 0 && trn_input_scale(e) < 1.0 / 128);
    trn_free(a);
    trn_free(b);
    trn_free(d);
    trn_free(e);
    synth_free(&s);
}

typedef struct {
    double epoch_loss[64];
    int n_epochs, n_steps, stop_at;
} progress_log;

static int on_progress(void *user, trn_event ev, const trn_stats *st) {
    progress_log *p = user;
    if (ev == TRN_EV_EPOCH) {
        p->epoch_loss[p->n_epochs++] = st->loss;
        assert_int_equal(st->step_in_epoch, st->steps_per_epoch);
        return 0;
    }
    p->n_steps++;
    assert_true(st->share[LOSS_CAT_EASY] + st->share[LOSS_CAT_SEMI_HARD] + st->share[LOSS_CAT_HARD] > 0.999);
    assert_true(st->active >= 0 && st->active <= 1);
    return p->stop_at && p->n_steps == p->stop_at;
}

static void test_loss_decreases(void **state) {
    (void)state;
    synth s = make_synth(6, 40, 16, 2);
    trn_config c;
    synth_config(&c, &s);
    c.epochs = 8;
    c.steps_per_epoch = 20;
    for (int k = 0; k < 3; k++) {
        trn *t = NULL;
        tr_err err;
        progress_log p = {{0}, 0, 0, 0};
        c.loss = k == 0 ? LOSS_TRIPLET : k == 1 ? LOSS_TRIPLET_SOFT : LOSS_CONTRASTIVE;
        c.mining = k == 0 ? MINE_SEMI_HARD : MINE_BATCH_ALL;
        assert_int_equal(trn_new(&c, s.x, s.y, s.n, s.dim, &t, &err), TR_OK);
        assert_int_equal(trn_run(t, on_progress, &p, NULL, &err), TR_OK);
        assert_int_equal(p.n_epochs, 8);
        assert_int_equal(p.n_steps, 160);
        if (!(p.epoch_loss[7] < 0.5 * p.epoch_loss[0])) {
            print_error("%s/%s: epoch loss %.4f -> %.4f\n", loss_name(c.loss), mine_name(c.mining), p.epoch_loss[0],
                        p.epoch_loss[7]);
            fail();
        }
        trn_free(t);
    }
    synth_free(&s);
}

static void test_collapse_detected(void **state) {
    (void)state;
    trn_config c;
    trn *t = NULL;
    tr_err err;
    trn_stats st;
    golden_config(&c, "triplet", "sqeuclidean", 0, "batch-hard");
    assert_int_equal(trn_new(&c, gt_x, gt_labels, GT_N, GT_DIM, &t, &err), TR_OK);
    size_t np;
    float *w = trn_params(t, &np);
    memset(w, 0, np * sizeof *w); /* every input maps to the same point */
    w[np - 1] = 0.5f;
    assert_int_equal(trn_loss_grad(t, gt_x, gt_labels, GT_N, &st, &err), TR_OK);
    assert_true(st.collapsed);
    assert_true(fabs(st.loss - GT_MARGIN) < 1e-12);
    memcpy(w, gt_w, sizeof gt_w);
    assert_int_equal(trn_loss_grad(t, gt_x, gt_labels, GT_N, &st, &err), TR_OK);
    assert_false(st.collapsed);
    trn_free(t);
}

static void test_resume_equals_uninterrupted(void **state) {
    (void)state;
    synth s = make_synth(5, 20, 10, 3);
    trn_config c;
    synth_config(&c, &s);
    c.weight_decay = 1e-4;
    trn *a = NULL, *b = NULL, *r = NULL;
    tr_err err;
    progress_log pa = {{0}, 0, 0, 0}, pb = {{0}, 0, 0, 7}, pr = {{0}, 0, 0, 0};
    assert_int_equal(trn_new(&c, s.x, s.y, s.n, s.dim, &a, &err), TR_OK);
    assert_int_equal(trn_run(a, on_progress, &pa, NULL, &err), TR_OK);
    int stopped = 0;
    assert_int_equal(trn_new(&c, s.x, s.y, s.n, s.dim, &b, &err), TR_OK);
    assert_int_equal(trn_run(b, on_progress, &pb, &stopped, &err), TR_OK);
    assert_int_equal(stopped, 1);
    assert_int_equal(trn_steps_done(b), 7);
    char path[512];
    snprintf(path, sizeof path, "%s/test_train_ckpt_XXXXXX", test_tmpdir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(trn_checkpoint_save(b, path, "epoch,loss\n0,1.5\n", &err), TR_OK);

    trn_config rc;
    assert_int_equal(trn_checkpoint_config(path, &rc, &err), TR_OK);
    assert_int_equal(rc.steps_per_epoch, 5);
    assert_true(rc.weight_decay == 1e-4 && rc.seed == 42 && rc.input_scale == trn_input_scale(b));
    assert_int_equal(trn_new(&rc, s.x, s.y, s.n, s.dim, &r, &err), TR_OK);
    char *note = NULL;
    assert_int_equal(trn_checkpoint_load(r, path, &note, &err), TR_OK);
    assert_string_equal(note, "epoch,loss\n0,1.5\n");
    free(note);
    assert_int_equal(trn_steps_done(r), 7);
    assert_int_equal(trn_epochs_done(r), 1);
    assert_int_equal(trn_run(r, on_progress, &pr, NULL, &err), TR_OK);
    size_t np;
    const float *wa = trn_params(a, &np);
    assert_memory_equal(wa, trn_params(r, NULL), np * sizeof(float));
    /* the interrupted epoch's mean comes out the same as well */
    assert_int_equal(pr.n_epochs, 2);
    assert_true(pr.epoch_loss[0] == pa.epoch_loss[1] && pr.epoch_loss[1] == pa.epoch_loss[2]);

    /* the checkpoint refuses other data */
    synth o = make_synth(5, 21, 10, 3);
    trn *x = NULL;
    assert_int_equal(trn_new(&rc, o.x, o.y, o.n, o.dim, &x, &err), TR_OK);
    assert_int_equal(trn_checkpoint_load(x, path, NULL, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "other data"));
    trn_free(x);
    synth_free(&o);
    unlink(path);
    trn_free(a);
    trn_free(b);
    trn_free(r);
    synth_free(&s);
}

static void test_config_errors(void **state) {
    (void)state;
    static const struct {
        const char *arch, *msg;
    } bad_arch[] = {
        {"784", "at least an input and an output"},
        {"784--128", "expected a number"},
        {"784-0-128", "width 0 is not in"},
        {"784x128", "unexpected \"x\""},
        {"", "expected a number"},
    };
    tr_err err;
    trn_config c;
    for (size_t i = 0; i < sizeof bad_arch / sizeof bad_arch[0]; i++) {
        trn_config_default(&c);
        assert_int_equal(trn_parse_arch(bad_arch[i].arch, &c, &err), TR_EINVAL);
        if (!strstr(err.msg, bad_arch[i].msg)) {
            print_error("arch \"%s\": %s\n", bad_arch[i].arch, err.msg);
            fail();
        }
        assert_string_equal(err.field, "arch");
    }
    char buf[64];
    trn_config_default(&c);
    trn_format_arch(&c, buf, sizeof buf);
    assert_string_equal(buf, "784-256-128");
    static const struct {
        int what;
        const char *field;
    } bad[] = {
        {0, "samples-per-class"}, {1, "classes-per-batch"}, {2, "margin"}, {3, "lr"}, {4, "loss"}, {5, "threads"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        trn_config_default(&c);
        switch (bad[i].what) {
        case 0:
            c.samples_per_class = 1;
            break;
        case 1:
            c.classes_per_batch = 1;
            break;
        case 2:
            c.margin = -1;
            break;
        case 3:
            c.lr = 0;
            break;
        case 4:
            c.loss = LOSS_INFONCE;
            break;
        default:
            c.threads = 0;
            break;
        }
        assert_int_equal(trn_config_check(&c, &err), TR_EINVAL);
        assert_string_equal(err.field, bad[i].field);
    }
    /* data that does not fit the config */
    trn *t = NULL;
    golden_config(&c, "triplet", "sqeuclidean", 1, "semi-hard");
    c.classes_per_batch = 4;
    assert_int_equal(trn_new(&c, gt_x, gt_labels, GT_N, GT_DIM, &t, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "only 3 classes"));
    c.classes_per_batch = 3;
    assert_int_equal(trn_new(&c, gt_x, gt_labels, GT_N, GT_DIM + 1, &t, &err), TR_EDIM);
    assert_null(t);
    /* a non-checkpoint file */
    assert_int_equal(trn_checkpoint_config("/nonexistent/ckpt.safetensors", &c, &err) != TR_OK, 1);
}

/* The trainer's embeddings are the exported model's, bit for bit: one forward serves both. */
static void test_embed_equals_export(void **state) {
    (void)state;
    for (int k = 0; k < 2; k++) {
        trn_config c;
        trn *t = NULL;
        mdl_model *m = NULL;
        mdl_ws ws = {0};
        tr_err err;
        trn_stats st;
        golden_config(&c, "triplet", "sqeuclidean", k == 0, "batch-all");
        c.act = k == 0 ? MDL_ACT_RELU : MDL_ACT_GELU;
        c.input_mean = 0.25;
        c.input_scale = 0; /* resolved from the data */
        assert_int_equal(trn_new(&c, gt_x, gt_labels, GT_N, GT_DIM, &t, &err), TR_OK);
        for (int s = 0; s < 2; s++) assert_int_equal(trn_step_batch(t, gt_x, gt_labels, GT_N, &st, &err), TR_OK);
        assert_int_equal(trn_export(t, &m, &err), TR_OK);
        size_t od = (size_t)mdl_output_dim(m);
        float *a = malloc(GT_N * od * sizeof(float)), *b = malloc(GT_N * od * sizeof(float));
        assert_non_null(a);
        assert_non_null(b);
        assert_int_equal(trn_embed(t, gt_x, GT_N, a, &err), TR_OK);
        assert_int_equal(mdl_forward(m, gt_x, GT_N, b, -1, &ws, &err), TR_OK);
        assert_memory_equal(a, b, GT_N * od * sizeof(float));
        for (size_t i = 0; i < GT_N; i++) { /* one row at a time takes the sgemv path in both */
            assert_int_equal(trn_embed(t, gt_x + i * GT_DIM, 1, a, &err), TR_OK);
            assert_int_equal(mdl_forward(m, gt_x + i * GT_DIM, 1, b, -1, &ws, &err), TR_OK);
            assert_memory_equal(a, b, od * sizeof(float));
        }
        free(a);
        free(b);
        mdl_ws_free(&ws);
        mdl_free(m);
        trn_free(t);
    }
}

int main(void) {
    openblas_set_num_threads(1); /* the trainer leaves the process-wide setting to its caller */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_every_combination),
        cmocka_unit_test(test_fd_activations),
        cmocka_unit_test(test_golden_pytorch),
        cmocka_unit_test(test_adam_pytorch),
        cmocka_unit_test(test_grad_edges),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_loss_decreases),
        cmocka_unit_test(test_collapse_detected),
        cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_embed_equals_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
