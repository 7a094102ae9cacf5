/* fuzz_idx.c - fuzz target: IDX image/label pairs through dat_parse_idx.
 * Input: byte 0 = options (bit 0 scale, bits 1-3 row limit), bytes 1-2 =
 * little-endian length of the images part, then images, then labels. */
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    dat_opts o;
    dat_opts_default(&o);
    o.scale = data[0] & 1;
    o.limit = (size_t)(data[0] >> 1 & 7);
    size_t rest = size - 3, k = ((size_t)data[1] | (size_t)data[2] << 8);
    if (k > rest) k = rest;
    uint8_t *img = fz_dup(data + 3, k), *lab = fz_dup(data + 3 + k, rest - k);
    dat_set *d = NULL;
    tr_err err;
    int rc = dat_parse_idx(img, k, "images", lab, rest - k, "labels", &o, &d, &err);
    fz_check_status("dat_parse_idx", rc, &err);
    if (rc == TR_OK) {
        if (o.limit && d->n > o.limit) fz_fail("dat_parse_idx", "limit ignored");
        fz_exercise_dataset(d);
        dat_free(d);
    } else if (d != NULL) {
        fz_fail("dat_parse_idx", "failure left *out set");
    }
    free(img);
    free(lab);
    return 0;
}
