/* onnx_exec.c - static memory plans per batch size class, per-thread arenas, running the graph a segment
 * at a time (onnx_seg.h). */
#include <stdlib.h>
#include <string.h>

#include "onnx.h"
#include "onnx_load.h"
#include "onnx_op.h"
#include "onnx_seg.h"

/* Bytes of activations and scratch per chunk of rows: a chunk's tensors stay in the L3 cache
 * next to another worker's chunk and the weights. 64 MiB chunks ran mobilenet_v2 at batch 8
 * 15 % and the Fashion CNN at batch 256 13 % slower (resnet18 at batch 8: 3 % faster); with the
 * scratch counted once, 4.5 MiB gives the Fashion CNN its best chunk (8 rows; 16 or 9: 6-30 %
 * slower at batch 256), and resnet18 and mobilenet_v2 at 224x224 one image a chunk (a row of their early
 * layers alone is more). That is the whole graph's chunk; segments whose weights outweigh their activations
 * take more rows (onnx_seg.c): resnet18's last stage 8 images at batch 8 (6 % more images/s when the
 * rest ran one image at a time; its 7x7 layers then run by F(2x2)), the Fashion CNN's Linear layers 256;
 * its 14x14 stage at 2, 4 or 8 images measured no faster than at one. */
#define ARENA_TARGET ((size_t)9 << 19)
/* Bytes of a segment's in and out at the outer chunk (onnx_seg.h): resnet18 at 224x224, whose
 * first segment's boundaries take 0.8 MiB a row, runs up to 20 images through its last stage
 * together. */
#define BND_TARGET ((size_t)16 << 20)
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
    int64_t chunk; /* rows per run (the segments' outer chunk) */
    onx_segs segs;
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
    onx_segs_free(&ws->segs);
    free(ws->arena);
    free(ws);
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

/* Whether segment s runs its nodes on sub-chunks in a plan for n rows. */
static int splits(const onx_seg *s, int64_t n) {
    return s->chunk < n;
}

/* Offsets for a run of n rows. Values are placed first fit as the nodes produce them and freed after
 * their last reader, except around a segment that runs on sub-chunks: its in stays until its last
 * node (every sub-chunk reads it again), and its out is placed before any of its own values, whose
 * blocks each sub-chunk reuses while the out collects the rows. A plan for n rows that no segment
 * splits (one row, a graph of one segment) is the plain one. */
static int make_plan(const onx_graph *g, const onx_segs *sg, int64_t n, plan *p, tr_err *err) {
    free(p->off);
    memset(p, 0, sizeof *p);
    p->off = calloc((size_t)g->n_v, sizeof *p->off);
    block *b = malloc(sizeof *b * (size_t)(g->n_v + 1));
    onx_t *view = malloc(sizeof *view * (size_t)g->n_v);
    int *end = malloc(sizeof *end * (size_t)g->n_v);
    unsigned char *placed = calloc((size_t)g->n_v, 1);
    if (!p->off || !b || !view || !end || !placed) {
        free(b);
        free(view);
        free(end);
        free(placed);
        free(p->off);
        p->off = NULL;
        return tr_seterr(err, TR_ENOMEM, "", "out of memory planning the graph");
    }
    int nb = 0;
    for (int v = 0; v < g->n_v; v++) onx_view(&g->v[v], onx_seg_rows(sg, v, n), &view[v]), end[v] = g->v[v].last_use;
    for (int k = 0; k < sg->n; k++)
        if (splits(&sg->s[k], n) && end[sg->s[k].in] < sg->s[k].last) end[sg->s[k].in] = sg->s[k].last;
    size_t need = 0, len;
#define ALLOC(v)                                                                                                       \
    do {                                                                                                               \
        len = (view[v].n * view[v].esz / sizeof(float) + ALIGN - 1) / ALIGN * ALIGN;                                   \
        p->off[v] = place(b, &nb, len ? len : ALIGN, v);                                                               \
        if (p->off[v] + len > need) need = p->off[v] + len;                                                            \
        placed[v] = 1;                                                                                                 \
    } while (0)
#define RELEASE_AFTER(v, i)                                                                                            \
    do {                                                                                                               \
        if ((v) >= 0 && onx_is_runtime(g, v) && end[v] == (i)) release(b, &nb, v);                                     \
    } while (0)
    ALLOC(g->input);
    for (int k = 0; k < sg->n; k++) {
        const onx_seg *s = &sg->s[k];
        int split = splits(s, n);
        if (split && !placed[s->out]) ALLOC(s->out);
        for (int i = s->first; i <= s->last; i++) {
            const onx_node *nd = &g->nodes[i];
            if (nd->dead) continue;
            int in0 = nd->n_in ? nd->in[0] : -1, out0 = nd->out[0];
            if (nd->alias && in0 >= 0 && onx_is_runtime(g, in0) && end[in0] == i && !g->v[in0].is_output &&
                !placed[out0] && !(split && (sg->bnd[in0] || sg->bnd[out0]))) {
                /* a view of an input nobody reads later: the output takes over its block */
                p->off[out0] = p->off[in0];
                placed[out0] = 1;
                for (int j = 0; j < nb; j++)
                    if (b[j].v == in0) b[j].v = out0;
                continue;
            }
            for (int j = 0; j < nd->n_out; j++) /* unread outputs too: the kernel writes them */
                if (onx_is_written(g, nd->out[j]) && !placed[nd->out[j]]) ALLOC(nd->out[j]);
            if (nd->op->scratch) {
                onx_t in[ONX_MAX_IO], out[ONX_MAX_IO];
                for (int j = 0; j < nd->n_in; j++)
                    if (nd->in[j] >= 0) in[j] = view[nd->in[j]];
                for (int j = 0; j < nd->n_out; j++) out[j] = view[nd->out[j]];
                size_t t = nd->op->scratch(nd, in, out);
                if (t > p->tmp) p->tmp = t;
            }
            for (int j = 0; j < nd->n_in; j++) RELEASE_AFTER(nd->in[j], i);
            for (int j = 0; j < nd->n_out; j++) /* outputs nobody reads */
                if (onx_is_written(g, nd->out[j]) && g->v[nd->out[j]].last_use < 0) release(b, &nb, nd->out[j]);
        }
        RELEASE_AFTER(s->in, s->last);
    }
#undef ALLOC
#undef RELEASE_AFTER
    free(b);
    free(view);
    free(end);
    free(placed);
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
        int rc = make_plan(g, &ws->segs, rows, p, err);
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

/* A workspace meets a graph: drop other graphs' plans and cut this one into segments (onnx_seg.h);
 * rows per run are the segments' outer chunk (the file's fixed batch, if it has one). */
static int ws_bind(const onx_graph *g, onx_ws *ws, tr_err *err) {
    if (ws->gid == g->id) return TR_OK;
    plans_clear(ws);
    onx_segs_free(&ws->segs);
    ws->gid = 0;
    int rc = onx_segs_make(g, ARENA_TARGET, BND_TARGET, MAX_CHUNK, &ws->segs, err);
    if (rc) return rc;
    ws->chunk = ws->segs.outer;
    ws->gid = g->id;
    return TR_OK;
}

/* Run every live node on m rows, a segment at a time, each on sub-chunks of its rows: views get the
 * dims of a sub-chunk, and a segment's in and out (held for all m rows) the sub-chunk's rows of them. */
static void run_nodes(const onx_graph *g, const onx_segs *sg, const plan *p, int64_t m, float *arena) {
    float *tmp = arena + p->need;
    for (int k = 0; k < sg->n; k++) {
        const onx_seg *s = &sg->s[k];
        int64_t c = s->chunk < m ? s->chunk : m;
        for (int64_t r0 = 0; r0 < m; r0 += c) {
            int64_t rows = m - r0 < c ? m - r0 : c;
            for (int i = s->first; i <= s->last; i++) {
                const onx_node *nd = &g->nodes[i];
                if (nd->dead) continue;
                onx_t io[2][ONX_MAX_IO];
                for (int d = 0; d < 2; d++)
                    for (int j = 0; j < (d ? nd->n_out : nd->n_in); j++) {
                        int v = d ? nd->out[j] : nd->in[j];
                        onx_t *t = &io[d][j];
                        if (v < 0) {
                            memset(t, 0, sizeof *t);
                            continue;
                        }
                        onx_view(&g->v[v], rows, t);
                        if (g->v[v].is_const) {
                            t->p = g->v[v].data;
                            continue;
                        }
                        t->p = (char *)(arena + p->off[v]) +
                               (sg->bnd[v] ? (size_t)r0 * (t->n / (size_t)rows) * t->esz : 0);
                    }
                nd->op->run(nd, io[0], io[1], tmp);
            }
        }
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
        run_nodes(g, &ws->segs, p, run_n, ws->arena);
        memcpy(y + at * dout, ws->arena + p->off[g->outputs[0]], m * dout * sizeof *y);
    }
    return TR_OK;
}
