/* test_onnx_corrupt.c - the ONNX loader's refusals: a table of ModelProtos built here with protobuf-c,
 * each a valid tiny CNN with one defect, and the exact error each must give. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onnx.h"
#include "onnx/onnx.pb-c.h"
#include "onnx_load.h"

/* Every allocation of one case, freed together. */
static void *pool[4096];
static size_t n_pool;

static void *A(size_t n) {
    void *p = calloc(1, n ? n : 1);
    assert_non_null(p);
    assert_true(n_pool < sizeof pool / sizeof pool[0]);
    return pool[n_pool++] = p;
}

static void pool_free(void) {
    while (n_pool) free(pool[--n_pool]);
}

static char *S(const char *s) {
    return strcpy(A(strlen(s) + 1), s);
}

static char **strs(int n, ...) {
    char **v = A(sizeof *v * (size_t)n);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) v[i] = S(va_arg(ap, const char *));
    va_end(ap);
    return v;
}

static Onnx__TensorProto *tensor(const char *name, int nd, const int64_t *dims) {
    Onnx__TensorProto *t = A(sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = S(name);
    t->has_data_type = 1;
    t->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
    t->n_dims = (size_t)nd;
    t->dims = A(sizeof(int64_t) * (size_t)nd);
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)nd);
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)dims[i];
    t->has_raw_data = 1;
    t->raw_data.len = n * 4;
    t->raw_data.data = A(n * 4);
    float *f = (float *)t->raw_data.data;
    for (size_t i = 0; i < n; i++) f[i] = 0.01f * (float)(i % 17) - 0.05f;
    return t;
}

static Onnx__AttributeProto *attr(const char *name, int type) {
    Onnx__AttributeProto *a = A(sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = S(name);
    a->has_type = 1;
    a->type = type;
    return a;
}

static Onnx__AttributeProto *attr_ints(const char *name, int n, int64_t v) {
    Onnx__AttributeProto *a = attr(name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = A(sizeof(int64_t) * (size_t)n);
    for (int i = 0; i < n; i++) a->ints[i] = v;
    return a;
}

static Onnx__AttributeProto *attr_int(const char *name, int64_t v) {
    Onnx__AttributeProto *a = attr(name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
    return a;
}

static Onnx__NodeProto *node(const char *op, const char *name, int n_in, char **in, int n_out, char **out, int n_attr,
                             Onnx__AttributeProto **attrs) {
    Onnx__NodeProto *n = A(sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = S(op);
    n->name = S(name);
    n->n_input = (size_t)n_in, n->input = in;
    n->n_output = (size_t)n_out, n->output = out;
    n->n_attribute = (size_t)n_attr, n->attribute = attrs;
    return n;
}

/* A [batch, dims...] float tensor value; a dim of -1 is symbolic. */
static Onnx__ValueInfoProto *vinfo(const char *name, int elem, int nd, const int64_t *dims) {
    Onnx__ValueInfoProto *v = A(sizeof *v);
    onnx__value_info_proto__init(v);
    v->name = S(name);
    Onnx__TypeProto *tp = A(sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = A(sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    Onnx__TensorShapeProto *sh = A(sizeof *sh);
    onnx__tensor_shape_proto__init(sh);
    sh->n_dim = (size_t)nd;
    sh->dim = A(sizeof *sh->dim * (size_t)nd);
    for (int i = 0; i < nd; i++) {
        Onnx__TensorShapeProto__Dimension *d = A(sizeof *d);
        onnx__tensor_shape_proto__dimension__init(d);
        if (dims[i] < 0) {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
            d->dim_param = S("N");
        } else {
            d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            d->dim_value = dims[i];
        }
        sh->dim[i] = d;
    }
    tt->has_elem_type = 1;
    tt->elem_type = elem;
    tt->shape = sh;
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    v->type = tp;
    return v;
}

static Onnx__StringStringEntryProto *meta(const char *k, const char *v) {
    Onnx__StringStringEntryProto *e = A(sizeof *e);
    onnx__string_string_entry_proto__init(e);
    e->key = S(k);
    e->value = S(v);
    return e;
}

/* x [N,1,4,4] -> Conv(W [2,1,3,3], B, pads 1) -> Relu -> MaxPool 2x2/2 -> Flatten -> Gemm(W2 [4,8], B2, transB) -> y */
static Onnx__ModelProto *base(void) {
    Onnx__ModelProto *m = A(sizeof *m);
    onnx__model_proto__init(m);
    m->has_ir_version = 1;
    m->ir_version = 7;
    Onnx__OperatorSetIdProto *op = A(sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = S("");
    op->has_version = 1;
    op->version = 13;
    m->n_opset_import = 1;
    m->opset_import = A(sizeof(void *) * 2);
    m->opset_import[0] = op;
    Onnx__GraphProto *g = A(sizeof *g);
    onnx__graph_proto__init(g);
    g->name = S("tiny");
    static const int64_t dw[] = {2, 1, 3, 3}, db[] = {2}, dw2[] = {4, 8}, db2[] = {4};
    g->n_initializer = 4;
    g->initializer = A(sizeof(void *) * 5);
    g->initializer[0] = tensor("W", 4, dw);
    g->initializer[1] = tensor("B", 1, db);
    g->initializer[2] = tensor("W2", 2, dw2);
    g->initializer[3] = tensor("B2", 1, db2);
    static const int64_t xin[] = {-1, 1, 4, 4}, yout[] = {-1, 4};
    g->n_input = 1;
    g->input = A(sizeof(void *) * 3);
    g->input[0] = vinfo("x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, xin);
    g->n_output = 1;
    g->output = A(sizeof(void *) * 3);
    g->output[0] = vinfo("y", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, yout);
    Onnx__AttributeProto **ca = A(sizeof(void *) * 3), **pa = A(sizeof(void *) * 2), **ga = A(sizeof(void *));
    ca[0] = attr_ints("pads", 4, 1);
    ca[1] = attr_int("group", 1);
    pa[0] = attr_ints("kernel_shape", 2, 2);
    pa[1] = attr_ints("strides", 2, 2);
    ga[0] = attr_int("transB", 1);
    g->n_node = 5;
    g->node = A(sizeof(void *) * 6);
    g->node[0] = node("Conv", "conv", 3, strs(3, "x", "W", "B"), 1, strs(1, "c"), 2, ca);
    g->node[1] = node("Relu", "relu", 1, strs(1, "c"), 1, strs(1, "r"), 0, NULL);
    g->node[2] = node("MaxPool", "pool", 1, strs(1, "r"), 1, strs(1, "p"), 2, pa);
    g->node[3] = node("Flatten", "flat", 1, strs(1, "p"), 1, strs(1, "f"), 0, NULL);
    g->node[4] = node("Gemm", "gemm", 3, strs(3, "f", "W2", "B2"), 1, strs(1, "y"), 1, ga);
    m->graph = g;
    m->n_metadata_props = 1;
    m->metadata_props = A(sizeof(void *) * 2);
    m->metadata_props[0] = meta("name", "tiny");
    return m;
}

/* --- one defect each --- */
#define G (m->graph)
static void m_none(Onnx__ModelProto *m) {
    (void)m;
}
static void m_ir2(Onnx__ModelProto *m) {
    m->ir_version = 2;
}
static void m_no_opset(Onnx__ModelProto *m) {
    m->n_opset_import = 0;
}
static void m_opset5(Onnx__ModelProto *m) {
    m->opset_import[0]->version = 5;
}
static void m_opset0(Onnx__ModelProto *m) {
    m->opset_import[0]->version = 0;
}
static void m_opset18(Onnx__ModelProto *m) {
    m->opset_import[0]->version = 18;
}
static void m_opset_twice(Onnx__ModelProto *m) {
    m->opset_import[1] = m->opset_import[0], m->n_opset_import = 2;
}
static void m_no_graph(Onnx__ModelProto *m) {
    m->graph = NULL;
}
static void m_unknown_op(Onnx__ModelProto *m) {
    G->node[1]->op_type = S("Foo");
}
static void m_domain(Onnx__ModelProto *m) {
    G->node[1]->domain = S("com.example");
}
static void m_undefined(Onnx__ModelProto *m) {
    G->node[1]->input[0] = S("nope");
}
static void m_order(Onnx__ModelProto *m) {
    Onnx__NodeProto *t = G->node[0];
    G->node[0] = G->node[1], G->node[1] = t;
}
static void m_cycle(Onnx__ModelProto *m) {
    G->node[0]->input[0] = S("y");
}
static void m_dup_output(Onnx__ModelProto *m) {
    G->node[1]->output[0] = S("c");
}
static void m_two_inputs(Onnx__ModelProto *m) {
    static const int64_t d[] = {-1, 3};
    G->input[1] = vinfo("z", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, d), G->n_input = 2;
}
static void m_no_input(Onnx__ModelProto *m) {
    G->n_input = 0;
}
static void m_sym_dim(Onnx__ModelProto *m) {
    static const int64_t d[] = {-1, 1, -1, 4};
    G->input[0] = vinfo("x", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 4, d);
}
static void m_int_input(Onnx__ModelProto *m) {
    static const int64_t d[] = {-1, 1, 4, 4};
    G->input[0] = vinfo("x", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 4, d);
}
static void m_short_data(Onnx__ModelProto *m) {
    G->initializer[0]->raw_data.len -= 4;
}
static void m_external(Onnx__ModelProto *m) {
    Onnx__TensorProto *t = G->initializer[0];
    t->has_raw_data = 0;
    t->has_data_location = 1;
    t->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    t->n_external_data = 1;
    t->external_data = A(sizeof(void *));
    t->external_data[0] = meta("location", "/etc/passwd");
}
static void m_neg_dim(Onnx__ModelProto *m) {
    G->initializer[0]->dims[0] = -2;
}
static void m_huge_dims(Onnx__ModelProto *m) {
    static const int64_t d[] = {1 << 30, 1 << 30, 1 << 30, 1 << 30};
    G->initializer[0]->dims = A(sizeof d);
    memcpy(G->initializer[0]->dims, d, sizeof d);
}
static void m_float16(Onnx__ModelProto *m) {
    G->initializer[1]->data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16;
}
static void m_nan(Onnx__ModelProto *m) {
    ((float *)G->initializer[1]->raw_data.data)[1] = NAN;
}
static void m_dup_init(Onnx__ModelProto *m) {
    G->initializer[1]->name = S("W");
}
static void m_group(Onnx__ModelProto *m) {
    G->node[0]->attribute[1]->i = 3;
}
static void m_weight_channels(Onnx__ModelProto *m) {
    static const int64_t d[] = {1, 2, 3, 3};
    G->initializer[0] = tensor("W", 4, d);
}
static void m_kernel(Onnx__ModelProto *m) {
    static const int64_t d[] = {2, 1, 7, 7};
    G->initializer[0] = tensor("W", 4, d);
}
static void m_gemm_shape(Onnx__ModelProto *m) {
    static const int64_t d[] = {4, 9};
    G->initializer[2] = tensor("W2", 2, d);
}
static void m_unknown_attr(Onnx__ModelProto *m) {
    G->node[0]->attribute[1] = attr_int("foo", 1);
}
static void m_attr_type(Onnx__ModelProto *m) {
    G->node[0]->attribute[1]->type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT;
}
static void m_two_outputs(Onnx__ModelProto *m) {
    G->output[1] = G->output[0], G->n_output = 2;
}
static void m_output_missing(Onnx__ModelProto *m) {
    G->output[0]->name = S("q");
}
static void m_output_const(Onnx__ModelProto *m) {
    G->output[0]->name = S("W");
}
static void m_opset6_gemm(Onnx__ModelProto *m) {
    m->opset_import[0]->version = 6;
}
static void m_dup_meta(Onnx__ModelProto *m) {
    m->metadata_props[1] = meta("name", "again"), m->n_metadata_props = 2;
}
static void m_sparse(Onnx__ModelProto *m) {
    G->n_sparse_initializer = 1;
    G->sparse_initializer = A(sizeof(void *));
    G->sparse_initializer[0] = A(sizeof(Onnx__SparseTensorProto));
    onnx__sparse_tensor_proto__init(G->sparse_initializer[0]);
}
static void m_name_bytes(Onnx__ModelProto *m) {
    G->node[1]->op_type = S("Fo\x01o");
    G->node[1]->name = S("re\xffl\"u");
}
static void m_huge_activation(Onnx__ModelProto *m) { /* 4x4 input padded by 4096: 2 x 8196^2 outputs */
    G->node[0]->attribute[0] = attr_ints("pads", 4, 4096);
}
static void m_empty_auto_pad(Onnx__ModelProto *m) {
    Onnx__AttributeProto *a = attr("auto_pad", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1; /* empty: no data pointer (a fuzz finding) */
    G->node[0]->attribute[1] = a;
}
static void m_batch_range(Onnx__ModelProto *m) {
    Onnx__TensorShapeProto__Dimension *d = G->input[0]->type->tensor_type->shape->dim[0];
    d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d->dim_value = 0;
}
static void m_pool_batch_dim(Onnx__ModelProto *m) {
    G->node[2]->attribute[0]->n_ints = 3;
}
static void m_strides_zero(Onnx__ModelProto *m) {
    G->node[2]->attribute[1]->ints[0] = 0;
}

typedef struct {
    const char *what;
    void (*mut)(Onnx__ModelProto *m);
    int code;
    const char *msg; /* exact, or a prefix when it ends with "..." */
} ccase;

static const ccase CASES[] = {
    {"valid", m_none, TR_OK, ""},
    {"IR version 2", m_ir2, TR_EFORMAT, "IR version 2 is not supported (3 to 9)"},
    {"no opset", m_no_opset, TR_EFORMAT, "no default-domain opset is imported"},
    {"opset 0", m_opset0, TR_EFORMAT, "opset 0 is not supported (1 to 17)"},
    {"op defined anew after the file's opset", m_opset5, TR_EFORMAT,
     "node 1 \"relu\" (Relu): op Relu at opset 5 is not supported (its definition changed at opset 6); "
     "re-export with opset 6 or later"},
    {"opset 18", m_opset18, TR_EFORMAT, "opset 18 is not supported (1 to 17)"},
    {"default domain twice", m_opset_twice, TR_EFORMAT, "the default domain is imported twice"},
    {"no graph", m_no_graph, TR_EFORMAT, "the model has no graph"},
    {"unsupported op", m_unknown_op, TR_EFORMAT,
     "node 1 \"relu\": op Foo (opset 13) is not supported; supported ops: ..."},
    {"other domain", m_domain, TR_EFORMAT, "node 1 \"relu\" (Relu): domain \"com.example\" is not supported"},
    {"undefined input", m_undefined, TR_EFORMAT,
     "node 1 \"relu\" (Relu): input \"nope\" is not defined before use (nodes must be in topological order)"},
    {"nodes out of order", m_order, TR_EFORMAT,
     "node 0 \"relu\" (Relu): input \"c\" is not defined before use (nodes must be in topological order)"},
    {"cycle", m_cycle, TR_EFORMAT,
     "node 0 \"conv\" (Conv): input \"y\" is not defined before use (nodes must be in topological order)"},
    {"two producers", m_dup_output, TR_EFORMAT,
     "node 1 \"relu\" (Relu): output \"c\" is already defined (each value has one producer)"},
    {"two inputs", m_two_inputs, TR_EFORMAT,
     "the graph has more than one input (\"x\" and \"z\"); exactly one is supported"},
    {"no input", m_no_input, TR_EFORMAT, "the graph has no input besides its initializers"},
    {"symbolic spatial dim", m_sym_dim, TR_EFORMAT,
     "input \"x\": dimension 2 is symbolic; only the first (batch) dimension may be"},
    {"int64 input", m_int_input, TR_EFORMAT, "input \"x\": element type int64; only float inputs are supported"},
    {"short tensor data", m_short_data, TR_EFORMAT, "tensor \"W\": data has 68 bytes; shape and dtype need 72"},
    {"external data", m_external, TR_EFORMAT,
     "tensor \"W\": external data (weights in a separate file) is not supported; save the model with its weights "
     "inside the .onnx file"},
    {"negative dim", m_neg_dim, TR_EFORMAT, "tensor \"W\": dimension 0 is negative (-2)"},
    {"element count overflow", m_huge_dims, TR_ELIMIT, "tensor \"W\": element count overflows"},
    {"float16 tensor", m_float16, TR_EFORMAT,
     "tensor \"B\": data type float16 is not supported (float, double, int64, int32, bool)"},
    {"NaN weight", m_nan, TR_EFORMAT, "tensor \"B\": element 1 is not finite"},
    {"initializer twice", m_dup_init, TR_EFORMAT, "initializer \"W\" appears twice"},
    {"group", m_group, TR_EFORMAT, "node 0 \"conv\" (Conv): group 3 does not divide 1 input channels"},
    {"weight channels", m_weight_channels, TR_EFORMAT,
     "node 0 \"conv\" (Conv): weight \"W\" has 2 input channels per group; the input gives 1"},
    {"kernel too large", m_kernel, TR_EFORMAT, "node 0 \"conv\" (Conv): kernel extent 7 exceeds the padded input 6"},
    {"gemm shapes", m_gemm_shape, TR_EFORMAT,
     "node 4 \"gemm\" (Gemm): shapes [N,8] and [4,9] do not multiply (transA 0, transB 1)"},
    {"unknown attribute", m_unknown_attr, TR_EFORMAT, "node 0 \"conv\" (Conv): attribute \"foo\" is not supported"},
    {"attribute type", m_attr_type, TR_EFORMAT, "node 0 \"conv\" (Conv): attribute \"group\" must be an int"},
    {"two outputs", m_two_outputs, TR_EFORMAT, "the graph has 2 outputs; exactly one (the embedding) is supported"},
    {"output not produced", m_output_missing, TR_EFORMAT, "output \"q\" is not produced by any node"},
    {"constant output", m_output_const, TR_EFORMAT, "output \"W\" does not depend on the input"},
    {"opset-6 Gemm", m_opset6_gemm, TR_EFORMAT,
     "node 4 \"gemm\" (Gemm): op Gemm at opset 6 is not supported (its definition changed at opset 7); re-export "
     "with opset 7 or later"},
    {"metadata key twice", m_dup_meta, TR_EFORMAT, "metadata key \"name\" appears twice"},
    {"sparse initializer", m_sparse, TR_EFORMAT, "sparse initializers are not supported"},
    {"names are not echoed raw", m_name_bytes, TR_EFORMAT,
     "node 1 \"re?l?u\": op Fo?o (opset 13) is not supported; supported ops: ..."},
    {"activation too large", m_huge_activation, TR_EFORMAT,
     "node 0 \"conv\" (Conv): output \"c\" has more than 67108864 elements (per sample, or per fixed batch)"},
    {"empty auto_pad", m_empty_auto_pad, TR_EFORMAT,
     "node 0 \"conv\" (Conv): auto_pad \"\" is not NOTSET, SAME_UPPER, SAME_LOWER or VALID"},
    {"batch dim 0", m_batch_range, TR_EFORMAT, "input \"x\": batch dimension 0 is out of range 1..65536"},
    {"kernel_shape rank", m_pool_batch_dim, TR_EFORMAT,
     "node 2 \"pool\" (MaxPool): kernel_shape has 3 values for 2 spatial dims"},
    {"stride 0", m_strides_zero, TR_EFORMAT,
     "node 2 \"pool\" (MaxPool): kernel, stride and dilation must be 1 to 4096"},
};

static void check(const char *what, int rc, const tr_err *err, int code, const char *msg) {
    size_t n = strlen(msg);
    int prefix = n >= 3 && !strcmp(msg + n - 3, "...");
    if (rc != code || (prefix ? strncmp(err->msg, msg, n - 3) : strcmp(err->msg, msg)))
        fail_msg("%s: got %d \"%s\", want %d \"%s\"", what, rc, err->msg, code, msg);
}

static uint8_t *pack(const Onnx__ModelProto *m, size_t *len) {
    *len = onnx__model_proto__get_packed_size(m);
    uint8_t *b = A(*len);
    onnx__model_proto__pack(m, b);
    return b;
}

static void test_table(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        Onnx__ModelProto *m = base();
        CASES[i].mut(m);
        size_t len;
        uint8_t *b = pack(m, &len);
        onx_graph *g = NULL;
        tr_err err = {0};
        int rc = onx_open_mem(b, len, &g, &err);
        check(CASES[i].what, rc, &err, CASES[i].code, CASES[i].msg);
        if (rc == TR_OK) {
            float x[2 * 16], y[2 * 4];
            for (int k = 0; k < 32; k++) x[k] = (float)k / 8.0f;
            onx_ws *ws = NULL;
            assert_int_equal(onx_forward(g, x, 2, y, &ws, &err), TR_OK);
            onx_ws_free(ws);
            assert_string_equal(onx_meta(g, "name"), "tiny");
        }
        assert_true(rc == TR_OK ? g != NULL : g == NULL);
        onx_free(g);
        pool_free();
    }
}

/* Byte-level damage: not protobuf, cut short, empty. */
static void test_bytes(void **state) {
    (void)state;
    size_t len;
    uint8_t *b = pack(base(), &len);
    onx_graph *g = NULL;
    tr_err err = {0};
    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    check("junk", onx_open_mem(junk, sizeof junk, &g, &err), &err, TR_EFORMAT,
          "not an ONNX model: the protobuf ModelProto does not parse");
    check("cut short", onx_open_mem(b, len - 7, &g, &err), &err, TR_EFORMAT,
          "not an ONNX model: the protobuf ModelProto does not parse");
    check("empty", onx_open_mem(b, 0, &g, &err), &err, TR_EFORMAT, "IR version 0 is not supported (3 to 9)");
    check("missing file", onx_open("/nonexistent/m.onnx", &g, &err), &err, TR_EIO,
          "cannot open /nonexistent/m.onnx: No such file or directory");
    assert_null(g);
    pool_free();
}

/* An unsupported op's refusal lists every supported op, whole, even behind the longest node and op names. */
static void test_op_list(void **state) {
    (void)state;
    static const char *const names[][2] = {{"relu", "Foo"}, {NULL, NULL}};
    char longname[300], longop[100], list[4096], want[sizeof list + 600], shown[96];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    memset(longop, 'E', sizeof longop - 1);
    longop[sizeof longop - 1] = 0;
    onx_op_list(list, sizeof list);
    assert_true(strlen(list) + 1 < sizeof list);
    for (int i = 0; i < 2; i++) {
        const char *node = names[i][0] ? names[i][0] : longname, *op = names[i][1] ? names[i][1] : longop;
        Onnx__ModelProto *m = base();
        G->node[1]->name = S(node);
        G->node[1]->op_type = S(op);
        size_t len;
        uint8_t *b = pack(m, &len);
        onx_graph *g = NULL;
        tr_err err = {0};
        char opshown[64];
        snprintf(want, sizeof want, "node 1 \"%s\": op %s (opset 13) is not supported; supported ops: %s",
                 tr_printable(node, shown, sizeof shown), tr_printable(op, opshown, sizeof opshown), list);
        check(node, onx_open_mem(b, len, &g, &err), &err, TR_EFORMAT, want);
        pool_free();
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_op_list),
        cmocka_unit_test(test_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
