/* onnx_op.c - the op registry and the attribute helpers ops use at load. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_load.h"
#include "onnx_op.h"

/* One table per op family (onnx_k_*.c), each ending with a NULL name. */
extern const onx_op onx_ops_conv[], onx_ops_pool[], onx_ops_elem[], onx_ops_shape[], onx_ops_gemm[], onx_ops_norm[],
    onx_ops_act[], onx_ops_math[], onx_ops_reduce[], onx_ops_move[];
static const onx_op *const families[] = {onx_ops_conv, onx_ops_pool, onx_ops_elem, onx_ops_shape,  onx_ops_gemm,
                                         onx_ops_norm, onx_ops_act,  onx_ops_math, onx_ops_reduce, onx_ops_move};

const onx_op *onx_op_find(const char *name) {
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const onx_op *o = families[f]; o->name; o++)
            if (strcmp(o->name, name) == 0) return o;
    return NULL;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void onx_op_list(char *buf, size_t cap) {
    const char *names[256];
    size_t n = 0, len = 0;
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++)
        for (const onx_op *o = families[f]; o->name && n < 256; o++) names[n++] = o->name;
    qsort(names, n, sizeof names[0], cmp_str);
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < n && cap; i++) {
        int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= cap - len) break;
        len += (size_t)w;
    }
}

int onx_fail(const onx_graph *g, const onx_node *nd, tr_err *err, const char *fmt, ...) {
    (void)g;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tr_seterr(err, TR_EFORMAT, nd->name, "node %d \"%s\" (%s): %s", nd->idx, nd->name,
                     nd->op ? nd->op->name : "?", msg);
}

onx_value *onx_in(onx_graph *g, const onx_node *nd, int k) {
    if (k < 0 || k >= nd->n_in || nd->in[k] < 0) return NULL;
    return &g->v[nd->in[k]];
}

int onx_arity(const onx_graph *g, const onx_node *nd, int lo, int hi, int max_out, tr_err *err) {
    int n = nd->n_in;
    while (n > 0 && nd->in[n - 1] < 0) n--; /* trailing omitted optionals */
    if (n < lo || n > hi) {
        if (lo == hi) return onx_fail(g, nd, err, "takes %d inputs, not %d", lo, n);
        return onx_fail(g, nd, err, "takes %d to %d inputs, not %d", lo, hi, n);
    }
    for (int k = 0; k < lo; k++)
        if (nd->in[k] < 0) return onx_fail(g, nd, err, "input %d is required", k);
    if (nd->n_out < 1 || nd->n_out > max_out)
        return onx_fail(g, nd, err, "has %d outputs; %d supported", nd->n_out, max_out);
    return TR_OK;
}

int onx_need(onx_graph *g, const onx_node *nd, int k, onx_dtype dt, int rlo, int rhi, tr_err *err) {
    const onx_value *v = onx_in(g, nd, k);
    if (!v) return onx_fail(g, nd, err, "input %d is required", k);
    if (v->dtype != dt)
        return onx_fail(g, nd, err, "input %d \"%s\" is %s, expected %s", k, v->name,
                        v->dtype == ONX_F32 ? "float" : "int64", dt == ONX_F32 ? "float" : "int64");
    if (v->rank < rlo || v->rank > rhi) {
        char s[128];
        if (rlo == rhi)
            return onx_fail(g, nd, err, "input %d \"%s\" has shape %s, expected rank %d", k, v->name,
                            onx_shape_str(v, s, sizeof s), rlo);
        return onx_fail(g, nd, err, "input %d \"%s\" has shape %s, expected rank %d to %d", k, v->name,
                        onx_shape_str(v, s, sizeof s), rlo, rhi);
    }
    return TR_OK;
}

void onx_set_out(onx_graph *g, const onx_node *nd, int k, onx_dtype dt, int rank, const onx_dim *dim) {
    onx_value *v = &g->v[nd->out[k]];
    v->dtype = dt;
    v->rank = rank;
    for (int i = 0; i < rank; i++) v->dim[i] = dim[i];
}

void onx_set_const(onx_graph *g, const onx_node *nd, int k, void *data) {
    onx_value *v = &g->v[nd->out[k]];
    free(v->data);
    v->data = data;
    v->is_const = 1;
}

/* --- attributes --- */

static const Onnx__AttributeProto *attr_find(const onx_node *nd, const char *name) {
    const Onnx__NodeProto *np = nd->proto;
    if (!np) return NULL;
    for (size_t i = 0; i < np->n_attribute; i++)
        if (np->attribute[i]->name && strcmp(np->attribute[i]->name, name) == 0) return np->attribute[i];
    return NULL;
}

/* Attributes of functions are out of scope: a reference to one is refused. */
static int attr_direct(const onx_graph *g, const onx_node *nd, const Onnx__AttributeProto *a, tr_err *err) {
    if (a->ref_attr_name && a->ref_attr_name[0])
        return onx_fail(g, nd, err, "attribute \"%s\" refers to a function attribute", a->name);
    return TR_OK;
}

static int attr_type(const onx_graph *g, const onx_node *nd, const Onnx__AttributeProto *a, int want,
                     const char *want_name, tr_err *err) {
    int rc = attr_direct(g, nd, a, err);
    if (rc) return rc;
    if ((int)a->type != want) return onx_fail(g, nd, err, "attribute \"%s\" must be %s", a->name, want_name);
    return TR_OK;
}

int onx_attr_int(const onx_graph *g, const onx_node *nd, const char *name, int64_t *out, tr_err *err) {
    const Onnx__AttributeProto *a = attr_find(nd, name);
    if (!a) return 0;
    int rc = attr_type(g, nd, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT, "an int", err);
    if (rc) return rc;
    *out = a->i;
    return 1;
}

int onx_attr_float(const onx_graph *g, const onx_node *nd, const char *name, float *out, tr_err *err) {
    const Onnx__AttributeProto *a = attr_find(nd, name);
    if (!a) return 0;
    int rc = attr_type(g, nd, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT, "a float", err);
    if (rc) return rc;
    if (!isfinite(a->f)) return onx_fail(g, nd, err, "attribute \"%s\" is not finite", name);
    *out = a->f;
    return 1;
}

int onx_attr_ints(const onx_graph *g, const onx_node *nd, const char *name, int64_t *out, int cap, int *n,
                  tr_err *err) {
    const Onnx__AttributeProto *a = attr_find(nd, name);
    if (!a) return 0;
    int rc = attr_type(g, nd, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS, "a list of ints", err);
    if (rc) return rc;
    if (a->n_ints > (size_t)cap)
        return onx_fail(g, nd, err, "attribute \"%s\" has %zu values; at most %d", name, a->n_ints, cap);
    for (size_t i = 0; i < a->n_ints; i++) out[i] = a->ints[i];
    *n = (int)a->n_ints;
    return 1;
}

int onx_attr_str(const onx_graph *g, const onx_node *nd, const char *name, char *out, size_t cap, tr_err *err) {
    const Onnx__AttributeProto *a = attr_find(nd, name);
    if (!a) return 0;
    int rc = attr_type(g, nd, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING, "a string", err);
    if (rc) return rc;
    if (a->s.len >= cap || (a->s.len && memchr(a->s.data, 0, a->s.len)))
        return onx_fail(g, nd, err, "attribute \"%s\" is not a known value", name);
    if (a->s.len) memcpy(out, a->s.data, a->s.len); /* an empty string has no data pointer */
    out[a->s.len] = 0;
    return 1;
}

int onx_attr_tensor(onx_graph *g, const onx_node *nd, const char *name, int *vi, tr_err *err) {
    const Onnx__AttributeProto *a = attr_find(nd, name);
    if (!a) return 0;
    int rc = attr_type(g, nd, a, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR, "a tensor", err);
    if (rc) return rc;
    if (!a->t) return onx_fail(g, nd, err, "attribute \"%s\" has no tensor", name);
    rc = onx_load_tensor(g, a->t, nd->name, vi, err);
    return rc ? rc : 1;
}

int onx_attr_values(const onx_graph *g, const onx_node *nd, const char *name, onx_value *v, tr_err *err) {
    const Onnx__AttributeProto *a = attr_find(nd, name);
    if (!a) return 0;
    int rc = attr_direct(g, nd, a, err);
    if (rc) return rc;
    int t = (int)a->type,
        list = t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS || t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    int is_f = t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT || t == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    if (!is_f && t != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT && t != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return onx_fail(g, nd, err, "attribute \"%s\" must be a float, an int or a list of them", name);
    size_t n = !list ? 1 : is_f ? a->n_floats : a->n_ints;
    if (n > ONX_MAX_ELEMS)
        return onx_fail(g, nd, err, "attribute \"%s\" has %zu values; at most %d", name, n, ONX_MAX_ELEMS);
    void *data = malloc((n ? n : 1) * (is_f ? sizeof(float) : sizeof(onx_dim)));
    if (!data) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (is_f) {
            float f = list ? a->floats[i] : a->f;
            if (!isfinite(f)) {
                free(data);
                return onx_fail(g, nd, err, "attribute \"%s\" is not finite", name);
            }
            ((float *)data)[i] = f;
        } else {
            ((onx_dim *)data)[i] = onx_d(list ? a->ints[i] : a->i);
        }
    }
    memset(v, 0, sizeof *v);
    v->dtype = is_f ? ONX_F32 : ONX_I64;
    v->rank = list;
    v->dim[0] = onx_d((int64_t)n);
    v->data = data;
    return 1;
}

int onx_attr_only(const onx_graph *g, const onx_node *nd, const char *const *known, tr_err *err) {
    const Onnx__NodeProto *np = nd->proto;
    for (size_t i = 0; np && i < np->n_attribute; i++) {
        const char *an = np->attribute[i]->name ? np->attribute[i]->name : "";
        int ok = 0;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, an) == 0;
        if (!ok) {
            char s[64];
            tr_printable(an, s, sizeof s);
            return onx_fail(g, nd, err, "attribute \"%s\" is not supported", s);
        }
    }
    return TR_OK;
}
