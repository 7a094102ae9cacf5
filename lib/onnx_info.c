/* onnx_info.c - what a loaded graph is: shapes, metadata, ops, parameters, multiply-adds. */
#include <string.h>

#include "onnx.h"
#include "onnx_load.h"
#include "onnx_op.h"

static int sample_shape(const onx_value *v, int64_t *shape) {
    for (int i = 1; i < v->rank; i++) shape[i - 1] = v->dim[i].c;
    return v->rank - 1;
}

static size_t sample_dim(const onx_value *v) {
    size_t n = 1;
    for (int i = 1; i < v->rank; i++) n *= (size_t)v->dim[i].c;
    return n;
}

int onx_input_shape(const onx_graph *g, int64_t *shape) {
    return sample_shape(&g->v[g->input], shape);
}
int onx_output_shape(const onx_graph *g, int64_t *shape) {
    return sample_shape(&g->v[g->outputs[0]], shape);
}
size_t onx_input_dim(const onx_graph *g) {
    return sample_dim(&g->v[g->input]);
}
size_t onx_output_dim(const onx_graph *g) {
    return sample_dim(&g->v[g->outputs[0]]);
}
int64_t onx_fixed_batch(const onx_graph *g) {
    return g->fixed_batch;
}
int onx_opset(const onx_graph *g) {
    return g->opset;
}
const char *onx_input_name(const onx_graph *g) {
    return g->v[g->input].name;
}
const char *onx_output_name(const onx_graph *g) {
    return g->v[g->outputs[0]].name;
}

size_t onx_meta_count(const onx_graph *g) {
    return g->n_meta;
}

void onx_meta_at(const onx_graph *g, size_t i, const char **key, const char **val) {
    *key = g->meta[2 * i];
    *val = g->meta[2 * i + 1];
}

const char *onx_meta(const onx_graph *g, const char *key) {
    for (size_t i = 0; i < g->n_meta; i++)
        if (strcmp(g->meta[2 * i], key) == 0) return g->meta[2 * i + 1];
    return NULL;
}

/* Ops as written in the file (folded and fused nodes included). */
int onx_op_counts(const onx_graph *g, onx_opcount *ops, int cap) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const char *name = g->nodes[i].op->name;
        int j = 0;
        while (j < n && strcmp(ops[j].name, name)) j++;
        if (j < n)
            ops[j].count++;
        else if (n < cap)
            ops[n++] = (onx_opcount){name, 1};
    }
    return n;
}

size_t onx_param_count(const onx_graph *g) {
    return g->n_params;
}

double onx_macs(const onx_graph *g) {
    int64_t b = g->fixed_batch ? g->fixed_batch : 1;
    double total = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const onx_node *nd = &g->nodes[i];
        if (nd->dead || !nd->op->macs) continue;
        onx_t in[ONX_MAX_IO], out[ONX_MAX_IO];
        memset(in, 0, sizeof in);
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0) onx_view(&g->v[nd->in[k]], 1, &in[k]);
        for (int k = 0; k < nd->n_out; k++) onx_view(&g->v[nd->out[k]], 1, &out[k]);
        total += nd->op->macs(nd, in, out);
    }
    return total / (double)b;
}
