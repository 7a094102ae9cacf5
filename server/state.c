/* state.c - the loaded model + gallery + effective defaults as one refcounted snapshot; atomic reload. */
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state.h"

#include "batcher.h"
#include "log.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;   /* guards g_current */
static pthread_mutex_t g_reload = PTHREAD_MUTEX_INITIALIZER; /* one reload at a time */
static srv_state *g_current;
static int g_generation;

static void state_free(srv_state *s) {
    if (!s) return;
    bat_free(s->batcher);
    mdl_free(s->model);
    gal_free(s->gallery);
    free(s->model_path);
    free(s->gallery_path);
    free(s);
}

/* err names the request field that chose the refused file ("model" or "gallery", as the reload route takes
 * them) and its message the file: "<field> <path>: <the loader's message><tail>", without the prefix when the
 * loader's message names the file already; what the loader blamed inside the file stays in the message. */
static void blame_file(tr_err *err, const char *field, const char *path, const char *tail) {
    snprintf(err->field, sizeof err->field, "%s", field);
    char msg[sizeof err->msg];
    memcpy(msg, err->msg, sizeof msg);
    size_t k = strstr(msg, path) ? 0 : (size_t)snprintf(err->msg, sizeof err->msg, "%s %.200s: ", field, path),
           t = strlen(tail);
    size_t n = strnlen(msg, sizeof err->msg - k - t - 1);
    memcpy(err->msg + k, msg, n);
    memcpy(err->msg + k + n, tail, t + 1);
}

int srv_state_load(const srv_config *cfg, const char *model_path, const char *gallery_path, srv_state **out,
                   tr_err *err) {
    srv_state *s = calloc(1, sizeof *s);
    int rc = TR_ENOMEM;
    *out = NULL;
    if (!s) {
        tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    s->model_path = strdup(model_path);
    s->gallery_path = gallery_path ? strdup(gallery_path) : NULL;
    if (!s->model_path || (gallery_path && !s->gallery_path)) {
        tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    if ((rc = mdl_load(model_path, &s->model, err)) != TR_OK) {
        blame_file(err, "model", model_path, "");
        goto fail;
    }
    if (gallery_path) {
        if ((rc = gal_load(gallery_path, &s->gallery, err)) != TR_OK) {
            blame_file(err, "gallery", gallery_path, "");
            goto fail;
        }
        rc = gal_check_model(s->gallery, s->model->sha256, (size_t)mdl_output_dim(s->model),
                             cfg->allow_gallery_mismatch, err);
        if (rc != TR_OK) {
            blame_file(err, "gallery", gallery_path, " (--allow-gallery-mismatch serves it anyway)");
            goto fail;
        }
    }
    if ((rc = bat_new(s->model, cfg->batch_max_rows, cfg->batch_leaders, &s->batcher, err)) != TR_OK) goto fail;
    const mdl_model *m = s->model;
    s->metric = cfg->has_metric ? cfg->metric_v : m->metric;
    s->triplet_loss = (m->loss == LOSS_TRIPLET || m->loss == LOSS_TRIPLET_SOFT) ? m->loss : LOSS_TRIPLET;
    s->pair_loss = (m->loss == LOSS_CONTRASTIVE || m->loss == LOSS_CONTRASTIVE_SQUARED) ? m->loss : LOSS_CONTRASTIVE;
    if (cfg->has_loss) {
        if (cfg->loss_v == LOSS_TRIPLET || cfg->loss_v == LOSS_TRIPLET_SOFT)
            s->triplet_loss = cfg->loss_v;
        else
            s->pair_loss = cfg->loss_v;
    }
    s->margin = isnan(cfg->margin) ? m->margin : cfg->margin;
    if (!isfinite(s->margin) || s->margin < 0) s->margin = 0.2;
    s->loaded_at = time(NULL);
    struct tm tm;
    gmtime_r(&s->loaded_at, &tm);
    strftime(s->loaded_at_iso, sizeof s->loaded_at_iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *note = s->gallery ? gal_lease_note(s->gallery) : NULL;
    if (note)
        srv_log_msg("warn",
                    "gallery %s: %s: replace it by rename while it is served (rewritten in place, searches read "
                    "the new rows against the old norms; truncated, they end the server with SIGBUS)",
                    gallery_path, note);
    atomic_store(&s->refs, 1);
    *out = s;
    malloc_trim(0); /* the loaders' file buffers and parse trees, freed: back to the system, not kept resident */
    return TR_OK;
fail:
    state_free(s);
    malloc_trim(0);
    return rc;
}

void srv_state_ref(srv_state *s) {
    if (s) atomic_fetch_add(&s->refs, 1);
}

void srv_state_unref(srv_state *s) {
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) state_free(s);
}

void srv_state_install(srv_state *s) {
    pthread_mutex_lock(&g_lock);
    srv_state *old = g_current;
    if (s) s->generation = ++g_generation;
    g_current = s;
    pthread_mutex_unlock(&g_lock);
    srv_state_unref(old);
}

srv_state *srv_state_acquire(void) {
    pthread_mutex_lock(&g_lock);
    srv_state *s = g_current;
    srv_state_ref(s);
    pthread_mutex_unlock(&g_lock);
    return s;
}

int srv_state_reload(const srv_config *cfg, const char *model_path, const char *gallery_path, tr_err *err) {
    srv_state *cur = NULL, *next = NULL;
    int rc;
    pthread_mutex_lock(&g_reload);
    cur = srv_state_acquire();
    if (!model_path) model_path = cur ? cur->model_path : cfg->model;
    if (!gallery_path) gallery_path = cur ? cur->gallery_path : cfg->gallery;
    rc = srv_state_load(cfg, model_path, gallery_path, &next, err);
    if (rc == TR_OK) srv_state_install(next);
    srv_state_unref(cur);
    pthread_mutex_unlock(&g_reload);
    return rc;
}
