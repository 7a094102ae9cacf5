/* onnx_op.h - the ONNX graph's internal types and the op registry (one row per op). */
#ifndef ONNX_OP_H
#define ONNX_OP_H

#include <stddef.h>
#include <stdint.h>

#include "tr_err.h"

/*
 * How to add an op
 * ----------------
 * 1. Write it in the family file it belongs to (onnx_k_elem.c for
 *    elementwise math, onnx_k_shape.c for data movement, onnx_k_conv.c,
 *    onnx_k_pool.c, onnx_k_gemm.c, onnx_k_norm.c), or a new onnx_k_<family>.c.
 * 2. Give it two functions:
 *      int  infer(onx_graph *g, onx_node *nd, tr_err *err);
 *      void run(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp);
 *    infer runs once at load, after the node's inputs are inferred: read the
 *    attributes with onx_attr_*() (g->opset says which definition applies:
 *    attributes that became inputs, changed defaults), check the inputs'
 *    count, dtypes and shapes (onx_in() gives the input values; symbolic dims
 *    are onx_dim), store what run needs in nd->p (a malloc'd op struct freed
 *    with free(), or nd->i[]/nd->f[] for a few numbers), and set each output's
 *    dtype, rank and dims with onx_set_out(). Refuse with onx_fail(g, nd, err,
 *    ...) which names the node. When every input is a constant, the loader
 *    folds the node by calling run once at load, so run must not depend on
 *    anything but its arguments; an op that can compute its output from the
 *    shapes alone (Shape) sets it with onx_set_const() in infer instead.
 *    run gets concrete views (dims resolved for this batch size), writes
 *    out[] (already allocated by the memory plan) and may use tmp, a scratch
 *    area of scratch(nd, in, out) floats (NULL scratch means none; it must
 *    not shrink as the batch grows: one plan serves every smaller batch).
 *    Data-movement ops see int64 tensors as onx_dim elements (esz 16): write
 *    them byte-generic (onx_t.esz) so shape arithmetic folds through them.
 *    A kernel that ends with onx_act_apply() sets fuse_act in its row.
 * 3. Add its row to the family's table (an onx_op array ending with a NULL
 *    name) with the lowest default-domain opset whose definition it
 *    implements (min_opset), and, if the table is new, list it in
 *    onnx_op.c's family list. The registry lists supported ops in refusals.
 * 4. Test it against numbers from PyTorch or numpy (tests/golden/gen_onnx.py
 *    shows how model files and reference outputs are made; tests/unit/
 *    test_onnx.c how they are checked), add its spellings to
 *    tests/golden/gen_onnx_opsets.py (run by ONNX Runtime), and delete the
 *    rows of its cases from the refusal lists of tests/unit/
 *    test_onnx_backend.c: ONNX's own backend and node cases using the op
 *    must then match their outputs (tests/onnx/conformance.sh).
 */

#define ONX_MAX_RANK 8
#define ONX_MAX_IO 64 /* inputs or outputs of one node (DenseNet concatenates up to 33) */

/* A dimension or an int64 shape value: c * N^p, N the batch size, p 0 or 1.
 * Fixed dims have p == 0. */
typedef struct {
    int64_t c;
    int64_t p;
} onx_dim;

typedef enum { ONX_F32 = 1, ONX_I64 = 7 } onx_dtype;

typedef enum { ONX_ACT_NONE, ONX_ACT_RELU, ONX_ACT_CLIP } onx_act;

/* A tensor of the graph. Constants (initializers, folded nodes) hold data;
 * runtime values live in a thread's arena at an offset the plan assigns. */
typedef struct {
    char *name;
    onx_dtype dtype;
    int rank;
    onx_dim dim[ONX_MAX_RANK];
    int is_const;
    void *data;   /* constant data: float[] or onx_dim[] (int64 values) */
    int producer; /* node index, -1 for the input and constants */
    int last_use; /* last node reading it, after load */
    int is_output;
} onx_value;

struct onx_op;
struct onx_graph;

typedef struct onx_node {
    const struct onx_op *op;
    int idx; /* position in the file */
    char *name;
    int n_in, n_out;
    int in[ONX_MAX_IO]; /* value indices; -1 for an omitted optional input */
    int out[ONX_MAX_IO];
    int dead;     /* folded or fused away */
    void *p;      /* op-owned parameters, free()d with the graph */
    int64_t i[8]; /* small integer parameters */
    float f[4];   /* small float parameters */
    int alias;    /* output 0 is input 0's bytes (Reshape, Flatten, ...):
                     set by infer; the plan may then share the buffer */
    onx_act act;  /* activation fused into this node's output */
    float act_lo, act_hi;
    const void *proto; /* the NodeProto, during load only */
} onx_node;

/* A concrete view of a tensor for one run. esz is 4 for float, 16 for
 * int64 values (onx_dim) while folding. */
typedef struct {
    void *p;
    int rank;
    int64_t d[ONX_MAX_RANK];
    size_t n; /* elements */
    size_t esz;
} onx_t;

/* The element counts before and after axis: t is outer x d[axis] x inner. */
static inline void onx_t_around(const onx_t *t, int axis, int64_t *outer, int64_t *inner) {
    int64_t o = 1, i = 1;
    for (int k = 0; k < axis; k++) o *= t->d[k];
    for (int k = axis + 1; k < t->rank; k++) i *= t->d[k];
    *outer = o, *inner = i;
}

typedef struct onx_op {
    const char *name;
    int min_opset; /* lowest opset whose definition this row implements */
    int (*infer)(struct onx_graph *g, onx_node *nd, tr_err *err);
    void (*run)(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp);
    size_t (*scratch)(const onx_node *nd, const onx_t *in, const onx_t *out);
    /* multiply-adds per run, for inspect (NULL: none worth counting) */
    double (*macs)(const onx_node *nd, const onx_t *in, const onx_t *out);
    /* 1: run ends with onx_act_apply(nd->act, ...), so a following Relu
     * (or Clip, whose infer stores min in f[0] and max in f[1]) is fused */
    int fuse_act;
} onx_op;

typedef struct onx_graph {
    int opset;
    int64_t ir_version;
    onx_value *v;
    int n_v, cap_v;
    onx_node *nodes;
    int n_nodes;
    int input;    /* value index of the one runtime input */
    int *outputs; /* value indices */
    int n_outputs;
    int64_t fixed_batch; /* B when the input's first dim is fixed, else 0 */
    size_t n_params;     /* elements of the file's initializers, each once, counted before any rewrite */
    char **meta;         /* metadata_props: meta[2i] key, meta[2i+1] value */
    size_t n_meta;
    char producer[64];
    uint64_t id; /* unique per load: workspaces key their plans on it */
} onx_graph;

/* --- registry (onnx_op.c) --- */
/* The row for a default-domain op name, or NULL. */
const onx_op *onx_op_find(const char *name);
/* Comma-separated, sorted list of supported op names into buf. */
void onx_op_list(char *buf, size_t cap);

/* --- helpers for infer functions (onnx_op.c) --- */
/* Refuse: `node 7 "Conv_7" (Conv): <message>`, TR_EFORMAT. */
int onx_fail(const onx_graph *g, const onx_node *nd, tr_err *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Input k's value, or NULL when omitted (k >= n_in or name ""). */
onx_value *onx_in(onx_graph *g, const onx_node *nd, int k);
/* Check n_in within [lo, hi] and n_out within [1, max_out]. */
int onx_arity(const onx_graph *g, const onx_node *nd, int lo, int hi, int max_out, tr_err *err);
/* Require input k present, of dtype dt, rank in [rlo, rhi]. */
int onx_need(onx_graph *g, const onx_node *nd, int k, onx_dtype dt, int rlo, int rhi, tr_err *err);
/* Set output k's dtype and shape. */
void onx_set_out(onx_graph *g, const onx_node *nd, int k, onx_dtype dt, int rank, const onx_dim *dim);
/* Make output k a constant owning data (count elements of its dtype). */
void onx_set_const(onx_graph *g, const onx_node *nd, int k, void *data);

/* Attributes: 1 and *out when present (of the right type), 0 when absent;
 * a present attribute of another type is refused (negative status). */
int onx_attr_int(const onx_graph *g, const onx_node *nd, const char *name, int64_t *out, tr_err *err);
int onx_attr_float(const onx_graph *g, const onx_node *nd, const char *name, float *out, tr_err *err);
/* ints: up to cap values into out, count in *n; more than cap is refused. */
int onx_attr_ints(const onx_graph *g, const onx_node *nd, const char *name, int64_t *out, int cap, int *n, tr_err *err);
/* string: copied into out (cap bytes, truncated values are refused). */
int onx_attr_str(const onx_graph *g, const onx_node *nd, const char *name, char *out, size_t cap, tr_err *err);
/* A tensor attribute (Constant's value) converted to a new constant value
 * appended to the graph: its index in *vi. */
int onx_attr_tensor(onx_graph *g, const onx_node *nd, const char *name, int *vi, tr_err *err);
/* A float, floats, int or ints attribute (Constant's value_float, value_ints, ...) as constant data:
 * 1 and *v filled (dtype, rank 0 or 1, dims, malloc'd data), 0 when absent, < 0 on an error. */
int onx_attr_values(const onx_graph *g, const onx_node *nd, const char *name, onx_value *v, tr_err *err);
/* Refuse any attribute not in the NULL-terminated list `known`. */
int onx_attr_only(const onx_graph *g, const onx_node *nd, const char *const *known, tr_err *err);

/* --- symbolic dims (onnx_infer.c) --- */
static inline onx_dim onx_d(int64_t c) {
    onx_dim d = {c, 0};
    return d;
}
static inline int onx_deq(onx_dim a, onx_dim b) {
    return a.c == b.c && a.p == b.p;
}
/* One element, spelled as a scalar (rank 0) or as [1]. */
static inline int onx_one(const onx_value *v) {
    return v->rank == 0 || (v->rank == 1 && onx_deq(v->dim[0], onx_d(1)));
}
/* Product, quotient; 0 on overflow, a power of N beyond 1, or a remainder. */
int onx_dmul(onx_dim a, onx_dim b, onx_dim *out);
int onx_ddiv(onx_dim a, onx_dim b, onx_dim *out);
/* Text of a dim ("32", "N", "4N") into buf. */
const char *onx_dstr(onx_dim d, char *buf, size_t cap);
/* "[N,1,28,28]" for a value's shape. */
const char *onx_shape_str(const onx_value *v, char *buf, size_t cap);
/* Numpy broadcast of a and b into out; 0 when they do not broadcast. */
int onx_broadcast(const onx_value *a, const onx_value *b, int *rank, onx_dim *out);
/* Product of dims [from, to) with overflow check; 0 on failure. */
int onx_numel(const onx_dim *d, int from, int to, onx_dim *out);
/* Normalise an axis in [-rank, rank) (or [-rank-1, rank] when extra). */
int onx_axis(int64_t a, int rank, int extra, int *out);

/* Sliding-window geometry of Conv and the pools, 1-D kept as 2-D with
 * height 1: k kernel, s strides, d dilations, pb/pe pads, in/out sizes. */
typedef struct {
    int nsp;
    int64_t k[2], s[2], d[2], pb[2], pe[2], in[2], out[2];
} onx_win;
/* Read kernel_shape (or take kshape), strides, dilations (if dil_ok), pads,
 * auto_pad and ceil_mode (if ceil_ok) for input x [N,C,spatial]. */
int onx_win_parse(onx_graph *g, const onx_node *nd, const onx_value *x, const int64_t *kshape, int dil_ok, int ceil_ok,
                  onx_win *w, tr_err *err);
/* Output value dims [N, c, out...] for x and w. */
void onx_win_dims(const onx_value *x, int64_t c, const onx_win *w, onx_dim *o);

/* --- kernels shared across families --- */
void onx_act_apply(onx_act a, float lo, float hi, float *x, size_t n);
/* y = act(y + r), n floats: a residual Add fused into the Conv that makes y (onnx_opt.c). */
void onx_add_act(float *y, const float *r, size_t n, onx_act a, float lo, float hi);
/* Numpy-broadcast strides of t within a result of rank r and dims d. */
void onx_bstrides(const onx_t *t, int r, const int64_t *d, int64_t *st);

#endif
