/* state.h - the loaded model and gallery as one refcounted snapshot; the current one; reload (state.c). */
#ifndef SRV_STATE_H
#define SRV_STATE_H

#include <time.h>

#include "config.h"
#include "dist.h"
#include "gallery.h"
#include "loss.h"
#include "model.h"
#include "tr_err.h"

/* The loaded model and gallery plus the effective scoring defaults. Never
 * changes after srv_state_load; shared by refcount between requests. */
typedef struct srv_state {
    mdl_model *model;
    gal_gallery *gallery; /* or NULL */
    char *model_path;
    char *gallery_path;     /* or NULL */
    dist_metric metric;     /* flag, then model metadata, then sqeuclidean */
    loss_kind triplet_loss; /* triplet | triplet-soft */
    loss_kind pair_loss;    /* contrastive | contrastive-squared */
    double margin;
    time_t loaded_at;
    char loaded_at_iso[32];      /* 2026-01-02T03:04:05Z */
    int generation;              /* 1 for the first load, +1 per reload */
    _Atomic int refs;            /* state.c */
    struct bat_batcher *batcher; /* batches concurrent forwards on model (NULL: off) */
} srv_state;

/* Load model_path (and gallery_path when non-NULL) into a new snapshot with
 * one reference. Every refusal names the file and the problem; err->field
 * is "model" or "gallery", the file refused. */
int srv_state_load(const srv_config *cfg, const char *model_path, const char *gallery_path, srv_state **out,
                   tr_err *err);
void srv_state_ref(srv_state *s);
void srv_state_unref(srv_state *s); /* frees at zero; NULL is a no-op */

/* The current snapshot: install replaces it (taking over the caller's
 * reference); acquire returns it with a new reference (or NULL). */
void srv_state_install(srv_state *s);
srv_state *srv_state_acquire(void);
/* Reload from model_path/gallery_path (NULL: the current snapshot's files)
 * and swap; on failure the current snapshot stays and err says why. The
 * caller counts the result (srv_metrics_reload). */
int srv_state_reload(const srv_config *cfg, const char *model_path, const char *gallery_path, tr_err *err);

#endif
