/* train_batch.c - the PK sampler (P classes x K rows per batch, without replacement within a class's pass) and image
 * augmentation. */
#include <string.h>

#include "rng.h"
#include "train_impl.h"

/* Random crop after zero padding by pad pixels and a random horizontal flip,
 * in place on one raw c x h x w row; tmp holds one row. */
static void augment(trn *t, float *row, float *tmp) {
    const nn_shape in = t->arch.input;
    int pad = t->cfg.aug_crop, dy = 0, dx = 0, flip = 0;
    size_t hw = (size_t)in.h * (size_t)in.w;
    if (pad) {
        dy = (int)rng_below(t->rng, (size_t)(2 * pad + 1)) - pad;
        dx = (int)rng_below(t->rng, (size_t)(2 * pad + 1)) - pad;
    }
    if (t->cfg.aug_flip) flip = (int)rng_below(t->rng, 2);
    if (dy == 0 && dx == 0 && !flip) return;
    memcpy(tmp, row, t->dim * sizeof *tmp);
    for (int c = 0; c < in.c; c++) {
        const float *src = tmp + (size_t)c * hw;
        float *dst = row + (size_t)c * hw;
        for (int i = 0; i < in.h; i++) {
            int si = i + dy;
            for (int j = 0; j < in.w; j++) {
                int sj = (flip ? in.w - 1 - j : j) + dx;
                dst[i * in.w + j] = si >= 0 && si < in.h && sj >= 0 && sj < in.w ? src[si * in.w + sj] : 0.0f;
            }
        }
    }
}

void trn_sample_batch(trn *t) {
    const trn_config *c = &t->cfg;
    size_t P = (size_t)c->classes_per_batch, K = (size_t)c->samples_per_class, nc = t->n_classes, o = 0;
    for (size_t i = 0; i < nc; i++) t->cls_tmp[i] = i;
    for (size_t i = 0; i < P; i++) {
        size_t j = i + rng_below(t->rng, nc - i), cl = t->cls_tmp[j];
        t->cls_tmp[j] = t->cls_tmp[i];
        t->cls_tmp[i] = cl;
        size_t lo = t->cls_off[cl], size = t->cls_off[cl + 1] - lo;
        for (size_t k = 0; k < K; k++) {
            size_t idx;
            if (size >= K) {
                if (k == 0 && t->cursor[cl] + K > lo + size) {
                    rng_shuffle(t->rng, t->pool + lo, size);
                    t->cursor[cl] = lo;
                }
                idx = t->pool[t->cursor[cl]++];
            } else {
                idx = t->pool[lo + rng_below(t->rng, size)];
            }
            memcpy(t->bx + o * t->dim, t->x + idx * t->dim, t->dim * sizeof(float));
            if (c->aug_crop || c->aug_flip) augment(t, t->bx + o * t->dim, t->aug);
            t->blabels[o++] = t->labels[idx];
        }
    }
}
