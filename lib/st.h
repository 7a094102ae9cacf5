/* st.h - safetensors reader and writer (format: proto/model-format.md). */
#ifndef ST_H
#define ST_H

#include <stddef.h>
#include <stdint.h>

#include "tr_err.h"

#define ST_MAX_HEADER (100u * 1024u * 1024u) /* header JSON bytes */
#define ST_MAX_DIMS 8
#define ST_MAX_TENSORS 4096

typedef enum {
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_F64,
    ST_I32,
    ST_I64,
    ST_U8,
    ST_I8,
    ST_BOOL,
    ST_I16,
    ST_U16,
    ST_U32,
    ST_U64,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nelem;
    size_t off; /* byte offset within the data section */
    size_t len; /* byte length */
} st_tensor;

typedef struct st_file st_file;

/* Parse a whole safetensors image held in memory. The file takes a copy of
 * nothing: buf must outlive the st_file unless st_open() allocated it.
 * Validates the entire header (JSON, dtypes, shapes, offsets inside the data,
 * no overlap, no holes, sizes with overflow checks) before anything else. */
int st_open_mem(const uint8_t *buf, size_t len, st_file **out, tr_err *err);
/* Read a file into memory and st_open_mem it; the st_file owns the bytes. */
int st_open(const char *path, st_file **out, tr_err *err);
/* Map a file read-only (shared: processes mapping the same file share its
 * pages; fmap.h) and st_open_mem it; the st_file owns the mapping, st_close
 * unmaps it. With a read lease (fmap_lease_setup), a writer of the file turns
 * the mapping into a private copy of the old bytes; without one, the file must
 * not change in place while mapped (replace it by rename). */
int st_map(const char *path, st_file **out, tr_err *err);
/* Why a mapped file holds no read lease (fmap_lease_note), or NULL: it holds
 * one, or f was not mapped. */
const char *st_lease_note(const st_file *f);
void st_close(st_file *f); /* NULL is a no-op */

size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);           /* in header order */
const st_tensor *st_find(const st_file *f, const char *name); /* or NULL */
const uint8_t *st_data(const st_file *f, const st_tensor *t); /* raw bytes */
/* The whole file image (for hashing). */
const uint8_t *st_bytes(const st_file *f, size_t *len);

/* __metadata__ string values; NULL when absent. */
const char *st_meta(const st_file *f, const char *key);
size_t st_meta_count(const st_file *f);
void st_meta_at(const st_file *f, size_t i, const char **key, const char **val);

/* Convert a float tensor (F32/F16/BF16/F64) to F32 into dst (t->nelem
 * floats). Refuses other dtypes and non-finite values (naming the tensor). */
int st_to_f32(const st_file *f, const st_tensor *t, float *dst, tr_err *err);
/* Convert an integer tensor (I32/I64/U8...) to int64 into dst. */
int st_to_i64(const st_file *f, const st_tensor *t, int64_t *dst, tr_err *err);

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
/* Parse "F32" etc.; returns 0 on success, -1 on unknown name. */
int st_dtype_parse(const char *s, st_dtype *out);

/* Writer: tensors are written in the given order, data packed without gaps. */
typedef struct {
    const char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const void *data; /* little-endian, dtype-sized elements */
} st_wtensor;

/* Write a safetensors file atomically (atomic_file.h: a temporary file in
 * the same folder, fsync, rename). meta is
 * n_meta key/value string pairs: meta[2*i] key, meta[2*i+1] value. */
int st_write(const char *path, const st_wtensor *t, size_t n, const char *const *meta, size_t n_meta, tr_err *err);

#endif
