/* data_impl.h - what the dataset readers (data.c, data_idx.c, data_text.c) share; not a public header. */
#ifndef DATA_IMPL_H
#define DATA_IMPL_H

#include "data.h"

/* opts, or the defaults in *tmp when opts is NULL. */
const dat_opts *dat_opts_or_default(const dat_opts *opts, dat_opts *tmp);
/* A dataset of n x dim with room for ids when with_ids; sizes checked
 * against the limits, name in every message. */
int dat_alloc(size_t n, size_t dim, int with_ids, const char *name, dat_set **out, tr_err *err);
/* The reader options that apply after parsing (--scale). */
void dat_apply_opts(dat_set *d, const dat_opts *o);

#endif
