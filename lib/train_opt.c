/* train_opt.c - the optimiser: torch.optim.Adam with L2 weight decay, under the learning-rate schedule. */
#if defined(__SSE__)
#include <immintrin.h>
#endif
#include <math.h>

#include "train_impl.h"

/* The Adam update was 14% of a step at 784-256-128: GCC will not vectorise
 * sqrtf (errno), so on x86 four lanes go through SSE, which rounds exactly
 * like the scalar code (IEEE sqrt and division): the weights are the same. */
static void adam_update(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                        float b1, float b2, float wd, float eps, float lr_bc1, float sq_bc2) {
    size_t i = 0;
#if defined(__SSE__)
    const __m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2), vc1 = _mm_set1_ps(1 - b1), vc2 = _mm_set1_ps(1 - b2),
                 vwd = _mm_set1_ps(wd), veps = _mm_set1_ps(eps), vlr = _mm_set1_ps(lr_bc1), vsq = _mm_set1_ps(sq_bc2);
    for (; i + 4 <= n; i += 4) {
        __m128 wi = _mm_loadu_ps(w + i);
        __m128 gi = _mm_add_ps(_mm_loadu_ps(g + i), _mm_mul_ps(vwd, wi));
        __m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vc1, gi));
        __m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
        __m128 den = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), vsq), veps);
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        _mm_storeu_ps(w + i, _mm_sub_ps(wi, _mm_div_ps(_mm_mul_ps(vlr, mi), den)));
    }
#endif
    for (; i < n; i++) {
        float gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] -= lr_bc1 * m[i] / (sqrtf(v[i]) / sq_bc2 + eps);
    }
}

/* One step's arguments, for the parameter ranges run by par_for (elementwise: the same on any threads). */
typedef struct {
    trn *t;
    float b1, b2, wd, eps, lr_bc1, sq_bc2;
} adam_task;

static void adam_part(void *ctx, size_t lo, size_t hi) {
    const adam_task *a = ctx;
    trn *t = a->t;
    adam_update(t->w + lo, t->g + lo, t->m + lo, t->v + lo, hi - lo, a->b1, a->b2, a->wd, a->eps, a->lr_bc1, a->sq_bc2);
}

/* torch.optim.Adam: L2 decay added to the gradient (of every parameter: weights, biases, BN gamma and beta), bias
 * corrections as torch computes them; the learning rate of this step from the schedule. */
void trn_adam(trn *t) {
    const trn_config *c = &t->cfg;
    double step = (double)t->step; /* already incremented */
    double lr = trn_lr_at(c, t->step - 1, t->epoch, t->steps_per_epoch);
    adam_task a = {t,
                   (float)c->beta1,
                   (float)c->beta2,
                   (float)c->weight_decay,
                   (float)c->adam_eps,
                   (float)(lr / (1 - pow(c->beta1, step))),
                   (float)sqrt(1 - pow(c->beta2, step))};
    par_for(t->n_params >= 4096 ? t->par : NULL, t->n_params, adam_part, &a);
}
