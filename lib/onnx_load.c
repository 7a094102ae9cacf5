/* onnx_load.c - read a ModelProto (protobuf-c) and validate it into an onx_graph. */
#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_load.h"
#include "onnx_op.h"

int onx_value_new(onx_graph *g, const char *name) {
    if (g->n_v >= g->cap_v) return -1; /* capacity is fixed at load: pointers stay valid */
    onx_value *v = &g->v[g->n_v];
    memset(v, 0, sizeof *v);
    char s[96];
    v->name = strdup(tr_printable(name, s, sizeof s));
    if (!v->name) return -1;
    v->producer = -1;
    v->last_use = -1;
    return g->n_v++;
}

/* --- name -> value index during load (open addressing) --- */
typedef struct {
    const char **key;
    int *val;
    size_t cap;
} name_map;

static size_t hash_str(const char *s) {
    size_t h = 1469598103934665603u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static int map_get(const name_map *m, const char *k) {
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->key[i]) return -1;
        if (strcmp(m->key[i], k) == 0) return m->val[i];
    }
}

static void map_put(name_map *m, const char *k, int v) {
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->key[i]) i = (i + 1) & (m->cap - 1);
    m->key[i] = k;
    m->val[i] = v;
}

/* --- tensors --- */

static const char *dtype_name(int dt) {
    static const char *const names[] = {"undefined", "float",  "uint8",     "int8",       "uint16",  "int16",
                                        "int32",     "int64",  "string",    "bool",       "float16", "double",
                                        "uint32",    "uint64", "complex64", "complex128", "bfloat16"};
    return dt >= 0 && dt < (int)(sizeof names / sizeof names[0]) ? names[dt] : "unknown";
}

int onx_load_tensor(onx_graph *g, const Onnx__TensorProto *t, const char *owner, int *vi, tr_err *err) {
    char nm[96];
    tr_printable(t->name && t->name[0] ? t->name : owner, nm, sizeof nm);
    if (t->n_external_data || (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
        return tr_seterr(err, TR_EFORMAT, nm,
                         "tensor \"%s\": external data (weights in a separate file) is not supported; "
                         "save the model with its weights inside the .onnx file",
                         nm);
    if (t->segment) return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": segmented tensors are not supported", nm);
    int dt = t->has_data_type ? t->data_type : 0;
    int is_bool = dt == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;  /* kept as int64 0 or 1 (Dropout's training_mode) */
    int is_dbl = dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE; /* kept as float (torch's constants before a Cast) */
    if (dt != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT && dt != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 &&
        dt != ONNX__TENSOR_PROTO__DATA_TYPE__INT32 && !is_bool && !is_dbl)
        return tr_seterr(err, TR_EFORMAT, nm,
                         "tensor \"%s\": data type %s is not supported (float, double, int64, int32, bool)", nm,
                         dtype_name(dt));
    if (t->n_dims > ONX_MAX_RANK)
        return tr_seterr(err, TR_ELIMIT, nm, "tensor \"%s\": %zu dimensions; at most %d", nm, t->n_dims, ONX_MAX_RANK);
    size_t n = 1;
    for (size_t i = 0; i < t->n_dims; i++) {
        if (t->dims[i] < 0)
            return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": dimension %zu is negative (%lld)", nm, i,
                             (long long)t->dims[i]);
        if (!tr_size_mul(n, (size_t)t->dims[i], &n) || n > ((size_t)1 << 34))
            return tr_seterr(err, TR_ELIMIT, nm, "tensor \"%s\": element count overflows", nm);
    }
    size_t esz = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 || is_dbl ? 8 : is_bool ? 1 : 4, bytes = n * esz;
    size_t typed = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT   ? t->n_float_data
                   : dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ? t->n_int64_data
                   : is_dbl                                     ? t->n_double_data
                                                                : t->n_int32_data; /* int32 and bool */
    size_t raw = t->has_raw_data ? t->raw_data.len : 0;
    if (raw && typed) return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": has both raw_data and typed data", nm);
    if (raw ? raw != bytes : typed != n)
        return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": data has %zu bytes; shape and dtype need %zu", nm,
                         raw ? raw : typed * esz, bytes);
    int id = onx_value_new(g, t->name && t->name[0] ? t->name : owner);
    if (id < 0) return tr_seterr(err, TR_ENOMEM, nm, "out of memory");
    onx_value *v = &g->v[id];
    v->rank = (int)t->n_dims;
    for (int i = 0; i < v->rank; i++) v->dim[i] = onx_d(t->dims[i]);
    v->is_const = 1;
    if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT || is_dbl) {
        v->dtype = ONX_F32;
        float *f = malloc(n ? n * sizeof *f : 1);
        if (!f) return tr_seterr(err, TR_ENOMEM, nm, "tensor \"%s\": out of memory", nm);
        v->data = f;
        if (is_dbl)
            for (size_t i = 0; i < n; i++) {
                double d;
                if (raw)
                    memcpy(&d, t->raw_data.data + i * 8, 8);
                else
                    d = t->double_data[i];
                if (!(fabs(d) <= FLT_MAX))
                    return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": element %zu is not a finite float", nm, i);
                f[i] = (float)d;
            }
        else if (raw)
            memcpy(f, t->raw_data.data, bytes);
        else if (n)
            memcpy(f, t->float_data, bytes);
        for (size_t i = 0; i < n; i++)
            if (!isfinite(f[i]))
                return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": element %zu is not finite", nm, i);
    } else {
        v->dtype = ONX_I64;
        onx_dim *d = malloc(n ? n * sizeof *d : 1);
        if (!d) return tr_seterr(err, TR_ENOMEM, nm, "tensor \"%s\": out of memory", nm);
        for (size_t i = 0; i < n; i++) {
            int64_t x;
            if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
                if (raw)
                    memcpy(&x, t->raw_data.data + i * 8, 8);
                else
                    x = t->int64_data[i];
            } else if (is_bool) {
                x = raw ? t->raw_data.data[i] != 0 : t->int32_data[i] != 0;
            } else {
                int32_t y;
                if (raw)
                    memcpy(&y, t->raw_data.data + i * 4, 4);
                else
                    y = t->int32_data[i];
                x = y;
            }
            d[i] = onx_d(x);
        }
        v->data = d;
    }
    *vi = id;
    return TR_OK;
}

/* --- the one runtime input --- */

static int load_input(onx_graph *g, const Onnx__ValueInfoProto *in, int id, tr_err *err) {
    onx_value *v = &g->v[id];
    const Onnx__TypeProto *tp = in->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return tr_seterr(err, TR_EFORMAT, v->name, "input \"%s\": not a tensor", v->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (!tt->has_elem_type || tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        return tr_seterr(err, TR_EFORMAT, v->name, "input \"%s\": element type %s; only float inputs are supported",
                         v->name, dtype_name(tt->has_elem_type ? tt->elem_type : 0));
    if (!tt->shape || tt->shape->n_dim < 1)
        return tr_seterr(err, TR_EFORMAT, v->name, "input \"%s\": no shape; the input needs [batch, ...]", v->name);
    if (tt->shape->n_dim > ONX_MAX_RANK)
        return tr_seterr(err, TR_ELIMIT, v->name, "input \"%s\": %zu dimensions; at most %d", v->name, tt->shape->n_dim,
                         ONX_MAX_RANK);
    v->dtype = ONX_F32;
    v->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < v->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        int fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
        if (i == 0) {
            if (fixed && (d->dim_value < 1 || d->dim_value > 65536))
                return tr_seterr(err, TR_EFORMAT, v->name,
                                 "input \"%s\": batch dimension %lld is out of range 1..65536", v->name,
                                 (long long)d->dim_value);
            g->fixed_batch = fixed ? d->dim_value : 0;
            v->dim[0] = fixed ? onx_d(d->dim_value) : (onx_dim){1, 1};
            continue;
        }
        if (!fixed)
            return tr_seterr(err, TR_EFORMAT, v->name,
                             "input \"%s\": dimension %d is symbolic; only the first (batch) dimension may be", v->name,
                             i);
        if (d->dim_value < 1 || d->dim_value > (1 << 24))
            return tr_seterr(err, TR_EFORMAT, v->name, "input \"%s\": dimension %d is %lld", v->name, i,
                             (long long)d->dim_value);
        v->dim[i] = onx_d(d->dim_value);
    }
    onx_dim n;
    if (!onx_numel(v->dim, 1, v->rank, &n) || n.c > ONX_MAX_ELEMS)
        return tr_seterr(err, TR_ELIMIT, v->name, "input \"%s\": too many elements per sample", v->name);
    return TR_OK;
}

/* --- nodes --- */

/* The names that node inputs or the graph output read, each once, at most
 * max of them (a valid graph reads no more names than it defines): the
 * by-products of by_products() that none reads are not computed. */
static void map_reads(name_map *r, const Onnx__GraphProto *gp, size_t max) {
    size_t n = 0;
    for (size_t i = 0; i < gp->n_output && n < max; i++)
        if (gp->output[i]->name && map_get(r, gp->output[i]->name) < 0) map_put(r, gp->output[i]->name, 1), n++;
    for (size_t i = 0; i < gp->n_node; i++)
        for (size_t k = 0; k < gp->node[i]->n_input && n < max; k++) {
            const char *in = gp->node[i]->input[k];
            if (in && in[0] && map_get(r, in) < 0) map_put(r, in, 1), n++;
        }
}

/* Ops whose outputs after the first are optional by-products: Dropout's
 * mask, MaxPool's indices, BatchNormalization's training statistics,
 * LayerNormalization's mean and inverse deviation. */
static int by_products(const char *op) {
    return !strcmp(op, "Dropout") || !strcmp(op, "MaxPool") || !strcmp(op, "BatchNormalization") ||
           !strcmp(op, "LayerNormalization");
}

static int load_node(onx_graph *g, const Onnx__NodeProto *np, int idx, name_map *m, const name_map *reads,
                     tr_err *err) {
    onx_node *nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    char s[96];
    nd->idx = idx;
    nd->name = strdup(tr_printable(np->name, s, sizeof s));
    if (!nd->name) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    g->n_nodes++;
    nd->proto = np;
    const char *op = np->op_type ? np->op_type : "";
    char ops[64];
    tr_printable(op, ops, sizeof ops);
    if (np->domain && np->domain[0] && strcmp(np->domain, "ai.onnx") != 0) {
        tr_printable(np->domain, s, sizeof s);
        return tr_seterr(err, TR_EFORMAT, nd->name, "node %d \"%s\" (%s): domain \"%s\" is not supported", idx,
                         nd->name, ops, s);
    }
    nd->op = onx_op_find(op);
    if (!nd->op) {
        char list[2048];
        onx_op_list(list, sizeof list);
        return tr_seterr(err, TR_EFORMAT, nd->name,
                         "node %d \"%s\": op %s (opset %d) is not supported; supported ops: %s", idx, nd->name, ops,
                         g->opset, list);
    }
    if (g->opset < nd->op->min_opset)
        return onx_fail(g, nd, err,
                        "op %s at opset %d is not supported (its definition changed at opset %d); "
                        "re-export with opset %d or later",
                        ops, g->opset, nd->op->min_opset, nd->op->min_opset);
    if (np->n_input > ONX_MAX_IO || np->n_output > ONX_MAX_IO)
        return onx_fail(g, nd, err, "more than %d inputs or outputs", ONX_MAX_IO);
    nd->n_in = (int)np->n_input;
    nd->n_out = (int)np->n_output;
    while (by_products(op) && nd->n_out > 1 &&
           (!np->output[nd->n_out - 1] || map_get(reads, np->output[nd->n_out - 1]) < 0))
        nd->n_out--;
    for (int k = 0; k < nd->n_in; k++) {
        const char *in = np->input[k];
        if (!in || !in[0]) {
            nd->in[k] = -1;
            continue;
        }
        int vi = map_get(m, in);
        if (vi < 0)
            return onx_fail(g, nd, err, "input \"%s\" is not defined before use (nodes must be in topological order)",
                            tr_printable(in, s, sizeof s));
        nd->in[k] = vi;
        if (g->v[vi].dtype == 0) return onx_fail(g, nd, err, "input \"%s\" has no type", g->v[vi].name);
    }
    for (int k = 0; k < nd->n_out; k++) {
        const char *o = np->output[k];
        if (!o || !o[0]) return onx_fail(g, nd, err, "output %d has no name", k);
        if (map_get(m, o) >= 0)
            return onx_fail(g, nd, err, "output \"%s\" is already defined (each value has one producer)",
                            tr_printable(o, s, sizeof s));
        int vi = onx_value_new(g, o);
        if (vi < 0) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
        g->v[vi].producer = g->n_nodes - 1;
        nd->out[k] = vi;
        map_put(m, o, vi);
    }
    int rc = nd->op->infer(g, nd, err);
    if (rc) return rc;
    for (int k = 0; k < nd->n_out; k++) {
        const onx_value *v = &g->v[nd->out[k]];
        onx_dim cnt;
        if (!v->dtype) return onx_fail(g, nd, err, "output %d was not inferred", k);
        /* bounded sizes keep every BLAS dimension an int and plans free of overflow */
        if (!onx_numel(v->dim, 0, v->rank, &cnt) || cnt.c > ONX_MAX_ELEMS)
            return onx_fail(g, nd, err, "output \"%s\" has more than %d elements (per sample, or per fixed batch)",
                            v->name, ONX_MAX_ELEMS);
    }
    int all_const = 1, outs_const = 1;
    for (int k = 0; k < nd->n_in; k++)
        if (nd->in[k] >= 0 && !g->v[nd->in[k]].is_const) all_const = 0;
    for (int k = 0; k < nd->n_out; k++)
        if (!g->v[nd->out[k]].is_const) outs_const = 0;
    if (outs_const)
        nd->dead = 1;
    else if (all_const && (rc = onx_fold(g, nd, err)))
        return rc;
    return TR_OK;
}

static int load_meta(onx_graph *g, const Onnx__ModelProto *mp, tr_err *err) {
    if (mp->n_metadata_props > 1024)
        return tr_seterr(err, TR_ELIMIT, "metadata_props", "more than 1024 metadata_props");
    g->meta = calloc(2 * mp->n_metadata_props + 1, sizeof *g->meta);
    if (!g->meta) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        const Onnx__StringStringEntryProto *e = mp->metadata_props[i];
        const char *k = e->key ? e->key : "", *val = e->value ? e->value : "";
        char s[64];
        if (!k[0]) return tr_seterr(err, TR_EFORMAT, "metadata_props", "metadata_props entry %zu has an empty key", i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(g->meta[2 * j], k) == 0)
                return tr_seterr(err, TR_EFORMAT, "metadata_props", "metadata key \"%s\" appears twice",
                                 tr_printable(k, s, sizeof s));
        g->meta[2 * i] = strdup(k);
        g->meta[2 * i + 1] = strdup(val);
        g->n_meta = i + 1;
        if (!g->meta[2 * i] || !g->meta[2 * i + 1]) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    }
    return TR_OK;
}

static int load_opset(onx_graph *g, const Onnx__ModelProto *mp, tr_err *err) {
    if (!mp->has_ir_version || mp->ir_version < 3 || mp->ir_version > 9)
        return tr_seterr(err, TR_EFORMAT, "ir_version", "IR version %lld is not supported (3 to 9)",
                         (long long)mp->ir_version);
    g->ir_version = mp->ir_version;
    for (size_t i = 0; i < mp->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = mp->opset_import[i];
        if (o->domain && o->domain[0] && strcmp(o->domain, "ai.onnx") != 0) continue;
        if (g->opset) return tr_seterr(err, TR_EFORMAT, "opset_import", "the default domain is imported twice");
        if (!o->has_version || o->version < ONX_MIN_OPSET || o->version > ONX_MAX_OPSET)
            return tr_seterr(err, TR_EFORMAT, "opset_import", "opset %lld is not supported (%d to %d)",
                             (long long)o->version, ONX_MIN_OPSET, ONX_MAX_OPSET);
        g->opset = (int)o->version;
    }
    if (!g->opset) return tr_seterr(err, TR_EFORMAT, "opset_import", "no default-domain opset is imported");
    return TR_OK;
}

/* Each initializer as a constant value, named in m. */
static int load_initializers(onx_graph *g, const Onnx__GraphProto *gp, name_map *m, tr_err *err) {
    char s[96];
    int rc;
    for (size_t i = 0; i < gp->n_initializer; i++) {
        const Onnx__TensorProto *t = gp->initializer[i];
        if (!t->name || !t->name[0]) return tr_seterr(err, TR_EFORMAT, "initializer", "initializer %zu has no name", i);
        if (map_get(m, t->name) >= 0)
            return tr_seterr(err, TR_EFORMAT, "initializer", "initializer \"%s\" appears twice",
                             tr_printable(t->name, s, sizeof s));
        int vi;
        if ((rc = onx_load_tensor(g, t, "", &vi, err))) return rc;
        map_put(m, t->name, vi);
        onx_t view;
        onx_view(&g->v[vi], 1, &view);
        g->n_params += view.n;
    }
    return TR_OK;
}

/* The one graph input that is not an initializer (old files list those as
 * inputs too) into g->input. */
static int load_inputs(onx_graph *g, const Onnx__GraphProto *gp, name_map *m, tr_err *err) {
    char s[96];
    int rc;
    g->input = -1;
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *nm = gp->input[i]->name ? gp->input[i]->name : "";
        if (map_get(m, nm) >= 0) continue; /* an initializer listed as input: a constant */
        if (!nm[0]) return tr_seterr(err, TR_EFORMAT, "input", "graph input %zu has no name", i);
        if (g->input >= 0)
            return tr_seterr(err, TR_EFORMAT, "input",
                             "the graph has more than one input (\"%s\" and \"%s\"); exactly one is supported",
                             g->v[g->input].name, tr_printable(nm, s, sizeof s));
        if ((g->input = onx_value_new(g, nm)) < 0) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
        if ((rc = load_input(g, gp->input[i], g->input, err))) return rc;
        map_put(m, nm, g->input);
    }
    if (g->input < 0) return tr_seterr(err, TR_EFORMAT, "input", "the graph has no input besides its initializers");
    return TR_OK;
}

/* The one graph output: a float tensor computed from the input, batch first. */
static int load_output(onx_graph *g, const Onnx__GraphProto *gp, const name_map *m, tr_err *err) {
    char s[96], sh[128];
    if (gp->n_output != 1)
        return tr_seterr(err, TR_EFORMAT, "output",
                         "the graph has %zu outputs; exactly one (the embedding) is supported", gp->n_output);
    const char *on = gp->output[0]->name ? gp->output[0]->name : "";
    int ov = map_get(m, on);
    tr_printable(on, s, sizeof s);
    if (ov < 0) return tr_seterr(err, TR_EFORMAT, "output", "output \"%s\" is not produced by any node", s);
    const onx_value *o = &g->v[ov];
    onx_shape_str(o, sh, sizeof sh);
    if (o->is_const || ov == g->input)
        return tr_seterr(err, TR_EFORMAT, "output", "output \"%s\" does not depend on the input", s);
    if (o->dtype != ONX_F32) return tr_seterr(err, TR_EFORMAT, "output", "output \"%s\" is not a float tensor", s);
    onx_dim b = g->fixed_batch ? onx_d(g->fixed_batch) : (onx_dim){1, 1}, rest;
    if (o->rank < 1 || !onx_deq(o->dim[0], b) || !onx_numel(o->dim, 1, o->rank, &rest) || rest.p != 0)
        return tr_seterr(err, TR_EFORMAT, "output", "output \"%s\" has shape %s; its first dimension must be the batch",
                         s, sh);
    if (!(g->outputs = malloc(sizeof *g->outputs))) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    g->outputs[0] = ov;
    g->n_outputs = 1;
    g->v[ov].is_output = 1;
    return TR_OK;
}

static int load_graph(onx_graph *g, const Onnx__ModelProto *mp, tr_err *err) {
    const Onnx__GraphProto *gp = mp->graph;
    int rc;
    if ((rc = load_opset(g, mp, err)) || (rc = load_meta(g, mp, err))) return rc;
    if (!gp) return tr_seterr(err, TR_EFORMAT, "graph", "the model has no graph");
    if (gp->n_sparse_initializer) return tr_seterr(err, TR_EFORMAT, "graph", "sparse initializers are not supported");
    if (gp->n_node > ONX_MAX_NODES)
        return tr_seterr(err, TR_ELIMIT, "graph", "%zu nodes; at most %d", gp->n_node, ONX_MAX_NODES);
    if (gp->n_initializer > ONX_MAX_NODES || gp->n_input > ONX_MAX_NODES)
        return tr_seterr(err, TR_ELIMIT, "graph", "too many initializers or inputs");
    size_t cap = gp->n_initializer + gp->n_input + 2 * gp->n_node + 16;
    for (size_t i = 0; i < gp->n_node; i++) cap += gp->node[i]->n_output;
    g->cap_v = (int)cap;
    g->v = calloc(cap, sizeof *g->v);
    g->nodes = calloc(gp->n_node + 1, sizeof *g->nodes);
    name_map m = {0}, reads = {0};
    for (m.cap = 16; m.cap < 2 * cap; m.cap *= 2) {
    }
    m.key = calloc(m.cap, sizeof *m.key);
    m.val = calloc(m.cap, sizeof *m.val);
    reads.cap = m.cap;
    reads.key = calloc(m.cap, sizeof *reads.key);
    reads.val = calloc(m.cap, sizeof *reads.val);
    if (!g->v || !g->nodes || !m.key || !m.val || !reads.key || !reads.val) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto done;
    }
    if ((rc = load_initializers(g, gp, &m, err)) || (rc = load_inputs(g, gp, &m, err))) goto done;
    map_reads(&reads, gp, cap);
    for (size_t i = 0; i < gp->n_node; i++)
        if ((rc = load_node(g, gp->node[i], (int)i, &m, &reads, err))) goto done;
    if ((rc = load_output(g, gp, &m, err)) == TR_OK) rc = onx_optimize(g, err);
done:
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i].proto = NULL;
    free(m.key);
    free(m.val);
    free(reads.key);
    free(reads.val);
    return rc;
}

void onx_free(onx_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_v; i++) {
        free(g->v[i].name);
        free(g->v[i].data);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].name);
        free(g->nodes[i].p);
    }
    for (size_t i = 0; i < 2 * g->n_meta; i++) free(g->meta[i]);
    free(g->meta);
    free(g->v);
    free(g->nodes);
    free(g->outputs);
    free(g);
}

static atomic_uint_fast64_t next_id = 1;

int onx_open_mem(const uint8_t *buf, size_t len, onx_graph **out, tr_err *err) {
    *out = NULL;
    if (len > ONX_MAX_FILE)
        return tr_seterr(err, TR_ELIMIT, "", "file is %zu bytes; the limit is %u", len, ONX_MAX_FILE);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    if (!mp) return tr_seterr(err, TR_EFORMAT, "", "not an ONNX model: the protobuf ModelProto does not parse");
    onx_graph *g = calloc(1, sizeof *g);
    if (!g) {
        onnx__model_proto__free_unpacked(mp, NULL);
        return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    }
    g->id = atomic_fetch_add(&next_id, 1);
    if (mp->producer_name) tr_printable(mp->producer_name, g->producer, sizeof g->producer);
    int rc = load_graph(g, mp, err);
    onnx__model_proto__free_unpacked(mp, NULL);
    if (rc) {
        onx_free(g);
        return rc;
    }
    *out = g;
    return TR_OK;
}

int onx_is_model(const uint8_t *buf, size_t len) {
    if (len > ONX_MAX_FILE) return 0;
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, len, buf);
    int yes = mp && mp->has_ir_version && mp->graph;
    if (mp) onnx__model_proto__free_unpacked(mp, NULL);
    return yes;
}

int onx_open(const char *path, onx_graph **out, tr_err *err) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    int rc = tr_read_file(path, ONX_MAX_FILE, &buf, &len, err);
    if (rc == TR_OK) rc = onx_open_mem(buf, len, out, err);
    free(buf);
    return rc;
}
