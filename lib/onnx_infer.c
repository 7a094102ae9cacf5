/* onnx_infer.c - symbolic shapes (dims c * N^p) and folding nodes on constants at load. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_load.h"
#include "onnx_op.h"

#define DIM_MAX ((int64_t)1 << 40)

int onx_dmul(onx_dim a, onx_dim b, onx_dim *out) {
    if (a.p + b.p > 1 || a.c < 0 || b.c < 0) return 0;
    if (a.c && b.c > DIM_MAX / a.c) return 0;
    out->c = a.c * b.c;
    out->p = a.c * b.c == 0 ? 0 : a.p + b.p;
    return 1;
}

int onx_ddiv(onx_dim a, onx_dim b, onx_dim *out) {
    if (b.c <= 0 || a.c < 0 || a.p < b.p || a.c % b.c) return 0;
    out->c = a.c / b.c;
    out->p = a.p - b.p;
    return 1;
}

const char *onx_dstr(onx_dim d, char *buf, size_t cap) {
    if (d.p == 0)
        snprintf(buf, cap, "%lld", (long long)d.c);
    else if (d.c == 1)
        snprintf(buf, cap, "N");
    else
        snprintf(buf, cap, "%lldN", (long long)d.c);
    return buf;
}

const char *onx_shape_str(const onx_value *v, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < v->rank && len + 24 < cap; i++) {
        char d[32];
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? "," : "[", onx_dstr(v->dim[i], d, sizeof d));
    }
    snprintf(buf + len, cap - len, "%s", v->rank ? "]" : "[]");
    return buf;
}

int onx_broadcast(const onx_value *a, const onx_value *b, int *rank, onx_dim *out) {
    int r = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r; i++) {
        int ia = i - (r - a->rank), ib = i - (r - b->rank);
        onx_dim da = ia >= 0 ? a->dim[ia] : onx_d(1), db = ib >= 0 ? b->dim[ib] : onx_d(1);
        if (onx_deq(da, db) || (db.p == 0 && db.c == 1))
            out[i] = da;
        else if (da.p == 0 && da.c == 1)
            out[i] = db;
        else
            return 0;
    }
    *rank = r;
    return 1;
}

int onx_numel(const onx_dim *d, int from, int to, onx_dim *out) {
    onx_dim n = onx_d(1);
    for (int i = from; i < to; i++)
        if (!onx_dmul(n, d[i], &n)) return 0;
    *out = n;
    return 1;
}

int onx_axis(int64_t a, int rank, int extra, int *out) {
    int64_t hi = rank + (extra ? 1 : 0);
    if (a < -hi || a >= hi) return 0;
    *out = (int)(a < 0 ? a + hi : a);
    return 1;
}

void onx_view(const onx_value *v, int64_t n, onx_t *t) {
    t->p = NULL;
    t->rank = v->rank;
    t->n = 1;
    t->esz = v->dtype == ONX_F32 ? sizeof(float) : sizeof(onx_dim);
    for (int i = 0; i < v->rank; i++) {
        t->d[i] = v->dim[i].p ? v->dim[i].c * n : v->dim[i].c;
        t->n *= (size_t)t->d[i];
    }
}

void onx_bstrides(const onx_t *t, int r, const int64_t *d, int64_t *st) {
    int64_t s = 1;
    for (int i = r - 1; i >= 0; i--) {
        int it = i - (r - t->rank);
        if (it < 0 || (t->d[it] == 1 && d[i] != 1))
            st[i] = 0;
        else {
            st[i] = s;
            s *= t->d[it];
        }
    }
}

/* Fold: the inputs are constants, so run the kernel once now. An output of
 * the batch's size cannot be materialised: a single float one (a constant
 * expanded to the batch, a float ConstantOfShape of the input's shape) is left
 * to run with each batch; any other (an int64 value of N entries or of shape
 * [N, ...]) is refused. */
int onx_fold(onx_graph *g, onx_node *nd, tr_err *err) {
    onx_t in[ONX_MAX_IO], out[ONX_MAX_IO];
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    float *tmp = NULL;
    int k, rc = TR_OK;
    for (k = 0; k < nd->n_in; k++) {
        if (nd->in[k] < 0) continue;
        onx_view(&g->v[nd->in[k]], 1, &in[k]);
        in[k].p = g->v[nd->in[k]].data;
    }
    for (k = 0; k < nd->n_out; k++) {
        const onx_value *v = &g->v[nd->out[k]];
        for (int i = 0; i < v->rank; i++)
            if (v->dim[i].p)
                return v->dtype == ONX_F32 && nd->n_out == 1
                           ? TR_OK
                           : onx_fail(g, nd, err, "a constant output cannot depend on the batch size");
        onx_view(v, 1, &out[k]);
        if (out[k].n > ((size_t)1 << 30) / out[k].esz) return onx_fail(g, nd, err, "folded output is too large");
        out[k].p = calloc(out[k].n ? out[k].n : 1, out[k].esz);
        if (!out[k].p) {
            rc = tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
            goto fail;
        }
    }
    size_t ns = nd->op->scratch ? nd->op->scratch(nd, in, out) : 0;
    if (ns && !(tmp = malloc(ns * sizeof *tmp))) {
        rc = tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
        goto fail;
    }
    nd->op->run(nd, in, out, tmp);
    free(tmp);
    for (k = 0; k < nd->n_out; k++) onx_set_const(g, nd, k, out[k].p);
    nd->dead = 1;
    return TR_OK;
fail:
    for (k = 0; k < nd->n_out; k++) free(out[k].p);
    return rc;
}
