/* histogram.c - a lock-free Prometheus histogram shared by the request metrics and the batcher. */
#include "histogram.h"

#include <stdatomic.h>
#include <stdio.h>

void srv_hist_observe(srv_hist *h, const srv_hist_spec *s, double v) {
    int b = s->n;
    for (int i = 0; i < s->n; i++)
        if (v <= s->le[i]) {
            b = i;
            break;
        }
    atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, (unsigned long long)(v * s->scale), memory_order_relaxed);
}

unsigned long long srv_hist_count(const srv_hist *h, const srv_hist_spec *s) {
    unsigned long long n = 0;
    for (int i = 0; i <= s->n; i++) n += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
    return n;
}

size_t srv_hist_render(char *out, size_t cap, const srv_hist *h, const srv_hist_spec *s, const char *name,
                       const char *labels) {
    size_t len = 0;
    unsigned long long cum = 0, sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    const char *sep = labels[0] ? "," : "";
    int w;
/* append, counting what did not fit so the return value tells the caller */
#define EMIT(...)                                                                                                      \
    do {                                                                                                               \
        w = snprintf(len < cap ? out + len : NULL, len < cap ? cap - len : 0, __VA_ARGS__);                            \
        if (w > 0) len += (size_t)w;                                                                                   \
    } while (0)
    if (cap) out[0] = 0;
    for (int i = 0; i <= s->n; i++) {
        cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
        if (i < s->n)
            EMIT("%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, s->le[i], cum);
        else
            EMIT("%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, cum);
    }
    const char *open = labels[0] ? "{" : "", *close = labels[0] ? "}" : "";
    if (s->scale == 1)
        EMIT("%s_sum%s%s%s %llu\n", name, open, labels, close, sum);
    else
        EMIT("%s_sum%s%s%s %.9f\n", name, open, labels, close, (double)sum / s->scale);
    EMIT("%s_count%s%s%s %llu\n", name, open, labels, close, cum);
#undef EMIT
    return len;
}
