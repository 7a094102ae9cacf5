/* fuzz_st.c - fuzz target: safetensors images through st_open_mem and every accessor. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "st.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = fz_dup(data, size);
    st_file *f = NULL;
    tr_err err;
    int rc = st_open_mem(buf, size, &f, &err);
    fz_check_status("st_open_mem", rc, &err);
    if (rc == TR_OK) {
        size_t total = 0, blen;
        if (st_bytes(f, &blen) != buf || blen != size) fz_fail("st_bytes", "image differs from the input");
        for (size_t i = 0; i < st_count(f); i++) {
            const st_tensor *t = st_at(f, i);
            if (st_find(f, t->name) != t) fz_fail("st_find", "name does not find its tensor");
            if (t->len != t->nelem * st_dtype_size(t->dtype)) fz_fail("st_open_mem", "length != nelem x dtype size");
            if (st_data(f, t) < buf || st_data(f, t) + t->len > buf + size)
                fz_fail("st_data", "tensor outside the image");
            total += t->len;
            /* nelem <= len <= size: the conversions allocate at most 8 x the input */
            int64_t *dst = malloc(t->nelem ? t->nelem * sizeof(int64_t) : 1);
            if (dst == NULL) abort();
            rc = st_to_f32(f, t, (float *)dst, &err);
            fz_check_status("st_to_f32", rc, &err);
            rc = st_to_i64(f, t, dst, &err);
            fz_check_status("st_to_i64", rc, &err);
            free(dst);
        }
        if (total > size) fz_fail("st_open_mem", "tensors hold more bytes than the file");
        for (size_t i = 0; i < st_meta_count(f); i++) {
            const char *k, *v;
            st_meta_at(f, i, &k, &v);
            if (k == NULL || v == NULL || st_meta(f, k) == NULL) fz_fail("st_meta", "metadata pair missing");
        }
        st_close(f);
    } else if (f != NULL) {
        fz_fail("st_open_mem", "failure left *out set");
    }
    free(buf);
    return 0;
}
