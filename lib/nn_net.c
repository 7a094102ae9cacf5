/* nn_net.c - the layer-sequence runner: buffers, forward with a trace, backward to parameter and input gradients. */
#include "nn_net.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn_layers.h"

#define NN_INFER_BLOCK 256 /* rows per inference block */

/* The length of the chain that layer i starts and that runs as one: 3 for batch norm, relu, 2x2 max pool
 * (nn_bn_relu_max2_forward), 2 for batch norm, relu (nn_bn_relu_forward), else 0. */
static int chain_len(const nn_arch *a, int i) {
    const nn_layer *L = a->l + i;
    if (i + 1 >= a->n || L[0].kind != NN_BN || L[1].kind != NN_RELU) return 0;
    if (i + 2 < a->n && L[2].kind == NN_MAXPOOL && L[2].k == 2 && L[2].stride == 2 && L[2].pad == 0 &&
        (size_t)L[0].in.h * (size_t)L[0].in.w <= NN_FUSE_MAX_HW)
        return 3;
    return 2;
}

/* The chain layer i starts (its length), or 0. */
static int chain_at(const nn_net *net, int i) {
    for (int len = 3; len >= 2; len--)
        if (i + len - 1 < net->a.n && net->fused[i + len - 1] == len) return len;
    return 0;
}

/* Layer i is in a chain before its last layer: its output is never stored. */
static int in_chain(const nn_net *net, int i) {
    for (int k = i + 1; k < net->a.n && k <= i + 2; k++)
        if (net->fused[k] && k - net->fused[k] < i) return 1;
    return 0;
}

int nn_net_init(nn_net *net, const nn_arch *a, tr_err *err) {
    (void)err;
    memset(net, 0, sizeof *net);
    net->a = *a;
    for (int i = 0; i < a->n; i++) {
        int len = chain_len(a, i);
        if (len) net->fused[i + len - 1] = (char)len, i += len - 1;
    }
    return TR_OK;
}

static void free_bufs(nn_net *net) {
    for (int i = 0; i < NN_MAX_LAYERS; i++) {
        free(net->own[i]);
        free(net->aux[i]);
        free(net->stat[i]);
        free(net->arg[i]);
        free(net->pstat[i]);
        free(net->xarg[i]);
        net->xarg[i] = NULL;
        net->own[i] = net->aux[i] = net->stat[i] = NULL;
        net->arg[i] = NULL;
        net->pstat[i] = NULL;
    }
    free(net->work);
    free(net->part);
    free(net->g[0]);
    free(net->g[1]);
    net->work = net->part = net->g[0] = net->g[1] = NULL;
    net->cap = 0;
}

void nn_net_free(nn_net *net) {
    if (net) free_bufs(net);
}

void nn_net_set_par(nn_net *net, par *p) {
    if (par_threads(p) != par_threads(net->par)) free_bufs(net); /* per-thread scratch */
    net->par = p;
}

/* The pool for the GEMM parts: GEMMs run on its threads when OpenBLAS runs
 * one thread, else on the caller with OpenBLAS's threads. Same results. */
static par *gemm_par(const nn_net *net) {
    return net->blas_threads || openblas_get_num_threads() > 1 ? NULL : net->par;
}

/* Elementwise and per-sample layers over ranges: par_for splits elements (activations) or samples (pools). */
typedef struct {
    const nn_layer *L;
    const float *x, *y, *d;
    float *out;
    int32_t *arg;
    int backward;
} range_task;

static void act_part(void *ctx, size_t lo, size_t hi) {
    const range_task *t = ctx;
    if (t->backward)
        nn_act_backward(t->L->kind, t->x + lo, t->y + lo, t->d + lo, hi - lo, t->out + lo);
    else
        nn_act_forward(t->L->kind, t->x + lo, hi - lo, t->out + lo);
}

static void pool_part(void *ctx, size_t lo, size_t hi) {
    const range_task *t = ctx;
    size_t in = nn_size(t->L->in), out = nn_size(t->L->outs);
    int32_t *arg = t->arg ? t->arg + lo * out : NULL;
    if (t->backward)
        nn_pool_backward(t->L, arg, t->d + lo * out, hi - lo, t->out + lo * in);
    else
        nn_pool_forward(t->L, t->x + lo * in, hi - lo, t->out + lo * out, arg);
}

/* *p = malloc(count * size) (old contents dropped); 0 or -1. */
static int alloc(void *p, size_t count, size_t size) {
    void **pp = p;
    free(*pp);
    *pp = NULL;
    size_t bytes;
    if (!tr_size_mul(count ? count : 1, size, &bytes)) return -1;
    *pp = malloc(bytes);
    return *pp ? 0 : -1;
}

int nn_net_reserve(nn_net *net, size_t n, tr_err *err) {
    const nn_arch *a = &net->a;
    if (n <= net->cap) return TR_OK;
    if (n > ((size_t)1 << 20) || n > (size_t)INT32_MAX / nn_size(a->input))
        return tr_seterr(err, TR_ELIMIT, "batch", "batch of %zu rows is too large for this network", n);
    free_bufs(net);
    size_t gmax = nn_size(a->input), wmax = 1, pmax = 1;
    int bad = 0;
    for (int i = 0; i < a->n && !bad; i++) {
        const nn_layer *L = &a->l[i];
        size_t no = n * nn_size(L->outs);
        if (nn_size(L->outs) > gmax) gmax = nn_size(L->outs);
        /* a fused chain stores its last layer's output only */
        if (L->kind != NN_FLATTEN && !in_chain(net, i)) bad |= alloc(&net->own[i], no, sizeof(float));
        if (L->kind == NN_CONV) {
            if (nn_conv_work(L) > wmax) wmax = nn_conv_work(L);
            if (nn_conv_part(L, n) > pmax) pmax = nn_conv_part(L, n);
            if (i + 1 < a->n && a->l[i + 1].kind == NN_BN)
                bad |= alloc(&net->pstat[i], 2 * n * (size_t)L->out, sizeof(double));
        } else if (L->kind == NN_BN) {
            bad |= alloc(&net->stat[i], 5 * (size_t)L->in.c, sizeof(float)); /* and a fused chain's coef */
        } else if (L->kind == NN_DROPOUT) {
            bad |= alloc(&net->aux[i], no, sizeof(float));
        } else if (L->kind == NN_MAXPOOL) {
            bad |= alloc(&net->arg[i], no, sizeof(int32_t));
            if (net->fused[i] == 3) bad |= alloc(&net->xarg[i], no, sizeof(float));
        }
    }
    if (bad || alloc(&net->work, wmax * (size_t)par_threads(net->par), sizeof(float)) ||
        alloc(&net->part, pmax, sizeof(float)) || alloc(&net->g[0], n * gmax, sizeof(float)) ||
        alloc(&net->g[1], n * gmax, sizeof(float))) {
        free_bufs(net);
        return tr_seterr(err, TR_ENOMEM, "batch", "cannot allocate the network's buffers for %zu rows", n);
    }
    net->cap = n;
    return TR_OK;
}

/* Layer i forward from cur into net->own[i] (or a view of cur). */
static int layer_forward(nn_net *net, int i, const float *P, float *state, const float *cur, size_t n, int train,
                         int keep, uint64_t rng[4], tr_err *err) {
    const nn_layer *L = &net->a.l[i];
    float *y = net->own[i];
    size_t cnt = n * nn_size(L->outs);
    net->y[i] = y;
    switch (L->kind) {
    case NN_CONV:
        nn_conv_forward(L, P + L->w_off, P + L->b_off, cur, n, y, train ? net->pstat[i] : NULL, net->work,
                        gemm_par(net));
        break;
    case NN_FC:
        nn_fc_forward(L, P + L->w_off, P + L->b_off, cur, n, y, gemm_par(net));
        break;
    case NN_BN:
        if (nn_bn_forward(L, P + L->w_off, P + L->b_off, state + L->s_off, cur, n, train,
                          i && train ? net->pstat[i - 1] : NULL, y, net->stat[i], net->par))
            return tr_seterr(err, TR_EINVAL, "batch",
                             "arch layer %d \"bn\": training batch normalisation needs more than one value per "
                             "channel, got a batch of %zu",
                             i, n);
        if (y == NULL && chain_at(net, i) == 3) { /* the fused chain: its relu and pool too */
            net->y[i + 2] = net->own[i + 2];
            nn_bn_relu_max2_forward(L, P + L->w_off, P + L->b_off, cur, n, net->stat[i], net->own[i + 2],
                                    keep ? net->arg[i + 2] : NULL, net->xarg[i + 2], net->par);
        } else if (y == NULL) { /* its relu */
            net->y[i + 1] = net->own[i + 1];
            nn_bn_relu_forward(L, P + L->w_off, P + L->b_off, cur, n, net->stat[i], net->own[i + 1], net->par);
        }
        break;
    case NN_MAXPOOL:
    case NN_AVGPOOL:
    case NN_GAP:
        par_for(net->par, n, pool_part, &(range_task){L, cur, NULL, NULL, y, keep ? net->arg[i] : NULL, 0});
        break;
    case NN_DROPOUT:
        if (train && L->p > 0)
            nn_dropout_forward(L->p, cur, cnt, rng, net->aux[i], y);
        else
            memcpy(y, cur, cnt * sizeof *y);
        break;
    case NN_FLATTEN:
        net->y[i] = cur;
        break;
    default:
        par_for(net->par, cnt, act_part, &(range_task){L, cur, NULL, NULL, y, NULL, 0});
        break;
    }
    return TR_OK;
}

/* keep: what backward needs (the max-pool argmax) is stored. */
static int forward(nn_net *net, const float *params, float *state, const float *x, size_t n, int train, int keep,
                   uint64_t rng[4], const float **y, tr_err *err) {
    int rc = nn_net_reserve(net, n, err);
    if (rc) return rc;
    net->n = n;
    net->train = train;
    net->x = x;
    const float *cur = x;
    for (int i = 0; i < net->a.n; i++) {
        if ((rc = layer_forward(net, i, params, state, cur, n, train, keep, rng, err))) return rc;
        int len = chain_at(net, i);
        if (len) i += len - 1;
        cur = net->y[i];
    }
    *y = cur;
    return TR_OK;
}

int nn_net_forward(nn_net *net, const float *params, float *state, const float *x, size_t n, int train, uint64_t rng[4],
                   const float **y, tr_err *err) {
    return forward(net, params, state, x, n, train, 1, rng, y, err);
}

/* Layer i backward: d is dL/d(output), dx (NULL: not wanted) receives dL/d(input). */
static void layer_backward(nn_net *net, int i, const float *P, float *G, const float *d, float *dx) {
    const nn_layer *L = &net->a.l[i];
    const float *x = i ? net->y[i - 1] : net->x;
    size_t n = net->n, cnt = n * nn_size(L->outs);
    switch (L->kind) {
    case NN_CONV:
        nn_conv_backward(L, P + L->w_off, x, d, NULL, n, G + L->w_off, G + L->b_off, dx, net->work, net->part,
                         gemm_par(net));
        break;
    case NN_FC:
        nn_fc_backward(L, P + L->w_off, x, d, n, G + L->w_off, G + L->b_off, dx, gemm_par(net));
        break;
    case NN_BN:
        nn_bn_backward(L, P + L->w_off, x, net->stat[i], net->train, d, n, G + L->w_off, G + L->b_off, dx, net->par);
        break;
    case NN_MAXPOOL:
    case NN_AVGPOOL:
    case NN_GAP:
        if (dx) par_for(net->par, n, pool_part, &(range_task){L, NULL, NULL, d, dx, net->arg[i], 1});
        break;
    case NN_DROPOUT:
        if (dx && net->train && L->p > 0)
            nn_dropout_backward(net->aux[i], d, cnt, dx);
        else if (dx)
            memcpy(dx, d, cnt * sizeof *dx);
        break;
    case NN_FLATTEN:
        if (dx) memcpy(dx, d, cnt * sizeof *dx);
        break;
    default:
        if (dx) par_for(net->par, cnt, act_part, &(range_task){L, x, net->y[i], d, dx, NULL, 1});
        break;
    }
}

/* A fused chain's backward from its batch norm j, after its parameter gradients: the input gradient of sample s
 * into out (that sample's). */
typedef struct {
    const nn_net *net;
    int j, len;
    const float *d; /* the chain's output gradient */
} chain_src;

static void chain_dx(const void *ctx, size_t s, float *out) {
    const chain_src *c = ctx;
    const nn_net *net = c->net;
    const nn_layer *L = &net->a.l[c->j];
    const float *coef = net->stat[c->j] + 2 * (size_t)L->in.c;
    size_t in = nn_size(L->in);
    const float *x = c->j ? net->y[c->j - 1] : net->x;
    if (c->len == 2) {
        nn_bn_relu_dx(L, coef, x + s * in, net->y[c->j + 1] + s * in, c->d + s * in, out);
        return;
    }
    size_t po = nn_size(net->a.l[c->j + 2].outs);
    nn_bn_relu_max2_dx(L, coef, x + s * in, net->y[c->j + 2] + s * po, net->arg[c->j + 2] + s * po,
                       net->xarg[c->j + 2] + s * po, c->d + s * po, out);
}

typedef struct {
    const chain_src *c;
    float *dx;
} chain_task;

static void chain_part(void *ctx, size_t lo, size_t hi) {
    const chain_task *t = ctx;
    size_t in = nn_size(t->c->net->a.l[t->c->j].in);
    for (size_t s = lo; s < hi; s++) chain_dx(t->c, s, t->dx + s * in);
}

/* The chain whose last layer is i: its batch norm's parameter gradients, then its input gradient into the out of
 * the convolution before it (which then runs its backward too: *i moves to it) or into dx. */
static void chain_backward(nn_net *net, int *i, const float *P, float *G, const float *d, float *dx) {
    int len = net->fused[*i], j = *i - len + 1;
    const nn_layer *L = &net->a.l[j];
    chain_src c = {net, j, len, d};
    float *coef = net->stat[j] + 2 * (size_t)L->in.c;
    if (len == 3)
        nn_bn_relu_max2_backward(L, P + L->w_off, net->stat[j], net->train, net->y[j + 2], net->xarg[j + 2], d, net->n,
                                 G + L->w_off, G + L->b_off, coef, net->par);
    else
        nn_bn_relu_backward(L, P + L->w_off, net->stat[j], net->train, j ? net->y[j - 1] : net->x, net->y[j + 1], d,
                            net->n, G + L->w_off, G + L->b_off, coef, net->par);
    *i = j;
    if (j > 0 && net->a.l[j - 1].kind == NN_CONV) { /* its output gradient made sample by sample, in cache */
        const nn_layer *V = &net->a.l[j - 1];
        nn_dy_src src = {chain_dx, &c};
        *i = j - 1;
        nn_conv_backward(V, P + V->w_off, j > 1 ? net->y[j - 2] : net->x, NULL, &src, net->n, G + V->w_off,
                         G + V->b_off, dx, net->work, net->part, gemm_par(net));
        return;
    }
    if (dx) par_for(net->par, net->n, chain_part, &(chain_task){&c, dx});
}

int nn_net_backward(nn_net *net, const float *params, const float *dy, float *grads, float *dx, tr_err *err) {
    if (net->n == 0) return tr_seterr(err, TR_EINTERNAL, "batch", "backward without a forward");
    const float *d = dy;
    int b = 0;
    for (int i = net->a.n - 1; i >= 0; i--) {
        const nn_layer *L = &net->a.l[i];
        if (net->fused[i]) { /* the chain, and the convolution before it when there is one */
            int h = i - net->fused[i] + 1, j = h - (h > 0 && net->a.l[h - 1].kind == NN_CONV);
            float *out = j ? net->g[b] : dx;
            chain_backward(net, &i, params, grads, d, out);
            if (i == 0) break;
            d = out;
            b ^= 1;
            continue;
        }
        if (i == 0) {
            if (dx || L->n_w) layer_backward(net, i, params, grads, d, dx);
            break;
        }
        if (L->kind == NN_FLATTEN) continue; /* same values, same gradient */
        float *out = net->g[b];
        layer_backward(net, i, params, grads, d, out);
        d = out;
        b ^= 1;
    }
    return TR_OK;
}

int nn_net_infer(nn_net *net, const float *params, float *state, const float *x, size_t n, float *y, tr_err *err) {
    size_t in = nn_size(net->a.input), od = nn_arch_out_dim(&net->a);
    for (size_t r = 0; r < n; r += NN_INFER_BLOCK) {
        size_t m = n - r < NN_INFER_BLOCK ? n - r : NN_INFER_BLOCK;
        const float *o;
        int rc = forward(net, params, state, x + r * in, m, 0, 0, NULL, &o, err);
        if (rc) return rc;
        memcpy(y + r * od, o, m * od * sizeof *y);
    }
    net->n = 0; /* x is not kept */
    return TR_OK;
}
