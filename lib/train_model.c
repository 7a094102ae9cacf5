/* train_model.c - trainer weights as models: seeded initial parameters, the untrained counterpart of a model, export.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_model.h"
#include "onnx_write.h"
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

/* A layer list tripletctl train wrote as ONNX: its training.arch on training.input, the trainer's seeded initial
 * weights and BatchNorm statistics as trn_init_params sets them (mean 0, variance 1), m's metadata (its `image`
 * preprocessing among them), as an ONNX model built in memory. */
static int init_like_onnx(const mdl_model *m, const trn_config *cfg, mdl_model **out, tr_err *err) {
    const char *as = mdl_meta(m, "training.arch"), *is = mdl_meta(m, "training.input");
    const char **kv = NULL;
    float *w = NULL, *state = NULL;
    uint8_t *buf = NULL;
    size_t len = 0, n = 0;
    uint64_t rng[4];
    nn_arch a;
    int c, h, wd, rc;
    if (as == NULL || is == NULL)
        return tr_seterr(err, TR_EINVAL, "model",
                         "an ONNX model has an untrained counterpart only when its metadata gives training.arch and "
                         "training.input (as tripletctl train writes them)");
    if (trn_parse_shape(is, &c, &h, &wd))
        return tr_seterr(err, TR_EFORMAT, "training.input", "metadata training.input \"%s\" is not CxHxW", is);
    if ((rc = nn_arch_parse(as, (nn_shape){c, h, wd}, &a, err))) return rc;
    size_t in = (size_t)c * (size_t)h * (size_t)wd, od = (size_t)nn_arch_out_dim(&a);
    if (in != m->input_dim || od != m->output_dim)
        return tr_seterr(err, TR_EDIM, "training.arch",
                         "metadata training.arch maps %zu inputs to %zu, the graph %zu to %zu", in, od, m->input_dim,
                         m->output_dim);
    w = malloc((a.n_params ? a.n_params : 1) * sizeof *w);
    state = malloc((a.n_state ? a.n_state : 1) * sizeof *state);
    kv = malloc((2 * m->n_meta + 1) * sizeof *kv);
    if (w == NULL || state == NULL || kv == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "arch", "cannot allocate %zu parameters", a.n_params);
        goto done;
    }
    rng_seed(cfg->seed, rng);
    trn_init_params(&a, w, state, rng);
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[2 * i], "image") != 0) kv[2 * n] = m->meta[2 * i], kv[2 * n + 1] = m->meta[2 * i + 1], n++;
    if ((rc = onx_write_mem(&a, w, a.n_state ? state : NULL, m->image.channels ? &m->image : NULL, kv, n, &buf, &len,
                            err)) == TR_OK)
        rc = onx_model_load_mem(buf, len, out, err);
done:
    free(buf);
    free(kv);
    free(state);
    free(w);
    return rc;
}

int trn_init_like(const mdl_model *m, const trn_config *cfg, mdl_model **out, tr_err *err) {
    const mlp_net *net = mdl_mlp(m);
    trn_config c = *cfg;
    *out = NULL;
    if (m->format == MDL_FMT_ONNX) return init_like_onnx(m, cfg, out, err);
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
