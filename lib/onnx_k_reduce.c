/* onnx_k_reduce.c - reductions along axes: Softmax, LogSoftmax, Reduce*, LpNormalization, LRN, GlobalMaxPool. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"

/* --- Softmax and LogSoftmax: nd->i[0] = axis, nd->i[1] = 1 for the 2-D
 * coercion of opsets before 13 (the axis and everything after it is one row) --- */

static int infer_softmax(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, axis;
    static const char *const known[] = {"axis", NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 1, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t a = g->opset < 13 ? 1 : -1;
    if ((rc = onx_attr_int(g, nd, "axis", &a, err)) < 0) return rc;
    if (!onx_axis(a, x->rank, 0, &axis))
        return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    nd->i[1] = g->opset < 13;
    for (int i = axis; i < (nd->i[1] ? x->rank : axis + 1); i++)
        if (x->dim[i].p) return onx_fail(g, nd, err, "a softmax across the batch dimension is not supported");
    nd->i[0] = axis;
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

static void run_softmax(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    int axis = (int)nd->i[0], logsm = nd->op->name[0] == 'L';
    int64_t outer, n = in[0].d[axis], inner;
    onx_t_around(&in[0], axis, &outer, &inner);
    if (nd->i[1]) n *= inner, inner = 1; /* before opset 13: 2-D coercion, softmax over all after axis */
    const float *x = in[0].p;
    float *y = out[0].p;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *px = x + o * n * inner + j;
            float *py = y + o * n * inner + j, m = -INFINITY, s = 0.0f;
            for (int64_t k = 0; k < n; k++) m = fmaxf(m, px[k * inner]);
            for (int64_t k = 0; k < n; k++) s += expf(px[k * inner] - m);
            if (logsm) {
                float ls = logf(s) + m;
                for (int64_t k = 0; k < n; k++) py[k * inner] = px[k * inner] - ls;
            } else {
                float r = 1.0f / s;
                for (int64_t k = 0; k < n; k++) py[k * inner] = expf(px[k * inner] - m) * r;
            }
        }
}

/* --- ReduceMean, ReduceSum, ReduceMax, ReduceL2 and GlobalMaxPool:
 * nd->p = int64 mask[ONX_MAX_RANK] (1: reduced), nd->i[0] = kind --- */

enum { R_MEAN, R_SUM, R_MAX, R_L2 };

static int red_kind(const char *name) {
    return !strcmp(name, "ReduceMean")  ? R_MEAN
           : !strcmp(name, "ReduceSum") ? R_SUM
           : !strcmp(name, "ReduceL2")  ? R_L2
                                        : R_MAX;
}

static int set_reduce(onx_graph *g, onx_node *nd, const onx_value *x, const int *mark, int keep, tr_err *err) {
    int64_t *m = calloc(ONX_MAX_RANK, sizeof *m);
    if (!m) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    onx_dim o[ONX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++) {
        m[i] = mark[i];
        if (mark[i] && x->dim[i].p) {
            free(m);
            return onx_fail(g, nd, err, "reducing the batch dimension is not supported");
        }
        if (mark[i] && x->dim[i].c == 0 && red_kind(nd->op->name) == R_MAX) {
            free(m);
            return onx_fail(g, nd, err, "the maximum of an empty dimension is undefined");
        }
        if (!mark[i])
            o[r++] = x->dim[i];
        else if (keep)
            o[r++] = onx_d(1);
    }
    nd->p = m;
    onx_set_out(g, nd, 0, ONX_F32, r, o);
    return TR_OK;
}

static int infer_reduce(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, n = 0, given = 0, mark[ONX_MAX_RANK] = {0};
    int axes_in = red_kind(nd->op->name) == R_SUM && g->opset >= 13;
    static const char *const known_attr[] = {"axes", "keepdims", NULL};
    static const char *const known_in[] = {"keepdims", "noop_with_empty_axes", NULL};
    if ((rc = onx_arity(g, nd, 1, axes_in ? 2 : 1, 1, err)) ||
        (rc = onx_attr_only(g, nd, axes_in ? known_in : known_attr, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 0, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0), *av = onx_in(g, nd, 1);
    int64_t ax[ONX_MAX_RANK], keep = 1, noop = 0;
    if ((rc = onx_attr_int(g, nd, "keepdims", &keep, err)) < 0) return rc;
    if (axes_in) {
        if ((rc = onx_attr_int(g, nd, "noop_with_empty_axes", &noop, err)) < 0) return rc;
        if (av) {
            if (av->dtype != ONX_I64 || !av->is_const || av->rank != 1 || av->dim[0].p || av->dim[0].c > ONX_MAX_RANK)
                return onx_fail(g, nd, err, "axes must be a constant 1-D int64 tensor of at most %d values",
                                ONX_MAX_RANK);
            n = (int)av->dim[0].c;
            for (int i = 0; i < n; i++) ax[i] = ((const onx_dim *)av->data)[i].c;
            given = n > 0;
        }
    } else if ((rc = onx_attr_ints(g, nd, "axes", ax, ONX_MAX_RANK, &n, err)) < 0) {
        return rc;
    } else {
        given = rc && n > 0;
    }
    nd->i[0] = red_kind(nd->op->name);
    for (int i = 0; i < n; i++) {
        int a;
        if (!onx_axis(ax[i], x->rank, 0, &a))
            return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)ax[i], x->rank);
        mark[a] = 1;
    }
    for (int i = 0; !given && !noop && i < x->rank; i++) mark[i] = 1; /* no axes: all of them */
    return set_reduce(g, nd, x, mark, keep != 0, err);
}

static int infer_gmaxpool(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, mark[ONX_MAX_RANK] = {0};
    static const char *const known[] = {NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 3, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    for (int i = 2; i < x->rank; i++) mark[i] = 1;
    nd->i[0] = R_MAX;
    return set_reduce(g, nd, x, mark, 1, err);
}

static void run_reduce(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const int64_t *mark = nd->p;
    int r = in[0].rank, k = (int)nd->i[0];
    int64_t ost[ONX_MAX_RANK], idx[ONX_MAX_RANK] = {0}, s = 1, cnt = 1;
    for (int i = r - 1; i >= 0; i--) {
        ost[i] = mark[i] ? 0 : s;
        if (!mark[i])
            s *= in[0].d[i];
        else
            cnt *= in[0].d[i];
    }
    float *y = out[0].p;
    const float *x = in[0].p;
    for (size_t i = 0; i < out[0].n; i++) y[i] = k == R_MAX ? -INFINITY : 0.0f;
    int64_t inner = r ? in[0].d[r - 1] : 1, is = r ? ost[r - 1] : 0;
    size_t rows = inner ? in[0].n / (size_t)inner : 0;
    for (size_t row = 0; row < rows; row++) {
        int64_t off = 0;
        for (int j = 0; j < r - 1; j++) off += idx[j] * ost[j];
        const float *px = x + row * (size_t)inner;
        float *py = y + off;
        if (k == R_MAX)
            for (int64_t i = 0; i < inner; i++) py[i * is] = fmaxf(py[i * is], px[i]);
        else if (k == R_L2)
            for (int64_t i = 0; i < inner; i++) py[i * is] += px[i] * px[i];
        else
            for (int64_t i = 0; i < inner; i++) py[i * is] += px[i];
        for (int j = r - 2; j >= 0; j--) {
            if (++idx[j] < in[0].d[j]) break;
            idx[j] = 0;
        }
    }
    if (k == R_MEAN)
        for (size_t i = 0; i < out[0].n; i++) y[i] = cnt ? y[i] / (float)cnt : NAN;
    if (k == R_L2)
        for (size_t i = 0; i < out[0].n; i++) y[i] = sqrtf(y[i]);
}

/* --- LpNormalization: nd->i[0] = axis, nd->i[1] = p (1 or 2) --- */

static int infer_lpnorm(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, axis;
    static const char *const known[] = {"axis", "p", NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 1, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t a = -1, p = 2;
    if ((rc = onx_attr_int(g, nd, "axis", &a, err)) < 0 || (rc = onx_attr_int(g, nd, "p", &p, err)) < 0) return rc;
    if (!onx_axis(a, x->rank, 0, &axis))
        return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    if (p != 1 && p != 2) return onx_fail(g, nd, err, "p is %lld; 1 or 2 are defined", (long long)p);
    if (x->dim[axis].p) return onx_fail(g, nd, err, "normalising across the batch dimension is not supported");
    nd->i[0] = axis, nd->i[1] = p;
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

static void run_lpnorm(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    int axis = (int)nd->i[0];
    int64_t outer, n = in[0].d[axis], inner;
    onx_t_around(&in[0], axis, &outer, &inner);
    const float *x = in[0].p;
    float *y = out[0].p;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *px = x + o * n * inner + j;
            float *py = y + o * n * inner + j, s = 0.0f;
            for (int64_t k = 0; k < n; k++) s += nd->i[1] == 1 ? fabsf(px[k * inner]) : px[k * inner] * px[k * inner];
            if (nd->i[1] == 2) s = sqrtf(s);
            for (int64_t k = 0; k < n; k++) py[k * inner] = px[k * inner] / s;
        }
}

/* --- LRN across channels: nd->i[0] = size, f[0..2] = alpha, beta, bias --- */

static int infer_lrn(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc;
    static const char *const known[] = {"alpha", "beta", "bias", "size", NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 3, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t size = 0;
    nd->f[0] = 1e-4f, nd->f[1] = 0.75f, nd->f[2] = 1.0f;
    if ((rc = onx_attr_float(g, nd, "alpha", &nd->f[0], err)) < 0 ||
        (rc = onx_attr_float(g, nd, "beta", &nd->f[1], err)) < 0 ||
        (rc = onx_attr_float(g, nd, "bias", &nd->f[2], err)) < 0 || (rc = onx_attr_int(g, nd, "size", &size, err)) < 0)
        return rc;
    if (rc == 0) return onx_fail(g, nd, err, "attribute \"size\" is required");
    if (size < 1 || size > 65535) return onx_fail(g, nd, err, "size %lld is not 1 to 65535", (long long)size);
    if (x->dim[1].p) return onx_fail(g, nd, err, "dimension 1 (channels) depends on the batch size");
    nd->i[0] = size;
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

static void run_lrn(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    int64_t size = nd->i[0], c = in[0].d[1], inner = 1, lo = (size - 1) / 2, hi = size / 2;
    for (int i = 2; i < in[0].rank; i++) inner *= in[0].d[i];
    const float *x = in[0].p;
    float *y = out[0].p, k = nd->f[0] / (float)size;
    for (int64_t b = 0; b < in[0].d[0]; b++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t j = 0; j < inner; j++) {
                float s = 0.0f;
                int64_t from = ch - lo < 0 ? 0 : ch - lo, to = ch + hi >= c ? c - 1 : ch + hi;
                for (int64_t q = from; q <= to; q++) {
                    float v = x[(b * c + q) * inner + j];
                    s += v * v;
                }
                size_t at = (size_t)((b * c + ch) * inner + j);
                y[at] = x[at] / powf(nd->f[2] + k * s, nd->f[1]);
            }
}

const onx_op onx_ops_reduce[] = {
    {"Softmax", 1, infer_softmax, run_softmax, NULL, NULL, 0},
    {"LogSoftmax", 1, infer_softmax, run_softmax, NULL, NULL, 0},
    {"ReduceMean", 1, infer_reduce, run_reduce, NULL, NULL, 0},
    {"ReduceSum", 1, infer_reduce, run_reduce, NULL, NULL, 0},
    {"ReduceMax", 1, infer_reduce, run_reduce, NULL, NULL, 0},
    {"ReduceL2", 1, infer_reduce, run_reduce, NULL, NULL, 0},
    {"GlobalMaxPool", 1, infer_gmaxpool, run_reduce, NULL, NULL, 0},
    {"LpNormalization", 1, infer_lpnorm, run_lpnorm, NULL, NULL, 0},
    {"LRN", 1, infer_lrn, run_lrn, NULL, NULL, 0},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
