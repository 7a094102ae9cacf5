/* xbatch.h - cross-request batching: forwards recorded during one event-loop pass run as one batch at its end. */
#ifndef SRV_XBATCH_H
#define SRV_XBATCH_H

#include <stddef.h>

#include "model.h"
#include "tr_err.h"

struct srv_state;
typedef struct xb_batch xb_batch;

/* One request whose forward waits for the batch. The handler runs twice:
 * once recording (xb_forward copies its inputs into the batch and fails, so
 * the handler stops there; its reply is dropped), and once after xb_run
 * replaying (xb_forward hands out the batch's outputs for those rows, and
 * the handler builds its reply as usual). Lives in the request's record. */
typedef struct xb_job {
    xb_batch *b;
    int replay;                /* 0: record the forward; 1: hand out its outputs */
    int recorded;              /* 1 once the forward is in the batch */
    struct srv_state *state;   /* the snapshot it runs on (a reference, kept by dispatch.c) */
    void *body;                /* the parsed request (cJSON), kept by dispatch.c for the replay */
    size_t in_off, out_off, n; /* its rows: n, at these float offsets in the batch buffers */
    int normalize;
    int rc; /* the batch forward's status for these rows */
    tr_err err;
    struct xb_job *next;
} xb_job;

/* A batch of at most max_rows rows (more in one request: that request runs
 * alone, not deferred). TR_OK or TR_ENOMEM. */
int xb_new(size_t max_rows, xb_batch **out, tr_err *err);
void xb_free(xb_batch *b); /* NULL is a no-op */

/* Start job j on batch b (record mode). */
void xb_job_init(xb_job *j, xb_batch *b);

/* srv_forward for a request of a job: record mode appends x (n rows of the
 * model's input) to the batch and returns TR_EAGAIN-like TR_EINTERNAL with
 * j->recorded set (or, when the batch is full, runs the forward at once on
 * ws and returns its status); replay mode copies the rows' outputs to y. */
int xb_forward(xb_job *j, const struct srv_state *st, const float *x, size_t n, float *y, int normalize, mdl_ws *ws,
               tr_err *err);

/* Rows recorded since the last xb_reset. */
size_t xb_rows(const xb_batch *b);
/* Run every recorded forward: consecutive jobs on the same snapshot and
 * normalize flag as one forward through the snapshot's batcher. Sets each
 * job's rc (and err); then the jobs replay. */
void xb_run(xb_batch *b);
/* Forget the jobs (after they replayed). */
void xb_reset(xb_batch *b);

#endif
