/* onnx_exec.c - static memory plans per batch size class, per-thread arenas, running the graph. */
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx_load.h"
#include "onnx_op.h"

/* Bytes of activations and scratch per chunk of rows: a chunk's tensors stay in the L3 cache
 * next to another worker's chunk and the weights. 64 MiB chunks ran mobilenet_v2 at batch 8
 * 15 % and the Fashion CNN at batch 256 13 % slower (resnet18 at batch 8: 3 % faster); with the
 * scratch counted once, 4.5 MiB gives the Fashion CNN its best chunk (8 rows; 16 or 9: 6-30 %
 * slower at batch 256), and resnet18 and mobilenet_v2 one image a chunk, as before. */
#define ARENA_TARGET ((size_t)9 << 19)
#define MAX_CHUNK 256
#define N_CLASS 9 /* plans for up to 1, 2, 4, ..., 256 rows */
#define ALIGN 16  /* floats: 64-byte offsets */

/* A plan for n rows serves any run of m <= n rows: every size is c or c*n,
 * so blocks placed for n still hold the tensors of m and never overlap. */
typedef struct {
    int64_t n;   /* rows this plan is for; 0 = not made yet */
    size_t *off; /* per value, floats into the arena */
    size_t need; /* floats of activations */
    size_t tmp;  /* floats of kernel scratch after them */
} plan;

struct onx_ws {
    uint64_t gid;  /* the graph the plans are for */
    int64_t chunk; /* rows per run */
    plan plans[N_CLASS];
    float *arena;
    size_t cap; /* floats */
};

static void plans_clear(onx_ws *ws) {
    for (int i = 0; i < N_CLASS; i++) free(ws->plans[i].off);
    memset(ws->plans, 0, sizeof ws->plans);
}

void onx_ws_free(onx_ws *ws) {
    if (!ws) return;
    plans_clear(ws);
    free(ws->arena);
    free(ws);
}

static int is_runtime(const onx_graph *g, int v) {
    const onx_value *val = &g->v[v];
    return !val->is_const && val->last_use >= 0 && (v == g->input || val->producer >= 0);
}

/* A live node's output, read later or not (Split's unused parts). */
static int is_written(const onx_graph *g, int v) {
    return !g->v[v].is_const && g->v[v].producer >= 0;
}

/* First fit among the live blocks (sorted by offset). */
typedef struct {
    size_t off, len;
    int v;
} block;

static size_t place(block *b, int *nb, size_t len, int v) {
    size_t at = 0;
    int i = 0;
    for (; i < *nb; i++) {
        if (b[i].off >= at + len) break;
        at = b[i].off + b[i].len > at ? b[i].off + b[i].len : at;
    }
    memmove(b + i + 1, b + i, sizeof *b * (size_t)(*nb - i));
    b[i] = (block){at, len, v};
    (*nb)++;
    return at;
}

static void release(block *b, int *nb, int v) {
    for (int i = 0; i < *nb; i++)
        if (b[i].v == v) {
            memmove(b + i, b + i + 1, sizeof *b * (size_t)(*nb - i - 1));
            (*nb)--;
            return;
        }
}

static int make_plan(const onx_graph *g, int64_t n, plan *p, tr_err *err) {
    free(p->off);
    memset(p, 0, sizeof *p);
    p->off = calloc((size_t)g->n_v, sizeof *p->off);
    block *b = malloc(sizeof *b * (size_t)(g->n_v + 1));
    onx_t *view = malloc(sizeof *view * (size_t)g->n_v);
    if (!p->off || !b || !view) {
        free(b);
        free(view);
        free(p->off);
        p->off = NULL;
        return tr_seterr(err, TR_ENOMEM, "", "out of memory planning the graph");
    }
    int nb = 0;
    for (int v = 0; v < g->n_v; v++) onx_view(&g->v[v], n, &view[v]);
    size_t need = 0, len;
#define ALLOC(v)                                                                                                       \
    do {                                                                                                               \
        len = (view[v].n + ALIGN - 1) / ALIGN * ALIGN;                                                                 \
        p->off[v] = place(b, &nb, len ? len : ALIGN, v);                                                               \
        if (p->off[v] + len > need) need = p->off[v] + len;                                                            \
    } while (0)
    ALLOC(g->input);
    for (int i = 0; i < g->n_nodes; i++) {
        const onx_node *nd = &g->nodes[i];
        if (nd->dead) continue;
        int in0 = nd->n_in ? nd->in[0] : -1, out0 = nd->out[0];
        if (nd->alias && in0 >= 0 && is_runtime(g, in0) && g->v[in0].last_use == i && !g->v[in0].is_output) {
            /* a view of an input nobody reads later: the output takes over its block */
            p->off[out0] = p->off[in0];
            for (int k = 0; k < nb; k++)
                if (b[k].v == in0) b[k].v = out0;
            continue;
        }
        for (int k = 0; k < nd->n_out; k++) /* unread outputs too: the kernel writes them */
            if (is_written(g, nd->out[k])) ALLOC(nd->out[k]);
        if (nd->op->scratch) {
            onx_t in[ONX_MAX_IO], out[ONX_MAX_IO];
            for (int k = 0; k < nd->n_in; k++)
                if (nd->in[k] >= 0) in[k] = view[nd->in[k]];
            for (int k = 0; k < nd->n_out; k++) out[k] = view[nd->out[k]];
            size_t t = nd->op->scratch(nd, in, out);
            if (t > p->tmp) p->tmp = t;
        }
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v >= 0 && is_runtime(g, v) && g->v[v].last_use == i) release(b, &nb, v);
        }
        for (int k = 0; k < nd->n_out; k++) /* outputs nobody reads */
            if (is_written(g, nd->out[k]) && g->v[nd->out[k]].last_use < 0) release(b, &nb, nd->out[k]);
    }
#undef ALLOC
    free(b);
    free(view);
    p->need = need;
    p->n = n;
    return TR_OK;
}

/* The plan for runs of m rows: the size class 2^k >= m (capped at the
 * chunk), made on first use and kept; the arena grows to the largest. */
static int get_plan(const onx_graph *g, onx_ws *ws, int64_t m, plan **out, tr_err *err) {
    int k = 0;
    int64_t rows = g->fixed_batch ? g->fixed_batch : 1;
    if (!g->fixed_batch) {
        while (rows < m) rows *= 2, k++;
        if (rows > ws->chunk) rows = ws->chunk;
    }
    plan *p = &ws->plans[k];
    if (p->n != rows) {
        int rc = make_plan(g, rows, p, err);
        if (rc) return rc;
    }
    size_t total = p->need + p->tmp;
    if (total > ws->cap) {
        float *a = malloc(total * sizeof *a);
        if (!a) return tr_seterr(err, TR_ENOMEM, "", "out of memory for a %zu-float arena", total);
        free(ws->arena);
        ws->arena = a;
        ws->cap = total;
    }
    *out = p;
    return TR_OK;
}

/* A workspace meets a graph: drop other graphs' plans; rows per run are the
 * file's fixed batch, else as many as fit the arena target (from the 1- and 2-row plans: the
 * scratch that does not grow with rows, such as the SGEMM's blocks, is counted once). */
static int ws_bind(const onx_graph *g, onx_ws *ws, tr_err *err) {
    if (ws->gid == g->id) return TR_OK;
    plans_clear(ws);
    ws->gid = 0;
    ws->chunk = g->fixed_batch ? g->fixed_batch : 1;
    if (!g->fixed_batch) { /* floats a row adds (from the 1- and 2-row plans) and the rest, fixed */
        int rc = make_plan(g, 1, &ws->plans[0], err);
        if (!rc) rc = make_plan(g, 2, &ws->plans[1], err);
        if (rc) return rc;
        size_t one = ws->plans[0].need + ws->plans[0].tmp, two = ws->plans[1].need + ws->plans[1].tmp;
        size_t per = two > one ? two - one : 1, fixed = one > per ? one - per : 0;
        size_t rows = ARENA_TARGET / sizeof(float) > fixed ? (ARENA_TARGET / sizeof(float) - fixed) / per : 1;
        if (rows > 4) rows -= rows % 4; /* whole 4-row blocks for the small-batch Gemm (onx_fc) */
        ws->chunk = rows < 1 ? 1 : rows > MAX_CHUNK ? MAX_CHUNK : (int64_t)rows;
    }
    ws->gid = g->id;
    return TR_OK;
}

/* Run every live node on m rows; views get the dims of m rows. */
static void run_nodes(const onx_graph *g, const plan *p, int64_t m, float *arena) {
    float *tmp = arena + p->need;
    for (int i = 0; i < g->n_nodes; i++) {
        const onx_node *nd = &g->nodes[i];
        if (nd->dead) continue;
        onx_t in[ONX_MAX_IO], out[ONX_MAX_IO];
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k];
            if (v < 0) {
                memset(&in[k], 0, sizeof in[k]);
                continue;
            }
            onx_view(&g->v[v], m, &in[k]);
            in[k].p = g->v[v].is_const ? g->v[v].data : (void *)(arena + p->off[v]);
        }
        for (int k = 0; k < nd->n_out; k++) {
            onx_view(&g->v[nd->out[k]], m, &out[k]);
            out[k].p = arena + p->off[nd->out[k]];
        }
        nd->op->run(nd, in, out, tmp);
    }
}

int onx_forward(const onx_graph *g, const float *x, size_t n, float *y, onx_ws **wsp, tr_err *err) {
    if (!*wsp && !(*wsp = calloc(1, sizeof **wsp))) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    onx_ws *ws = *wsp;
    int rc = ws_bind(g, ws, err);
    if (rc) return rc;
    size_t din = onx_input_dim(g), dout = onx_output_dim(g), rows = (size_t)ws->chunk;
    for (size_t at = 0; at < n; at += rows) {
        size_t m = n - at < rows ? n - at : rows;
        int64_t run_n = g->fixed_batch ? g->fixed_batch : (int64_t)m;
        plan *p = NULL;
        if ((rc = get_plan(g, ws, run_n, &p, err))) return rc;
        float *xin = ws->arena + p->off[g->input];
        memcpy(xin, x + at * din, m * din * sizeof *x);
        if ((size_t)run_n > m) memset(xin + m * din, 0, ((size_t)run_n - m) * din * sizeof *x); /* padding rows */
        run_nodes(g, p, run_n, ws->arena);
        memcpy(y + at * dout, ws->arena + p->off[g->outputs[0]], m * dout * sizeof *y);
    }
    return TR_OK;
}
