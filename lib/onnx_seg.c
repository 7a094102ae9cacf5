/* onnx_seg.c - cutting a graph into segments with their own chunk sizes (onnx_seg.h). */
#include "onnx_seg.h"

#include <stdlib.h>
#include <string.h>

#include "onnx_load.h"

/* A float tensor whose first dimension alone holds the batch: its rows are contiguous. */
static int row_major(const onx_graph *g, int v) {
    const onx_value *val = &g->v[v];
    if (val->dtype != ONX_F32 || val->rank < 1 || !val->dim[0].p) return 0;
    for (int i = 1; i < val->rank; i++)
        if (val->dim[i].p) return 0;
    return 1;
}

/* Floats of value v at r rows. */
static size_t floats(const onx_graph *g, int v, int64_t r) {
    onx_t t;
    onx_view(&g->v[v], r, &t);
    return t.n * t.esz / sizeof(float);
}

/* The activations (peak of the live values' floats) and the largest kernel scratch of one run of
 * segment s on r rows. */
static void seg_cost(const onx_graph *g, const onx_seg *s, int64_t r, size_t *need, size_t *tmp) {
    size_t live = floats(g, s->in, r), peak = live;
    *tmp = 0;
    for (int i = s->first; i <= s->last; i++) {
        const onx_node *nd = &g->nodes[i];
        if (nd->dead) continue;
        onx_t in[ONX_MAX_IO], out[ONX_MAX_IO];
        memset(in, 0, sizeof in);
        for (int k = 0; k < nd->n_out; k++) {
            onx_view(&g->v[nd->out[k]], r, &out[k]);
            if (onx_is_written(g, nd->out[k])) live += floats(g, nd->out[k], r);
        }
        for (int k = 0; k < nd->n_in; k++)
            if (nd->in[k] >= 0) onx_view(&g->v[nd->in[k]], r, &in[k]);
        if (nd->op->scratch) {
            size_t t = nd->op->scratch(nd, in, out);
            if (t > *tmp) *tmp = t;
        }
        if (live > peak) peak = live;
        for (int k = 0; k < nd->n_in; k++) {
            int v = nd->in[k], seen = 0;
            for (int j = 0; j < k; j++) seen |= nd->in[j] == v;
            if (v >= 0 && !seen && v != s->in && onx_is_runtime(g, v) && g->v[v].last_use == i) live -= floats(g, v, r);
        }
        for (int k = 0; k < nd->n_out; k++)
            if (onx_is_written(g, nd->out[k]) && g->v[nd->out[k]].last_use < 0) live -= floats(g, nd->out[k], r);
    }
    *need = peak;
}

/* Rows per run of segment s: as many as fit target bytes, from its 1- and 2-row costs (the scratch
 * that does not grow with rows, such as the SGEMM's blocks, counted once); *row: its activations'
 * floats at one row. */
static int64_t seg_chunk(const onx_graph *g, const onx_seg *s, size_t target, int64_t max_chunk, size_t *row) {
    size_t need1, tmp1, need2, tmp2;
    seg_cost(g, s, 1, &need1, &tmp1);
    seg_cost(g, s, 2, &need2, &tmp2);
    size_t one = need1 + tmp1, two = need2 + tmp2, t = target / sizeof(float);
    size_t per = two > one ? two - one : 1, fixed = one > per ? one - per : 0;
    size_t rows = t > fixed ? (t - fixed) / per : 1;
    if (rows > 4) rows -= rows % 4; /* whole 4-row blocks for the small-batch Gemm (onx_fc) */
    *row = need1;
    return rows < 1 ? 1 : rows > (size_t)max_chunk ? max_chunk : (int64_t)rows;
}

/* Floats of the constants segment s's nodes read: its weights. */
static size_t seg_weights(const onx_graph *g, const onx_seg *s) {
    size_t w = 0;
    for (int i = s->first; i <= s->last; i++)
        for (int k = 0; !g->nodes[i].dead && k < g->nodes[i].n_in; k++)
            if (g->nodes[i].in[k] >= 0 && g->v[g->nodes[i].in[k]].is_const) w += floats(g, g->nodes[i].in[k], 1);
    return w;
}

/* The cuts: after each live node where one runtime value is live, row-major and new. */
static int find_cuts(const onx_graph *g, onx_seg *s, int *n) {
    int N = g->n_nodes, last_live = -1;
    int *born = calloc((size_t)N + 1, sizeof *born), *died = calloc((size_t)N + 1, sizeof *died);
    if (!born || !died) {
        free(born);
        free(died);
        return TR_ENOMEM;
    }
    for (int i = 0; i < N; i++)
        if (!g->nodes[i].dead) last_live = i;
    for (int v = 0; v < g->n_v; v++) {
        if (!onx_is_runtime(g, v) && !onx_is_written(g, v)) continue;
        int b = g->v[v].producer, d = g->v[v].last_use; /* live after nodes b .. d - 1 */
        if (d < b) d = b;                               /* unread: gone after its node */
        if (b >= 0) born[b]++;
        if (d < N) died[d]++;
    }
    *n = 1;
    s[0] = (onx_seg){0, N - 1, g->input, -1, 0};
    int live = 1; /* the input */
    for (int i = 0; i < N; i++) {
        live += born[i] - died[i];
        if (live != 1 || g->nodes[i].dead || i >= last_live) continue;
        int cut = -1;
        for (int v = 0; v < g->n_v && cut < 0; v++) /* read after node i: a runtime value, never an unread one */
            if (onx_is_runtime(g, v) && g->v[v].producer <= i && g->v[v].last_use > i) cut = v;
        if (cut < 0 || cut == s[*n - 1].in || !row_major(g, cut)) continue;
        s[*n - 1].last = i, s[*n - 1].out = cut;
        s[(*n)++] = (onx_seg){i + 1, N - 1, cut, -1, 0};
    }
    s[*n - 1].out = g->outputs[0];
    free(born);
    free(died);
    return TR_OK;
}

/* Per value: boundary flag, producer's segment. */
static void mark_values(const onx_graph *g, onx_segs *sg) {
    memset(sg->bnd, 0, (size_t)g->n_v);
    for (int v = 0; v < g->n_v; v++) sg->vseg[v] = 0;
    for (int k = 0; k < sg->n; k++) {
        const onx_seg *s = &sg->s[k];
        sg->bnd[s->in] = sg->bnd[s->out] = 1;
        for (int i = s->first; i <= s->last; i++)
            for (int j = 0; j < g->nodes[i].n_out; j++) sg->vseg[g->nodes[i].out[j]] = k;
    }
}

/* The outer chunk: as many rows as the lightest segment takes (hi), fewer when the boundaries left
 * between segments of different effective chunks (min(chunk, outer)) would take more than
 * bnd_target bytes, a segment's in and out together; never fewer than the heaviest segment's (lo).
 * Lowering it only merges segments, so the loop ends. */
static int64_t outer_chunk(const onx_graph *g, const onx_segs *sg, int64_t lo, int64_t hi, size_t bnd_target) {
    int64_t outer = hi;
    for (;;) {
        size_t pair = 1, in = floats(g, sg->s[0].in, 1);
        for (int k = 0; k < sg->n; k++) {
            int64_t e = sg->s[k].chunk < outer ? sg->s[k].chunk : outer;
            int64_t next = k + 1 < sg->n ? (sg->s[k + 1].chunk < outer ? sg->s[k + 1].chunk : outer) : -1;
            if (next == e) continue; /* merged: the run goes on */
            size_t b = (in + floats(g, sg->s[k].out, 1)) * sizeof(float);
            pair = b > pair ? b : pair;
            in = floats(g, sg->s[k].out, 1);
        }
        int64_t fit = (int64_t)(bnd_target / pair);
        if (fit >= outer || outer <= lo) return outer;
        outer = fit > lo ? fit : lo;
    }
}

/* The fewest rows a segment whose weights outweigh its activations runs at a time, whatever its activations: resnet18's
 * last stage at 224x224 (0.5 MB a row and F(2x2)'s scratch, against 30 MB of weights) streams its weights once per 8
 * images instead of once per 2. */
#define HEAVY_ROWS 8

int onx_segs_make(const onx_graph *g, size_t target, size_t bnd_target, int64_t max_chunk, onx_segs *out, tr_err *err) {
    onx_segs sg = {0};
    sg.s = malloc(sizeof *sg.s * ((size_t)g->n_nodes + 1));
    sg.bnd = malloc((size_t)g->n_v);
    sg.vseg = malloc(sizeof *sg.vseg * (size_t)g->n_v);
    int rc = sg.s && sg.bnd && sg.vseg ? TR_OK : TR_ENOMEM;
    if (rc == TR_OK && !g->fixed_batch && row_major(g, g->input) && row_major(g, g->outputs[0]))
        rc = find_cuts(g, sg.s, &sg.n);
    else if (rc == TR_OK)
        sg.n = 1, sg.s[0] = (onx_seg){0, g->n_nodes - 1, g->input, g->outputs[0], 0};
    if (rc) {
        onx_segs_free(&sg);
        return tr_seterr(err, TR_ENOMEM, "", "out of memory cutting the graph");
    }
    if (g->fixed_batch) {
        sg.s[0].chunk = sg.outer = g->fixed_batch;
    } else {
        /* the whole graph's chunk for every segment, but more rows for a segment whose weights
         * outweigh its activations at that chunk (resnet18's last stage, 19 MB of weights against
         * 0.5 MB a row; the Fashion CNN's 3136 x 256 Linear): its GEMMs read them once for more rows.
         * Segments of small weights and large activations (a CNN's first convolutions) keep the chunk
         * whose activations stay in the caches: at 36 rows instead of 8, the Fashion CNN's first
         * segment made its batch-256 run 15 % slower. */
        size_t row;
        onx_seg whole = {0, g->n_nodes - 1, g->input, g->outputs[0], 0};
        int64_t base = seg_chunk(g, &whole, target, max_chunk, &row), lo = max_chunk, hi = 1;
        for (int k = 0; k < sg.n; k++) {
            onx_seg *s = &sg.s[k];
            int64_t c = seg_chunk(g, s, target, max_chunk, &row);
            if (c > base && c < HEAVY_ROWS) c = HEAVY_ROWS < max_chunk ? HEAVY_ROWS : max_chunk;
            s->chunk = c > base && seg_weights(g, s) >= (size_t)base * row ? c : base;
            lo = s->chunk < lo ? s->chunk : lo, hi = s->chunk > hi ? s->chunk : hi;
        }
        sg.outer = outer_chunk(g, &sg, lo, hi, bnd_target);
        int n = 0; /* neighbours of the same effective chunk become one segment */
        for (int k = 0; k < sg.n; k++) {
            onx_seg s = sg.s[k];
            s.chunk = s.chunk < sg.outer ? s.chunk : sg.outer;
            if (n && sg.s[n - 1].chunk == s.chunk)
                sg.s[n - 1].last = s.last, sg.s[n - 1].out = s.out;
            else
                sg.s[n++] = s;
        }
        sg.n = n;
    }
    mark_values(g, &sg);
    *out = sg;
    return TR_OK;
}

void onx_segs_free(onx_segs *s) {
    free(s->s);
    free(s->bnd);
    free(s->vseg);
    memset(s, 0, sizeof *s);
}

int64_t onx_seg_rows(const onx_segs *s, int v, int64_t n) {
    if (s->bnd[v]) return n;
    int64_t c = s->s[s->vseg[v]].chunk;
    return c < n ? c : n;
}
