/* onnx_k_move.c - data movement: Transpose, Split, Slice, Expand, Tile, ConstantOfShape; byte-generic so they fold on
 * shapes. */
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"

#define MAX_SHAPE_ELEMS 4096

/* Up to cap int64 values of input k (a constant 1-D tensor; batch-free unless sym). */
static int in_ints(onx_graph *g, const onx_node *nd, int k, onx_dim *out, int cap, int *n, int sym, tr_err *err) {
    const onx_value *v = onx_in(g, nd, k);
    if (!v || v->dtype != ONX_I64 || !v->is_const || v->rank != 1 || v->dim[0].p)
        return onx_fail(g, nd, err, "input %d must be a 1-D int64 tensor computable at load", k);
    if (v->dim[0].c > cap)
        return onx_fail(g, nd, err, "input %d has %lld values; at most %d", k, (long long)v->dim[0].c, cap);
    *n = (int)v->dim[0].c;
    const onx_dim *d = v->data;
    for (int i = 0; i < *n; i++) {
        if (d[i].p && !sym) return onx_fail(g, nd, err, "input %d depends on the batch size", k);
        out[i] = d[i];
    }
    return TR_OK;
}

/* Gather out[i] = in[src(i)] over an output of rank r, source offsets
 * base + sum idx[j] * st[j] (st in elements, may be 0 or negative). */
static void strided_copy(const char *x, int64_t base, const int64_t *st, char *y, const int64_t *d, int r, size_t n,
                         size_t esz) {
    int64_t idx[ONX_MAX_RANK] = {0};
    if (r == 0) {
        if (n) memcpy(y, x + base * (int64_t)esz, esz);
        return;
    }
    int64_t inner = d[r - 1], is = st[r - 1];
    size_t rows = inner ? n / (size_t)inner : 0;
    for (size_t row = 0; row < rows; row++) {
        int64_t off = base;
        for (int j = 0; j < r - 1; j++) off += idx[j] * st[j];
        if (esz == 4) {
            const float *px = (const float *)x + off;
            float *py = (float *)y + row * (size_t)inner;
            for (int64_t i = 0; i < inner; i++) py[i] = px[i * is];
        } else {
            for (int64_t i = 0; i < inner; i++)
                memcpy(y + (row * (size_t)inner + (size_t)i) * esz, x + (off + i * is) * (int64_t)esz, esz);
        }
        for (int j = r - 2; j >= 0; j--) {
            if (++idx[j] < d[j]) break;
            idx[j] = 0;
        }
    }
}

static void strides(const int64_t *d, int r, int64_t *st) {
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) st[i] = s, s *= d[i];
}

/* --- Transpose: nd->i[0..r) is not enough for rank 8 with flags, so perm in nd->p --- */

static int infer_transpose(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, n = 0, seen[ONX_MAX_RANK] = {0};
    static const char *const known[] = {"perm", NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t perm[ONX_MAX_RANK];
    if ((rc = onx_attr_ints(g, nd, "perm", perm, ONX_MAX_RANK, &n, err)) < 0) return rc;
    if (rc == 0)
        for (n = 0; n < x->rank; n++) perm[n] = x->rank - 1 - n;
    if (n != x->rank) return onx_fail(g, nd, err, "perm has %d values for rank %d", n, x->rank);
    onx_dim o[ONX_MAX_RANK];
    for (int i = 0; i < n; i++) {
        if (perm[i] < 0 || perm[i] >= n || seen[perm[i]]++)
            return onx_fail(g, nd, err, "perm is not a permutation of 0..%d", n - 1);
        o[i] = x->dim[perm[i]];
    }
    if (x->rank && x->dim[0].p && perm[0] != 0)
        return onx_fail(g, nd, err, "moving the batch dimension is not supported");
    int64_t *p = malloc(sizeof perm);
    if (!p) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    memcpy(p, perm, sizeof perm);
    nd->p = p;
    onx_set_out(g, nd, 0, x->dtype, x->rank, o);
    return TR_OK;
}

static void run_transpose(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const int64_t *perm = nd->p;
    int64_t sx[ONX_MAX_RANK], st[ONX_MAX_RANK];
    strides(in[0].d, in[0].rank, sx);
    for (int i = 0; i < out[0].rank; i++) st[i] = sx[perm[i]];
    strided_copy(in[0].p, 0, st, out[0].p, out[0].d, out[0].rank, out[0].n, out[0].esz);
}

/* --- Split: nd->i[0] = axis, nd->p = int64 sizes[n_out] --- */

static int infer_split(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, axis, n = 0;
    int in13 = g->opset >= 13;
    static const char *const k_attr[] = {"axis", "split", NULL}, *const k_in[] = {"axis", NULL};
    if ((rc = onx_arity(g, nd, 1, in13 ? 2 : 1, ONX_MAX_IO, err)) ||
        (rc = onx_attr_only(g, nd, in13 ? k_in : k_attr, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t a = 0, sz[ONX_MAX_IO];
    if ((rc = onx_attr_int(g, nd, "axis", &a, err)) < 0) return rc;
    if (x->rank < 1 || !onx_axis(a, x->rank, 0, &axis))
        return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    if (x->dim[axis].p) return onx_fail(g, nd, err, "splitting the batch dimension is not supported");
    if (in13) {
        onx_dim d[ONX_MAX_IO];
        if (onx_in(g, nd, 1) && (rc = in_ints(g, nd, 1, d, ONX_MAX_IO, &n, 0, err))) return rc;
        for (int i = 0; i < n; i++) sz[i] = d[i].c;
    } else if ((rc = onx_attr_ints(g, nd, "split", sz, ONX_MAX_IO, &n, err)) < 0) {
        return rc;
    }
    int64_t total = x->dim[axis].c, sum = 0;
    if (n == 0) {
        if (total % nd->n_out)
            return onx_fail(g, nd, err, "dimension %d (%lld) does not split into %d equal parts", axis,
                            (long long)total, nd->n_out);
        for (int i = 0; i < nd->n_out; i++) sz[i] = total / nd->n_out;
        n = nd->n_out;
    }
    if (n != nd->n_out) return onx_fail(g, nd, err, "split has %d sizes for %d outputs", n, nd->n_out);
    for (int i = 0; i < n; i++) {
        if (sz[i] < 0 || sz[i] > total)
            return onx_fail(g, nd, err, "split size %lld is not 0 to %lld", (long long)sz[i], (long long)total);
        sum += sz[i];
    }
    if (sum != total)
        return onx_fail(g, nd, err, "split sizes add up to %lld, not %lld", (long long)sum, (long long)total);
    int64_t *p = malloc(sizeof(int64_t) * (size_t)n);
    if (!p) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    memcpy(p, sz, sizeof(int64_t) * (size_t)n);
    nd->p = p;
    nd->i[0] = axis;
    onx_dim o[ONX_MAX_RANK];
    memcpy(o, x->dim, sizeof o);
    for (int k = 0; k < n; k++) {
        o[axis] = onx_d(sz[k]);
        onx_set_out(g, nd, k, x->dtype, x->rank, o);
    }
    return TR_OK;
}

static void run_split(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const int64_t *sz = nd->p;
    int axis = (int)nd->i[0];
    int64_t outer, inner;
    onx_t_around(&in[0], axis, &outer, &inner);
    inner *= (int64_t)in[0].esz;
    const char *x = in[0].p;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < nd->n_out; k++) {
            size_t chunk = (size_t)(sz[k] * inner);
            memcpy((char *)out[k].p + (size_t)o * chunk, x, chunk);
            x += chunk;
        }
}

/* --- Slice: nd->p = int64 start[ONX_MAX_RANK], step[ONX_MAX_RANK] --- */

static int infer_slice(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, ns = 0, ne = 0, na = -1, nst = -1;
    int in10 = g->opset >= 10;
    static const char *const k_attr[] = {"starts", "ends", "axes", NULL}, *const k_in[] = {NULL};
    if ((rc = onx_arity(g, nd, in10 ? 3 : 1, in10 ? 5 : 1, 1, err)) ||
        (rc = onx_attr_only(g, nd, in10 ? k_in : k_attr, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t s[ONX_MAX_RANK], e[ONX_MAX_RANK], ax[ONX_MAX_RANK], stp[ONX_MAX_RANK];
    if (in10) {
        onx_dim d[4][ONX_MAX_RANK] = {{{0, 0}}};
        if ((rc = in_ints(g, nd, 1, d[0], ONX_MAX_RANK, &ns, 0, err)) ||
            (rc = in_ints(g, nd, 2, d[1], ONX_MAX_RANK, &ne, 0, err)) ||
            (onx_in(g, nd, 3) && (rc = in_ints(g, nd, 3, d[2], ONX_MAX_RANK, &na, 0, err))) ||
            (onx_in(g, nd, 4) && (rc = in_ints(g, nd, 4, d[3], ONX_MAX_RANK, &nst, 0, err))))
            return rc;
        for (int i = 0; i < ONX_MAX_RANK; i++)
            s[i] = d[0][i].c, e[i] = d[1][i].c, ax[i] = d[2][i].c, stp[i] = d[3][i].c;
    } else {
        if ((rc = onx_attr_ints(g, nd, "starts", s, ONX_MAX_RANK, &ns, err)) < 0 ||
            (rc = onx_attr_ints(g, nd, "ends", e, ONX_MAX_RANK, &ne, err)) < 0 ||
            (rc = onx_attr_ints(g, nd, "axes", ax, ONX_MAX_RANK, &na, err)) < 0)
            return rc;
        if (rc == 0) na = -1;
    }
    if (ns != ne || (na >= 0 && na != ns) || (nst >= 0 && nst != ns))
        return onx_fail(g, nd, err, "starts, ends, axes and steps differ in length");
    int64_t *p = malloc(sizeof(int64_t) * 2 * ONX_MAX_RANK);
    if (!p) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    int64_t *st = p, *sp = p + ONX_MAX_RANK;
    onx_dim o[ONX_MAX_RANK];
    int seen[ONX_MAX_RANK] = {0};
    for (int i = 0; i < x->rank; i++) st[i] = 0, sp[i] = 1, o[i] = x->dim[i];
    for (int i = 0; i < ns; i++) {
        int a;
        int64_t step = nst >= 0 ? stp[i] : 1;
        if (!onx_axis(na >= 0 ? ax[i] : i, x->rank, 0, &a) || seen[a]++) {
            free(p);
            return onx_fail(g, nd, err, "axis %lld is out of range or repeated", (long long)(na >= 0 ? ax[i] : i));
        }
        if (step == 0) {
            free(p);
            return onx_fail(g, nd, err, "step is 0");
        }
        if (x->dim[a].p) {
            if (s[i] == 0 && e[i] >= INT32_MAX && step == 1) continue; /* all of the batch */
            free(p);
            return onx_fail(g, nd, err, "slicing the batch dimension is not supported");
        }
        int64_t d = x->dim[a].c, b = s[i], en = e[i];
        if (step > d) step = d > 0 ? d : 1; /* same elements, no overflow below */
        if (step < -d) step = d > 0 ? -d : -1;
        if (b < 0) b += d;
        if (en < 0) en += d;
        if (step > 0) {
            b = b < 0 ? 0 : b > d ? d : b;
            en = en < 0 ? 0 : en > d ? d : en;
        } else {
            b = b < 0 ? -1 : b > d - 1 ? d - 1 : b;
            en = en < -1 ? -1 : en > d - 1 ? d - 1 : en;
        }
        int64_t len = step > 0 ? (en - b + step - 1) / step : (b - en + (-step) - 1) / (-step);
        st[a] = b, sp[a] = step, o[a] = onx_d(len < 0 ? 0 : len);
    }
    nd->p = p;
    onx_set_out(g, nd, 0, x->dtype, x->rank, o);
    return TR_OK;
}

static void run_slice(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const int64_t *st = nd->p, *sp = st + ONX_MAX_RANK;
    int64_t sx[ONX_MAX_RANK], s[ONX_MAX_RANK], base = 0;
    strides(in[0].d, in[0].rank, sx);
    for (int i = 0; i < in[0].rank; i++) base += st[i] * sx[i], s[i] = sp[i] * sx[i];
    strided_copy(in[0].p, base, s, out[0].p, out[0].d, out[0].rank, out[0].n, out[0].esz);
}

/* --- Expand and Tile --- */

static int infer_expand(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, n, r;
    static const char *const known[] = {NULL};
    if ((rc = onx_arity(g, nd, 2, 2, 1, err)) || (rc = onx_attr_only(g, nd, known, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    onx_value sh = {0};
    if ((rc = in_ints(g, nd, 1, sh.dim, ONX_MAX_RANK, &n, 1, err))) return rc;
    sh.rank = n;
    onx_dim o[ONX_MAX_RANK];
    if (!onx_broadcast(x, &sh, &r, o)) {
        char sx[128], ss[128];
        return onx_fail(g, nd, err, "shape %s does not broadcast with the input %s", onx_shape_str(&sh, ss, sizeof ss),
                        onx_shape_str(x, sx, sizeof sx));
    }
    onx_dim cnt;
    for (int i = 0; i < n; i++)
        if (sh.dim[i].c < 0) return onx_fail(g, nd, err, "shape[%d] is negative", i);
    if (!onx_numel(o, 0, r, &cnt)) return onx_fail(g, nd, err, "shape overflows");
    onx_set_out(g, nd, 0, x->dtype, r, o);
    return TR_OK;
}

static void run_expand(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    int64_t st[ONX_MAX_RANK];
    onx_bstrides(&in[0], out[0].rank, out[0].d, st);
    strided_copy(in[0].p, 0, st, out[0].p, out[0].d, out[0].rank, out[0].n, out[0].esz);
}

static int infer_tile(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, n;
    static const char *const known[] = {NULL};
    if ((rc = onx_arity(g, nd, 2, 2, 1, err)) || (rc = onx_attr_only(g, nd, known, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    onx_dim rep[ONX_MAX_RANK], o[ONX_MAX_RANK];
    if ((rc = in_ints(g, nd, 1, rep, ONX_MAX_RANK, &n, 0, err))) return rc;
    if (n != x->rank) return onx_fail(g, nd, err, "repeats has %d values for rank %d", n, x->rank);
    for (int i = 0; i < n; i++) {
        if (rep[i].c < 0) return onx_fail(g, nd, err, "repeats[%d] is negative", i);
        if (x->dim[i].p && rep[i].c != 1) return onx_fail(g, nd, err, "repeating the batch dimension is not supported");
        if (!onx_dmul(x->dim[i], rep[i], &o[i])) return onx_fail(g, nd, err, "shape overflows");
    }
    onx_set_out(g, nd, 0, x->dtype, n, o);
    return TR_OK;
}

/* Each output index i along a dim reads i % d: a strided copy per period
 * would need a modulus, so walk the output with an odometer instead. */
static void run_tile(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    int r = out[0].rank;
    size_t esz = out[0].esz;
    int64_t sx[ONX_MAX_RANK], idx[ONX_MAX_RANK] = {0};
    strides(in[0].d, r, sx);
    const char *x = in[0].p;
    char *y = out[0].p;
    for (size_t i = 0; i < out[0].n; i++) {
        int64_t off = 0;
        for (int j = 0; j < r; j++) off += (idx[j] % in[0].d[j]) * sx[j];
        memcpy(y + i * esz, x + off * (int64_t)esz, esz);
        for (int j = r - 1; j >= 0; j--) {
            if (++idx[j] < out[0].d[j]) break;
            idx[j] = 0;
        }
    }
}

/* --- ConstantOfShape: nd->p = one element of the output's dtype --- */

static int infer_cos(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc, n, vi;
    static const char *const known[] = {"value", NULL};
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, known, err))) return rc;
    onx_dim o[ONX_MAX_RANK];
    /* the shape may hold the batch size (Shape of the input: torch's zeros_like): a float output then runs
     * with each batch, as onx_fold says */
    if ((rc = in_ints(g, nd, 0, o, ONX_MAX_RANK, &n, 1, err))) return rc;
    for (int i = 0; i < n; i++)
        if (o[i].c < 0) return onx_fail(g, nd, err, "shape[%d] is negative", i);
    onx_dim cnt;
    if (!onx_numel(o, 0, n, &cnt)) return onx_fail(g, nd, err, "shape overflows");
    onx_dtype dt = ONX_F32;
    void *one = calloc(1, sizeof(onx_dim));
    if (!one) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    if ((rc = onx_attr_tensor(g, nd, "value", &vi, err)) < 0) {
        free(one);
        return rc;
    }
    if (rc == 1) {
        onx_value *v = &g->v[vi];
        onx_dim ne;
        if (!onx_numel(v->dim, 0, v->rank, &ne) || !onx_deq(ne, onx_d(1))) {
            free(one);
            return onx_fail(g, nd, err, "value must hold exactly one element");
        }
        dt = v->dtype;
        memcpy(one, v->data, dt == ONX_F32 ? sizeof(float) : sizeof(onx_dim));
    }
    nd->p = one;
    onx_set_out(g, nd, 0, dt, n, o);
    return TR_OK;
}

static void run_cos(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)in, (void)tmp;
    for (size_t i = 0; i < out[0].n; i++) memcpy((char *)out[0].p + i * out[0].esz, nd->p, out[0].esz);
}

const onx_op onx_ops_move[] = {
    {"Transpose", 1, infer_transpose, run_transpose, NULL, NULL, 0},
    {"Split", 2, infer_split, run_split, NULL, NULL, 0},
    {"Slice", 1, infer_slice, run_slice, NULL, NULL, 0},
    {"Expand", 8, infer_expand, run_expand, NULL, NULL, 0},
    {"Tile", 6, infer_tile, run_tile, NULL, NULL, 0},
    {"ConstantOfShape", 9, infer_cos, run_cos, NULL, NULL, 0},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
