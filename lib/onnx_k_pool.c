/* onnx_k_pool.c - MaxPool, AveragePool, GlobalAveragePool (NCHW, 1-D as 2-D). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"

typedef struct {
    onx_win w;
    int is_max, include_pad;
} pool_p;

static int infer_pool(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const kmax[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order",
                                       "strides", NULL};
    static const char *const kavg[] = {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides",
                                       NULL};
    int is_max = nd->op->name[0] == 'M', rc;
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, is_max ? kmax : kavg, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 3, 4, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t so = 0, cip = 0;
    if ((rc = onx_attr_int(g, nd, "storage_order", &so, err)) < 0) return rc;
    if (so) return onx_fail(g, nd, err, "storage_order 1 is not supported");
    if ((rc = onx_attr_int(g, nd, "count_include_pad", &cip, err)) < 0) return rc;
    pool_p *p = calloc(1, sizeof *p);
    if (!p) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    nd->p = p;
    p->is_max = is_max;
    p->include_pad = cip != 0;
    if ((rc = onx_win_parse(g, nd, x, NULL, is_max, g->opset >= 10, &p->w, err))) return rc;
    if (x->dim[1].p) return onx_fail(g, nd, err, "the channel dimension depends on the batch size");
    onx_dim o[4];
    onx_win_dims(x, x->dim[1].c, &p->w, o);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, o);
    return TR_OK;
}

static void run_pool(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    const pool_p *p = nd->p;
    const onx_win *w = &p->w;
    int64_t H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1];
    int64_t planes = in[0].d[0] * in[0].d[1];
    const float *x = in[0].p;
    float *y = out[0].p;
    for (int64_t pl = 0; pl < planes; pl++, x += H * W, y += OH * OW)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t y0 = oy * w->s[0] - w->pb[0], x0 = ox * w->s[1] - w->pb[1];
                float acc = p->is_max ? -FLT_MAX : 0.0f;
                int64_t cnt = 0;
                for (int64_t i = 0; i < w->k[0]; i++) {
                    int64_t iy = y0 + i * w->d[0];
                    if (iy < 0 || iy >= H) continue;
                    for (int64_t j = 0; j < w->k[1]; j++) {
                        int64_t ix = x0 + j * w->d[1];
                        if (ix < 0 || ix >= W) continue;
                        float v = x[iy * W + ix];
                        if (p->is_max) acc = v > acc ? v : acc;
                        else acc += v;
                        cnt++;
                    }
                }
                if (!p->is_max) {
                    if (p->include_pad) { /* the window clipped to the padded input (PyTorch, ONNX Runtime) */
                        int64_t ye = y0 + w->k[0], xe = x0 + w->k[1];
                        ye = ye < H + w->pe[0] ? ye : H + w->pe[0];
                        xe = xe < W + w->pe[1] ? xe : W + w->pe[1];
                        cnt = (ye - y0) * (xe - x0);
                    }
                    acc = cnt ? acc / (float)cnt : 0.0f;
                }
                y[oy * OW + ox] = acc;
            }
    onx_act_apply(nd->act, nd->act_lo, nd->act_hi, out[0].p, out[0].n);
}

static int infer_gap(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc;
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_need(g, nd, 0, ONX_F32, 3, ONX_MAX_RANK, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    onx_dim o[ONX_MAX_RANK];
    for (int i = 0; i < x->rank; i++) o[i] = i < 2 ? x->dim[i] : onx_d(1);
    for (int i = 1; i < x->rank; i++)
        if (x->dim[i].p) return onx_fail(g, nd, err, "dimension %d depends on the batch size", i);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, o);
    return TR_OK;
}

static void run_gap(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    size_t planes = out[0].n, hw = planes ? in[0].n / planes : 0;
    const float *x = in[0].p;
    float *y = out[0].p;
    for (size_t pl = 0; pl < planes; pl++, x += hw) {
        float acc = 0.0f;
        for (size_t i = 0; i < hw; i++) acc += x[i];
        y[pl] = hw ? acc / (float)hw : 0.0f;
    }
}

const onx_op onx_ops_pool[] = {
    {"MaxPool", 1, infer_pool, run_pool, NULL, NULL, 1},
    {"AveragePool", 7, infer_pool, run_pool, NULL, NULL, 1},
    {"GlobalAveragePool", 1, infer_gap, run_gap, NULL, NULL, 0},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
