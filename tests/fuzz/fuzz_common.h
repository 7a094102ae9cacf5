/* fuzz_common.h - helpers shared by the fuzz targets: invariant checks on results and exact-size copies. */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "tr_err.h"

/* libFuzzer's entry point; driver.c calls it for replays. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Abort (a finding) unless rc is a known status and, when it is a failure,
 * err carries that code and a non-empty message. */
void fz_check_status(const char *what, int rc, const tr_err *err);
/* malloc'd copy of data[0..n) with no terminator: reading past n is caught by ASan. */
uint8_t *fz_dup(const uint8_t *data, size_t n);
/* Abort with a message (a finding). */
void fz_fail(const char *what, const char *msg);
/* Run the dataset helpers on a parsed set and check their invariants. */
void fz_exercise_dataset(const dat_set *d);

#endif
