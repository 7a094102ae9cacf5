/* onnx_opt.c - load-time rewrites: BatchNormalization into Conv, activation and residual Add fusion, aliases, dead
 * nodes, liveness. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_load.h"
#include "onnx_op.h"

/* Live consumers of each value (the graph output counts as one). */
static void count_uses(const onx_graph *g, int *uses) {
    memset(uses, 0, sizeof *uses * (size_t)g->n_v);
    for (int i = 0; i < g->n_nodes; i++) {
        const onx_node *nd = &g->nodes[i];
        if (nd->dead) continue;
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0) uses[nd->in[k]]++;
    }
    for (int k = 0; k < g->n_outputs; k++) uses[g->outputs[k]]++;
}

/* The live node producing value v if v feeds only one consumer, else NULL. */
static onx_node *sole_producer(onx_graph *g, const int *uses, int v) {
    const onx_value *val = &g->v[v];
    if (val->is_const || val->producer < 0 || uses[v] != 1 || val->is_output) return NULL;
    onx_node *p = &g->nodes[val->producer];
    return p->dead || p->n_out != 1 ? NULL : p;
}

/* Hand node `to` the output of node `from` (which dies). */
static void take_output(onx_graph *g, onx_node *to, onx_node *from) {
    to->out[0] = from->out[0];
    g->v[to->out[0]].producer = (int)(to - g->nodes);
    from->dead = 1;
}

static int new_const(onx_graph *g, const onx_node *nd, const char *suffix, int64_t n, float **data, tr_err *err) {
    char name[128];
    snprintf(name, sizeof name, "%s%s", nd->name, suffix);
    int vi = onx_value_new(g, name);
    if (vi < 0 || !(*data = calloc((size_t)n, sizeof **data)))
        return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    onx_value *v = &g->v[vi];
    v->dtype = ONX_F32;
    v->is_const = 1;
    v->rank = 1;
    v->dim[0] = onx_d(n);
    v->data = *data;
    return vi;
}

/* y = a*conv(x, W) + b  ==  conv(x, a*W) + (a*bias + b), per output channel. */
static int fold_bn(onx_graph *g, onx_node *conv, onx_node *bn, tr_err *err) {
    const onx_value *w = &g->v[conv->in[1]];
    int64_t m = w->dim[0].c, per = 1;
    for (int i = 1; i < w->rank; i++) per *= w->dim[i].c;
    const float *ab = bn->p, *wd = w->data;
    const float *bias = conv->n_in > 2 && conv->in[2] >= 0 ? g->v[conv->in[2]].data : NULL;
    float *nw, *nb;
    int wi = new_const(g, conv, ".bn_weight", m * per, &nw, err);
    if (wi < 0) return wi;
    g->v[wi].rank = w->rank;
    memcpy(g->v[wi].dim, w->dim, sizeof w->dim);
    int bi = new_const(g, conv, ".bn_bias", m, &nb, err);
    if (bi < 0) return bi;
    for (int64_t c = 0; c < m; c++) {
        for (int64_t i = 0; i < per; i++) nw[c * per + i] = wd[c * per + i] * ab[c];
        nb[c] = (bias ? bias[c] : 0.0f) * ab[c] + ab[m + c];
    }
    conv->in[1] = wi;
    conv->in[2] = bi;
    conv->n_in = 3;
    take_output(g, conv, bn);
    return TR_OK;
}

static int is_op(const onx_node *nd, const char *name) {
    return !nd->dead && !strcmp(nd->op->name, name);
}

static int same_shape(const onx_value *a, const onx_value *b) {
    if (a->rank != b->rank) return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i].c != b->dim[i].c || a->dim[i].p != b->dim[i].p) return 0;
    return 1;
}

/* Add(Conv(...), r) -> Conv(..., r) when the Conv's path adds a residual before its activation
 * (onx_conv_takes_residual), nothing broadcasts, and r is ready before the Conv runs: a pass over
 * the tensor less (a ResNet's every block). The sum is the same float either way round. */
static int fuse_residual(onx_graph *g, const int *uses, onx_node *add) {
    const onx_value *o = &g->v[add->out[0]];
    for (int k = 0; add->n_in == 2 && k < 2; k++) {
        onx_node *p = sole_producer(g, uses, add->in[k]);
        int r = add->in[1 - k];
        if (!p || !is_op(p, "Conv") || p->act != ONX_ACT_NONE || p->n_in > 3 || r < 0 || !onx_conv_takes_residual(p))
            continue;
        const onx_value *rv = &g->v[r];
        int ready = rv->is_const || r == g->input || (rv->producer >= 0 && rv->producer < (int)(p - g->nodes));
        if (!ready || rv->dtype != ONX_F32 || !same_shape(rv, o) || !same_shape(&g->v[add->in[k]], o)) continue;
        if (p->n_in < 3) p->in[2] = -1;
        p->in[3] = r;
        p->n_in = 4;
        take_output(g, p, add);
        return 1;
    }
    return 0;
}

int onx_is_runtime(const onx_graph *g, int v) {
    const onx_value *val = &g->v[v];
    return !val->is_const && val->last_use >= 0 && (v == g->input || val->producer >= 0);
}

int onx_is_written(const onx_graph *g, int v) {
    return !g->v[v].is_const && g->v[v].producer >= 0;
}

int onx_optimize(onx_graph *g, tr_err *err) {
    int *uses = malloc(sizeof *uses * (size_t)(g->cap_v + 1)), rc = TR_OK;
    if (!uses) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    /* Identity and Dropout: consumers read the input directly. */
    for (int i = 0; i < g->n_nodes; i++) {
        onx_node *nd = &g->nodes[i];
        if (!(is_op(nd, "Identity") || is_op(nd, "Dropout")) || g->v[nd->out[0]].is_output) continue;
        for (int j = i + 1; j < g->n_nodes; j++)
            for (int k = 0; k < g->nodes[j].n_in; k++)
                if (g->nodes[j].in[k] == nd->out[0]) g->nodes[j].in[k] = nd->in[0];
        nd->dead = 1;
    }
    count_uses(g, uses);
    for (int i = 0; i < g->n_nodes; i++) {
        onx_node *nd = &g->nodes[i], *p;
        if (is_op(nd, "BatchNormalization") && (p = sole_producer(g, uses, nd->in[0])) && is_op(p, "Conv") &&
            p->act == ONX_ACT_NONE && nd->i[0] == g->v[p->in[1]].dim[0].c) {
            if ((rc = fold_bn(g, p, nd, err))) goto done;
        } else if ((is_op(nd, "Relu") || is_op(nd, "Clip")) && (p = sole_producer(g, uses, nd->in[0])) &&
                   p->op->fuse_act && p->act == ONX_ACT_NONE) {
            p->act = nd->op->name[0] == 'R' ? ONX_ACT_RELU : ONX_ACT_CLIP;
            p->act_lo = nd->f[0], p->act_hi = nd->f[1];
            take_output(g, p, nd);
        } else if (is_op(nd, "Add")) {
            fuse_residual(g, uses, nd);
        }
    }
    /* Dead nodes: nothing live reads their outputs. */
    for (int changed = 1; changed;) {
        changed = 0;
        count_uses(g, uses);
        for (int i = g->n_nodes - 1; i >= 0; i--) {
            onx_node *nd = &g->nodes[i];
            int used = 0;
            for (int k = 0; !nd->dead && k < nd->n_out; k++) used |= uses[nd->out[k]] > 0;
            if (!nd->dead && !used) nd->dead = changed = 1;
        }
    }
    for (int v = 0; v < g->n_v; v++) g->v[v].last_use = -1;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; !g->nodes[i].dead && k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0) g->v[g->nodes[i].in[k]].last_use = i;
    for (int k = 0; k < g->n_outputs; k++) g->v[g->outputs[k]].last_use = g->n_nodes;
    for (int i = 0; i < g->n_nodes && rc == TR_OK; i++)
        if (is_op(&g->nodes[i], "Conv")) rc = onx_conv_prepare(g, &g->nodes[i], err);
    /* constants nothing reads any more keep their shape, not their bytes: a Conv's weights before BatchNormalization
     * was folded into new ones, inputs of folded nodes, weights a Conv only reads packed */
    count_uses(g, uses);
    for (int i = 0; i < g->n_nodes && rc == TR_OK; i++)
        if (is_op(&g->nodes[i], "Conv") && onx_conv_packed(&g->nodes[i]) && uses[g->nodes[i].in[1]] == 1)
            uses[g->nodes[i].in[1]] = 0;
    for (int v = 0; v < g->n_v && rc == TR_OK; v++)
        if (g->v[v].is_const && uses[v] == 0 && v != g->input) {
            free(g->v[v].data);
            g->v[v].data = NULL;
        }
done:
    free(uses);
    return rc;
}
