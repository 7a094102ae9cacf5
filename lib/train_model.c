/* train_model.c - trainer weights as models: seeded initial parameters, the untrained counterpart of an MLP, export.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "train_impl.h"

void trn_init_params(const nn_arch *a, float *w, float *state, uint64_t rng[4]) {
    for (int i = 0; i < a->n; i++) {
        const nn_layer *L = &a->l[i];
        if (L->kind == NN_CONV || L->kind == NN_FC) {
            /* fan_in = in_c / groups * k * k (conv) or in (fc): weight then bias, one draw each in order */
            double bound = 1.0 / sqrt((double)L->n_w / (double)L->out);
            for (size_t j = 0; j < L->n_w + L->n_b; j++) w[L->w_off + j] = (float)((2 * rng_uniform(rng) - 1) * bound);
        } else if (L->kind == NN_BN) {
            for (size_t j = 0; j < L->n_w; j++) {
                w[L->w_off + j] = 1.0f;
                w[L->b_off + j] = 0.0f;
                state[L->s_off + j] = 0.0f;
                state[L->s_off + L->n_w + j] = 1.0f;
            }
        }
    }
}

/* Copy flat parameters into a new model with the preprocessing and metadata of c. */
static int build_model(const trn_config *c, const float *w, double in_mean, double in_scale, mdl_model **out,
                       tr_err *err) {
    mdl_model *m = NULL;
    int rc = mdl_new(c->dims, c->n_layers, c->act, c->normalize, &m, err);
    if (rc) return rc;
    mlp_net *net = mdl_mlp(m);
    size_t off = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t in = (size_t)c->dims[l], o = (size_t)c->dims[l + 1];
        memcpy(net->layers[l].w, w + off, in * o * sizeof(float));
        memcpy(net->layers[l].b, w + off + in * o, o * sizeof(float));
        off += in * o + o;
    }
    size_t in0 = (size_t)c->dims[0];
    free(net->in_mean);
    free(net->in_scale);
    net->in_mean = malloc(in0 * sizeof(float));
    net->in_scale = malloc(in0 * sizeof(float));
    if (net->in_mean == NULL || net->in_scale == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "input.mean", "cannot allocate the preprocessing tensors");
        goto fail;
    }
    for (size_t i = 0; i < in0; i++) {
        net->in_mean[i] = (float)in_mean;
        net->in_scale[i] = (float)in_scale;
    }
    m->metric = c->metric;
    m->loss = c->loss;
    m->margin = c->margin;
    *out = m;
    return TR_OK;
fail:
    mdl_free(m);
    return rc;
}

int trn_init_model(const trn_config *cfg, mdl_model **out, tr_err *err) {
    uint64_t rng[4];
    nn_arch a;
    int rc = trn_config_check(cfg, err);
    *out = NULL;
    if (rc) return rc;
    if (cfg->layers[0]) return tr_seterr(err, TR_EINVAL, "arch", "only the MLP form builds an untrained model here");
    if ((rc = trn_config_arch(cfg, &a, err))) return rc;
    size_t np = a.n_params;
    if (np > MDL_MAX_PARAMS) return tr_seterr(err, TR_ELIMIT, "arch", "more than %u parameters", MDL_MAX_PARAMS);
    float *w = malloc(np * sizeof *w);
    if (w == NULL) return tr_seterr(err, TR_ENOMEM, "arch", "cannot allocate %zu parameters", np);
    rng_seed(cfg->seed, rng);
    trn_init_params(&a, w, NULL, rng);
    rc = build_model(cfg, w, cfg->input_mean, cfg->input_scale > 0 ? cfg->input_scale : 1.0, out, err);
    free(w);
    return rc;
}

int trn_init_like(const mdl_model *m, const trn_config *cfg, mdl_model **out, tr_err *err) {
    const mlp_net *net = mdl_mlp(m);
    trn_config c = *cfg;
    *out = NULL;
    if (net == NULL) return tr_seterr(err, TR_EINVAL, "model", "only an MLP has an untrained counterpart");
    c.n_layers = net->n_layers;
    c.dims[0] = net->layers[0].in;
    for (int l = 0; l < net->n_layers; l++) c.dims[l + 1] = net->layers[l].out;
    c.act = net->act;
    c.normalize = m->normalize;
    int rc = trn_init_model(&c, out, err);
    if (rc) return rc;
    mlp_net *inet = mdl_mlp(*out);
    size_t in = m->input_dim;
    if (net->in_mean && inet->in_mean) memcpy(inet->in_mean, net->in_mean, in * sizeof(float));
    if (net->in_scale && inet->in_scale) memcpy(inet->in_scale, net->in_scale, in * sizeof(float));
    return TR_OK;
}

int trn_export(const trn *t, mdl_model **out, tr_err *err) {
    *out = NULL;
    if (t->layers) return tr_seterr(err, TR_EINVAL, "arch", "a layer list is written as ONNX, not as an MLP model");
    return build_model(&t->cfg, t->w, t->in_mean, t->in_scale, out, err);
}
