/* xbatch.c - cross-request batching: forwards recorded during one event-loop pass run as one batch at its end. */
#include "xbatch.h"

#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "state.h"

struct xb_batch {
    size_t max_rows, rows;
    tr_scratch in, out; /* the recorded inputs and their outputs, job after job */
    size_t in_used, out_used;
    mdl_ws ws;
    xb_job *head, *tail;
};

int xb_new(size_t max_rows, xb_batch **out, tr_err *err) {
    *out = calloc(1, sizeof **out);
    if (!*out) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    (*out)->max_rows = max_rows;
    return TR_OK;
}

void xb_free(xb_batch *b) {
    if (!b) return;
    tr_scratch_free(&b->in);
    tr_scratch_free(&b->out);
    mdl_ws_free(&b->ws);
    free(b);
}

void xb_job_init(xb_job *j, xb_batch *b) {
    memset(j, 0, sizeof *j);
    j->b = b;
}

size_t xb_rows(const xb_batch *b) {
    return b->rows;
}

void xb_reset(xb_batch *b) {
    b->head = b->tail = NULL;
    b->rows = b->in_used = b->out_used = 0;
}

int xb_forward(xb_job *j, const srv_state *st, const float *x, size_t n, float *y, int normalize, mdl_ws *ws,
               tr_err *err) {
    const mdl_model *m = st->model;
    size_t in_dim = (size_t)mdl_input_dim(m), out_dim = (size_t)mdl_output_dim(m), nin, nout;
    xb_batch *b = j->b;
    if (j->replay) {
        if (!j->recorded || n != j->n) /* not the forward it recorded: run it now */
            return bat_forward(st->batcher, m, x, n, y, normalize, ws, err);
        if (j->rc != TR_OK) {
            *err = j->err;
            return j->rc;
        }
        memcpy(y, b->out.p + j->out_off, n * out_dim * sizeof *y);
        return TR_OK;
    }
    /* record, unless it does not fit: a second forward of one request, a batch already full */
    if (j->recorded || n == 0 || n > b->max_rows - b->rows || !tr_size_mul(n, in_dim, &nin) ||
        !tr_size_mul(n, out_dim, &nout) || tr_scratch_reserve(&b->in, b->in_used + nin) != TR_OK ||
        tr_scratch_reserve(&b->out, b->out_used + nout) != TR_OK)
        return bat_forward(st->batcher, m, x, n, y, normalize, ws, err);
    memcpy(b->in.p + b->in_used, x, nin * sizeof *x);
    j->in_off = b->in_used, j->out_off = b->out_used, j->n = n, j->normalize = normalize;
    b->in_used += nin, b->out_used += nout, b->rows += n;
    j->recorded = 1;
    j->next = NULL;
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    return tr_seterr(err, TR_EINTERNAL, "", "forward deferred to the end of the event-loop pass");
}

void xb_run(xb_batch *b) {
    for (xb_job *first = b->head, *last; first; first = last->next) {
        const srv_state *st = first->state;
        size_t rows = first->n;
        for (last = first; last->next && last->next->state == st && last->next->normalize == first->normalize;)
            last = last->next, rows += last->n;
        tr_err err;
        tr_clearerr(&err);
        int rc = bat_forward(st->batcher, st->model, b->in.p + first->in_off, rows, b->out.p + first->out_off,
                             first->normalize, &b->ws, &err);
        for (xb_job *j = first;; j = j->next) {
            j->rc = rc;
            j->err = err;
            if (j == last) break;
        }
    }
}
