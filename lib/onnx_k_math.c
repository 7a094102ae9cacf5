/* onnx_k_math.c - Pow, variadic Sum/Max/Min with numpy broadcasting, and Cast between float and int64. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"

enum { M_POW, M_SUM, M_MAX, M_MIN };

static int math_kind(const char *n) {
    return !strcmp(n, "Pow") ? M_POW : !strcmp(n, "Sum") ? M_SUM : !strcmp(n, "Max") ? M_MAX : M_MIN;
}

/* Pow's integer exponent (opset 12 on), a constant: its values as floats in nd->p. */
static int int_exponent(onx_graph *g, onx_node *nd, const onx_value *v, tr_err *err) {
    onx_dim cnt;
    if (!v->is_const) return onx_fail(g, nd, err, "an integer exponent must be computable at load");
    if (!onx_numel(v->dim, 0, v->rank, &cnt) || cnt.p) return onx_fail(g, nd, err, "the exponent's shape overflows");
    float *e = malloc(sizeof *e * (size_t)(cnt.c + 1));
    if (!e) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    for (int64_t j = 0; j < cnt.c; j++) {
        onx_dim d = ((const onx_dim *)v->data)[j];
        if (d.p) {
            free(e);
            return onx_fail(g, nd, err, "the exponent depends on the batch size");
        }
        e[j] = (float)d.c;
    }
    nd->p = e;
    return TR_OK;
}

static int infer_nary(onx_graph *g, onx_node *nd, tr_err *err) {
    int k = math_kind(nd->op->name), rc;
    static const char *const known[] = {NULL};
    if ((rc = onx_arity(g, nd, k == M_POW ? 2 : 1, k == M_POW ? 2 : ONX_MAX_IO, 1, err)) ||
        (rc = onx_attr_only(g, nd, known, err)))
        return rc;
    onx_value acc = {0};
    for (int i = 0; i < nd->n_in; i++) {
        const onx_value *v = onx_in(g, nd, i);
        if (k == M_POW && i == 1 && g->opset >= 12 && v && v->dtype == ONX_I64 && (rc = int_exponent(g, nd, v, err)))
            return rc;
        if (!nd->p && (rc = onx_need(g, nd, i, ONX_F32, 0, ONX_MAX_RANK, err))) return rc;
        if (i == 0) {
            acc.rank = v->rank;
            memcpy(acc.dim, v->dim, sizeof acc.dim);
        } else {
            onx_value prev = acc; /* onx_broadcast must not write what it reads */
            if (!onx_broadcast(&prev, v, &acc.rank, acc.dim)) {
                char sa[128], sb[128];
                return onx_fail(g, nd, err, "input %d %s does not broadcast with %s", i,
                                onx_shape_str(v, sb, sizeof sb), onx_shape_str(&prev, sa, sizeof sa));
            }
        }
    }
    nd->i[0] = k;
    onx_set_out(g, nd, 0, ONX_F32, acc.rank, acc.dim);
    return TR_OK;
}

/* y = a op b, a and b numpy-broadcast to y's shape (a may be y itself). */
static void bcast(int k, const onx_t *a, const onx_t *b, const onx_t *y) {
    int r = y->rank;
    int64_t sa[ONX_MAX_RANK], sb[ONX_MAX_RANK], idx[ONX_MAX_RANK] = {0};
    onx_bstrides(a, r, y->d, sa);
    onx_bstrides(b, r, y->d, sb);
    int64_t inner = r ? y->d[r - 1] : 1, as = r ? sa[r - 1] : 0, bs = r ? sb[r - 1] : 0;
    size_t rows = inner ? y->n / (size_t)inner : 0;
    for (size_t row = 0; row < rows; row++) {
        int64_t oa = 0, ob = 0;
        for (int j = 0; j < r - 1; j++) oa += idx[j] * sa[j], ob += idx[j] * sb[j];
        const float *pa = (const float *)a->p + oa, *pb = (const float *)b->p + ob;
        float *py = (float *)y->p + row * (size_t)inner;
        switch (k) {
        case M_POW:
            for (int64_t i = 0; i < inner; i++) py[i] = powf(pa[i * as], pb[i * bs]);
            break;
        case M_SUM:
            for (int64_t i = 0; i < inner; i++) py[i] = pa[i * as] + pb[i * bs];
            break;
        case M_MAX: /* NaN propagates, as numpy's maximum */
            for (int64_t i = 0; i < inner; i++) {
                float u = pa[i * as], v = pb[i * bs];
                py[i] = u != u || u > v ? u : v;
            }
            break;
        default:
            for (int64_t i = 0; i < inner; i++) {
                float u = pa[i * as], v = pb[i * bs];
                py[i] = u != u || u < v ? u : v;
            }
        }
        for (int j = r - 2; j >= 0; j--) {
            if (++idx[j] < y->d[j]) break;
            idx[j] = 0;
        }
    }
}

static void run_nary(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    int k = (int)nd->i[0];
    if (nd->n_in == 1) {
        if (out[0].p != in[0].p) memcpy(out[0].p, in[0].p, out[0].n * sizeof(float));
        return;
    }
    onx_t b = in[1];
    if (nd->p) b.p = nd->p, b.esz = sizeof(float); /* an integer exponent, as floats */
    bcast(k, &in[0], &b, &out[0]);
    for (int i = 2; i < nd->n_in; i++) bcast(k, &out[0], &in[i], &out[0]);
}

/* Cast: float32 <-> int64 only. int64 tensors live at load (shape
 * arithmetic), so a cast from or to int64 needs a constant input. */
static int infer_cast(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc;
    static const char *const known[] = {"to", "saturate", NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err))) return rc;
    int64_t to = 0;
    if ((rc = onx_attr_int(g, nd, "to", &to, err)) < 0) return rc;
    if (rc == 0) return onx_fail(g, nd, err, "attribute \"to\" is required");
    if (to != ONX_F32 && to != ONX_I64)
        return onx_fail(g, nd, err, "casting to element type %lld is not supported (float 1, int64 7)", (long long)to);
    const onx_value *x = onx_in(g, nd, 0);
    if (x->dtype != (onx_dtype)to && !x->is_const)
        return onx_fail(g, nd, err, "a cast between float and int64 needs an input computable at load");
    onx_dim cnt;
    if (!onx_numel(x->dim, 0, x->rank, &cnt)) return onx_fail(g, nd, err, "shape overflows");
    if (x->dtype == ONX_I64 && to == ONX_F32)
        for (int64_t i = 0; i < cnt.c; i++)
            if (((const onx_dim *)x->data)[i].p) return onx_fail(g, nd, err, "a value depends on the batch size");
    onx_set_out(g, nd, 0, (onx_dtype)to, x->rank, x->dim);
    return TR_OK;
}

static void run_cast(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    if (in[0].esz == out[0].esz) {
        if (out[0].p != in[0].p) memcpy(out[0].p, in[0].p, in[0].n * in[0].esz);
    } else if (in[0].esz == sizeof(float)) { /* float -> int64 truncates toward zero */
        const float *x = in[0].p;
        onx_dim *y = out[0].p;
        for (size_t i = 0; i < in[0].n; i++) {
            float v = x[i];
            y[i].c = v != v ? 0 : v >= 9.2e18f ? INT64_MAX : v <= -9.2e18f ? INT64_MIN : (int64_t)v;
            y[i].p = 0;
        }
    } else { /* int64 -> float; a batch-sized value would have been refused */
        const onx_dim *x = in[0].p;
        float *y = out[0].p;
        for (size_t i = 0; i < in[0].n; i++) y[i] = (float)x[i].c;
    }
}

const onx_op onx_ops_math[] = {
    {"Pow", 7, infer_nary, run_nary, NULL, NULL, 0},  {"Sum", 6, infer_nary, run_nary, NULL, NULL, 0},
    {"Max", 6, infer_nary, run_nary, NULL, NULL, 0},  {"Min", 6, infer_nary, run_nary, NULL, NULL, 0},
    {"Cast", 6, infer_cast, run_cast, NULL, NULL, 0}, {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
