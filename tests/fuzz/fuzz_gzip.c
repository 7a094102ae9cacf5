/* fuzz_gzip.c - fuzz target: files through dat_read_file (gzip or raw, via an in-memory file), then the text parsers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        if ((fd = memfd_create("data", MFD_CLOEXEC)) < 0) fz_fail("memfd_create", "cannot create the input file");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        fz_fail("pwrite", "cannot write");
    uint8_t *buf = NULL;
    size_t len = 0;
    tr_err err;
    int rc = dat_read_file(path, &buf, &len, &err);
    fz_check_status("dat_read_file", rc, &err);
    if (rc == TR_OK) {
        int gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
        if (!gz && (len != size || memcmp(buf, data, size) != 0))
            fz_fail("dat_read_file", "raw file read back differently");
        dat_set *d = NULL;
        rc = dat_parse_csv((const char *)buf, len, "in.csv", NULL, &d, &err);
        fz_check_status("dat_parse_csv", rc, &err);
        dat_free(d);
        d = NULL;
        rc = dat_parse_jsonl((const char *)buf, len, "in.jsonl", NULL, &d, &err);
        fz_check_status("dat_parse_jsonl", rc, &err);
        dat_free(d);
        free(buf);
    } else if (buf != NULL) {
        fz_fail("dat_read_file", "failure returned a buffer");
    }
    return 0;
}
