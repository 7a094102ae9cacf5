/* vectors.h - request vectors to what handlers compare: parse, optionally embed, normalise. */
#ifndef SRV_VECTORS_H
#define SRV_VECTORS_H

#include "handlers.h"
#include "json_io.h"

/* Options shared by the scoring routes. */
typedef struct {
    int embed;          /* 1: vectors are model inputs (default) */
    int normalize;      /* -1: the model's setting (embed) / none (raw) */
    dist_metric metric; /* request, else the snapshot's default */
} srv_vec_opts;

/* Read "embed", "normalize" and (when with_metric) "metric" from body. */
int srv_vec_opts_parse(const srv_ctx *ctx, const cJSON *body, int with_metric, srv_vec_opts *o, srv_reply *out);

/* Parse body[name] into scratch slot (0..2) and embed it when o->embed.
 * *dim: 0 on the first field of a request (raw vectors then fix it), the
 * previous field's dimension after; on return the dimension of *v (the
 * model's output when embedding). *v points into the thread's scratch. */
int srv_vectors(const srv_ctx *ctx, const cJSON *body, const char *name, int slot, const srv_vec_opts *o, size_t *n,
                size_t *dim, const float **v, srv_reply *out);

/* The one place handlers run the model: mdl_forward on the request's
 * snapshot through its batcher (batcher.c), workspace from the thread's
 * scratch. y holds n x output_dim floats. */
int srv_forward(const srv_ctx *ctx, const float *x, size_t n, float *y, int normalize, tr_err *err);

/* n doubles from the thread's scratch, valid until the next call on this
 * thread: callers take one buffer per request, sized for everything they
 * need. NULL with a 503 in out when out of memory. */
double *srv_doubles(const srv_ctx *ctx, size_t n, srv_reply *out);

/* The "config" object of a scoring reply: metric, margin, loss, the
 * effective normalize, embed (m: the request's model). NULL when out of
 * memory. Callers add their route's own keys. */
cJSON *srv_scoring_config(const srv_vec_opts *o, const mdl_model *m, double margin, loss_kind k);

/* The fields "margin" (0..1e9) and "loss" (one of losses) into *margin and *k, which hold the
 * defaults. 0, or the HTTP status of the error set in out. */
int srv_margin_loss(const cJSON *body, const jio_choice *losses, loss_kind *k, double *margin, srv_reply *out);

/* Adds the object "counts": {"easy", "semi_hard", "hard"} triplets by category to res. NULL when
 * out of memory, else the object. */
cJSON *srv_add_counts(cJSON *res, const size_t counts[LOSS_CAT_COUNT]);

/* The metrics as jio_enum choices (name and dist_metric), in enum order. */
const jio_choice *srv_metric_choices(void);

#endif
