/* train_config.c - training options: defaults, checks, the architecture string, and their checkpoint keys. */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train_impl.h"

void trn_config_default(trn_config *c) {
    memset(c, 0, sizeof *c);
    c->dims[0] = 784;
    c->dims[1] = 256;
    c->dims[2] = 128;
    c->n_layers = 2;
    c->act = MDL_ACT_RELU;
    c->normalize = 1;
    c->metric = DIST_SQEUCLIDEAN;
    c->loss = LOSS_TRIPLET;
    c->mining = MINE_SEMI_HARD;
    c->margin = 0.2;
    c->classes_per_batch = 10;
    c->samples_per_class = 16;
    c->epochs = 10;
    c->steps_per_epoch = 0;
    c->lr = 1e-3;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->weight_decay = 0;
    c->seed = 1;
    c->threads = 1;
    c->input_mean = 0;
    c->input_scale = 0;
    c->collapse_eps = 1e-3;
}

int trn_parse_arch(const char *s, trn_config *cfg, tr_err *err) {
    int dims[MDL_MAX_LAYERS + 1], n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9')
            return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": expected a number at \"%s\"", s, p);
        long v = strtol(p, &end, 10);
        if (v < 1 || v > MDL_MAX_DIM)
            return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": width %ld is not in 1..%d", s, v, MDL_MAX_DIM);
        if (n > MDL_MAX_LAYERS)
            return tr_seterr(err, TR_ELIMIT, "arch", "arch \"%s\": more than %d layers", s, MDL_MAX_LAYERS);
        dims[n++] = (int)v;
        if (*end == '\0') break;
        if (*end != '-')
            return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": unexpected \"%c\" (widths are joined by '-')", s,
                             *end);
        p = end + 1;
    }
    if (n < 2) return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": needs at least an input and an output width", s);
    memcpy(cfg->dims, dims, (size_t)n * sizeof *dims);
    cfg->n_layers = n - 1;
    return TR_OK;
}

void trn_format_arch(const trn_config *cfg, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i <= cfg->n_layers && o < len; i++) {
        int k = snprintf(buf + o, len - o, i ? "-%d" : "%d", cfg->dims[i]);
        if (k < 0) break;
        o += (size_t)k;
    }
}

void trn_recipe(const trn_config *c, char *buf, size_t len) {
    char arch[512];
    trn_format_arch(c, arch, sizeof arch);
    snprintf(buf, len,
             "tripletctl train: MLP %s %s%s, %s, %s loss%s%s, margin %g, PK batches %d classes x %d samples, "
             "%d epochs x %d steps, Adam lr %g betas (%g, %g) eps %g weight decay %g, seed %" PRIu64 ", %d threads, "
             "inputs (x - %g) * %g",
             arch, mdl_act_name(c->act), c->normalize ? ", L2-normalised" : "", dist_name(c->metric),
             loss_name(c->loss), is_pair_loss(c->loss) ? " on all in-batch pairs" : ", mining ",
             is_pair_loss(c->loss) ? "" : mine_name(c->mining), c->margin, c->classes_per_batch, c->samples_per_class,
             c->epochs, c->steps_per_epoch, c->lr, c->beta1, c->beta2, c->adam_eps, c->weight_decay, c->seed,
             c->threads, c->input_mean, c->input_scale);
}

int trn_config_check(const trn_config *c, tr_err *err) {
    if (c->n_layers < 1 || c->n_layers > MDL_MAX_LAYERS)
        return tr_seterr(err, TR_EINVAL, "arch", "arch has %d layers; need 1..%d", c->n_layers, MDL_MAX_LAYERS);
    for (int i = 0; i <= c->n_layers; i++)
        if (c->dims[i] < 1 || c->dims[i] > MDL_MAX_DIM)
            return tr_seterr(err, TR_EINVAL, "arch", "arch width %d at position %d is not in 1..%d", c->dims[i], i,
                             MDL_MAX_DIM);
    if ((unsigned)c->act >= MDL_ACT_COUNT)
        return tr_seterr(err, TR_EINVAL, "activation", "unknown activation %d", (int)c->act);
    if ((unsigned)c->metric >= DIST_COUNT)
        return tr_seterr(err, TR_EINVAL, "metric", "unknown metric %d", (int)c->metric);
    if (c->loss != LOSS_TRIPLET && c->loss != LOSS_TRIPLET_SOFT && !is_pair_loss(c->loss))
        return tr_seterr(
            err, TR_EINVAL, "loss",
            "loss \"%s\" cannot be trained here (use triplet, triplet-soft, contrastive or contrastive-squared)",
            loss_name(c->loss));
    if ((unsigned)c->mining >= MINE_COUNT)
        return tr_seterr(err, TR_EINVAL, "mining", "unknown mining %d", (int)c->mining);
    if (!isfinite(c->margin) || c->margin < 0)
        return tr_seterr(err, TR_EINVAL, "margin", "margin %g must be finite and >= 0", c->margin);
    if (c->classes_per_batch < 2)
        return tr_seterr(err, TR_EINVAL, "classes-per-batch",
                         "classes-per-batch %d: need at least 2 classes for negatives", c->classes_per_batch);
    if (c->samples_per_class < 2)
        return tr_seterr(err, TR_EINVAL, "samples-per-class", "samples-per-class %d: need at least 2 for positives",
                         c->samples_per_class);
    if ((int64_t)c->classes_per_batch * c->samples_per_class > TRN_MAX_BATCH)
        return tr_seterr(err, TR_ELIMIT, "classes-per-batch", "batch of %d x %d is over %d rows", c->classes_per_batch,
                         c->samples_per_class, TRN_MAX_BATCH);
    if (c->epochs < 0) return tr_seterr(err, TR_EINVAL, "epochs", "epochs %d must be >= 0", c->epochs);
    if (c->steps_per_epoch < 0)
        return tr_seterr(err, TR_EINVAL, "steps-per-epoch", "steps-per-epoch %d must be >= 0", c->steps_per_epoch);
    if (!(c->lr > 0) || !isfinite(c->lr)) return tr_seterr(err, TR_EINVAL, "lr", "lr %g must be > 0", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return tr_seterr(err, TR_EINVAL, "beta1", "beta1 %g must be in [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return tr_seterr(err, TR_EINVAL, "beta2", "beta2 %g must be in [0, 1)", c->beta2);
    if (!(c->adam_eps > 0)) return tr_seterr(err, TR_EINVAL, "adam-eps", "adam eps %g must be > 0", c->adam_eps);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return tr_seterr(err, TR_EINVAL, "weight-decay", "weight decay %g must be finite and >= 0", c->weight_decay);
    if (c->threads < 1 || c->threads > 256)
        return tr_seterr(err, TR_EINVAL, "threads", "threads %d is not in 1..256", c->threads);
    if (!isfinite(c->input_mean)) return tr_seterr(err, TR_EINVAL, "input-mean", "input mean must be finite");
    if (!(c->input_scale >= 0) || !isfinite(c->input_scale))
        return tr_seterr(err, TR_EINVAL, "input-scale", "input scale %g must be finite and >= 0 (0 = auto)",
                         c->input_scale);
    return TR_OK;
}

/* ---- the config as checkpoint metadata ---- */

typedef enum { CF_INT, CF_DBL, CF_U64, CF_ACT, CF_METRIC, CF_LOSS, CF_MINE, CF_ARCH } cf_type;
static const struct {
    const char *key;
    cf_type type;
    size_t off;
} cfg_fields[] = {
    {"cfg.arch", CF_ARCH, 0},
    {"cfg.activation", CF_ACT, offsetof(trn_config, act)},
    {"cfg.normalize", CF_INT, offsetof(trn_config, normalize)},
    {"cfg.metric", CF_METRIC, offsetof(trn_config, metric)},
    {"cfg.loss", CF_LOSS, offsetof(trn_config, loss)},
    {"cfg.mining", CF_MINE, offsetof(trn_config, mining)},
    {"cfg.margin", CF_DBL, offsetof(trn_config, margin)},
    {"cfg.classes_per_batch", CF_INT, offsetof(trn_config, classes_per_batch)},
    {"cfg.samples_per_class", CF_INT, offsetof(trn_config, samples_per_class)},
    {"cfg.epochs", CF_INT, offsetof(trn_config, epochs)},
    {"cfg.steps_per_epoch", CF_INT, offsetof(trn_config, steps_per_epoch)},
    {"cfg.lr", CF_DBL, offsetof(trn_config, lr)},
    {"cfg.beta1", CF_DBL, offsetof(trn_config, beta1)},
    {"cfg.beta2", CF_DBL, offsetof(trn_config, beta2)},
    {"cfg.adam_eps", CF_DBL, offsetof(trn_config, adam_eps)},
    {"cfg.weight_decay", CF_DBL, offsetof(trn_config, weight_decay)},
    {"cfg.seed", CF_U64, offsetof(trn_config, seed)},
    {"cfg.threads", CF_INT, offsetof(trn_config, threads)},
    {"cfg.input_mean", CF_DBL, offsetof(trn_config, input_mean)},
    {"cfg.input_scale", CF_DBL, offsetof(trn_config, input_scale)},
    {"cfg.collapse_eps", CF_DBL, offsetof(trn_config, collapse_eps)},
};
_Static_assert(sizeof cfg_fields / sizeof cfg_fields[0] == TRN_CFG_N, "TRN_CFG_N counts the checkpoint keys");

const char *trn_cfg_key(size_t i) {
    return cfg_fields[i].key;
}

void trn_cfg_format(const trn_config *c, size_t i, char *buf, size_t len) {
    const char *p = (const char *)c + cfg_fields[i].off;
    switch (cfg_fields[i].type) {
    case CF_INT:
        snprintf(buf, len, "%d", *(const int *)p);
        break;
    case CF_DBL:
        snprintf(buf, len, "%.17g", *(const double *)p);
        break;
    case CF_U64:
        snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p);
        break;
    case CF_ACT:
        snprintf(buf, len, "%s", mdl_act_name(*(const mdl_act *)p));
        break;
    case CF_METRIC:
        snprintf(buf, len, "%s", dist_name(*(const dist_metric *)p));
        break;
    case CF_LOSS:
        snprintf(buf, len, "%s", loss_name(*(const loss_kind *)p));
        break;
    case CF_MINE:
        snprintf(buf, len, "%s", mine_name(*(const mine_strategy *)p));
        break;
    case CF_ARCH:
        trn_format_arch(c, buf, len);
        break;
    }
}

int trn_cfg_parse(trn_config *c, size_t i, const char *s, tr_err *err) {
    char *p = (char *)c + cfg_fields[i].off, *end = NULL;
    int bad = 0;
    switch (cfg_fields[i].type) {
    case CF_INT: {
        long v = strtol(s, &end, 10);
        bad = *s == '\0' || *end != '\0' || v < INT32_MIN || v > INT32_MAX;
        *(int *)p = (int)v;
        break;
    }
    case CF_DBL:
        *(double *)p = strtod(s, &end);
        bad = *s == '\0' || *end != '\0';
        break;
    case CF_U64:
        *(uint64_t *)p = strtoull(s, &end, 10);
        bad = *s == '\0' || *end != '\0';
        break;
    case CF_ACT:
        bad = mdl_act_parse(s, (mdl_act *)p) != 0;
        break;
    case CF_METRIC:
        bad = dist_parse(s, (dist_metric *)p) != 0;
        break;
    case CF_LOSS:
        bad = loss_parse(s, (loss_kind *)p) != 0;
        break;
    case CF_MINE:
        bad = mine_parse(s, (mine_strategy *)p) != 0;
        break;
    case CF_ARCH:
        return trn_parse_arch(s, c, err);
    }
    if (bad)
        return tr_seterr(err, TR_EFORMAT, cfg_fields[i].key, "checkpoint metadata \"%s\" has a bad value \"%s\"",
                         cfg_fields[i].key, s);
    return TR_OK;
}
