/* train_ckpt.c - training checkpoints: weights, BN statistics, Adam moments, sampler and PRNG state, config, in one
 * safetensors file. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"
#include "train_impl.h"

#define CK_FORMAT "tripletd-train-checkpoint-1"

static uint64_t fingerprint(const trn *t) {
    uint64_t h = 1469598103934665603ull;
    h = (h ^ t->n) * 1099511628211ull;
    h = (h ^ t->dim) * 1099511628211ull;
    for (size_t i = 0; i < t->n; i++) h = (h ^ (uint64_t)t->labels[i]) * 1099511628211ull;
    return h;
}

enum { CK_STEP, CK_EPOCH, CK_STEP_IN_EPOCH, CK_DATA_N, CK_DATA_DIM, CK_FPRINT, CK_N_STATE };
static const char *const ck_state_keys[CK_N_STATE] = {"train.step", "train.epoch", "train.step_in_epoch",
                                                      "data.rows",  "data.dim",    "data.fingerprint"};

int trn_checkpoint_save(const trn *t, const char *path, const char *note, tr_err *err) {
    const trn_config *c = &t->cfg;
    char vals[TRN_CFG_N + CK_N_STATE][512], lname[MDL_MAX_LAYERS][2][32];
    const char *meta[2 * (TRN_CFG_N + CK_N_STATE + 2)];
    st_wtensor ts[2 * MDL_MAX_LAYERS + 6];
    int64_t *pool = NULL, *cur = NULL, rng[4];
    size_t nm = 0, nt = 0;
    int rc;
    meta[nm++] = "format";
    meta[nm++] = CK_FORMAT;
    meta[nm++] = "note";
    meta[nm++] = note ? note : "";
    for (size_t i = 0; i < TRN_CFG_N; i++) {
        trn_cfg_format(c, i, vals[i], sizeof vals[i]);
        meta[nm++] = trn_cfg_key(i);
        meta[nm++] = vals[i];
    }
    uint64_t state[CK_N_STATE] = {(uint64_t)t->step, (uint64_t)t->epoch, (uint64_t)t->step_in_epoch, t->n, t->dim,
                                  fingerprint(t)};
    for (size_t i = 0; i < CK_N_STATE; i++) {
        snprintf(vals[TRN_CFG_N + i], sizeof vals[0], "%" PRIu64, state[i]);
        meta[nm++] = ck_state_keys[i];
        meta[nm++] = vals[TRN_CFG_N + i];
    }
    if (t->layers) {
        ts[nt++] = (st_wtensor){"params", ST_F32, 1, {(int64_t)t->n_params}, t->w};
        if (t->arch.n_state) ts[nt++] = (st_wtensor){"bn.state", ST_F32, 1, {(int64_t)t->arch.n_state}, t->state};
    } else
        for (int l = 0; l < c->n_layers; l++) {
            const nn_layer *L = trn_fc(t, l);
            snprintf(lname[l][0], sizeof lname[l][0], "%d.weight", 2 * l);
            snprintf(lname[l][1], sizeof lname[l][1], "%d.bias", 2 * l);
            ts[nt++] = (st_wtensor){lname[l][0], ST_F32, 2, {c->dims[l + 1], c->dims[l]}, t->w + L->w_off};
            ts[nt++] = (st_wtensor){lname[l][1], ST_F32, 1, {c->dims[l + 1]}, t->w + L->b_off};
        }
    pool = malloc(t->n * sizeof *pool);
    cur = malloc(t->n_classes * sizeof *cur);
    if (pool == NULL || cur == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, path, "cannot allocate the sampler state");
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++) pool[i] = (int64_t)t->pool[i];
    for (size_t i = 0; i < t->n_classes; i++) cur[i] = (int64_t)t->cursor[i];
    memcpy(rng, t->rng, sizeof rng); /* bit pattern of the uint64 state */
    ts[nt++] = (st_wtensor){"adam.m", ST_F32, 1, {(int64_t)t->n_params}, t->m};
    ts[nt++] = (st_wtensor){"adam.v", ST_F32, 1, {(int64_t)t->n_params}, t->v};
    ts[nt++] = (st_wtensor){"rng", ST_I64, 1, {4}, rng};
    ts[nt++] = (st_wtensor){"sampler.pool", ST_I64, 1, {(int64_t)t->n}, pool};
    ts[nt++] = (st_wtensor){"sampler.cursor", ST_I64, 1, {(int64_t)t->n_classes}, cur};
    ts[nt++] = (st_wtensor){"epoch.acc", ST_F64, 1, {TRN_ACC_N}, t->acc};
    rc = st_write(path, ts, nt, meta, nm / 2, err);
fail:
    free(pool);
    free(cur);
    return rc;
}

static int ck_open(const char *path, st_file **f, tr_err *err) {
    int rc = st_open(path, f, err);
    if (rc) return rc;
    const char *fmt = st_meta(*f, "format");
    if (fmt == NULL || strcmp(fmt, CK_FORMAT) != 0) {
        st_close(*f);
        *f = NULL;
        return tr_seterr(err, TR_EFORMAT, "format",
                         "%s is not a training checkpoint (metadata \"format\" is not \"%s\")", path, CK_FORMAT);
    }
    return TR_OK;
}

int trn_checkpoint_config(const char *path, trn_config *cfg, tr_err *err) {
    st_file *f = NULL;
    int rc = ck_open(path, &f, err);
    if (rc) return rc;
    trn_config_default(cfg);
    for (size_t i = 0; i < TRN_CFG_N; i++) {
        const char *v = st_meta(f, trn_cfg_key(i));
        if (v == NULL && i >= TRN_CFG_REQUIRED) continue;
        if (v == NULL) {
            rc =
                tr_seterr(err, TR_EFORMAT, trn_cfg_key(i), "checkpoint %s lacks metadata \"%s\"", path, trn_cfg_key(i));
            goto fail;
        }
        if ((rc = trn_cfg_parse(cfg, i, v, err))) goto fail;
    }
    rc = trn_config_check(cfg, err);
fail:
    st_close(f);
    return rc;
}

/* Copy tensor name (dtype, nelem as expected) raw into dst. */
static int ck_read(const st_file *f, const char *name, st_dtype dt, size_t nelem, void *dst, tr_err *err) {
    const st_tensor *te = st_find(f, name);
    if (te == NULL) return tr_seterr(err, TR_EFORMAT, name, "checkpoint lacks tensor \"%s\"", name);
    if (te->dtype != dt || te->nelem != nelem)
        return tr_seterr(err, TR_EFORMAT, name,
                         "checkpoint tensor \"%s\" is %s with %zu elements; expected %s with %zu", name,
                         st_dtype_name(te->dtype), te->nelem, st_dtype_name(dt), nelem);
    memcpy(dst, st_data(f, te), nelem * st_dtype_size(dt));
    return TR_OK;
}

/* The numeric state keys (step, epoch, data shape and fingerprint), checked
 * against the trainer's data. */
static int read_state(const st_file *f, const trn *t, const char *path, uint64_t *state, tr_err *err) {
    for (size_t i = 0; i < CK_N_STATE; i++) {
        const char *v = st_meta(f, ck_state_keys[i]);
        char *end;
        if (v == NULL || *v == '\0')
            return tr_seterr(err, TR_EFORMAT, ck_state_keys[i], "checkpoint %s lacks metadata \"%s\"", path,
                             ck_state_keys[i]);
        state[i] = strtoull(v, &end, 10);
        if (*end != '\0')
            return tr_seterr(err, TR_EFORMAT, ck_state_keys[i], "checkpoint metadata \"%s\" is not a number: \"%s\"",
                             ck_state_keys[i], v);
    }
    if (state[CK_DATA_N] != t->n || state[CK_DATA_DIM] != t->dim || state[CK_FPRINT] != fingerprint(t))
        return tr_seterr(err, TR_EINVAL, "data",
                         "checkpoint %s was made on other data (%" PRIu64 " rows x %" PRIu64
                         " features, labels fingerprint %" PRIu64 "; now %zu x %zu, %" PRIu64 ")",
                         path, state[CK_DATA_N], state[CK_DATA_DIM], state[CK_FPRINT], t->n, t->dim, fingerprint(t));
    return TR_OK;
}

/* The weights (a layer list's flat parameters and BN state, or the MLP's
 * "{2i}.weight"/"{2i}.bias") and Adam's moments. */
static int read_params(const st_file *f, trn *t, tr_err *err) {
    char name[32];
    int rc;
    if (t->layers) {
        if ((rc = ck_read(f, "params", ST_F32, t->n_params, t->w, err)) ||
            (t->arch.n_state && (rc = ck_read(f, "bn.state", ST_F32, t->arch.n_state, t->state, err))))
            return rc;
    } else
        for (int l = 0; l < t->cfg.n_layers; l++) {
            const nn_layer *L = trn_fc(t, l);
            size_t in = (size_t)t->cfg.dims[l], o = (size_t)t->cfg.dims[l + 1];
            snprintf(name, sizeof name, "%d.weight", 2 * l);
            if ((rc = ck_read(f, name, ST_F32, in * o, t->w + L->w_off, err))) return rc;
            snprintf(name, sizeof name, "%d.bias", 2 * l);
            if ((rc = ck_read(f, name, ST_F32, o, t->w + L->b_off, err))) return rc;
        }
    if ((rc = ck_read(f, "adam.m", ST_F32, t->n_params, t->m, err)) ||
        (rc = ck_read(f, "adam.v", ST_F32, t->n_params, t->v, err)))
        return rc;
    return TR_OK;
}

/* The sampler (pool, cursors, PRNG) and the epoch's accumulators; the pool
 * must stay a per-class permutation and each cursor inside its class. */
static int read_sampler(const st_file *f, trn *t, const char *path, tr_err *err) {
    int64_t *pool = malloc(t->n * sizeof *pool), *cur = malloc(t->n_classes * sizeof *cur);
    uint64_t rng[4];
    int rc;
    if (pool == NULL || cur == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, path, "cannot allocate the sampler state");
        goto done;
    }
    if ((rc = ck_read(f, "rng", ST_I64, 4, rng, err)) || (rc = ck_read(f, "sampler.pool", ST_I64, t->n, pool, err)) ||
        (rc = ck_read(f, "sampler.cursor", ST_I64, t->n_classes, cur, err)) ||
        (rc = ck_read(f, "epoch.acc", ST_F64, TRN_ACC_N, t->acc, err)))
        goto done;
    for (size_t c = 0; c < t->n_classes; c++) {
        for (size_t i = t->cls_off[c]; i < t->cls_off[c + 1]; i++)
            if (pool[i] < 0 || (size_t)pool[i] >= t->n || t->labels[pool[i]] != t->cls_label[c]) {
                rc = tr_seterr(err, TR_EFORMAT, "sampler.pool",
                               "checkpoint sampler.pool[%zu] = %" PRId64 " is not a row of class %" PRId64, i, pool[i],
                               t->cls_label[c]);
                goto done;
            }
        if (cur[c] < (int64_t)t->cls_off[c] || cur[c] > (int64_t)t->cls_off[c + 1]) {
            rc = tr_seterr(err, TR_EFORMAT, "sampler.cursor",
                           "checkpoint sampler.cursor[%zu] = %" PRId64 " is outside its class", c, cur[c]);
            goto done;
        }
    }
    for (size_t i = 0; i < t->n; i++) t->pool[i] = (size_t)pool[i];
    for (size_t c = 0; c < t->n_classes; c++) t->cursor[c] = (size_t)cur[c];
    memcpy(t->rng, rng, sizeof rng);
done:
    free(pool);
    free(cur);
    return rc;
}

int trn_checkpoint_load(trn *t, const char *path, char **note, tr_err *err) {
    st_file *f = NULL;
    uint64_t state[CK_N_STATE];
    int rc = ck_open(path, &f, err);
    if (note) *note = NULL;
    if (rc) return rc;
    if ((rc = read_state(f, t, path, state, err)) || (rc = read_params(f, t, err)) ||
        (rc = read_sampler(f, t, path, err)))
        goto done;
    t->step = (int64_t)state[CK_STEP];
    t->epoch = (int)state[CK_EPOCH];
    t->step_in_epoch = (int)state[CK_STEP_IN_EPOCH];
    if (note) {
        const char *s = st_meta(f, "note");
        if ((*note = strdup(s ? s : "")) == NULL) rc = tr_seterr(err, TR_ENOMEM, "note", "out of memory");
    }
done:
    st_close(f);
    return rc;
}
