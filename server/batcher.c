/* batcher.c - leader/follower batching of concurrent forwards on one model snapshot. */
#include "batcher.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "histogram.h"

/* ---- rows-per-forward histogram (process-wide) ------------------------ */

static const double ROW_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384};
static const srv_hist_spec ROWS = {ROW_BUCKETS, (int)(sizeof ROW_BUCKETS / sizeof ROW_BUCKETS[0]), 1};
static srv_hist g_rows;

static void observe_rows(size_t n) {
    srv_hist_observe(&g_rows, &ROWS, (double)n);
}

size_t bat_metrics_render(char *out, size_t cap) {
    if (cap == 0) return 0;
    static const char name[] = "tripletd_forward_batch_rows";
    int w =
        snprintf(out, cap, "# HELP %s Rows per model forward pass (batched requests together).\n# TYPE %s histogram\n",
                 name, name);
    if (w > 0 && (size_t)w < cap) srv_hist_render(out + w, cap - (size_t)w, &g_rows, &ROWS, name, "");
    return strlen(out);
}

/* ---- the batcher ------------------------------------------------------ */

/* One waiting call; lives on its caller's stack. */
typedef struct bat_req {
    const float *x;
    float *y;
    size_t n;
    int taken, done, rc; /* taken: in a leader's batch */
    tr_err *err;
    pthread_cond_t cv;
    struct bat_req *next;
} bat_req;

#define BAT_MAX_LEADERS 64

/* A leader's batch buffers, reused. */
typedef struct {
    tr_scratch in, out;
    mdl_ws work;
    int used;
} bat_bufs;

/* Calls with the same normalize flag: a FIFO and at most max_leaders
 * forwards running (one per core: more would only queue for a CPU, while
 * waiting calls batch). */
typedef struct {
    bat_req *head, *tail;
    int busy;
    bat_bufs buf[BAT_MAX_LEADERS];
} bat_lane;

struct bat_batcher {
    pthread_mutex_t mu;
    const mdl_model *m;
    size_t max_rows;
    int max_leaders;
    bat_lane lane[2]; /* effective normalize 0, 1 */
};

int bat_new(const mdl_model *m, size_t max_rows, int max_leaders, bat_batcher **out, tr_err *err) {
    bat_batcher *b = NULL;
    *out = NULL;
    if (max_rows <= 1) return TR_OK;
    if ((b = calloc(1, sizeof *b)) == NULL || pthread_mutex_init(&b->mu, NULL) != 0) {
        free(b);
        return tr_seterr(err, TR_ENOMEM, "batch-max-rows", "batcher: out of memory");
    }
    b->m = m;
    b->max_rows = max_rows;
    long cpus = max_leaders > 0 ? max_leaders : sysconf(_SC_NPROCESSORS_ONLN);
    b->max_leaders = cpus < 1 ? 1 : cpus > BAT_MAX_LEADERS ? BAT_MAX_LEADERS : (int)cpus;
    *out = b;
    return TR_OK;
}

void bat_free(bat_batcher *b) {
    if (!b) return;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < BAT_MAX_LEADERS; j++) {
            tr_scratch_free(&b->lane[i].buf[j].in);
            tr_scratch_free(&b->lane[i].buf[j].out);
            mdl_ws_free(&b->lane[i].buf[j].work);
        }
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static int run_alone(const mdl_model *m, const float *x, size_t n, float *y, int normalize, mdl_ws *ws, tr_err *err) {
    observe_rows(n);
    return mdl_forward(m, x, n, y, normalize, ws, err);
}

/* The leader's work outside the lock: one forward over batch (k calls,
 * rows rows in all). A failed batch is retried call by call so each error
 * belongs to its own request. */
static void lead(bat_batcher *b, bat_bufs *l, int normalize, bat_req *batch, size_t k, size_t rows) {
    const mdl_model *m = b->m;
    size_t in_dim = (size_t)mdl_input_dim(m), out_dim = (size_t)mdl_output_dim(m), nin, nout, off;
    tr_err berr;
    if (k == 1) {
        batch->rc = run_alone(m, batch->x, batch->n, batch->y, normalize, &l->work, batch->err);
        return;
    }
    tr_clearerr(&berr);
    /* rows <= max_rows and both buffers fit once allocated: reuse them */
    if (tr_size_mul(rows, in_dim, &nin) && tr_size_mul(rows, out_dim, &nout) &&
        tr_scratch_reserve(&l->in, nin) == TR_OK && tr_scratch_reserve(&l->out, nout) == TR_OK) {
        off = 0;
        for (bat_req *r = batch; r && off < rows; r = r->next) {
            memcpy(l->in.p + off * in_dim, r->x, r->n * in_dim * sizeof(float));
            off += r->n;
        }
        observe_rows(rows);
        if (mdl_forward(m, l->in.p, rows, l->out.p, normalize, &l->work, &berr) == TR_OK) {
            off = 0;
            for (size_t i = 0; i < k; i++, batch = batch->next) {
                memcpy(batch->y, l->out.p + off * out_dim, batch->n * out_dim * sizeof(float));
                batch->rc = TR_OK;
                off += batch->n;
            }
            return;
        }
    }
    for (size_t i = 0; i < k; i++, batch = batch->next)
        batch->rc = run_alone(m, batch->x, batch->n, batch->y, normalize, &l->work, batch->err);
}

int bat_forward(bat_batcher *b, const mdl_model *m, const float *x, size_t n, float *y, int normalize, mdl_ws *ws,
                tr_err *err) {
    if (b == NULL || m != b->m || n == 0 || n >= b->max_rows) return run_alone(m, x, n, y, normalize, ws, err);
    int key = normalize < 0 ? m->normalize != 0 : normalize != 0; /* effective flag */
    bat_lane *l = &b->lane[key];
    bat_req me = {.x = x, .y = y, .n = n, .err = err};
    if (pthread_cond_init(&me.cv, NULL) != 0) return run_alone(m, x, n, y, normalize, ws, err);

    pthread_mutex_lock(&b->mu);
    if (l->tail)
        l->tail->next = &me;
    else
        l->head = &me;
    l->tail = &me;
    while (!me.done) {
        if (me.taken || l->busy >= b->max_leaders) { /* not taken: me is queued, head != NULL */
            pthread_cond_wait(&me.cv, &b->mu);
            continue;
        }
        /* lead: take the queue's head calls while they fit under the cap
         * (the head always: no call exceeds the cap) */
        bat_req *batch = l->head, *last = l->head;
        size_t k = 1, rows = batch->n;
        while (last->next && rows + last->next->n <= b->max_rows) {
            last = last->next;
            rows += last->n;
            k++;
        }
        for (bat_req *r = batch; r != last->next; r = r->next) r->taken = 1;
        l->head = last->next;
        if (!l->head) l->tail = NULL;
        last->next = NULL;
        l->busy++;
        bat_bufs *bufs = l->buf;
        while (bufs->used) bufs++; /* busy < max_leaders: one is free */
        bufs->used = 1;
        pthread_mutex_unlock(&b->mu);

        lead(b, bufs, key, batch, k, rows);

        pthread_mutex_lock(&b->mu);
        for (bat_req *r = batch; r; r = r->next) {
            r->done = 1;
            if (r != &me) pthread_cond_signal(&r->cv);
        }
        l->busy--;
        bufs->used = 0;
        if (l->head) pthread_cond_signal(&l->head->cv); /* the next leader */
    }
    pthread_mutex_unlock(&b->mu);
    pthread_cond_destroy(&me.cv);
    return me.rc;
}
