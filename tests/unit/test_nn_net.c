/* test_nn_net.c - lib/nn_*.c layers and the runner: PyTorch autograd goldens (tests/golden/gen_nn.py), finite
 * differences, dropout (its own goldens too), buffers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <cmocka.h>

#include "../golden/golden_nn.h"
#include "capped.h"
#include "nn_layers.h"
#include "nn_net.h"
#include "rng.h"

#define N_CASES (sizeof golden_nn_cases / sizeof golden_nn_cases[0])

static float *to_float(const double *v, size_t n) {
    float *f = malloc((n ? n : 1) * sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++) f[i] = (float)v[i];
    return f;
}

/* |a - ref| within tol of the array's scale; names the first bad entry. */
static void check_close(const char *what, const char *arch, const float *a, const double *ref, size_t n, double tol) {
    double scale = 1;
    for (size_t i = 0; i < n; i++) scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    for (size_t i = 0; i < n; i++)
        if (!(fabs(a[i] - ref[i]) <= tol * scale)) {
            print_error("%s: %s[%zu] = %.9g, torch %.9g\n", arch, what, i, (double)a[i], ref[i]);
            fail();
        }
}

typedef struct {
    nn_arch a;
    nn_net net;
    size_t n, in, out;
    float *x, *p, *s, *dy, *dx, *g;
} rig;

static void rig_new(rig *r, const golden_nn_case *gc) {
    tr_err err;
    memset(r, 0, sizeof *r);
    int rc = nn_arch_parse(gc->arch, (nn_shape){gc->c, gc->h, gc->w}, &r->a, &err);
    if (rc) print_error("%s: %s\n", gc->arch, err.msg);
    assert_int_equal(rc, TR_OK);
    assert_int_equal(nn_net_init(&r->net, &r->a, &err), TR_OK);
    r->n = (size_t)gc->n;
    r->in = (size_t)gc->c * (size_t)gc->h * (size_t)gc->w;
    r->out = nn_arch_out_dim(&r->a);
    r->x = to_float(gc->x, r->n * r->in);
    r->p = to_float(gc->params, r->a.n_params);
    r->s = to_float(gc->state, r->a.n_state);
    r->dy = to_float(gc->dy, r->n * r->out);
    r->dx = malloc(r->n * r->in * sizeof(float));
    r->g = malloc((r->a.n_params ? r->a.n_params : 1) * sizeof(float));
}

static void rig_free(rig *r) {
    nn_net_free(&r->net);
    free(r->x);
    free(r->p);
    free(r->s);
    free(r->dy);
    free(r->dx);
    free(r->g);
}

/* The rig's batch as n rows: its rows and output gradients repeated, each repeat shifted. */
static void rig_grow(rig *r, size_t n) {
    float *x = malloc(n * r->in * sizeof *x), *dy = malloc(n * r->out * sizeof *dy);
    assert_non_null(x);
    assert_non_null(dy);
    for (size_t i = 0; i < n; i++) {
        float shift = 0.125f * (float)(i / r->n);
        for (size_t j = 0; j < r->in; j++) x[i * r->in + j] = r->x[i % r->n * r->in + j] + shift;
        for (size_t j = 0; j < r->out; j++) dy[i * r->out + j] = r->dy[i % r->n * r->out + j] - shift;
    }
    free(r->x);
    free(r->dy);
    free(r->dx);
    r->x = x;
    r->dy = dy;
    r->dx = malloc(n * r->in * sizeof(float));
    r->n = n;
}

/* sum(y * dy) in double for the current x and params, state restored afterwards. */
static double objective(rig *r, const golden_nn_case *gc) {
    tr_err err;
    const float *y;
    float *s = to_float(gc->state, r->a.n_state);
    uint64_t rng[4];
    rng_seed(5, rng);
    assert_int_equal(nn_net_forward(&r->net, r->p, s, r->x, r->n, gc->train, rng, &y, &err), TR_OK);
    double l = 0;
    for (size_t i = 0; i < r->n * r->out; i++) l += (double)y[i] * r->dy[i];
    free(s);
    return l;
}

static void test_golden_pytorch(void **state) {
    (void)state;
    assert_int_equal(N_CASES, 24);
    for (size_t k = 0; k < N_CASES; k++) {
        const golden_nn_case *gc = &golden_nn_cases[k];
        rig r;
        tr_err err;
        const float *y;
        rig_new(&r, gc);
        assert_int_equal(nn_net_forward(&r.net, r.p, r.s, r.x, r.n, gc->train, NULL, &y, &err), TR_OK);
        check_close("y", gc->arch, y, gc->y, r.n * r.out, 1e-5);
        check_close("running statistics", gc->arch, r.s, gc->state_after, r.a.n_state, 1e-6);
        assert_int_equal(nn_net_backward(&r.net, r.p, r.dy, r.g, r.dx, &err), TR_OK);
        check_close("dx", gc->arch, r.dx, gc->dx, r.n * r.in, 1e-4);
        check_close("dparams", gc->arch, r.g, gc->grads, r.a.n_params, 1e-4);
        /* without dx the parameter gradients are the same */
        float *g2 = malloc((r.a.n_params ? r.a.n_params : 1) * sizeof(float));
        assert_int_equal(nn_net_forward(&r.net, r.p, r.s, r.x, r.n, gc->train, NULL, &y, &err), TR_OK);
        assert_int_equal(nn_net_backward(&r.net, r.p, r.dy, g2, NULL, &err), TR_OK);
        assert_memory_equal(g2, r.g, r.a.n_params * sizeof(float));
        free(g2);
        rig_free(&r);
    }
}

/* The same on the AVX2 and plain paths of the convolutions, Winograd and batch normalisation (capped.h). */
static void test_golden_pytorch_capped(void **state) {
    run_capped(test_golden_pytorch, state);
}

/* Central difference of sum(y * dy) in v[i] with step h. */
static double central(rig *r, const golden_nn_case *gc, float *v, size_t i, double h) {
    float keep = v[i];
    v[i] = (float)(keep + h);
    double hp = (double)v[i] - keep, lp = objective(r, gc);
    v[i] = (float)(keep - h);
    double hm = keep - (double)v[i], lm = objective(r, gc);
    v[i] = keep;
    return (lp - lm) / (hp + hm);
}

/* Central differences against the analytic gradient, for every parameter and input value. A step that
 * straddles a kink (ReLU at 0, a max-pool tie) is retried with a smaller one. */
static void fd_check(rig *r, const golden_nn_case *gc, float *v, size_t nv, const float *an, const char *what) {
    double gmax = 0;
    for (size_t i = 0; i < nv; i++) gmax = fabs(an[i]) > gmax ? fabs(an[i]) : gmax;
    for (size_t i = 0; i < nv; i++) {
        double fd = central(r, gc, v, i, 4e-3);
        if (fabs(fd - an[i]) > 3e-3 * (1 + gmax)) fd = central(r, gc, v, i, 5e-4);
        if (fabs(fd - an[i]) > 1e-2 * (1 + gmax)) {
            print_error("%s (%s): d/d%s[%zu] analytic %.7g, finite difference %.7g\n", gc->arch,
                        gc->train ? "train" : "eval", what, i, (double)an[i], fd);
            fail();
        }
    }
}

static void test_finite_differences(void **state) {
    (void)state;
    for (size_t k = 0; k < N_CASES; k++) {
        const golden_nn_case *gc = &golden_nn_cases[k];
        rig r;
        tr_err err;
        rig_new(&r, gc);
        objective(&r, gc);
        assert_int_equal(nn_net_backward(&r.net, r.p, r.dy, r.g, r.dx, &err), TR_OK);
        fd_check(&r, gc, r.p, r.a.n_params, r.g, "params");
        fd_check(&r, gc, r.x, r.n * r.in, r.dx, "x");
        rig_free(&r);
    }
}

/* Dropout: a seeded mask, inverted scaling, identity in eval, finite differences through the mask. */
static void test_dropout(void **state) {
    (void)state;
    nn_arch a;
    nn_net net;
    tr_err err;
    const float *y;
    size_t n = 64, d = 50;
    assert_int_equal(nn_arch_parse("dropout0.25,fc3", (nn_shape){(int)d, 1, 1}, &a, &err), TR_OK);
    assert_int_equal(nn_net_init(&net, &a, &err), TR_OK);
    float *x = malloc(n * d * sizeof *x), *p = malloc(a.n_params * sizeof *p), *y1 = malloc(n * 3 * sizeof *y1);
    uint64_t rng[4];
    rng_seed(3, rng);
    for (size_t i = 0; i < n * d; i++) x[i] = (float)(rng_uniform(rng) + 0.5);
    for (size_t i = 0; i < a.n_params; i++) p[i] = (float)(rng_uniform(rng) - 0.5);
    /* eval: identity */
    assert_int_equal(nn_net_forward(&net, p, NULL, x, n, 0, NULL, &y, &err), TR_OK);
    memcpy(y1, y, n * 3 * sizeof *y1);
    assert_int_equal(nn_net_infer(&net, p, NULL, x, n, y1, &err), TR_OK);
    /* train: about a quarter dropped, the rest scaled by 4/3; the same seed gives the same mask */
    rng_seed(9, rng);
    assert_int_equal(nn_net_forward(&net, p, NULL, x, n, 1, rng, &y, &err), TR_OK);
    const float *mask = net.aux[0];
    size_t zeros = 0;
    for (size_t i = 0; i < n * d; i++) {
        assert_true(mask[i] == 0.0f || mask[i] == 1.0f / 0.75f);
        zeros += mask[i] == 0.0f;
    }
    assert_in_range(zeros, n * d / 4 - 150, n * d / 4 + 150);
    memcpy(y1, y, n * 3 * sizeof *y1);
    rng_seed(9, rng);
    assert_int_equal(nn_net_forward(&net, p, NULL, x, n, 1, rng, &y, &err), TR_OK);
    assert_memory_equal(y1, y, n * 3 * sizeof *y1);
    /* backward: dx = dy W * mask */
    float *dy = calloc(n * 3, sizeof *dy), *dx = malloc(n * d * sizeof *dx), *g = malloc(a.n_params * sizeof *g);
    dy[0] = 1;
    assert_int_equal(nn_net_backward(&net, p, dy, g, dx, &err), TR_OK);
    for (size_t j = 0; j < d; j++) assert_float_equal(dx[j], p[j] * mask[j], 1e-6);
    free(x);
    free(p);
    free(y1);
    free(dy);
    free(dx);
    free(g);
    nn_net_free(&net);
}

/* Dropout in training against PyTorch: the golden's mask is the one the layer draws from the seeded generator; the
 * output, dx and the parameter gradients follow y = x * mask / (1 - p) through the rest of the network. */
static void test_dropout_pytorch(void **state) {
    (void)state;
    size_t nc = sizeof golden_dropout_cases / sizeof golden_dropout_cases[0];
    assert_int_equal(nc, 3);
    for (size_t k = 0; k < nc; k++) {
        const golden_dropout_case *gc = &golden_dropout_cases[k];
        nn_arch a;
        nn_net net;
        tr_err err;
        const float *y;
        uint64_t rng[4];
        assert_int_equal(nn_arch_parse(gc->arch, (nn_shape){gc->c, gc->h, gc->w}, &a, &err), TR_OK);
        assert_int_equal(nn_net_init(&net, &a, &err), TR_OK);
        size_t n = (size_t)gc->n, in = (size_t)gc->c * (size_t)gc->h * (size_t)gc->w, out = nn_arch_out_dim(&a);
        float *x = to_float(gc->x, n * in), *p = to_float(gc->params, a.n_params), *s = to_float(gc->state, a.n_state);
        float *dy = to_float(gc->dy, n * out), *dx = malloc(n * in * sizeof *dx);
        float *g = malloc((a.n_params ? a.n_params : 1) * sizeof *g);
        rng_seed(gc->seed, rng);
        assert_int_equal(nn_net_forward(&net, p, s, x, n, 1, rng, &y, &err), TR_OK);
        int d = 0;
        while (a.l[d].kind != NN_DROPOUT) d++;
        size_t cnt = n * nn_size(a.l[d].outs);
        float keep = 1.0f / (1.0f - a.l[d].p);
        for (size_t i = 0; i < cnt; i++)
            if (net.aux[d][i] != (gc->mask[i] != 0 ? keep : 0.0f)) {
                print_error("%s: mask[%zu] = %g, the golden's %g (kept: 1)\n", gc->arch, i, (double)net.aux[d][i],
                            gc->mask[i]);
                fail();
            }
        check_close("y", gc->arch, y, gc->y, n * out, 1e-5);
        assert_int_equal(nn_net_backward(&net, p, dy, g, dx, &err), TR_OK);
        check_close("dx", gc->arch, dx, gc->dx, n * in, 1e-4);
        check_close("dparams", gc->arch, g, gc->grads, a.n_params, 1e-4);
        free(x);
        free(p);
        free(s);
        free(dy);
        free(dx);
        free(g);
        nn_net_free(&net);
    }
}

/* Batches of different sizes reuse or grow the buffers and give the same rows; BN refuses one value per channel. */
static void test_batches_and_errors(void **state) {
    (void)state;
    const golden_nn_case *gc = NULL; /* the whole CNN in training */
    for (size_t k = 0; k < N_CASES && !gc; k++)
        if (golden_nn_cases[k].train && strstr(golden_nn_cases[k].arch, "conv6k3p1g2")) gc = &golden_nn_cases[k];
    assert_non_null(gc);
    rig r;
    tr_err err;
    const float *y;
    rig_new(&r, gc);
    float *all = malloc(r.n * r.out * sizeof *all), *one = malloc(r.out * sizeof *one);
    assert_int_equal(nn_net_infer(&r.net, r.p, r.s, r.x, r.n, all, &err), TR_OK);
    for (size_t i = 0; i < r.n; i++) {
        assert_int_equal(nn_net_infer(&r.net, r.p, r.s, r.x + i * r.in, 1, one, &err), TR_OK);
        for (size_t j = 0; j < r.out; j++) assert_float_equal(one[j], all[i * r.out + j], 1e-5);
    }
    assert_int_equal(nn_net_forward(&r.net, r.p, r.s, r.x, 1, 1, NULL, &y, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "\"bn\": training batch normalisation needs more than one value per channel"));
    assert_int_equal(nn_net_backward(&r.net, r.p, r.dy, r.g, NULL, &err), TR_OK); /* n stays the last good one */
    nn_net fresh;
    assert_int_equal(nn_net_init(&fresh, &r.a, &err), TR_OK);
    assert_int_equal(nn_net_backward(&fresh, r.p, r.dy, r.g, NULL, &err), TR_EINTERNAL);
    nn_net_free(&fresh);
    free(all);
    free(one);
    rig_free(&r);
}

/* par_for covers [0, n) once in contiguous chunks; a network on 3 threads computes bit for bit what it does on one,
 * on batches of one or several convolution gradient chunks. */
static void mark(void *ctx, size_t lo, size_t hi) {
    int *seen = ctx;
    for (size_t i = lo; i < hi; i++) seen[i]++;
}

static void test_threads(void **state) {
    (void)state;
    par *p = NULL;
    tr_err err;
    assert_int_equal(par_new(3, &p, &err), TR_OK);
    assert_int_equal(par_threads(p), 3);
    for (size_t n = 0; n < 40; n++) {
        int seen[40] = {0};
        par_for(p, n, mark, seen);
        for (size_t i = 0; i < 40; i++) assert_int_equal(seen[i], i < n ? 1 : 0);
    }
    par *none = NULL;
    assert_int_equal(par_new(0, &none, &err), TR_EINVAL);
    assert_null(none);
    /* the golden cases, then the whole CNN on batches of several gradient chunks (the golden rows repeated and
     * shifted) */
    for (size_t k = 0; k < N_CASES + 3; k++) {
        const golden_nn_case *gc = &golden_nn_cases[k < N_CASES ? k : N_CASES - 3];
        rig a, b;
        const float *ya, *yb;
        rig_new(&a, gc);
        rig_new(&b, gc);
        if (k >= N_CASES) {
            size_t n = k == N_CASES ? NN_CONV_CHUNK + 1 : k == N_CASES + 1 ? 3 * NN_CONV_CHUNK : 5 * NN_CONV_CHUNK - 3;
            rig_grow(&a, n);
            rig_grow(&b, n);
        }
        nn_net_set_par(&b.net, p);
        assert_int_equal(nn_net_forward(&a.net, a.p, a.s, a.x, a.n, gc->train, NULL, &ya, &err), TR_OK);
        assert_int_equal(nn_net_forward(&b.net, b.p, b.s, b.x, b.n, gc->train, NULL, &yb, &err), TR_OK);
        assert_memory_equal(ya, yb, a.n * a.out * sizeof(float));
        assert_memory_equal(a.s, b.s, a.a.n_state * sizeof(float));
        assert_int_equal(nn_net_backward(&a.net, a.p, a.dy, a.g, a.dx, &err), TR_OK);
        assert_int_equal(nn_net_backward(&b.net, b.p, b.dy, b.g, b.dx, &err), TR_OK);
        assert_memory_equal(a.g, b.g, a.a.n_params * sizeof(float));
        assert_memory_equal(a.dx, b.dx, a.n * a.in * sizeof(float));
        rig_free(&a);
        rig_free(&b);
    }
    par_free(p);
    par_free(NULL);
}

int main(void) {
    openblas_set_num_threads(1); /* so that the pool runs the GEMMs too */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_pytorch),
        cmocka_unit_test(test_golden_pytorch_capped),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_dropout_pytorch),
        cmocka_unit_test(test_batches_and_errors),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
