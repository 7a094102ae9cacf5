/* train_history.h - `tripletctl train`'s per-epoch history: rows, CSV (also the checkpoint note) and the SVG learning
 * curve. */
#ifndef TRAIN_HISTORY_H
#define TRAIN_HISTORY_H

#include <stddef.h>

#include "loss.h"

typedef struct {
    int epoch;
    double loss, active, share[LOSS_CAT_COUNT], d_ap, d_an, recall1, seconds;
    int collapsed;
} epoch_row;

typedef struct {
    epoch_row *rows;
    size_t n, cap;
} history;

/* Append a row; 0, or -1 out of memory. Free h->rows when done. */
int history_add(history *h, const epoch_row *r);
/* The history as CSV text with a header line (malloc'd), or NULL. */
char *history_csv(const history *h);
/* Append the rows of CSV text made by history_csv ("" adds none); 0 or -1. */
int history_parse(history *h, const char *s);
/* Write text to path; 0, or -1 after printing why. */
int history_write_text(const char *path, const char *text);
/* The learning curve as SVG: loss (left axis) and Recall@1 (right axis) per
 * epoch, titled; 0, or -1 after printing why. */
int history_write_svg(const char *path, const history *h, const char *title);

#endif
