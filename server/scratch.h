/* scratch.h - per-thread buffers the handlers reuse across requests (scratch.c). */
#ifndef SRV_SCRATCH_H
#define SRV_SCRATCH_H

#include "model.h"
#include "tr_err.h"

/* Reused because a freshly allocated buffer costs its page faults on every
 * request (about 11 us per 4 KiB page on the machines we measured). */
typedef struct {
    tr_scratch in[3];  /* parsed request vectors (one per vector field) */
    tr_scratch emb[3]; /* their embeddings */
    mdl_ws work;       /* forward pass workspace */
    tr_scratch dbl;    /* doubles (distances, losses) via 2 floats each */
} srv_scratch;

/* The calling thread's scratch, created on first use and freed when the
 * thread exits; NULL when out of memory. */
srv_scratch *srv_scratch_thread(void);

#endif
