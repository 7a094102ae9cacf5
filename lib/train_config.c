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
    c->lr_schedule = TRN_LR_CONSTANT;
    c->lr_gamma = 0.1;
}

int trn_parse_arch(const char *s, trn_config *cfg, tr_err *err) {
    int dims[MDL_MAX_LAYERS + 1], n = 0;
    const char *p = s;
    if (!(*s >= '0' && *s <= '9')) {
        size_t len = strlen(s);
        if (len == 0)
            return tr_seterr(err, TR_EINVAL, "arch", "arch is empty: expected a number (784-256-128) or a layer list");
        if (len >= sizeof cfg->layers)
            return tr_seterr(err, TR_ELIMIT, "arch", "arch layer list is longer than %zu bytes",
                             sizeof cfg->layers - 1);
        memcpy(cfg->layers, s, len + 1);
        return TR_OK;
    }
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
    cfg->layers[0] = '\0';
    return TR_OK;
}

void trn_format_arch(const trn_config *cfg, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    if (cfg->layers[0]) {
        snprintf(buf, len, "%s", cfg->layers);
        return;
    }
    for (int i = 0; i <= cfg->n_layers && o < len; i++) {
        int k = snprintf(buf + o, len - o, i ? "-%d" : "%d", cfg->dims[i]);
        if (k < 0) break;
        o += (size_t)k;
    }
}

int trn_config_arch(const trn_config *c, nn_arch *a, tr_err *err) {
    if (c->layers[0]) return nn_arch_parse(c->layers, (nn_shape){c->input_c, c->input_h, c->input_w}, a, err);
    /* the MLP form: fc,act,fc,... (identity: no activation layers) */
    char list[MDL_MAX_LAYERS * 16];
    size_t o = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const char *act = l && c->act != MDL_ACT_IDENTITY ? mdl_act_name(c->act) : NULL;
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s%sfc%d", l ? "," : "", act ? act : "", act ? "," : "",
                              c->dims[l + 1]);
    }
    return nn_arch_parse(list, (nn_shape){c->dims[0], 1, 1}, a, err);
}

int trn_parse_shape(const char *s, int *c, int *h, int *w) {
    int v[3] = {0, 0, 0};
    char *end;
    for (int i = 0; i < 3; i++) {
        long x = strtol(s, &end, 10);
        if (end == s || x < 0 || x > 65536 || *end != (i < 2 ? 'x' : '\0')) return -1;
        v[i] = (int)x;
        s = end + 1;
    }
    *c = v[0];
    *h = v[1];
    *w = v[2];
    return 0;
}

int trn_parse_augment(const char *s, trn_config *cfg, tr_err *err) {
    int crop = 0, flip = 0;
    if (strcmp(s, "none") != 0 && *s) {
        const char *p = s;
        for (;;) {
            size_t len = strcspn(p, ",");
            char *end;
            if (len == 4 && strncmp(p, "flip", 4) == 0)
                flip = 1;
            else if (len > 4 && strncmp(p, "crop", 4) == 0 && p[4] >= '0' && p[4] <= '9' &&
                     (crop = (int)strtol(p + 4, &end, 10), end == p + len) && crop >= 1 && crop <= 64)
                ;
            else
                return tr_seterr(
                    err, TR_EINVAL, "augment",
                    "augment \"%s\": unknown part \"%.*s\" (crop<pixels> with pixels 1..64, flip, or none)", s,
                    (int)len, p);
            if (p[len] == '\0') break;
            p += len + 1;
        }
    }
    cfg->aug_crop = crop;
    cfg->aug_flip = flip;
    return TR_OK;
}

void trn_format_augment(const trn_config *cfg, char *buf, size_t len) {
    if (!cfg->aug_crop && !cfg->aug_flip)
        snprintf(buf, len, "none");
    else if (cfg->aug_crop)
        snprintf(buf, len, "crop%d%s", cfg->aug_crop, cfg->aug_flip ? ",flip" : "");
    else
        snprintf(buf, len, "flip");
}

int trn_parse_lr_schedule(const char *s, trn_config *cfg, tr_err *err) {
    char *end;
    if (strcmp(s, "constant") == 0 || strcmp(s, "cosine") == 0) {
        cfg->lr_schedule = s[1] == 'o' && s[2] == 's' ? TRN_LR_COSINE : TRN_LR_CONSTANT;
        return TR_OK;
    }
    if (strncmp(s, "step", 4) != 0 || (s[4] != '\0' && s[4] != ':'))
        return tr_seterr(err, TR_EINVAL, "lr-schedule",
                         "lr schedule \"%s\" is not constant, cosine or step[:every[:gamma]]", s);
    int every = 0;
    double gamma = 0.1;
    const char *p = s + 4;
    if (*p == ':') {
        long v = strtol(p + 1, &end, 10);
        if (end == p + 1 || v < 1 || v > 1000000 || (*end != '\0' && *end != ':'))
            return tr_seterr(err, TR_EINVAL, "lr-schedule", "lr schedule \"%s\": every must be 1..1000000 epochs", s);
        every = (int)v;
        p = end;
        if (*p == ':') {
            gamma = strtod(p + 1, &end);
            if (end == p + 1 || *end != '\0' || !(gamma > 0 && gamma <= 1))
                return tr_seterr(err, TR_EINVAL, "lr-schedule", "lr schedule \"%s\": gamma must be in (0, 1]", s);
        }
    }
    cfg->lr_schedule = TRN_LR_STEP;
    cfg->lr_step_every = every;
    cfg->lr_gamma = gamma;
    return TR_OK;
}

/* The form trn_parse_lr_schedule reads back to the same values: "step" for the default period (every 0, which
 * the syntax gives only with the default gamma), gamma in the fewest digits that round-trip. */
void trn_format_lr_schedule(const trn_config *cfg, char *buf, size_t len) {
    if (cfg->lr_schedule == TRN_LR_STEP && cfg->lr_step_every == 0 && cfg->lr_gamma == 0.1) {
        snprintf(buf, len, "step");
    } else if (cfg->lr_schedule == TRN_LR_STEP) {
        char g[32];
        snprintf(buf, len, "step:%d:%s", cfg->lr_step_every, tr_shortest(cfg->lr_gamma, 0, g, sizeof g));
    } else
        snprintf(buf, len, "%s", cfg->lr_schedule == TRN_LR_COSINE ? "cosine" : "constant");
}

double trn_lr_at(const trn_config *c, int64_t step, int epoch, int steps_per_epoch) {
    if (c->lr_schedule == TRN_LR_COSINE) {
        double total = (double)c->epochs * (double)steps_per_epoch;
        double f = total > 0 && (double)step < total ? (double)step / total : 1.0;
        return c->lr * 0.5 * (1 + cos(3.14159265358979323846 * f));
    }
    if (c->lr_schedule == TRN_LR_STEP) {
        int every = c->lr_step_every ? c->lr_step_every : (c->epochs / 3 > 0 ? c->epochs / 3 : 1);
        return c->lr * pow(c->lr_gamma, (double)(epoch / every));
    }
    return c->lr;
}

void trn_recipe(const trn_config *c, char *buf, size_t len) {
    char arch[TRN_LAYERS_MAX + 64], aug[64], sched[64], net[TRN_LAYERS_MAX + 256];
    trn_format_arch(c, arch, sizeof arch);
    trn_format_augment(c, aug, sizeof aug);
    trn_format_lr_schedule(c, sched, sizeof sched);
    if (c->layers[0])
        snprintf(net, sizeof net, "network %s on %dx%dx%d, augment %s", arch, c->input_c, c->input_h, c->input_w, aug);
    else
        snprintf(net, sizeof net, "MLP %s %s", arch, mdl_act_name(c->act));
    snprintf(buf, len,
             "tripletctl train: %s%s, %s, %s loss%s%s, margin %g, PK batches %d classes x %d samples, "
             "%d epochs x %d steps, Adam lr %g (schedule %s) betas (%g, %g) eps %g weight decay %g, seed %" PRIu64
             ", %d threads, inputs %s",
             net, c->normalize ? ", L2-normalised" : "", dist_name(c->metric), loss_name(c->loss),
             is_pair_loss(c->loss) ? " on all in-batch pairs" : ", mining ",
             is_pair_loss(c->loss) ? "" : mine_name(c->mining), c->margin, c->classes_per_batch, c->samples_per_class,
             c->epochs, c->steps_per_epoch, c->lr, sched, c->beta1, c->beta2, c->adam_eps, c->weight_decay, c->seed,
             c->threads, c->layers[0] ? "x/255 then (x - mean) / std per channel from the data" : "");
    if (!c->layers[0]) {
        size_t o = strlen(buf);
        snprintf(buf + o, len > o ? len - o : 0, "(x - %g) * %g", c->input_mean, c->input_scale);
    }
}

int trn_config_check(const trn_config *c, tr_err *err) {
    if (c->layers[0]) {
        nn_arch a;
        int rc = c->input_c ? nn_arch_parse(c->layers, (nn_shape){c->input_c, c->input_h, c->input_w}, &a, err) : 0;
        if (rc) return rc;
        if (c->input_c && (c->aug_crop || c->aug_flip) && c->input_h * c->input_w <= 1)
            return tr_seterr(err, TR_EINVAL, "augment", "augment needs an image input, got %dx%dx%d", c->input_c,
                             c->input_h, c->input_w);
    } else if (c->aug_crop || c->aug_flip)
        return tr_seterr(err, TR_EINVAL, "augment", "augment needs a layer list over an image input (--arch conv...)");
    if (c->lr_schedule == TRN_LR_STEP && !(c->lr_gamma > 0 && c->lr_gamma <= 1))
        return tr_seterr(err, TR_EINVAL, "lr-schedule", "lr schedule gamma %g must be in (0, 1]", c->lr_gamma);
    if (!c->layers[0] && (c->n_layers < 1 || c->n_layers > MDL_MAX_LAYERS))
        return tr_seterr(err, TR_EINVAL, "arch", "arch has %d layers; need 1..%d", c->n_layers, MDL_MAX_LAYERS);
    for (int i = 0; !c->layers[0] && i <= c->n_layers; i++)
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

typedef enum {
    CF_INT,
    CF_DBL,
    CF_U64,
    CF_ACT,
    CF_METRIC,
    CF_LOSS,
    CF_MINE,
    CF_ARCH,
    CF_SHAPE,
    CF_AUG,
    CF_SCHED
} cf_type;
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
    /* optional from here on (TRN_CFG_REQUIRED) */
    {"cfg.input", CF_SHAPE, 0},
    {"cfg.augment", CF_AUG, 0},
    {"cfg.lr_schedule", CF_SCHED, 0},
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
    case CF_SHAPE:
        snprintf(buf, len, "%dx%dx%d", c->input_c, c->input_h, c->input_w);
        break;
    case CF_AUG:
        trn_format_augment(c, buf, len);
        break;
    case CF_SCHED:
        trn_format_lr_schedule(c, buf, len);
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
    case CF_SHAPE:
        bad = trn_parse_shape(s, &c->input_c, &c->input_h, &c->input_w) != 0;
        break;
    case CF_AUG:
        return trn_parse_augment(s, c, err);
    case CF_SCHED:
        return trn_parse_lr_schedule(s, c, err);
    }
    if (bad)
        return tr_seterr(err, TR_EFORMAT, cfg_fields[i].key, "checkpoint metadata \"%s\" has a bad value \"%s\"",
                         cfg_fields[i].key, s);
    return TR_OK;
}
