/* fuzz_csv.c - fuzz target: text through dat_parse_csv (not NUL-terminated), then the dataset helpers. */
#include <stdlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *text = fz_dup(data, size);
    dat_set *d = NULL;
    tr_err err;
    int rc = dat_parse_csv((const char *)text, size, "in.csv", NULL, &d, &err);
    fz_check_status("dat_parse_csv", rc, &err);
    if (rc == TR_OK) {
        fz_exercise_dataset(d);
        dat_free(d);
    } else if (d != NULL) {
        fz_fail("dat_parse_csv", "failure left *out set");
    }
    free(text);
    return 0;
}
