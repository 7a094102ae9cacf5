/* onnx_seg.h - a graph cut into segments for runs of many rows (executor internals, onnx_exec.c).
 *
 * A run of many rows goes through the graph in outer chunks; each segment runs its nodes on
 * sub-chunks of its own size, so the early layers of a large image network (megabytes a row) stay
 * in cache one or two images at a time while its late layers (kilobytes a row) see the whole chunk:
 * wide GEMMs whose weights are read once for all of it. A cut is after a node where exactly one
 * runtime value is live, a float tensor whose first dimension alone holds the batch (rows
 * contiguous): the segment's out, held for the outer chunk's rows, written and read a sub-chunk at
 * a time. Every other value lives inside one segment and holds its sub-chunk's rows. */
#ifndef ONNX_SEG_H
#define ONNX_SEG_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_op.h"

typedef struct {
    int first, last; /* nodes [first, last] */
    int in, out;     /* the value it starts from (the graph input or the previous out) and hands on */
    int64_t chunk;   /* rows per run of its nodes */
} onx_seg;

typedef struct {
    onx_seg *s;
    int n;
    unsigned char *bnd; /* per value: 1 for a segment's in or out */
    int *vseg;          /* per value: its producer's segment (the input: 0) */
    int64_t outer;      /* rows per outer chunk */
} onx_segs;

/* Cut g and size the chunks: about target bytes of activations and scratch per segment's run, at
 * most max_chunk rows, and a segment's in and out together at most bnd_target bytes at the outer
 * chunk (never fewer rows than the heaviest segment's). A graph with a fixed batch is one segment
 * of that batch. */
int onx_segs_make(const onx_graph *g, size_t target, size_t bnd_target, int64_t max_chunk, onx_segs *out, tr_err *err);
void onx_segs_free(onx_segs *s);
/* Rows value v holds in a plan for n rows. */
int64_t onx_seg_rows(const onx_segs *s, int v, int64_t n);

#endif
