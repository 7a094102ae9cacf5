/* onnx_k_act.c - elementwise activations and unary math (LeakyRelu ... Sqrt, Clip, PRelu). */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"

enum {
    A_LEAKY,
    A_ELU,
    A_SELU,
    A_SIGMOID,
    A_HSIGMOID,
    A_HSWISH,
    A_TANH,
    A_SOFTPLUS,
    A_SOFTSIGN,
    A_ERF,
    A_ABS,
    A_NEG,
    A_EXP,
    A_LOG,
    A_SQRT,
    A_CLIP
};

/* Name, kind, attributes with their defaults (alpha in f[0], beta/gamma in f[1]). */
static const struct {
    const char *name;
    int kind;
    const char *a0, *a1;
    float d0, d1;
} UNARY[] = {
    {"LeakyRelu", A_LEAKY, "alpha", NULL, 0.01f, 0},
    {"Elu", A_ELU, "alpha", NULL, 1.0f, 0},
    {"Selu", A_SELU, "alpha", "gamma", 1.67326319217681884765625f, 1.05070102214813232421875f},
    {"Sigmoid", A_SIGMOID, NULL, NULL, 0, 0},
    {"HardSigmoid", A_HSIGMOID, "alpha", "beta", 0.2f, 0.5f},
    {"HardSwish", A_HSWISH, NULL, NULL, 0, 0},
    {"Tanh", A_TANH, NULL, NULL, 0, 0},
    {"Softplus", A_SOFTPLUS, NULL, NULL, 0, 0},
    {"Softsign", A_SOFTSIGN, NULL, NULL, 0, 0},
    {"Erf", A_ERF, NULL, NULL, 0, 0},
    {"Abs", A_ABS, NULL, NULL, 0, 0},
    {"Neg", A_NEG, NULL, NULL, 0, 0},
    {"Exp", A_EXP, NULL, NULL, 0, 0},
    {"Log", A_LOG, NULL, NULL, 0, 0},
    {"Sqrt", A_SQRT, NULL, NULL, 0, 0},
};

static int infer_unary(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, u = -1;
    for (size_t i = 0; i < sizeof UNARY / sizeof UNARY[0] && u < 0; i++)
        if (!strcmp(UNARY[i].name, nd->op->name)) u = (int)i;
    if (u < 0) return onx_fail(g, nd, err, "unknown activation");
    const char *known[] = {UNARY[u].a0 ? UNARY[u].a0 : "", UNARY[u].a1 ? UNARY[u].a1 : "", NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_need(g, nd, 0, ONX_F32, 0, ONX_MAX_RANK, err)) ||
        (rc = onx_attr_only(g, nd, known, err)))
        return rc;
    nd->i[0] = UNARY[u].kind;
    nd->f[0] = UNARY[u].d0, nd->f[1] = UNARY[u].d1;
    if (UNARY[u].a0 && (rc = onx_attr_float(g, nd, UNARY[u].a0, &nd->f[0], err)) < 0) return rc;
    if (UNARY[u].a1 && (rc = onx_attr_float(g, nd, UNARY[u].a1, &nd->f[1], err)) < 0) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

/* A constant float scalar input (Clip's min and max from opset 11). */
static int const_scalar(onx_graph *g, const onx_node *nd, int k, float *out, tr_err *err) {
    const onx_value *v = onx_in(g, nd, k);
    if (!v) return TR_OK;
    if (v->dtype != ONX_F32 || !v->is_const || !onx_one(v))
        return onx_fail(g, nd, err, "input %d must be a constant float scalar", k);
    *out = ((const float *)v->data)[0];
    return TR_OK;
}

/* Clip: min in f[0], max in f[1] (the layout onnx_opt.c reads when it fuses Clip). */
static int infer_clip(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc;
    nd->f[0] = -FLT_MAX, nd->f[1] = FLT_MAX;
    if (g->opset < 11) {
        static const char *const known[] = {"min", "max", NULL};
        if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err))) return rc;
        if ((rc = onx_attr_float(g, nd, "min", &nd->f[0], err)) < 0 ||
            (rc = onx_attr_float(g, nd, "max", &nd->f[1], err)) < 0)
            return rc;
    } else {
        static const char *const known[] = {NULL};
        if ((rc = onx_arity(g, nd, 1, 3, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
            (rc = const_scalar(g, nd, 1, &nd->f[0], err)) || (rc = const_scalar(g, nd, 2, &nd->f[1], err)))
            return rc;
    }
    if ((rc = onx_need(g, nd, 0, ONX_F32, 0, ONX_MAX_RANK, err))) return rc;
    nd->i[0] = A_CLIP;
    const onx_value *x = onx_in(g, nd, 0);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

/* One loop per kind so each stays a plain, vectorisable pass. */
static void run_unary(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const float *restrict x = in[0].p;
    float *restrict y = out[0].p;
    size_t n = out[0].n;
    float a = nd->f[0], b = nd->f[1];
    switch ((int)nd->i[0]) {
    case A_LEAKY:
        for (size_t i = 0; i < n; i++) y[i] = x[i] >= 0.0f ? x[i] : a * x[i];
        break;
    case A_ELU:
        for (size_t i = 0; i < n; i++) y[i] = x[i] >= 0.0f ? x[i] : a * expm1f(x[i]);
        break;
    case A_SELU:
        for (size_t i = 0; i < n; i++) y[i] = b * (x[i] > 0.0f ? x[i] : a * expm1f(x[i]));
        break;
    case A_SIGMOID:
        for (size_t i = 0; i < n; i++) {
            float e = expf(-fabsf(x[i])); /* never overflows */
            y[i] = x[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        }
        break;
    case A_HSIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = fminf(fmaxf(a * x[i] + b, 0.0f), 1.0f);
        break;
    case A_HSWISH:
        for (size_t i = 0; i < n; i++) y[i] = x[i] * fminf(fmaxf(x[i] / 6.0f + 0.5f, 0.0f), 1.0f);
        break;
    case A_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(x[i]);
        break;
    case A_SOFTPLUS: /* log(1 + e^x) without overflow */
        for (size_t i = 0; i < n; i++) y[i] = fmaxf(x[i], 0.0f) + log1pf(expf(-fabsf(x[i])));
        break;
    case A_SOFTSIGN:
        for (size_t i = 0; i < n; i++) y[i] = x[i] / (1.0f + fabsf(x[i]));
        break;
    case A_ERF:
        for (size_t i = 0; i < n; i++) y[i] = erff(x[i]);
        break;
    case A_ABS:
        for (size_t i = 0; i < n; i++) y[i] = fabsf(x[i]);
        break;
    case A_NEG:
        for (size_t i = 0; i < n; i++) y[i] = -x[i];
        break;
    case A_EXP:
        for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
        break;
    case A_LOG:
        for (size_t i = 0; i < n; i++) y[i] = logf(x[i]);
        break;
    case A_SQRT:
        for (size_t i = 0; i < n; i++) y[i] = sqrtf(x[i]);
        break;
    default: /* A_CLIP */
        if (y != x) memcpy(y, x, n * sizeof *y);
        onx_act_apply(ONX_ACT_CLIP, a, b, y, n);
    }
}

/* PRelu: slope broadcasts to X (numpy, one way). Before opset 7 the slope
 * is one value or one per channel (dimension 1): nd->i[1] = 1 then. */
static int infer_prelu(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, r;
    static const char *const known[] = {NULL};
    if ((rc = onx_arity(g, nd, 2, 2, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 0, ONX_MAX_RANK, err)) ||
        (rc = onx_need(g, nd, 1, ONX_F32, 0, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0), *s = onx_in(g, nd, 1);
    onx_dim d[ONX_MAX_RANK];
    nd->i[1] = 0;
    if (g->opset < 7 && s->rank == 1 && x->rank >= 2 && onx_deq(s->dim[0], x->dim[1]) &&
        !onx_deq(s->dim[0], onx_d(1))) {
        nd->i[1] = 1;
    } else if (!onx_broadcast(x, s, &r, d) || r != x->rank || memcmp(d, x->dim, sizeof(onx_dim) * (size_t)r)) {
        char sx[128], ss[128];
        return onx_fail(g, nd, err, "slope %s does not broadcast to the input %s", onx_shape_str(s, ss, sizeof ss),
                        onx_shape_str(x, sx, sizeof sx));
    }
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

static void run_prelu(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const float *x = in[0].p, *s = in[1].p;
    float *y = out[0].p;
    int r = out[0].rank;
    if (out[0].n == 0) return;
    if (nd->i[1]) { /* per channel */
        int64_t c = out[0].d[1], inner = (int64_t)out[0].n / (out[0].d[0] * c);
        for (size_t i = 0; i < out[0].n; i++) {
            float a = s[(int64_t)i / inner % c];
            y[i] = x[i] >= 0.0f ? x[i] : a * x[i];
        }
        return;
    }
    int64_t st[ONX_MAX_RANK], idx[ONX_MAX_RANK] = {0};
    onx_bstrides(&in[1], r, out[0].d, st);
    int64_t inner = r ? out[0].d[r - 1] : 1, ss = r ? st[r - 1] : 0;
    size_t rows = out[0].n / (size_t)inner;
    for (size_t row = 0; row < rows; row++) {
        int64_t off = 0;
        for (int j = 0; j < r - 1; j++) off += idx[j] * st[j];
        const float *px = x + row * (size_t)inner, *ps = s + off;
        float *py = y + row * (size_t)inner;
        for (int64_t i = 0; i < inner; i++) py[i] = px[i] >= 0.0f ? px[i] : ps[i * ss] * px[i];
        for (int j = r - 2; j >= 0; j--) {
            if (++idx[j] < out[0].d[j]) break;
            idx[j] = 0;
        }
    }
}

const onx_op onx_ops_act[] = {
    {"LeakyRelu", 6, infer_unary, run_unary, NULL, NULL, 0},   {"Elu", 6, infer_unary, run_unary, NULL, NULL, 0},
    {"Selu", 6, infer_unary, run_unary, NULL, NULL, 0},        {"Sigmoid", 6, infer_unary, run_unary, NULL, NULL, 0},
    {"HardSigmoid", 6, infer_unary, run_unary, NULL, NULL, 0}, {"HardSwish", 14, infer_unary, run_unary, NULL, NULL, 0},
    {"Tanh", 6, infer_unary, run_unary, NULL, NULL, 0},        {"Softplus", 1, infer_unary, run_unary, NULL, NULL, 0},
    {"Softsign", 1, infer_unary, run_unary, NULL, NULL, 0},    {"Erf", 9, infer_unary, run_unary, NULL, NULL, 0},
    {"Abs", 6, infer_unary, run_unary, NULL, NULL, 0},         {"Neg", 6, infer_unary, run_unary, NULL, NULL, 0},
    {"Exp", 6, infer_unary, run_unary, NULL, NULL, 0},         {"Log", 6, infer_unary, run_unary, NULL, NULL, 0},
    {"Sqrt", 6, infer_unary, run_unary, NULL, NULL, 0},        {"Clip", 6, infer_clip, run_unary, NULL, NULL, 0},
    {"PRelu", 6, infer_prelu, run_prelu, NULL, NULL, 0},       {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
