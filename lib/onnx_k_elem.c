/* onnx_k_elem.c - elementwise ops: activations, numpy-broadcast binary arithmetic, and Equal and
 * Where, which torch.onnx.export puts into shape arithmetic (x.expand(n, -1, -1)). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"
#include "vec.h"

/* Blocks of 16 with a constant trip count: gcc -O2 turns them into vector
 * max/min; a plain loop stays scalar and branchy. */
static void relu(const float *restrict x, float *restrict y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; k++) {
            float v = x[i + k];
            y[i + k] = v > 0.0f ? v : 0.0f;
        }
    for (; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void onx_add_act(float *y, const float *r, size_t n, onx_act a, float lo, float hi) {
    vec_add(y, r, n);
    onx_act_apply(a, lo, hi, y, n);
}

void onx_act_apply(onx_act a, float lo, float hi, float *x, size_t n) {
    if (a == ONX_ACT_RELU) {
        vec_relu(x, n);
    } else if (a == ONX_ACT_CLIP) {
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            for (size_t k = 0; k < 16; k++) {
                float v = x[i + k];
                v = v > lo ? v : lo;
                x[i + k] = v < hi ? v : hi;
            }
        for (; i < n; i++) x[i] = fminf(fmaxf(x[i], lo), hi);
    }
}

/* --- unary float ops: same shape out --- */

static int infer_unary(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc;
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_need(g, nd, 0, ONX_F32, 0, ONX_MAX_RANK, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, x->dim);
    return TR_OK;
}

static int infer_relu(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const known[] = {"consumed_inputs", NULL}; /* opset 1 legacy, ignored */
    int rc = onx_attr_only(g, nd, known, err);
    return rc ? rc : infer_unary(g, nd, err);
}

static void run_relu(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    relu(in[0].p, out[0].p, out[0].n);
}

/* --- binary ops with numpy broadcasting --- */

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_EQ };

static int op_kind(const onx_node *nd) {
    const char *n = nd->op->name;
    return n[0] == 'A' ? B_ADD : n[0] == 'S' ? B_SUB : n[0] == 'M' ? B_MUL : n[0] == 'E' ? B_EQ : B_DIV;
}

/* int64 (shape) arithmetic on symbolic values, at load: 1, 0 when the result is not c * N^p, -1 on
 * an overflow. */
static int sym_op(int k, onx_dim a, onx_dim b, onx_dim *o) {
    switch (k) {
    case B_ADD:
    case B_SUB:
        if (a.p != b.p && a.c && b.c) return 0;
        o->p = a.c ? a.p : b.p;
        return (k == B_ADD ? __builtin_add_overflow(a.c, b.c, &o->c) : __builtin_sub_overflow(a.c, b.c, &o->c)) ? -1
                                                                                                                : 1;
    case B_MUL:
        if (a.p + b.p > 1) return 0;
        if (__builtin_mul_overflow(a.c, b.c, &o->c)) return -1;
        o->p = o->c ? a.p + b.p : 0;
        return 1;
    case B_EQ: /* 1 or 0; c * N against a fixed value only when no batch size can make them equal */
        if (a.p == b.p) {
            *o = onx_d(a.c == b.c);
            return 1;
        }
        if (b.p) {
            onx_dim t = a;
            a = b, b = t;
        }
        if ((a.c > 0 && b.c > 0) || (a.c < 0 && b.c < 0)) return 0;
        *o = onx_d(0);
        return 1;
    default:
        if (b.c == 0) return 0;
        if (a.c == INT64_MIN && b.c == -1) return -1;
        if (a.p == 0 && b.p == 0) {
            *o = onx_d(a.c / b.c);
            return 1;
        }
        return onx_ddiv(a, b, o);
    }
}

static int fold_i64(onx_graph *g, onx_node *nd, int r, const onx_dim *d, tr_err *err) {
    const onx_value *a = onx_in(g, nd, 0), *b = onx_in(g, nd, 1);
    onx_t ta = {0}, tb = {0};
    ta.rank = a->rank, tb.rank = b->rank;
    size_t n = 1;
    int64_t dd[ONX_MAX_RANK], sa[ONX_MAX_RANK], sb[ONX_MAX_RANK];
    for (int i = 0; i < a->rank; i++) ta.d[i] = a->dim[i].c;
    for (int i = 0; i < b->rank; i++) tb.d[i] = b->dim[i].c;
    for (int i = 0; i < r; i++) {
        if (d[i].p) return onx_fail(g, nd, err, "int64 arithmetic on a batch-sized tensor");
        dd[i] = d[i].c;
        n *= (size_t)dd[i];
    }
    if (n > 4096) return onx_fail(g, nd, err, "int64 tensors are for shapes; %zu elements is too many", n);
    onx_bstrides(&ta, r, dd, sa);
    onx_bstrides(&tb, r, dd, sb);
    onx_dim *o = malloc((n ? n : 1) * sizeof *o);
    if (!o) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    const onx_dim *pa = a->data, *pb = b->data;
    for (size_t i = 0; i < n; i++) {
        size_t rem = i, ia = 0, ib = 0;
        for (int j = r - 1; j >= 0; j--) {
            size_t c = rem % (size_t)dd[j];
            rem /= (size_t)dd[j];
            ia += c * (size_t)sa[j];
            ib += c * (size_t)sb[j];
        }
        int ok = sym_op(op_kind(nd), pa[ia], pb[ib], &o[i]);
        if (ok < 0) {
            free(o);
            return onx_fail(g, nd, err, "int64 arithmetic overflows");
        }
        if (!ok) {
            free(o);
            return onx_fail(g, nd, err,
                            op_kind(nd) == B_EQ ? "the comparison depends on the batch size"
                                                : "int64 arithmetic on the batch size that is not a multiple of it");
        }
    }
    onx_set_const(g, nd, 0, o);
    return TR_OK;
}

static int infer_binary(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 2, 2, 1, err);
    if (rc) return rc;
    static const char *const known[] = {NULL};
    if ((rc = onx_attr_only(g, nd, known, err))) return rc;
    const onx_value *a = onx_in(g, nd, 0), *b = onx_in(g, nd, 1);
    if (a->dtype != b->dtype) return onx_fail(g, nd, err, "inputs have different element types");
    onx_dim d[ONX_MAX_RANK];
    int r;
    if (!onx_broadcast(a, b, &r, d)) {
        char sa[128], sb[128];
        return onx_fail(g, nd, err, "shapes %s and %s do not broadcast", onx_shape_str(a, sa, sizeof sa),
                        onx_shape_str(b, sb, sizeof sb));
    }
    if (op_kind(nd) == B_EQ && a->dtype != ONX_I64)
        return onx_fail(g, nd, err, "Equal compares int64 (shape) values only");
    onx_set_out(g, nd, 0, a->dtype, r, d);
    if (a->dtype == ONX_I64) {
        if (!a->is_const || !b->is_const) return onx_fail(g, nd, err, "int64 inputs must be computable at load");
        return fold_i64(g, nd, r, d, err);
    }
    return TR_OK;
}

static void run_binary(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const float *a = in[0].p, *b = in[1].p;
    float *y = out[0].p;
    int r = out[0].rank, k = op_kind(nd);
    if (out[0].n == 0) return;
    int64_t sa[ONX_MAX_RANK], sb[ONX_MAX_RANK], idx[ONX_MAX_RANK] = {0};
    onx_bstrides(&in[0], r, out[0].d, sa);
    onx_bstrides(&in[1], r, out[0].d, sb);
    int64_t inner = r ? out[0].d[r - 1] : 1, ia_s = r ? sa[r - 1] : 0, ib_s = r ? sb[r - 1] : 0;
    size_t rows = out[0].n / (size_t)inner;
    for (size_t row = 0; row < rows; row++) {
        int64_t oa = 0, ob = 0;
        for (int j = 0; j < r - 1; j++) oa += idx[j] * sa[j], ob += idx[j] * sb[j];
        const float *pa = a + oa, *pb = b + ob;
        float *py = y + row * (size_t)inner;
        switch (k) {
        case B_ADD:
            for (int64_t i = 0; i < inner; i++) py[i] = pa[i * ia_s] + pb[i * ib_s];
            break;
        case B_SUB:
            for (int64_t i = 0; i < inner; i++) py[i] = pa[i * ia_s] - pb[i * ib_s];
            break;
        case B_MUL:
            for (int64_t i = 0; i < inner; i++) py[i] = pa[i * ia_s] * pb[i * ib_s];
            break;
        default:
            for (int64_t i = 0; i < inner; i++) py[i] = pa[i * ia_s] / pb[i * ib_s];
        }
        for (int j = r - 2; j >= 0; j--) { /* odometer over the outer dims */
            if (++idx[j] < out[0].d[j]) break;
            idx[j] = 0;
        }
    }
    onx_act_apply(nd->act, nd->act_lo, nd->act_hi, y, out[0].n);
}

/* Where: cond (int64 0/1, from Equal or a bool constant) must be known at load; x and y of one
 * element type, all three numpy-broadcast. Folded at load when x and y are constants too. */
static int infer_where(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 3, 3, 1, err);
    if (rc) return rc;
    const onx_value *c = onx_in(g, nd, 0), *x = onx_in(g, nd, 1), *y = onx_in(g, nd, 2);
    if (!c || !x || !y) return onx_fail(g, nd, err, "needs its three inputs");
    if (c->dtype != ONX_I64 || !c->is_const) return onx_fail(g, nd, err, "the condition must be computable at load");
    if (x->dtype != y->dtype) return onx_fail(g, nd, err, "inputs 1 and 2 have different element types");
    if (x->dtype == ONX_I64 && (!x->is_const || !y->is_const))
        return onx_fail(g, nd, err, "int64 inputs must be computable at load");
    onx_value xy = {0};
    onx_dim d[ONX_MAX_RANK];
    char s1[128], s2[128];
    if (!onx_broadcast(x, y, &xy.rank, xy.dim) || !onx_broadcast(c, &xy, &xy.rank, d))
        return onx_fail(g, nd, err, "shapes %s, %s and the condition's do not broadcast",
                        onx_shape_str(x, s1, sizeof s1), onx_shape_str(y, s2, sizeof s2));
    onx_set_out(g, nd, 0, x->dtype, xy.rank, d);
    return TR_OK;
}

static void run_where(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    int r = out[0].rank;
    size_t esz = out[0].esz;
    int64_t st[3][ONX_MAX_RANK], idx[ONX_MAX_RANK] = {0};
    for (int k = 0; k < 3; k++) onx_bstrides(&in[k], r, out[0].d, st[k]);
    const onx_dim *cond = in[0].p;
    for (size_t i = 0; i < out[0].n; i++) {
        int64_t o[3] = {0, 0, 0};
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < r; j++) o[k] += idx[j] * st[k][j];
        int pick = cond[o[0]].c ? 1 : 2;
        memcpy((char *)out[0].p + i * esz, (const char *)in[pick].p + (size_t)o[pick] * esz, esz);
        for (int j = r - 1; j >= 0; j--) {
            if (++idx[j] < out[0].d[j]) break;
            idx[j] = 0;
        }
    }
}

const onx_op onx_ops_elem[] = {
    {"Relu", 6, infer_relu, run_relu, NULL, NULL, 0},    {"Add", 7, infer_binary, run_binary, NULL, NULL, 1},
    {"Sub", 7, infer_binary, run_binary, NULL, NULL, 1}, {"Mul", 7, infer_binary, run_binary, NULL, NULL, 1},
    {"Div", 7, infer_binary, run_binary, NULL, NULL, 1}, {"Equal", 7, infer_binary, run_binary, NULL, NULL, 0},
    {"Where", 9, infer_where, run_where, NULL, NULL, 0}, {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
