/* onnx_k_shape.c - data movement and shape ops; byte-generic so int64 shape math folds through them. */
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"

#define MAX_SHAPE_ELEMS 4096 /* int64 tensors are shapes and indices, never data */

static void run_copy(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    if (out[0].p != in[0].p) memcpy(out[0].p, in[0].p, in[0].n * in[0].esz);
}

/* A constant int64 input as plain integers (no batch symbol allowed). */
static int const_ints(onx_graph *g, const onx_node *nd, int k, int64_t *out, int cap, int *n, tr_err *err) {
    const onx_value *v = onx_in(g, nd, k);
    if (!v || v->dtype != ONX_I64 || !v->is_const || v->rank > 1)
        return onx_fail(g, nd, err, "input %d must be a constant 1-D int64 tensor", k);
    int64_t cnt = v->rank ? v->dim[0].c : 1;
    if (cnt > cap) return onx_fail(g, nd, err, "input %d has %lld values; at most %d", k, (long long)cnt, cap);
    const onx_dim *d = v->data;
    for (int64_t i = 0; i < cnt; i++) {
        if (d[i].p) return onx_fail(g, nd, err, "input %d depends on the batch size", k);
        out[i] = d[i].c;
    }
    *n = (int)cnt;
    return TR_OK;
}

/* Axes from the attribute (before opset `since`) or from input k. */
static int get_axes(onx_graph *g, const onx_node *nd, int since, int k, int64_t *ax, int *n, int *given, tr_err *err) {
    int rc;
    *n = 0;
    *given = 0;
    if (g->opset < since) {
        rc = onx_attr_ints(g, nd, "axes", ax, ONX_MAX_RANK, n, err);
        if (rc < 0) return rc;
        *given = rc;
        return TR_OK;
    }
    if (!onx_in(g, nd, k)) return TR_OK;
    *given = 1;
    return const_ints(g, nd, k, ax, ONX_MAX_RANK, n, err);
}

static int infer_identity(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, 1, 1, err);
    if (rc) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    onx_set_out(g, nd, 0, x->dtype, x->rank, x->dim);
    nd->alias = 1;
    return TR_OK;
}

static int infer_dropout(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, 3, 1, err); /* data, ratio (ignored at inference), training_mode */
    if (rc) return rc;
    int64_t is_test = 1;
    if ((rc = onx_attr_int(g, nd, "is_test", &is_test, err)) < 0) return rc;
    if (!is_test) return onx_fail(g, nd, err, "is_test 0 (training) is not supported");
    const onx_value *t = nd->n_in > 2 ? onx_in(g, nd, 2) : NULL;
    if (t && (!t->is_const || t->dtype != ONX_I64 || !onx_one(t) || ((const onx_dim *)t->data)[0].c != 0))
        return onx_fail(g, nd, err, "training_mode must be a constant false (inference only)");
    const onx_value *x = onx_in(g, nd, 0);
    onx_set_out(g, nd, 0, x->dtype, x->rank, x->dim);
    nd->alias = 1;
    return TR_OK;
}

static int infer_shape(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, 1, 1, err);
    if (rc) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t s = 0, e = x->rank;
    if ((rc = onx_attr_int(g, nd, "start", &s, err)) < 0 || (rc = onx_attr_int(g, nd, "end", &e, err)) < 0) return rc;
    if (s < 0) s += x->rank;
    if (e < 0) e += x->rank;
    s = s < 0 ? 0 : s > x->rank ? x->rank : s;
    e = e < s ? s : e > x->rank ? x->rank : e;
    onx_dim len = onx_d(e - s), *d = malloc(sizeof(onx_dim) * (size_t)(e - s + 1));
    if (!d) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    for (int64_t i = s; i < e; i++) d[i - s] = x->dim[i];
    onx_set_out(g, nd, 0, ONX_I64, 1, &len);
    onx_set_const(g, nd, 0, d);
    return TR_OK;
}

static int infer_gather(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 2, 2, 1, err);
    if (rc) return rc;
    const onx_value *x = onx_in(g, nd, 0), *ix = onx_in(g, nd, 1);
    int64_t a = 0;
    int axis;
    if ((rc = onx_attr_int(g, nd, "axis", &a, err)) < 0) return rc;
    if (x->rank < 1 || !onx_axis(a, x->rank, 0, &axis))
        return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    if (ix->dtype != ONX_I64 || !ix->is_const) return onx_fail(g, nd, err, "indices must be a constant int64 tensor");
    onx_dim cnt;
    if (!onx_numel(ix->dim, 0, ix->rank, &cnt) || cnt.c > MAX_SHAPE_ELEMS)
        return onx_fail(g, nd, err, "too many indices");
    if (x->dim[axis].p) return onx_fail(g, nd, err, "gathering along the batch dimension is not supported");
    if (x->rank + ix->rank - 1 > ONX_MAX_RANK) return onx_fail(g, nd, err, "output rank exceeds %d", ONX_MAX_RANK);
    int64_t *idx = malloc(sizeof *idx * (size_t)(cnt.c + 1));
    if (!idx) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    const onx_dim *d = ix->data;
    for (int64_t i = 0; i < cnt.c; i++) {
        int64_t v = d[i].c, lim = x->dim[axis].c;
        if (d[i].p || v < -lim || v >= lim) {
            free(idx);
            return onx_fail(g, nd, err, "index %lld is out of range for dimension %lld", (long long)v, (long long)lim);
        }
        idx[i] = v < 0 ? v + lim : v;
    }
    nd->p = idx;
    nd->i[0] = axis;
    nd->i[1] = cnt.c;
    onx_dim o[ONX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < axis; i++) o[r++] = x->dim[i];
    for (int i = 0; i < ix->rank; i++) o[r++] = ix->dim[i];
    for (int i = axis + 1; i < x->rank; i++) o[r++] = x->dim[i];
    onx_set_out(g, nd, 0, x->dtype, r, o);
    return TR_OK;
}

static void run_gather(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const int64_t *idx = nd->p;
    int axis = (int)nd->i[0];
    int64_t cnt = nd->i[1], outer, inner;
    onx_t_around(&in[0], axis, &outer, &inner);
    inner *= (int64_t)in[0].esz;
    const char *x = in[0].p;
    char *y = out[0].p;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < cnt; j++)
            memcpy(y + (o * cnt + j) * inner, x + (o * in[0].d[axis] + idx[j]) * inner, (size_t)inner);
}

static int infer_concat(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, ONX_MAX_IO, 1, err);
    if (rc) return rc;
    int64_t a;
    if ((rc = onx_attr_int(g, nd, "axis", &a, err)) < 0) return rc;
    if (rc == 0) return onx_fail(g, nd, err, "attribute \"axis\" is required");
    const onx_value *x = onx_in(g, nd, 0);
    int axis;
    if (x->rank < 1 || !onx_axis(a, x->rank, 0, &axis))
        return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    onx_dim o[ONX_MAX_RANK];
    memcpy(o, x->dim, sizeof o);
    for (int k = 1; k < nd->n_in; k++) {
        const onx_value *y = onx_in(g, nd, k);
        if (!y) return onx_fail(g, nd, err, "input %d is missing", k);
        char sa[128], sb[128];
        int same = y->dtype == x->dtype && y->rank == x->rank;
        for (int i = 0; same && i < x->rank; i++) same = i == axis || onx_deq(x->dim[i], y->dim[i]);
        if (!same)
            return onx_fail(g, nd, err, "input %d has shape %s, not concatenable with %s on axis %d", k,
                            onx_shape_str(y, sa, sizeof sa), onx_shape_str(x, sb, sizeof sb), axis);
        if (o[axis].p != y->dim[axis].p && o[axis].c && y->dim[axis].c)
            return onx_fail(g, nd, err, "concatenating the batch dimension with a fixed one");
        o[axis].p = o[axis].c ? o[axis].p : y->dim[axis].p;
        o[axis].c += y->dim[axis].c;
    }
    nd->i[0] = axis;
    onx_set_out(g, nd, 0, x->dtype, x->rank, o);
    return TR_OK;
}

static void run_concat(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    int axis = (int)nd->i[0];
    int64_t outer = 1;
    for (int i = 0; i < axis; i++) outer *= out[0].d[i];
    char *y = out[0].p;
    for (int64_t o = 0; o < outer; o++)
        for (int k = 0; k < nd->n_in; k++) {
            size_t chunk = in[k].n / (size_t)(outer ? outer : 1) * in[k].esz;
            memcpy(y, (const char *)in[k].p + (size_t)o * chunk, chunk);
            y += chunk;
        }
}

static int infer_unsqueeze(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, 2, 1, err), n, given;
    int64_t ax[ONX_MAX_RANK];
    if (rc || (rc = get_axes(g, nd, 13, 1, ax, &n, &given, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int r = x->rank + n, mark[ONX_MAX_RANK] = {0};
    if (!given || n == 0) return onx_fail(g, nd, err, "axes are required");
    if (r > ONX_MAX_RANK) return onx_fail(g, nd, err, "output rank exceeds %d", ONX_MAX_RANK);
    for (int i = 0; i < n; i++) {
        int a;
        if (!onx_axis(ax[i], r, 0, &a) || mark[a])
            return onx_fail(g, nd, err, "axis %lld is out of range or repeated", (long long)ax[i]);
        mark[a] = 1;
    }
    onx_dim o[ONX_MAX_RANK];
    for (int i = 0, j = 0; i < r; i++) o[i] = mark[i] ? onx_d(1) : x->dim[j++];
    onx_set_out(g, nd, 0, x->dtype, r, o);
    nd->alias = 1;
    return TR_OK;
}

static int infer_squeeze(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, 2, 1, err), n, given;
    int64_t ax[ONX_MAX_RANK];
    if (rc || (rc = get_axes(g, nd, 13, 1, ax, &n, &given, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int mark[ONX_MAX_RANK] = {0};
    for (int i = 0; i < n; i++) {
        int a;
        if (!onx_axis(ax[i], x->rank, 0, &a))
            return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)ax[i], x->rank);
        if (!onx_deq(x->dim[a], onx_d(1))) return onx_fail(g, nd, err, "dimension %d is not 1", a);
        mark[a] = 1;
    }
    onx_dim o[ONX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < x->rank; i++)
        if (!(given ? mark[i] : onx_deq(x->dim[i], onx_d(1)))) o[r++] = x->dim[i];
    onx_set_out(g, nd, 0, x->dtype, r, o);
    nd->alias = 1;
    return TR_OK;
}

static int infer_flatten(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, 1, 1, err), axis;
    if (rc) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t a = 1;
    if ((rc = onx_attr_int(g, nd, "axis", &a, err)) < 0) return rc;
    if (!onx_axis(a, x->rank, 1, &axis))
        return onx_fail(g, nd, err, "axis %lld is out of range for rank %d", (long long)a, x->rank);
    onx_dim o[2];
    if (!onx_numel(x->dim, 0, axis, &o[0]) || !onx_numel(x->dim, axis, x->rank, &o[1]))
        return onx_fail(g, nd, err, "shape overflows");
    onx_set_out(g, nd, 0, x->dtype, 2, o);
    nd->alias = 1;
    return TR_OK;
}

static int infer_reshape(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 2, 2, 1, err);
    if (rc) return rc;
    const onx_value *x = onx_in(g, nd, 0), *s = onx_in(g, nd, 1);
    int64_t allowzero = 0;
    if ((rc = onx_attr_int(g, nd, "allowzero", &allowzero, err)) < 0) return rc;
    if (s->dtype != ONX_I64 || !s->is_const || s->rank != 1)
        return onx_fail(g, nd, err, "shape must be a 1-D int64 tensor computable at load");
    if (s->dim[0].c > ONX_MAX_RANK) return onx_fail(g, nd, err, "target rank exceeds %d", ONX_MAX_RANK);
    int r = (int)s->dim[0].c, neg = -1;
    const onx_dim *d = s->data;
    onx_dim o[ONX_MAX_RANK], total, known = onx_d(1);
    for (int i = 0; i < r; i++) {
        o[i] = d[i];
        if (d[i].p == 0 && d[i].c == 0 && !allowzero) {
            if (i >= x->rank) return onx_fail(g, nd, err, "shape[%d] is 0 but the input has rank %d", i, x->rank);
            o[i] = x->dim[i];
        } else if (d[i].p == 0 && d[i].c == -1) {
            if (neg >= 0) return onx_fail(g, nd, err, "shape has more than one -1");
            neg = i;
            continue;
        } else if (d[i].c < 0) {
            return onx_fail(g, nd, err, "shape[%d] is %lld", i, (long long)d[i].c);
        }
        if (!onx_dmul(known, o[i], &known)) return onx_fail(g, nd, err, "shape overflows");
    }
    if (!onx_numel(x->dim, 0, x->rank, &total)) return onx_fail(g, nd, err, "shape overflows");
    if (neg >= 0 && !onx_ddiv(total, known, &o[neg])) neg = -2;
    if (neg == -2 || (neg == -1 && !onx_deq(total, known))) {
        char sx[128], st[128] = "[";
        for (int i = 0; i < r; i++) {
            char b[32];
            strcat(st, i ? "," : "");
            strcat(st, onx_dstr(d[i], b, sizeof b));
        }
        strcat(st, "]");
        return onx_fail(g, nd, err, "cannot reshape %s to %s", onx_shape_str(x, sx, sizeof sx), st);
    }
    onx_set_out(g, nd, 0, x->dtype, r, o);
    nd->alias = 1;
    return TR_OK;
}

/* Constant: a tensor (value), or from opset 12 a float, int or list of them (value_float, value_ints, ...). */
static int infer_constant(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 0, 0, 1, err), vi;
    if (rc) return rc;
    static const char *const known[] = {"value", "value_float", "value_floats", "value_int", "value_ints", NULL};
    if ((rc = onx_attr_only(g, nd, known, err))) return rc;
    const onx_value *src = NULL;
    onx_value v, t;
    if ((rc = onx_attr_tensor(g, nd, "value", &vi, err)) < 0) return rc;
    if (rc) src = &g->v[vi];
    for (int k = 1; known[k]; k++) {
        if ((rc = onx_attr_values(g, nd, known[k], &t, err)) < 0) break;
        if (rc && src) {
            free(t.data);
            rc = onx_fail(g, nd, err, "has more than one value attribute");
            break;
        }
        if (rc) v = t, src = &v;
        rc = TR_OK;
    }
    if (!rc && !src) rc = onx_fail(g, nd, err, "attribute \"value\" (or value_float, value_ints, ...) is required");
    if (rc) {
        if (src == &v) free(v.data);
        return rc;
    }
    onx_set_out(g, nd, 0, src->dtype, src->rank, src->dim);
    onx_set_const(g, nd, 0, src->data);
    if (src != &v) g->v[vi].data = NULL;
    return TR_OK;
}

/* Pad: nd->p = int64 {pad begin[R], pad end[R], crop begin[R], crop end[R]} (R = ONX_MAX_RANK), a negative
 * pad being a crop: as ONNX Runtime, the input is cropped first and the cropped input padded (reflect and
 * edge read the cropped input); nd->i[0] = mode (0 constant, 1 reflect, 2 edge); nd->f[0] = constant value. */
static int infer_pad(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc = onx_arity(g, nd, 1, g->opset < 11 ? 1 : 3, 1, err), n = 0;
    if (rc || (rc = onx_need(g, nd, 0, ONX_F32, 1, ONX_MAX_RANK, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t pads[2 * ONX_MAX_RANK];
    char mode[16] = "constant";
    float value = 0.0f;
    if ((rc = onx_attr_str(g, nd, "mode", mode, sizeof mode, err)) < 0) return rc;
    if (g->opset < 11) {
        if ((rc = onx_attr_ints(g, nd, "pads", pads, 2 * ONX_MAX_RANK, &n, err)) < 0) return rc;
        if ((rc = onx_attr_float(g, nd, "value", &value, err)) < 0) return rc;
    } else {
        if ((rc = const_ints(g, nd, 1, pads, 2 * ONX_MAX_RANK, &n, err))) return rc;
        const onx_value *cv = onx_in(g, nd, 2);
        if (cv && (cv->dtype != ONX_F32 || !cv->is_const || !onx_one(cv)))
            return onx_fail(g, nd, err, "constant_value must be a constant float scalar");
        if (cv) value = ((const float *)cv->data)[0];
    }
    if (n != 2 * x->rank) return onx_fail(g, nd, err, "pads has %d values for rank %d", n, x->rank);
    int m = !strcmp(mode, "constant") ? 0 : !strcmp(mode, "reflect") ? 1 : !strcmp(mode, "edge") ? 2 : -1;
    if (m < 0) return onx_fail(g, nd, err, "mode \"%s\" is not constant, reflect or edge", mode);
    onx_dim o[ONX_MAX_RANK];
    int64_t *p = calloc(4 * ONX_MAX_RANK, sizeof *p), *crop = p + 2 * ONX_MAX_RANK;
    if (!p) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    for (int i = 0; i < x->rank; i++) {
        int64_t b = pads[i], e = pads[i + x->rank], d = x->dim[i].c;
        const char *why = NULL;
        if (b < -65536 || e < -65536 || b > 65536 || e > 65536)
            why = "pads must be -65536 to 65536";
        else if (x->dim[i].p && (b || e))
            why = "padding or cropping the batch dimension is not supported";
        else if (!x->dim[i].p) {
            p[i] = b > 0 ? b : 0, p[ONX_MAX_RANK + i] = e > 0 ? e : 0; /* pads */
            crop[i] = b < 0 ? -b : 0, crop[ONX_MAX_RANK + i] = e < 0 ? -e : 0;
            d -= crop[i] + crop[ONX_MAX_RANK + i]; /* the cropped size */
            if (d < 0)
                why = "negative pads crop more than the dimension's size";
            else if (m == 1 && (p[i] >= d || p[ONX_MAX_RANK + i] >= d) && (p[i] || p[ONX_MAX_RANK + i]))
                why = "reflect pads must be smaller than the (cropped) dimension's size";
            else if (m == 2 && d == 0 && (p[i] || p[ONX_MAX_RANK + i]))
                why = "edge-padding an empty dimension";
        }
        if (why) {
            free(p);
            return onx_fail(g, nd, err, "dimension %d: %s", i, why);
        }
        o[i] = x->dim[i].p ? x->dim[i] : onx_d(d + p[i] + p[ONX_MAX_RANK + i]);
    }
    nd->p = p;
    nd->i[0] = m;
    nd->f[0] = value;
    onx_set_out(g, nd, 0, ONX_F32, x->rank, o);
    return TR_OK;
}

/* Source index of output index i along a dim of size d with begin pad b; -1 = constant. */
static int64_t pad_src(int64_t i, int64_t d, int64_t b, int mode) {
    int64_t s = i - b;
    if (s >= 0 && s < d) return s;
    if (mode == 0) return -1;
    if (mode == 2) return s < 0 ? 0 : d - 1;
    return s < 0 ? -s : 2 * (d - 1) - s; /* reflect, pads < d */
}

static void run_pad(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const int64_t *pb = nd->p, *cb = pb + 2 * ONX_MAX_RANK, *ce = cb + ONX_MAX_RANK;
    int r = out[0].rank, mode = (int)nd->i[0];
    const float *x = in[0].p;
    float *y = out[0].p, v = nd->f[0];
    int64_t inner = out[0].d[r - 1], rows = inner ? (int64_t)out[0].n / inner : 0, idx[ONX_MAX_RANK] = {0};
    int64_t dl = in[0].d[r - 1] - cb[r - 1] - ce[r - 1]; /* the last dimension, cropped */
    for (int64_t row = 0; row < rows; row++, y += inner) {
        int64_t src = 0;
        for (int j = 0; j < r - 1 && src >= 0; j++) {
            int64_t s = pad_src(idx[j], in[0].d[j] - cb[j] - ce[j], pb[j], mode);
            src = s < 0 ? -1 : src * in[0].d[j] + s + cb[j];
        }
        if (src < 0) {
            for (int64_t i = 0; i < inner; i++) y[i] = v;
        } else {
            const float *xr = x + src * in[0].d[r - 1] + cb[r - 1];
            for (int64_t i = 0; i < inner; i++) {
                int64_t s = pad_src(i, dl, pb[r - 1], mode);
                y[i] = s < 0 ? v : xr[s];
            }
        }
        for (int j = r - 2; j >= 0; j--) {
            if (++idx[j] < out[0].d[j]) break;
            idx[j] = 0;
        }
    }
}

const onx_op onx_ops_shape[] = {
    {"Identity", 1, infer_identity, run_copy, NULL, NULL, 0},
    {"Dropout", 6, infer_dropout, run_copy, NULL, NULL, 0},
    {"Shape", 1, infer_shape, run_copy, NULL, NULL, 0},
    {"Gather", 1, infer_gather, run_gather, NULL, NULL, 0},
    {"Concat", 4, infer_concat, run_concat, NULL, NULL, 0},
    {"Unsqueeze", 1, infer_unsqueeze, run_copy, NULL, NULL, 0},
    {"Squeeze", 1, infer_squeeze, run_copy, NULL, NULL, 0},
    {"Flatten", 1, infer_flatten, run_copy, NULL, NULL, 0},
    {"Reshape", 5, infer_reshape, run_copy, NULL, NULL, 0},
    {"Constant", 1, infer_constant, run_copy, NULL, NULL, 0},
    {"Pad", 2, infer_pad, run_pad, NULL, NULL, 0},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
