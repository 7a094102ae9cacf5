/* histogram.h - a lock-free Prometheus histogram: fixed bucket bounds, atomic counts, text exposition (histogram.c). */
#ifndef SRV_HISTOGRAM_H
#define SRV_HISTOGRAM_H

#include <stddef.h>

#define SRV_HIST_MAX 16 /* bucket bounds at most; one more bucket counts the rest (+Inf) */

/* What is counted: the bucket bounds and how the sum is kept. */
typedef struct {
    const double *le; /* upper bounds, ascending */
    int n;            /* how many (<= SRV_HIST_MAX) */
    double scale;     /* the sum is kept as an integer of value * scale (1e9: seconds
                         as nanoseconds; 1: counts) and printed divided back */
} srv_hist_spec;

/* Zero-initialised it is empty. Counts are per bucket, not cumulative. */
typedef struct {
    _Atomic unsigned long long bucket[SRV_HIST_MAX + 1];
    _Atomic unsigned long long sum;
} srv_hist;

/* Count one value. Thread-safe (relaxed atomics). */
void srv_hist_observe(srv_hist *h, const srv_hist_spec *s, double v);
/* Values counted so far. */
unsigned long long srv_hist_count(const srv_hist *h, const srv_hist_spec *s);
/* The lines NAME_bucket{LABELS,le="..."} (cumulative, +Inf last), NAME_sum
 * and NAME_count into out, NUL-terminated; labels is "" or a label list such
 * as route="/v1/embed". Returns what snprintf would: the length of the whole
 * text, which is over cap - 1 when it was cut. */
size_t srv_hist_render(char *out, size_t cap, const srv_hist *h, const srv_hist_spec *s, const char *name,
                       const char *labels);

#endif
