/* batcher.h - leader/follower batching of concurrent forwards on one model snapshot. */
#ifndef SRV_BATCHER_H
#define SRV_BATCHER_H

#include <stddef.h>

#include "model.h"
#include "tr_err.h"

/* One batcher per model snapshot. Concurrent bat_forward calls that find a
 * forward already running for the same normalize flag queue their rows; when
 * it finishes, the first queued caller becomes the leader: it copies every
 * queued request (up to max_rows rows in all) into one contiguous batch, runs
 * one mdl_forward (sgemm), scatters the outputs and wakes the others. An idle
 * server adds no wait: a caller with nothing running ahead of it leads at
 * once (up to one running forward per core: waiting only pays when the
 * cores are busy). No thread of its own; the queue holds at most one entry per blocked
 * caller; the batch buffers are the batcher's and are reused. */
typedef struct bat_batcher bat_batcher;

/* max_rows 0 or 1 disables batching (every call runs alone). *out is NULL
 * then, which bat_forward accepts. max_leaders: forwards that may run at
 * once per normalize flag before calls queue (0: the number of CPUs; at
 * most 64). TR_OK or TR_ENOMEM. */
int bat_new(const mdl_model *m, size_t max_rows, int max_leaders, bat_batcher **out, tr_err *err);
/* No call may be in bat_forward. NULL is a no-op. */
void bat_free(bat_batcher *b);

/* mdl_forward(m, x, n, y, normalize, ws, err) through the batcher b (built
 * for m; NULL: run alone). Requests with more rows than the cap run alone on
 * the caller's ws. Blocks until y holds this request's outputs. */
int bat_forward(bat_batcher *b, const mdl_model *m, const float *x, size_t n, float *y, int normalize, mdl_ws *ws,
                tr_err *err);

/* Prometheus text for the histogram tripletd_forward_batch_rows (rows per
 * mdl_forward run by the server, all snapshots) into out (NUL-terminated,
 * truncated at cap). Returns the length written. */
size_t bat_metrics_render(char *out, size_t cap);

#endif
