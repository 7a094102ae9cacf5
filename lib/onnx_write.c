/* onnx_write.c - an nn_arch network and its weights as an ONNX ModelProto (protobuf-c), written atomically. */
#include "onnx_write.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "onnx.h"
#include "onnx/onnx.pb-c.h"

#define W_OPSET 13
#define W_IR_VERSION 7 /* the IR of opset 13 (ONNX 1.8) */
#define W_MAX_NODES (NN_MAX_LAYERS * 6 + 4)
#define W_MAX_INITS (NN_MAX_LAYERS * 4 + 4)
#define W_MAX_ATTRS 6

/* The graph being built. Every message and string is one allocation listed
 * in blk and freed together; parameter data is referenced, not copied. */
typedef struct {
    void **blk;
    size_t n_blk, cap_blk;
    int oom;
    Onnx__NodeProto *node[W_MAX_NODES];
    size_t n_node;
    Onnx__TensorProto *init[W_MAX_INITS];
    size_t n_init;
    const char *cur; /* the tensor the next layer reads */
    int rank;        /* of cur: 2 (N x C) or 4 (N x C x H x W) */
} wb;

static void *wb_alloc(wb *b, size_t size) {
    if (b->oom) return NULL;
    if (b->n_blk == b->cap_blk) {
        size_t cap = b->cap_blk ? 2 * b->cap_blk : 256;
        void **p = realloc(b->blk, cap * sizeof *p);
        if (!p) {
            b->oom = 1;
            return NULL;
        }
        b->blk = p;
        b->cap_blk = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (!p) {
        b->oom = 1;
        return NULL;
    }
    b->blk[b->n_blk++] = p;
    return p;
}

static char *wb_str(wb *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static char *wb_str(wb *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : wb_alloc(b, (size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static void wb_free(wb *b) {
    for (size_t i = 0; i < b->n_blk; i++) free(b->blk[i]);
    free(b->blk);
}

/* An initializer of float (data referenced) or int64 values; its name. */
static const char *add_init(wb *b, const char *name, const float *f, const int64_t *i64, const int64_t *dims,
                            size_t n_dims) {
    Onnx__TensorProto *t = wb_alloc(b, sizeof *t);
    int64_t *d = wb_alloc(b, (n_dims ? n_dims : 1) * sizeof *d);
    if (!t || !d || !name || b->n_init >= W_MAX_INITS) return b->oom = 1, NULL;
    onnx__tensor_proto__init(t);
    size_t n = 1;
    for (size_t k = 0; k < n_dims; k++) n *= (size_t)(d[k] = dims[k]);
    t->name = (char *)name;
    t->n_dims = n_dims;
    t->dims = d;
    t->has_data_type = 1;
    if (f) {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
        t->n_float_data = n;
        t->float_data = (float *)(uintptr_t)f; /* only read by the packer */
    } else {
        t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
        t->n_int64_data = n;
        t->int64_data = (int64_t *)(uintptr_t)i64;
    }
    b->init[b->n_init++] = t;
    return name;
}

/* A float initializer named "<layer>.<what>" over params (shape dims). */
static const char *param(wb *b, int layer, const char *what, const float *data, const int64_t *dims, size_t n_dims) {
    return add_init(b, wb_str(b, "%d.%s", layer, what), data, NULL, dims, n_dims);
}

/* A scalar float constant (rank 0) named "<layer>.<what>". */
static const char *scalar(wb *b, int layer, const char *what, float v) {
    float *p = wb_alloc(b, sizeof *p);
    if (!p) return NULL;
    *p = v;
    return add_init(b, wb_str(b, "%d.%s", layer, what), p, NULL, NULL, 0);
}

/* Append node op reading in[0..n_in) (in[0] NULL: the current tensor) and
 * writing a new tensor that becomes the current one. */
static Onnx__NodeProto *add_node(wb *b, const char *op, const char *const *in, size_t n_in) {
    Onnx__NodeProto *nd = wb_alloc(b, sizeof *nd);
    char **ins = wb_alloc(b, n_in * sizeof *ins), **outs = wb_alloc(b, sizeof *outs);
    Onnx__AttributeProto **at = wb_alloc(b, W_MAX_ATTRS * sizeof *at);
    if (!nd || !ins || !outs || !at || b->n_node >= W_MAX_NODES) return b->oom = 1, NULL;
    onnx__node_proto__init(nd);
    for (size_t k = 0; k < n_in; k++)
        if ((ins[k] = (char *)(k == 0 && !in[0] ? b->cur : in[k])) == NULL) return b->oom = 1, NULL;
    if ((nd->name = wb_str(b, "%s_%zu", op, b->n_node)) == NULL || (outs[0] = wb_str(b, "t%zu", b->n_node)) == NULL ||
        (nd->op_type = wb_str(b, "%s", op)) == NULL)
        return NULL;
    nd->n_input = n_in;
    nd->input = ins;
    nd->n_output = 1;
    nd->output = outs;
    nd->attribute = at;
    b->node[b->n_node++] = nd;
    b->cur = outs[0];
    return nd;
}

static Onnx__AttributeProto *add_attr(wb *b, Onnx__NodeProto *nd, const char *name, int type) {
    Onnx__AttributeProto *a = nd ? wb_alloc(b, sizeof *a) : NULL;
    if (!a) return NULL;
    onnx__attribute_proto__init(a);
    a->name = (char *)name;
    a->has_type = 1;
    a->type = type;
    nd->attribute[nd->n_attribute++] = a;
    return a;
}

static void attr_int(wb *b, Onnx__NodeProto *nd, const char *name, int64_t v) {
    Onnx__AttributeProto *a = add_attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    if (a) a->has_i = 1, a->i = v;
}

static void attr_float(wb *b, Onnx__NodeProto *nd, const char *name, float v) {
    Onnx__AttributeProto *a = add_attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    if (a) a->has_f = 1, a->f = v;
}

/* An INTS attribute of n copies of v (kernel_shape, strides, pads). */
static void attr_ints(wb *b, Onnx__NodeProto *nd, const char *name, int64_t v, size_t n) {
    Onnx__AttributeProto *a = add_attr(b, nd, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    int64_t *p = a ? wb_alloc(b, n * sizeof *p) : NULL;
    if (!p) return;
    for (size_t k = 0; k < n; k++) p[k] = v;
    a->n_ints = n;
    a->ints = p;
}

static Onnx__NodeProto *unary(wb *b, const char *op) {
    const char *in[] = {NULL};
    return add_node(b, op, in, 1);
}

/* The current tensor as N x C x 1 x 1 (a spatial layer after a flat one). */
static void to_rank4(wb *b, int layer, int c) {
    if (b->rank == 4) return;
    int64_t *shape = wb_alloc(b, 4 * sizeof *shape), dims[] = {4};
    if (!shape) return;
    shape[0] = -1, shape[1] = c, shape[2] = shape[3] = 1;
    const char *in[] = {NULL, add_init(b, wb_str(b, "%d.shape", layer), NULL, shape, dims, 1)};
    add_node(b, "Reshape", in, 2);
    b->rank = 4;
}

static void to_rank2(wb *b) {
    if (b->rank == 2) return;
    attr_int(b, unary(b, "Flatten"), "axis", 1);
    b->rank = 2;
}

/* Kernel, stride and padding attributes of a conv or pool layer. */
static void window_attrs(wb *b, Onnx__NodeProto *nd, const nn_layer *L) {
    attr_ints(b, nd, "kernel_shape", L->k, 2);
    attr_ints(b, nd, "strides", L->stride, 2);
    attr_ints(b, nd, "pads", L->pad, 4);
}

static void emit_layer(wb *b, int i, const nn_layer *L, const float *params, const float *state) {
    Onnx__NodeProto *nd;
    int64_t c = L->in.c;
    switch (L->kind) {
    case NN_CONV: {
        to_rank4(b, i, L->in.c);
        int64_t wd[] = {L->out, c / L->groups, L->k, L->k}, bd[] = {L->out};
        const char *in[] = {NULL, param(b, i, "weight", params + L->w_off, wd, 4),
                            param(b, i, "bias", params + L->b_off, bd, 1)};
        nd = add_node(b, "Conv", in, 3);
        window_attrs(b, nd, L);
        attr_ints(b, nd, "dilations", 1, 2);
        attr_int(b, nd, "group", L->groups);
        break;
    }
    case NN_BN: {
        int64_t d[] = {c};
        const char *in[] = {NULL, param(b, i, "weight", params + L->w_off, d, 1),
                            param(b, i, "bias", params + L->b_off, d, 1),
                            param(b, i, "running_mean", state + L->s_off, d, 1),
                            param(b, i, "running_var", state + L->s_off + (size_t)c, d, 1)};
        nd = add_node(b, "BatchNormalization", in, 5);
        attr_float(b, nd, "epsilon", 1e-5f);
        attr_float(b, nd, "momentum", 0.9f); /* ONNX's momentum is 1 - PyTorch's; unused in inference */
        break;
    }
    case NN_RELU:
        unary(b, "Relu");
        break;
    case NN_TANH:
        unary(b, "Tanh");
        break;
    case NN_SIGMOID:
        unary(b, "Sigmoid");
        break;
    case NN_GELU: { /* x * 0.5 * (1 + erf(x / sqrt(2))), as torch.onnx exports it before opset 20 */
        const char *x = b->cur;
        const char *div[] = {NULL, scalar(b, i, "sqrt2", 1.41421356237309504880f)};
        add_node(b, "Div", div, 2);
        unary(b, "Erf");
        const char *add[] = {NULL, scalar(b, i, "one", 1.0f)};
        add_node(b, "Add", add, 2);
        const char *mul[] = {x, b->cur};
        add_node(b, "Mul", mul, 2);
        const char *half[] = {NULL, scalar(b, i, "half", 0.5f)};
        add_node(b, "Mul", half, 2);
        break;
    }
    case NN_MAXPOOL:
        to_rank4(b, i, L->in.c);
        window_attrs(b, unary(b, "MaxPool"), L);
        break;
    case NN_AVGPOOL:
        to_rank4(b, i, L->in.c);
        nd = unary(b, "AveragePool");
        window_attrs(b, nd, L);
        attr_int(b, nd, "count_include_pad", 1);
        break;
    case NN_GAP:
        to_rank4(b, i, L->in.c);
        unary(b, "GlobalAveragePool");
        break;
    case NN_FLATTEN:
        to_rank2(b);
        break;
    case NN_FC: {
        to_rank2(b);
        int64_t wd[] = {L->out, c}, bd[] = {L->out};
        const char *in[] = {NULL, param(b, i, "weight", params + L->w_off, wd, 2),
                            param(b, i, "bias", params + L->b_off, bd, 1)};
        attr_int(b, add_node(b, "Gemm", in, 3), "transB", 1);
        break;
    }
    default: /* dropout: identity at inference */
        break;
    }
}

/* A float tensor value_info: name [batch, dims...]. */
static Onnx__ValueInfoProto *value_info(wb *b, const char *name, const int64_t *dims, size_t n_dims) {
    Onnx__ValueInfoProto *v = wb_alloc(b, sizeof *v);
    Onnx__TypeProto *tp = wb_alloc(b, sizeof *tp);
    Onnx__TypeProto__Tensor *tt = wb_alloc(b, sizeof *tt);
    Onnx__TensorShapeProto *sh = wb_alloc(b, sizeof *sh);
    Onnx__TensorShapeProto__Dimension **dd = wb_alloc(b, (n_dims + 1) * sizeof *dd);
    if (!v || !tp || !tt || !sh || !dd) return NULL;
    onnx__value_info_proto__init(v);
    onnx__type_proto__init(tp);
    onnx__type_proto__tensor__init(tt);
    onnx__tensor_shape_proto__init(sh);
    for (size_t k = 0; k <= n_dims; k++) {
        if ((dd[k] = wb_alloc(b, sizeof *dd[k])) == NULL) return NULL;
        onnx__tensor_shape_proto__dimension__init(dd[k]);
        if (k == 0) {
            dd[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            dd[k]->dim_param = "batch";
        } else {
            dd[k]->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dd[k]->dim_value = dims[k - 1];
        }
    }
    sh->n_dim = n_dims + 1;
    sh->dim = dd;
    tt->has_elem_type = 1;
    tt->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->name = (char *)name;
    v->type = tp;
    return v;
}

/* The arguments agree with each other and make a file mdl_load accepts. */
static int check_args(const nn_arch *a, const float *params, const float *state, const mdl_image *im,
                      const char *const *meta, size_t n_meta, tr_err *err) {
    if (a->n < 0 || a->n > NN_MAX_LAYERS) return tr_seterr(err, TR_EINVAL, "arch", "%d layers", a->n);
    if ((a->n_params && !params) || (a->n_state && !state))
        return tr_seterr(err, TR_EINVAL, "params", "the network has %zu parameters and %zu state values, none given",
                         a->n_params, a->n_state);
    for (int i = 0; i < a->n; i++) {
        const nn_layer *L = &a->l[i];
        if (L->w_off + L->n_w > a->n_params || L->b_off + L->n_b > a->n_params || L->s_off + L->n_s > a->n_state)
            return tr_seterr(err, TR_EINVAL, "arch", "layer %d's parameters lie outside the arrays", i);
    }
    if (im) {
        long want = (long)a->input.c * a->input.h * a->input.w;
        if ((im->channels != 1 && im->channels != 3) || (long)im->channels * im->height * im->width != want)
            return tr_seterr(err, TR_EINVAL, "image", "image %dx%dx%d does not match the input %dx%dx%d", im->channels,
                             im->height, im->width, a->input.c, a->input.h, a->input.w);
        for (int c = 0; c < im->channels; c++)
            if (!isfinite(im->mean[c]) || !(im->std[c] > 0) || !isfinite(im->std[c]))
                return tr_seterr(err, TR_EINVAL, "image", "channel %d: mean must be finite and std finite and > 0", c);
    }
    for (size_t i = 0; i < n_meta; i++) {
        const char *k = meta[2 * i];
        if (!k || !k[0] || !meta[2 * i + 1])
            return tr_seterr(err, TR_EINVAL, "meta", "metadata pair %zu has an empty key or no value", i);
        if (im && strcmp(k, "image") == 0)
            return tr_seterr(err, TR_EINVAL, "image", "metadata \"image\" given twice (pair and image argument)");
        for (size_t j = 0; j < i; j++)
            if (strcmp(meta[2 * j], k) == 0) return tr_seterr(err, TR_EINVAL, k, "metadata key \"%s\" given twice", k);
    }
    return TR_OK;
}

/* `image` as model-format.md defines it. */
static char *image_json(wb *b, const mdl_image *im) {
    char m[64] = "", s[64] = "";
    for (int c = 0; c < im->channels; c++) {
        size_t lm = strlen(m), ls = strlen(s);
        snprintf(m + lm, sizeof m - lm, "%s%.9g", c ? ", " : "", (double)im->mean[c]);
        snprintf(s + ls, sizeof s - ls, "%s%.9g", c ? ", " : "", (double)im->std[c]);
    }
    return wb_str(b, "{\"channels\": %d, \"height\": %d, \"width\": %d, \"mean\": [%s], \"std\": [%s]}", im->channels,
                  im->height, im->width, m, s);
}

int onx_write_mem(const nn_arch *a, const float *params, const float *state, const mdl_image *image,
                  const char *const *meta, size_t n_meta, uint8_t **out, size_t *out_len, tr_err *err) {
    int rc = check_args(a, params, state, image, meta, n_meta, err), spatial = 0;
    *out = NULL;
    *out_len = 0;
    if (rc) return rc;
    wb b = {0};
    uint8_t *buf = NULL;
    Onnx__ModelProto model = ONNX__MODEL_PROTO__INIT;
    Onnx__GraphProto graph = ONNX__GRAPH_PROTO__INIT;
    Onnx__OperatorSetIdProto opset = ONNX__OPERATOR_SET_ID_PROTO__INIT, *opsets[] = {&opset};
    Onnx__ValueInfoProto *io[2];
    size_t n_kv = n_meta + (image != NULL);
    Onnx__StringStringEntryProto **kv = wb_alloc(&b, n_kv * sizeof *kv);

    for (int i = 0; i < a->n; i++)
        spatial |= a->l[i].kind == NN_CONV || a->l[i].kind == NN_MAXPOOL || a->l[i].kind == NN_AVGPOOL ||
                   a->l[i].kind == NN_GAP;
    b.rank = spatial || a->input.h != 1 || a->input.w != 1 ? 4 : 2;
    b.cur = "input";
    int64_t in_dims[] = {a->input.c, a->input.h, a->input.w}, out_dims[] = {(int64_t)nn_arch_out_dim(a)};
    io[0] = value_info(&b, "input", in_dims, (size_t)b.rank - 1);
    for (int i = 0; i < a->n; i++) emit_layer(&b, i, &a->l[i], params, state);
    to_rank2(&b);
    if (b.n_node == 0) unary(&b, "Identity");
    if (b.n_node) b.node[b.n_node - 1]->output[0] = "embedding";
    io[1] = value_info(&b, "embedding", out_dims, 1);
    for (size_t i = 0; kv && i < n_kv; i++) {
        if ((kv[i] = wb_alloc(&b, sizeof *kv[i])) == NULL) break;
        onnx__string_string_entry_proto__init(kv[i]);
        int im = image && i == 0;
        kv[i]->key = im ? "image" : (char *)meta[2 * (i - (image != NULL))];
        kv[i]->value = im ? image_json(&b, image) : (char *)meta[2 * (i - (image != NULL)) + 1];
        if (!kv[i]->value) b.oom = 1;
    }
    if (b.oom || !io[0] || !io[1]) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory building the ONNX graph");
        goto done;
    }
    opset.domain = "";
    opset.has_version = 1;
    opset.version = W_OPSET;
    graph.name = "tripletd";
    graph.n_node = b.n_node;
    graph.node = b.node;
    graph.n_initializer = b.n_init;
    graph.initializer = b.init;
    graph.n_input = 1;
    graph.input = &io[0];
    graph.n_output = 1;
    graph.output = &io[1];
    model.has_ir_version = 1;
    model.ir_version = W_IR_VERSION;
    model.n_opset_import = 1;
    model.opset_import = opsets;
    model.producer_name = "tripletd";
    model.graph = &graph;
    model.n_metadata_props = n_kv;
    model.metadata_props = kv;
    size_t len = protobuf_c_message_get_packed_size(&model.base);
    if (len > ONX_MAX_FILE) {
        rc = tr_seterr(err, TR_ELIMIT, "", "the model would be %zu bytes; the limit is %u", len, ONX_MAX_FILE);
        goto done;
    }
    if ((buf = malloc(len ? len : 1)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory for %zu bytes", len);
        goto done;
    }
    protobuf_c_message_pack(&model.base, buf);
    *out = buf;
    *out_len = len;
done:
    wb_free(&b);
    return rc;
}

int onx_write(const char *path, const nn_arch *a, const float *params, const float *state, const mdl_image *image,
              const char *const *meta, size_t n_meta, tr_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = onx_write_mem(a, params, state, image, meta, n_meta, &buf, &len, err);
    if (rc == TR_OK) rc = af_write(path, buf, len, err);
    if (rc == TR_ELIMIT) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        tr_seterr(err, rc, "", "%s: %s", path, msg);
    }
    free(buf);
    return rc;
}
