/* fuzz_img.c - fuzz target: PNG and JPEG files through img_decode (grey and RGB), then img_resize and img_to_input. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    img_u8 im, small;
    tr_err err;
    for (int c = 1; c <= 3; c += 2) {
        int rc = img_decode(data, size, 1u << 20, c, &im, &err); /* 1M pixels: room to explore, no OOM */
        fz_check_status("img_decode", rc, &err);
        if (rc != TR_OK) {
            if (im.px) fz_fail("img_decode", "failure left pixels");
            continue;
        }
        if (im.width < 1 || im.height < 1 || im.channels != c || (size_t)im.width * (size_t)im.height > 1u << 20)
            fz_fail("img_decode", "bad image size");
        rc = img_resize(&im, 7, 5, &small, &err);
        fz_check_status("img_resize", rc, &err);
        free(small.px);
        free(im.px);
    }
    mdl_image spec = {3, 9, 11, {0, 0, 0}, {1, 1, 1}};
    float out[3 * 9 * 11];
    int rc = img_to_input(data, size, &spec, 1u << 20, out, &err);
    fz_check_status("img_to_input", rc, &err);
    if (rc == TR_OK)
        for (size_t i = 0; i < sizeof out / sizeof out[0]; i++)
            if (!(out[i] >= 0 && out[i] <= 255)) fz_fail("img_to_input", "pixel outside 0..255");
    return 0;
}
