/* test_train_cnn.c - the trainer on a layer list (a CNN): PyTorch golden gradients and finite differences for every
 * loss and miner, determinism with augmentation and dropout, checkpoint and resume, learning-rate schedules, options.
 */
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

#include "../golden/golden_nn.h"
#include "capped.h"
#include "../tmpdir.h"
#include "nn_net.h"
#include "onnx_model.h"
#include "onnx_write.h"
#include "ref_loss.h"
#include "train.h"

#define GN_N (GN_P * GN_K)
#define GN_DIM (GN_CNN_C * GN_CNN_H * GN_CNN_W)

static void cnn_config(trn_config *c, const char *arch, int ch, int h, int w) {
    tr_err err;
    trn_config_default(c);
    assert_int_equal(trn_parse_arch(arch, c, &err), TR_OK);
    c->input_c = ch;
    c->input_h = h;
    c->input_w = w;
}

static void test_golden_pytorch(void **state) {
    (void)state;
    size_t nc = sizeof golden_cnn_cases / sizeof golden_cnn_cases[0];
    float x[GN_N * GN_DIM];
    int64_t labels[GN_N];
    assert_int_equal(nc, 80);
    for (int i = 0; i < GN_N * GN_DIM; i++) x[i] = (float)gn_cnn_x[i];
    for (int i = 0; i < GN_N; i++) labels[i] = i / GN_K;
    for (size_t k = 0; k < nc; k++) {
        const golden_cnn_case *gc = &golden_cnn_cases[k];
        trn_config c;
        trn *t = NULL;
        tr_err err;
        trn_stats st;
        cnn_config(&c, GN_CNN_ARCH, GN_CNN_C, GN_CNN_H, GN_CNN_W);
        assert_int_equal(loss_parse(gc->loss, &c.loss), 0);
        assert_int_equal(dist_parse(gc->metric, &c.metric), 0);
        assert_int_equal(mine_parse(gc->mining, &c.mining), 0);
        c.normalize = gc->normalize;
        c.margin = GN_MARGIN;
        c.classes_per_batch = GN_P;
        c.samples_per_class = GN_K;
        assert_int_equal(trn_new(&c, x, labels, GN_N, GN_DIM, &t, &err), TR_OK);
        assert_true(trn_is_layers(t));
        size_t np, ns;
        float *w = trn_params(t, &np), *s = trn_state(t, &ns);
        assert_int_equal(np, trn_arch(t)->n_params);
        for (size_t i = 0; i < np; i++) w[i] = (float)gn_cnn_params[i];
        for (size_t i = 0; i < ns; i++) s[i] = (float)gn_cnn_state[i];
        assert_int_equal(trn_loss_grad(t, x, labels, GN_N, &st, &err), TR_OK);
        if (fabs(st.loss - gc->loss_value) > 1e-4 * (1 + fabs(gc->loss_value))) {
            print_error("case %zu %s/%s/%d/%s: loss %.9g, torch %.9g\n", k, gc->loss, gc->metric, gc->normalize,
                        gc->mining, st.loss, gc->loss_value);
            fail();
        }
        const float *g = trn_grads(t);
        double scale = 1e-3;
        for (size_t i = 0; i < np; i++) scale = fabs(gc->grad[i]) > scale ? fabs(gc->grad[i]) : scale;
        for (size_t i = 0; i < np; i++)
            if (fabs(g[i] - gc->grad[i]) > 2e-4 * scale) {
                print_error("case %zu %s/%s/%d/%s: grad[%zu] %.9g, torch %.9g\n", k, gc->loss, gc->metric,
                            gc->normalize, gc->mining, i, (double)g[i], gc->grad[i]);
                fail();
            }
        trn_free(t);
    }
}

/* The same on the AVX2 and plain paths of the convolutions, Winograd and batch normalisation (capped.h). */
static void test_golden_pytorch_capped(void **state) {
    run_capped(test_golden_pytorch, state);
}

/* ---- finite differences on a small CNN: a float64 reference of its batch loss ---- */

#define FD_ARCH "conv2k3p1,bn,relu,maxpool2,flatten,fc4"

/* Layer L of the reference on n samples, training-mode batch normalisation. */
static void ref_layer(const nn_layer *L, const double *w, const double *in, size_t n, double *out) {
    const nn_shape a = L->in, b = L->outs;
    const size_t isz = (size_t)(a.c * a.h * a.w), osz = (size_t)(b.c * b.h * b.w), hw = (size_t)(a.h * a.w);
    switch (L->kind) {
    case NN_CONV: {
        int cg = a.c / L->groups, og = L->out / L->groups;
        for (size_t i = 0; i < n; i++)
            for (int o = 0; o < b.c; o++)
                for (int y = 0; y < b.h; y++)
                    for (int x = 0; x < b.w; x++) {
                        double s = w[L->b_off + (size_t)o];
                        for (int ci = 0; ci < cg; ci++)
                            for (int ky = 0; ky < L->k; ky++)
                                for (int kx = 0; kx < L->k; kx++) {
                                    int iy = y * L->stride - L->pad + ky, ix = x * L->stride - L->pad + kx;
                                    if (iy < 0 || iy >= a.h || ix < 0 || ix >= a.w) continue;
                                    s += w[L->w_off + (size_t)(((o * cg + ci) * L->k + ky) * L->k + kx)] *
                                         in[i * isz + (size_t)(((o / og * cg + ci) * a.h + iy) * a.w + ix)];
                                }
                        out[i * osz + (size_t)((o * b.h + y) * b.w + x)] = s;
                    }
        break;
    }
    case NN_BN:
        for (int c = 0; c < a.c; c++) {
            double m = 0, v = 0;
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < hw; j++) m += in[i * isz + (size_t)c * hw + j];
            m /= (double)(n * hw);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < hw; j++) v += pow(in[i * isz + (size_t)c * hw + j] - m, 2);
            double sc = w[L->w_off + (size_t)c] / sqrt(v / (double)(n * hw) + 1e-5);
            for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < hw; j++) {
                    size_t at = i * isz + (size_t)c * hw + j;
                    out[at] = (in[at] - m) * sc + w[L->b_off + (size_t)c];
                }
        }
        break;
    case NN_RELU:
        for (size_t i = 0; i < n * isz; i++) out[i] = in[i] > 0 ? in[i] : 0;
        break;
    case NN_MAXPOOL:
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < b.c; c++)
                for (int y = 0; y < b.h; y++)
                    for (int x = 0; x < b.w; x++) {
                        double mx = -INFINITY;
                        for (int ky = 0; ky < L->k; ky++)
                            for (int kx = 0; kx < L->k; kx++) {
                                int iy = y * L->stride - L->pad + ky, ix = x * L->stride - L->pad + kx;
                                double v = iy >= 0 && iy < a.h && ix >= 0 && ix < a.w
                                               ? in[i * isz + (size_t)((c * a.h + iy) * a.w + ix)]
                                               : -INFINITY;
                                mx = v > mx ? v : mx;
                            }
                        out[i * osz + (size_t)((c * b.h + y) * b.w + x)] = mx;
                    }
        break;
    case NN_FLATTEN:
        memcpy(out, in, n * isz * sizeof *out);
        break;
    case NN_FC:
        for (size_t i = 0; i < n; i++)
            for (size_t o = 0; o < osz; o++) {
                double s = w[L->b_off + o];
                for (size_t k = 0; k < isz; k++) s += w[L->w_off + o * isz + k] * in[i * isz + k];
                out[i * osz + o] = s;
            }
        break;
    default:
        print_error("the reference has no layer \"%s\"\n", nn_kind_name(L->kind));
        fail();
    }
}

/* The batch loss of the layer list c->layers with parameters w, after the trainer's preprocessing (per channel, the
 * mean and population standard deviation of the batch, applied in float). */
static double ref_cnn_loss(const trn_config *c, const double *w, const float *x, const int64_t *labels, size_t n) {
    nn_arch a;
    tr_err err;
    assert_int_equal(nn_arch_parse(c->layers, (nn_shape){c->input_c, c->input_h, c->input_w}, &a, &err), TR_OK);
    size_t dim = (size_t)(c->input_c * c->input_h * c->input_w), hw = dim / (size_t)c->input_c, big = dim;
    for (int l = 0; l < a.n; l++) {
        size_t sz = (size_t)a.l[l].outs.c * (size_t)a.l[l].outs.h * (size_t)a.l[l].outs.w;
        big = sz > big ? sz : big;
    }
    double *h = malloc(n * big * sizeof *h), *o = malloc(n * big * sizeof *o);
    assert_non_null(h);
    assert_non_null(o);
    for (size_t ch = 0; ch < (size_t)c->input_c; ch++) {
        double s = 0, q = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) s += x[i * dim + ch * hw + j];
        double mean = s / (double)(n * hw);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) q += pow(x[i * dim + ch * hw + j] - mean, 2);
        float m = (float)mean, sc = (float)(1 / sqrt(q / (double)(n * hw)));
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < hw; j++) h[i * dim + ch * hw + j] = (x[i * dim + ch * hw + j] - m) * sc;
    }
    for (int l = 0; l < a.n; l++) {
        ref_layer(&a.l[l], w, h, n, o);
        double *t = h;
        h = o;
        o = t;
    }
    double loss = ref_embedding_loss(c, h, n, nn_arch_out_dim(&a), labels);
    free(h);
    free(o);
    return loss;
}

/* Every loss with every miner, metric and normalisation: the trainer's CNN gradient against central differences of
 * the reference, from the trainer's seeded initial weights, on the golden batch. */
static void test_fd_every_combination(void **state) {
    (void)state;
    static const char *const losses[] = {"triplet", "triplet-soft", "contrastive", "contrastive-squared"};
    static const char *const metrics[] = {"sqeuclidean", "euclidean", "cosine", "dot"};
    float x[GN_N * GN_DIM];
    int64_t labels[GN_N];
    for (int i = 0; i < GN_N * GN_DIM; i++) x[i] = (float)gn_cnn_x[i];
    for (int i = 0; i < GN_N; i++) labels[i] = i / GN_K;
    for (size_t li = 0; li < 4; li++)
        for (int mi = 0; mi < MINE_COUNT; mi++)
            for (size_t di = 0; di < 4; di++)
                for (int norm = 0; norm <= 1; norm++) {
                    trn_config c;
                    cnn_config(&c, FD_ARCH, GN_CNN_C, GN_CNN_H, GN_CNN_W);
                    assert_int_equal(loss_parse(losses[li], &c.loss), 0);
                    assert_int_equal(dist_parse(metrics[di], &c.metric), 0);
                    c.mining = (mine_strategy)mi;
                    c.normalize = norm;
                    c.margin = GN_MARGIN;
                    c.classes_per_batch = GN_P;
                    c.samples_per_class = GN_K;
                    c.seed = 11;
                    check_fd(&c, ref_cnn_loss, x, labels, GN_N, GN_DIM, NULL);
                }
}

/* Small images of 4 classes: a bright square at a class-dependent place, noise. */
typedef struct {
    float *x;
    int64_t *y;
    size_t n, dim;
} images;

static images make_images(size_t per, uint64_t seed) {
    images im = {malloc(4 * per * 64 * sizeof(float)), malloc(4 * per * sizeof(int64_t)), 4 * per, 64};
    uint64_t r = seed;
    for (size_t i = 0; i < im.n; i++) {
        int cls = (int)(i % 4);
        im.y[i] = cls;
        for (int p = 0; p < 64; p++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            int yy = p / 8, xx = p % 8, in = yy / 4 == cls / 2 && xx / 4 == cls % 2;
            im.x[i * 64 + (size_t)p] = (float)((in ? 180 : 40) + (double)(r >> 40) / (1u << 24) * 60);
        }
    }
    return im;
}

static void images_config(trn_config *c) {
    cnn_config(c, "conv4k3p1,bn,relu,maxpool2,conv6k3p1,relu,gap,flatten,dropout0.2,fc8", 1, 8, 8);
    c->classes_per_batch = 4;
    c->samples_per_class = 4;
    c->epochs = 3;
    c->steps_per_epoch = 4;
    c->lr = 3e-3;
    c->seed = 5;
    c->aug_crop = 1;
    c->aug_flip = 1;
    c->lr_schedule = TRN_LR_COSINE;
}

static void test_determinism_and_learning(void **state) {
    (void)state;
    images im = make_images(12, 9);
    trn_config c;
    trn *a = NULL, *b = NULL, *d = NULL;
    tr_err err;
    images_config(&c);
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &a, &err), TR_OK);
    c.threads = 3; /* the same run on any number of threads */
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &b, &err), TR_OK);
    c.threads = 1;
    c.aug_crop = 0; /* another augmentation draws other batches */
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &d, &err), TR_OK);
    /* initial parameters: BN gamma 1, beta 0, running mean 0, var 1; conv bound 1/sqrt(fan_in) */
    const nn_arch *ar = trn_arch(a);
    float *w = trn_params(a, NULL), *s = trn_state(a, NULL);
    assert_true(w[ar->l[1].w_off] == 1.0f && w[ar->l[1].b_off] == 0.0f && s[0] == 0.0f && s[4] == 1.0f);
    for (size_t i = 0; i < ar->l[0].n_w; i++) assert_true(fabsf(w[i]) <= 1.0f / 3.0f);
    assert_int_equal(trn_run(a, NULL, NULL, NULL, &err), TR_OK);
    assert_int_equal(trn_run(b, NULL, NULL, NULL, &err), TR_OK);
    assert_int_equal(trn_run(d, NULL, NULL, NULL, &err), TR_OK);
    size_t np, ns;
    trn_params(a, &np);
    trn_state(a, &ns);
    assert_memory_equal(trn_params(a, NULL), trn_params(b, NULL), np * sizeof(float));
    assert_memory_equal(trn_state(a, NULL), trn_state(b, NULL), ns * sizeof(float));
    assert_memory_not_equal(trn_params(a, NULL), trn_params(d, NULL), np * sizeof(float));
    /* the running statistics moved away from their start */
    assert_true(trn_state(a, NULL)[0] != 0.0f);
    /* trn_embed is the inference-mode network on preprocessed input, normalised */
    float *e = malloc(im.n * 8 * sizeof(float)), *p = malloc(im.n * im.dim * sizeof(float));
    float *raw = malloc(im.n * 8 * sizeof(float));
    assert_int_equal(trn_embed(a, im.x, im.n, e, &err), TR_OK);
    mdl_image img;
    assert_int_equal(trn_image(a, &img, &err), TR_OK);
    assert_int_equal(img.channels, 1);
    assert_int_equal(img.height, 8);
    for (size_t i = 0; i < im.n * im.dim; i++) p[i] = (im.x[i] / 255.0f - img.mean[0]) / img.std[0];
    nn_net net;
    assert_int_equal(nn_net_init(&net, ar, &err), TR_OK);
    assert_int_equal(nn_net_infer(&net, trn_params(a, NULL), trn_state(a, NULL), p, im.n, raw, &err), TR_OK);
    mdl_l2_normalize(raw, im.n, 8);
    for (size_t i = 0; i < im.n * 8; i++) assert_float_equal(e[i], raw[i], 1e-4);
    nn_net_free(&net);
    free(e);
    free(p);
    free(raw);
    trn_free(a);
    trn_free(b);
    trn_free(d);
    free(im.x);
    free(im.y);
}

/* The written ONNX file, loaded as tripletd loads it, embeds raw pixels as the trainer does. */
static void test_export_equals_embed(void **state) {
    (void)state;
    images im = make_images(10, 4);
    trn_config c;
    trn *t = NULL;
    tr_err err;
    images_config(&c);
    c.normalize = 1;
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &t, &err), TR_OK);
    assert_int_equal(trn_run(t, NULL, NULL, NULL, &err), TR_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/test_train_cnn_XXXXXX.onnx", test_tmpdir());
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    close(fd);
    mdl_image img;
    const char *meta[] = {"normalize", "true"};
    assert_int_equal(trn_image(t, &img, &err), TR_OK);
    assert_int_equal(onx_write(path, trn_arch(t), trn_params(t, NULL), trn_state(t, NULL), &img, meta, 1, &err), TR_OK);
    mdl_model *m = NULL;
    mdl_ws ws = {0};
    int rc = mdl_load(path, &m, &err);
    if (rc) print_error("%s\n", err.msg);
    assert_int_equal(rc, TR_OK);
    float *a = malloc(im.n * 8 * sizeof(float)), *b = malloc(im.n * 8 * sizeof(float));
    assert_int_equal(trn_embed(t, im.x, im.n, a, &err), TR_OK);
    assert_int_equal(mdl_forward(m, im.x, im.n, b, -1, &ws, &err), TR_OK);
    for (size_t i = 0; i < im.n * 8; i++) assert_float_equal(a[i], b[i], 1e-5);
    free(a);
    free(b);
    mdl_ws_free(&ws);
    mdl_free(m);
    unlink(path);
    trn_free(t);
    free(im.x);
    free(im.y);
}

/* The untrained counterpart of a written network (tripletctl eval's baseline) is the trainer's initial network. */
static void test_untrained_like(void **state) {
    (void)state;
    images im = make_images(10, 4);
    trn_config c;
    trn *t = NULL;
    tr_err err;
    char arch[256];
    images_config(&c);
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &t, &err), TR_OK); /* not run: the initial weights */
    trn_format_arch(&c, arch, sizeof arch);
    mdl_image img;
    const char *meta[] = {"normalize", "true", "training.arch", arch, "training.input", "1x8x8"};
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(trn_image(t, &img, &err), TR_OK);
    assert_int_equal(
        onx_write_mem(trn_arch(t), trn_params(t, NULL), trn_state(t, NULL), &img, meta, 3, &buf, &len, &err), TR_OK);
    mdl_model *m = NULL, *u = NULL, *v = NULL, *bare = NULL;
    mdl_ws ws = {0};
    assert_int_equal(onx_model_load_mem(buf, len, &m, &err), TR_OK);
    free(buf);
    trn_config k;
    trn_config_default(&k);
    k.seed = c.seed;
    assert_int_equal(trn_init_like(m, &k, &u, &err), TR_OK);
    k.seed = c.seed + 1;
    assert_int_equal(trn_init_like(m, &k, &v, &err), TR_OK);
    float *a = malloc(im.n * 8 * sizeof(float)), *b = malloc(im.n * 8 * sizeof(float));
    assert_int_equal(mdl_forward(m, im.x, im.n, a, -1, &ws, &err), TR_OK);
    assert_int_equal(mdl_forward(u, im.x, im.n, b, -1, &ws, &err), TR_OK);
    assert_memory_equal(a, b, im.n * 8 * sizeof(float));
    assert_int_equal(mdl_forward(v, im.x, im.n, b, -1, &ws, &err), TR_OK);
    assert_memory_not_equal(a, b, im.n * 8 * sizeof(float));
    /* without the metadata there is no architecture to start from */
    assert_int_equal(
        onx_write_mem(trn_arch(t), trn_params(t, NULL), trn_state(t, NULL), &img, meta, 1, &buf, &len, &err), TR_OK);
    assert_int_equal(onx_model_load_mem(buf, len, &bare, &err), TR_OK);
    free(buf);
    mdl_model *none = NULL;
    assert_int_equal(trn_init_like(bare, &k, &none, &err), TR_EINVAL);
    assert_string_equal(err.field, "model");
    assert_null(none);
    free(a);
    free(b);
    mdl_ws_free(&ws);
    mdl_free(m);
    mdl_free(u);
    mdl_free(v);
    mdl_free(bare);
    trn_free(t);
    free(im.x);
    free(im.y);
}

static void test_resume_equals_uninterrupted(void **state) {
    (void)state;
    images im = make_images(10, 3);
    trn_config c, rc;
    trn *a = NULL, *b = NULL, *r = NULL;
    tr_err err;
    images_config(&c);
    c.weight_decay = 1e-3;
    c.lr_schedule = TRN_LR_STEP;
    c.lr_step_every = 1;
    c.lr_gamma = 0.5;
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &a, &err), TR_OK);
    assert_int_equal(trn_run(a, NULL, NULL, NULL, &err), TR_OK);
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &b, &err), TR_OK);
    trn_stats st;
    for (int i = 0; i < 6; i++) assert_int_equal(trn_step(b, &st, &err), TR_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/test_train_cnn_ckpt_XXXXXX", test_tmpdir());
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(trn_checkpoint_save(b, path, NULL, &err), TR_OK);
    assert_int_equal(trn_checkpoint_config(path, &rc, &err), TR_OK);
    assert_string_equal(rc.layers, c.layers);
    assert_true(rc.input_c == 1 && rc.input_h == 8 && rc.input_w == 8 && rc.aug_crop == 1 && rc.aug_flip == 1);
    assert_true(rc.lr_schedule == TRN_LR_STEP && rc.lr_step_every == 1 && rc.lr_gamma == 0.5);
    assert_int_equal(trn_new(&rc, im.x, im.y, im.n, im.dim, &r, &err), TR_OK);
    assert_int_equal(trn_checkpoint_load(r, path, NULL, &err), TR_OK);
    assert_int_equal(trn_run(r, NULL, NULL, NULL, &err), TR_OK);
    size_t np, ns;
    trn_params(a, &np);
    trn_state(a, &ns);
    assert_memory_equal(trn_params(a, NULL), trn_params(r, NULL), np * sizeof(float));
    assert_memory_equal(trn_state(a, NULL), trn_state(r, NULL), ns * sizeof(float));
    unlink(path);
    trn_free(a);
    trn_free(b);
    trn_free(r);
    free(im.x);
    free(im.y);
}

static void test_schedules_and_options(void **state) {
    (void)state;
    trn_config c;
    tr_err err;
    char buf[128];
    trn_config_default(&c);
    c.epochs = 10;
    assert_true(trn_lr_at(&c, 500, 5, 100) == c.lr);
    assert_int_equal(trn_parse_lr_schedule("cosine", &c, &err), TR_OK);
    assert_true(fabs(trn_lr_at(&c, 0, 0, 100) - 1e-3) < 1e-15);
    assert_true(fabs(trn_lr_at(&c, 500, 5, 100) - 0.5e-3) < 1e-15);
    assert_true(fabs(trn_lr_at(&c, 250, 2, 100) - 1e-3 * 0.5 * (1 + cos(M_PI / 4))) < 1e-15);
    assert_int_equal(trn_parse_lr_schedule("step", &c, &err), TR_OK);
    trn_format_lr_schedule(&c, buf, sizeof buf); /* what a checkpoint stores must parse back */
    assert_string_equal(buf, "step");
    assert_int_equal(trn_parse_lr_schedule(buf, &c, &err), TR_OK);
    assert_true(trn_lr_at(&c, 0, 2, 100) == 1e-3 && fabs(trn_lr_at(&c, 0, 3, 100) - 1e-4) < 1e-18);
    assert_true(fabs(trn_lr_at(&c, 0, 9, 100) - 1e-6) < 1e-18);
    assert_int_equal(trn_parse_lr_schedule("step:4:0.5", &c, &err), TR_OK);
    assert_true(trn_lr_at(&c, 0, 7, 100) == 0.5e-3 && trn_lr_at(&c, 0, 8, 100) == 0.25e-3);
    trn_format_lr_schedule(&c, buf, sizeof buf);
    assert_string_equal(buf, "step:4:0.5");
    assert_int_equal(trn_parse_lr_schedule("step:2:0.3", &c, &err), TR_OK);
    trn_format_lr_schedule(&c, buf, sizeof buf);
    assert_string_equal(buf, "step:2:0.3");
    static const char *const bad_sched[] = {"linear", "step:0", "step:3:0", "step:3:1.5", "step:x", "steps", "cos"};
    for (size_t i = 0; i < sizeof bad_sched / sizeof bad_sched[0]; i++) {
        assert_int_equal(trn_parse_lr_schedule(bad_sched[i], &c, &err), TR_EINVAL);
        assert_string_equal(err.field, "lr-schedule");
    }
    assert_int_equal(trn_parse_augment("crop4,flip", &c, &err), TR_OK);
    assert_true(c.aug_crop == 4 && c.aug_flip == 1);
    trn_format_augment(&c, buf, sizeof buf);
    assert_string_equal(buf, "crop4,flip");
    assert_int_equal(trn_parse_augment("none", &c, &err), TR_OK);
    assert_true(c.aug_crop == 0 && c.aug_flip == 0);
    static const char *const bad_aug[] = {"crop", "crop0", "crop4x", "rotate", "flip,,crop2", "crop65"};
    for (size_t i = 0; i < sizeof bad_aug / sizeof bad_aug[0]; i++) {
        assert_int_equal(trn_parse_augment(bad_aug[i], &c, &err), TR_EINVAL);
        assert_string_equal(err.field, "augment");
    }
    /* augmentation needs an image; a layer list needs its input shape and the data to match it */
    trn_config_default(&c);
    c.aug_flip = 1;
    assert_int_equal(trn_config_check(&c, &err), TR_EINVAL);
    assert_string_equal(err.field, "augment");
    images im = make_images(4, 1);
    trn *t = NULL;
    cnn_config(&c, "conv4k3,flatten,fc4", 0, 0, 0);
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &t, &err), TR_EINVAL);
    assert_string_equal(err.field, "input");
    cnn_config(&c, "conv4k3,flatten,fc4", 1, 8, 9);
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &t, &err), TR_EDIM);
    cnn_config(&c, "conv4k9,flatten,fc4", 1, 8, 8);
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &t, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "arch layer 0 \"conv4k9\": kernel 9 is larger than its padded input 8x8"));
    assert_null(t);
    /* the MLP form exports as safetensors, a layer list does not */
    cnn_config(&c, "conv4k3,flatten,fc4", 1, 8, 8);
    c.classes_per_batch = 4;
    assert_int_equal(trn_new(&c, im.x, im.y, im.n, im.dim, &t, &err), TR_OK);
    mdl_model *m = NULL;
    assert_int_equal(trn_export(t, &m, &err), TR_EINVAL);
    trn_recipe(&c, buf, sizeof buf);
    trn_free(t);
    free(im.x);
    free(im.y);
}

int main(void) {
    openblas_set_num_threads(1); /* as tripletctl train: the trainer's GEMMs on its threads */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_pytorch),        cmocka_unit_test(test_golden_pytorch_capped),
        cmocka_unit_test(test_fd_every_combination),  cmocka_unit_test(test_determinism_and_learning),
        cmocka_unit_test(test_export_equals_embed),   cmocka_unit_test(test_resume_equals_uninterrupted),
        cmocka_unit_test(test_schedules_and_options), cmocka_unit_test(test_untrained_like),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
