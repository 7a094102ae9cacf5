/* onnx_k_norm.c - BatchNormalization (inference) as a per-channel affine map y = x*a + b,
 * LayerNormalization over a sample's trailing dimensions, InstanceNormalization per channel. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"

/* nd->p = {a[L], b[L]}; nd->i[0] = L (channels, or C*H*W when not spatial). */
static int infer_bn(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const known[] = {"epsilon",         "momentum",      "spatial", "is_test",
                                        "consumed_inputs", "training_mode", NULL};
    int rc;
    if ((rc = onx_arity(g, nd, 5, 5, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 2, ONX_MAX_RANK, err)))
        return rc;
    int64_t spatial = 1, is_test = g->opset < 7 ? 0 : 1, training = 0;
    float eps = 1e-5f;
    if ((rc = onx_attr_int(g, nd, "spatial", &spatial, err)) < 0 ||
        (rc = onx_attr_int(g, nd, "is_test", &is_test, err)) < 0 ||
        (rc = onx_attr_int(g, nd, "training_mode", &training, err)) < 0 ||
        (rc = onx_attr_float(g, nd, "epsilon", &eps, err)) < 0)
        return rc;
    if (!is_test || training) return onx_fail(g, nd, err, "training mode is not supported (inference only)");
    if (eps < 0) return onx_fail(g, nd, err, "epsilon %g is negative", (double)eps);
    const onx_value *x = onx_in(g, nd, 0);
    onx_dim L = x->dim[1];
    if (!spatial && !onx_numel(x->dim, 1, x->rank, &L)) return onx_fail(g, nd, err, "shape overflows");
    if (L.p) return onx_fail(g, nd, err, "the channel dimension depends on the batch size");
    const float *pr[4];
    for (int k = 1; k < 5; k++) {
        const onx_value *v = onx_in(g, nd, k);
        onx_dim n;
        if (v->dtype != ONX_F32 || !v->is_const || !onx_numel(v->dim, 0, v->rank, &n) || n.c != L.c)
            return onx_fail(g, nd, err, "input %d \"%s\" must be a constant float tensor of %lld values", k, v->name,
                            (long long)L.c);
        pr[k - 1] = v->data;
    }
    float *ab = malloc(sizeof *ab * (size_t)(2 * L.c + 1));
    if (!ab) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    for (int64_t c = 0; c < L.c; c++) {
        if (pr[3][c] + eps <= 0) {
            free(ab);
            return onx_fail(g, nd, err, "variance + epsilon is not positive for channel %lld", (long long)c);
        }
        float a = pr[0][c] / sqrtf(pr[3][c] + eps);
        ab[c] = a;
        ab[L.c + c] = pr[1][c] - pr[2][c] * a;
    }
    nd->p = ab;
    nd->i[0] = L.c;
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

static void run_bn(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const float *ab = nd->p, *x = in[0].p;
    float *y = out[0].p;
    size_t L = (size_t)nd->i[0], rows = in[0].d[0] > 0 ? (size_t)in[0].d[0] : 0;
    size_t inner = rows && L ? in[0].n / rows / L : 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < L; c++) {
            float a = ab[c], b = ab[L + c];
            const float *xs = x + (r * L + c) * inner;
            float *ys = y + (r * L + c) * inner;
            for (size_t i = 0; i < inner; i++) ys[i] = xs[i] * a + b;
        }
    onx_act_apply(nd->act, nd->act_lo, nd->act_hi, y, out[0].n);
}

/* The rest of a normalisation's inference: nd->p = {scale[count], bias[count]} from inputs 1 and 2,
 * constant floats of count values (with loose, LayerNormalization's, also one value broadcast, and no
 * bias meaning zeros); nd->i[0] = count, nd->f[0] = eps; the output has x's shape. */
static int norm_params(onx_graph *g, onx_node *nd, const onx_value *x, int64_t count, int loose, float eps,
                       tr_err *err) {
    float *sb = malloc(sizeof *sb * (size_t)(2 * count + 1));
    if (!sb) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    nd->p = sb;
    for (int k = 1; k < 3; k++) {
        const onx_value *v = onx_in(g, nd, k);
        onx_dim n = onx_d(0);
        if (!v && loose && k == 2) {
            memset(sb + count, 0, sizeof *sb * (size_t)count);
            continue;
        }
        if (!v || v->dtype != ONX_F32 || !v->is_const || !onx_numel(v->dim, 0, v->rank, &n) ||
            (n.c != count && !(loose && n.c == 1)))
            return onx_fail(g, nd, err, "input %d must be a constant float tensor of %lld values%s", k,
                            (long long)count, loose ? " (or one)" : "");
        for (int64_t i = 0; i < count; i++) sb[(k - 1) * count + i] = ((const float *)v->data)[n.c == 1 ? 0 : i];
    }
    nd->i[0] = count;
    nd->f[0] = eps;
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

/* LayerNormalization (opset 17): y = (x - mean) / sqrt(var + epsilon) * scale + bias over the
 * dimensions from axis on (never the batch's); scale and bias constant, of those dimensions' size
 * (or one value). nd->i[0] = inner; nd->f[0] = epsilon; nd->p = {scale, bias}. */
static int infer_ln(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const known[] = {"axis", "epsilon", "stash_type", NULL};
    int rc, axis;
    if ((rc = onx_arity(g, nd, 2, 3, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 2, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t a = -1, stash = 1;
    float eps = 1e-5f;
    if ((rc = onx_attr_int(g, nd, "axis", &a, err)) < 0 || (rc = onx_attr_float(g, nd, "epsilon", &eps, err)) < 0 ||
        (rc = onx_attr_int(g, nd, "stash_type", &stash, err)) < 0)
        return rc;
    if (!onx_axis(a, x->rank, 0, &axis))
        return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    if (axis == 0) return onx_fail(g, nd, err, "normalising across the batch dimension is not supported");
    if (eps < 0) return onx_fail(g, nd, err, "epsilon %g is negative", (double)eps);
    onx_dim inner;
    if (!onx_numel(x->dim, axis, x->rank, &inner) || inner.p)
        return onx_fail(g, nd, err, "the normalised dimensions depend on the batch size");
    return norm_params(g, nd, x, inner.c, 1, eps, err);
}

/* InstanceNormalization: each channel of each sample normalised over its spatial positions, then
 * scale[c] and bias[c] (constant). nd->i[0] = channels; nd->f[0] = epsilon; nd->p = {scale, bias}. */
static int infer_in(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const known[] = {"epsilon", "consumed_inputs", NULL};
    int rc;
    if ((rc = onx_arity(g, nd, 3, 3, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 3, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    float eps = 1e-5f;
    if ((rc = onx_attr_float(g, nd, "epsilon", &eps, err)) < 0) return rc;
    if (eps < 0) return onx_fail(g, nd, err, "epsilon %g is negative", (double)eps);
    onx_dim C = x->dim[1], sp;
    if (C.p || !onx_numel(x->dim, 2, x->rank, &sp) || sp.p)
        return onx_fail(g, nd, err, "the channel or spatial dimensions depend on the batch size");
    return norm_params(g, nd, x, C.c, 0, eps, err);
}

/* Rows of n values normalised with their own mean and variance, then times sc[c] plus bi[c] of
 * row r's channel c = r % channels (LayerNormalization: one row per sample, per-element sc/bi). */
static void norm_rows(const float *x, float *y, size_t rows, size_t n, float eps, const float *sc, const float *bi,
                      size_t channels) {
    for (size_t r = 0; r < rows; r++, x += n, y += n) {
        double sum = 0, sq = 0;
        for (size_t i = 0; i < n; i++) sum += x[i];
        double mean = sum / (double)n;
        for (size_t i = 0; i < n; i++) sq += (x[i] - mean) * (x[i] - mean);
        float inv = (float)(1.0 / sqrt(sq / (double)n + (double)eps)), m = (float)mean;
        if (channels) {
            float a = inv * sc[r % channels], b = bi[r % channels];
            for (size_t i = 0; i < n; i++) y[i] = (x[i] - m) * a + b;
        } else {
            for (size_t i = 0; i < n; i++) y[i] = (x[i] - m) * inv * sc[i] + bi[i];
        }
    }
}

static void run_in(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    size_t C = (size_t)nd->i[0], rows = in[0].d[0] > 0 ? (size_t)in[0].d[0] * C : 0;
    const float *sc = nd->p;
    norm_rows(in[0].p, out[0].p, rows, rows ? in[0].n / rows : 0, nd->f[0], sc, sc + C, C);
}

static void run_ln(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    size_t inner = (size_t)nd->i[0];
    const float *sc = nd->p;
    norm_rows(in[0].p, out[0].p, inner ? in[0].n / inner : 0, inner, nd->f[0], sc, sc + inner, 0);
}

const onx_op onx_ops_norm[] = {
    {"BatchNormalization", 6, infer_bn, run_bn, NULL, NULL, 1},
    {"LayerNormalization", 17, infer_ln, run_ln, NULL, NULL, 0},
    {"InstanceNormalization", 6, infer_in, run_in, NULL, NULL, 0},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
