/* e2e_onnx.c - a real tripletd serving ONNX graphs (tests/golden/gen_onnx.py) against PyTorch:
 * embeddings and distances, a fixed-batch file on a short batch, the image model (pixels scaled and
 * normalised by its metadata, L2-normalised output, cosine default) through /v1/embed and
 * /v1/loss/triplet, GET /v1/model, refused files at reload and at startup. (tests/cli/onnx_serve.sh
 * covers inspect, tripletctl embed and reloads between formats.) */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define RTOL 1e-3
#define ATOL 1e-4

typedef struct {
    int n, dim;
    float *v;
} rows;

static rows read_rows(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/onnx/%s", name);
    size_t len;
    char *b = e2e_read_file(e2e_root_path(rel), &len);
    if (!b || len < 8) e2e_die("cannot read %s", rel);
    rows r;
    int32_t h[2];
    memcpy(h, b, 8);
    r.n = h[0], r.dim = h[1];
    if (len != 8 + 4 * (size_t)r.n * (size_t)r.dim) e2e_die("%s: bad size", rel);
    r.v = malloc(4 * (size_t)r.n * (size_t)r.dim);
    memcpy(r.v, b + 8, 4 * (size_t)r.n * (size_t)r.dim);
    free(b);
    return r;
}

/* "[[...], ...]" of rows [0, n) of x, appended to b. */
static void rows_json(e2e_buf *b, const rows *x, int n) {
    char num[32];
    e2e_buf_str(b, "[");
    for (int i = 0; i < n; i++) {
        e2e_buf_str(b, i ? ",[" : "[");
        for (int j = 0; j < x->dim; j++) {
            snprintf(num, sizeof num, "%s%.9g", j ? "," : "", (double)x->v[(size_t)i * (size_t)x->dim + (size_t)j]);
            e2e_buf_str(b, num);
        }
        e2e_buf_str(b, "]");
    }
    e2e_buf_str(b, "]");
}

static char *inputs_body(const rows *x, int n) {
    e2e_buf b = {0};
    e2e_buf_str(&b, "{\"inputs\":");
    rows_json(&b, x, n);
    e2e_buf_str(&b, "}");
    return b.p;
}

/* POST /v1/embed with rows [0, n) of x; the embeddings must be y's rows. */
static void check_embed(const e2e_server *s, const rows *x, const rows *y, int n, const char *what) {
    char *body = inputs_body(x, n);
    e2e_resp r;
    e2e_post(s, "/v1/embed", body, &r);
    free(body);
    if (CHECK(r.status == 200 && r.json, "%s: status %ld %s", what, r.status, r.body ? r.body : "")) {
        size_t nr = 0, nc = 0;
        double *e = e2e_jmatrix(e2e_jget(r.json, "embeddings"), &nr, &nc);
        if (CHECK(e && nr == (size_t)n && nc == (size_t)y->dim, "%s: embeddings %zu x %zu", what, nr, nc)) {
            int bad = 0;
            for (size_t i = 0; i < nr * nc && !bad; i++)
                bad = !CHECK(e2e_near(e[i], y->v[i], RTOL, ATOL), "%s: element %zu is %.7g, PyTorch %.7g", what, i,
                             e[i], (double)y->v[i]);
        }
        free(e);
    }
    e2e_resp_free(&r);
}

/* GET /v1/model of an ONNX model: format, name, opset, Conv count, normalize. */
static void check_model_info(const e2e_server *s, const char *name, int opset, int normalize) {
    e2e_resp r;
    e2e_get(s, "/v1/model", &r);
    if (CHECK(r.status == 200 && r.json, "GET /v1/model: %ld", r.status)) {
        CHECK_STR(e2e_jstr(r.json, "format"), "onnx", "model format");
        CHECK_STR(e2e_jstr(r.json, "name"), name, "model name");
        CHECK(e2e_jnum(r.json, "input_dim") == 784, "input_dim %g", e2e_jnum(r.json, "input_dim"));
        CHECK(e2e_jnum(r.json, "output_dim") == 24, "output_dim %g", e2e_jnum(r.json, "output_dim"));
        CHECK(e2e_jnum(r.json, "opset") == opset, "opset %g", e2e_jnum(r.json, "opset"));
        int conv = 0;
        const cJSON *op;
        cJSON_ArrayForEach(op, e2e_jget(r.json, "ops")) if (e2e_jstr(op, "op") && !strcmp(e2e_jstr(op, "op"), "Conv"))
            conv = (int)e2e_jnum(op, "count");
        CHECK(conv == 4, "ops: Conv x %d", conv);
        const cJSON *nz = e2e_jget(r.json, "normalize");
        CHECK(nz && cJSON_IsBool(nz) && cJSON_IsTrue(nz) == normalize, "normalize");
    }
    e2e_resp_free(&r);
}

/* Admin reload to path; expect status and, on 200, the new sha. */
static void reload(const e2e_server *s, const char *path, long status, const char *what) {
    char body[700];
    snprintf(body, sizeof body, "{\"model\":\"%s\"}", path);
    e2e_resp r;
    e2e_post(s, "/v1/admin/reload", body, &r);
    CHECK(r.status == status, "%s: status %ld %s", what, r.status, r.body ? r.body : "");
    e2e_resp_free(&r);
}

int main(void) {
    rows x = read_rows("fashion.in"), y = read_rows("fashion.out");
    rows px = read_rows("fashion_image.in"), py = read_rows("fashion_image.out");
    char dyn[512], fixed[512], image[512], bad[512], dir[256];
    snprintf(dyn, sizeof dyn, "%s", e2e_root_path("tests/data/onnx/fashion_op13_dyn.onnx"));
    snprintf(fixed, sizeof fixed, "%s", e2e_root_path("tests/data/onnx/fashion_op17_b4.onnx"));
    snprintf(image, sizeof image, "%s", e2e_root_path("tests/data/onnx/fashion_image.onnx"));
    e2e_mkdtemp(dir, sizeof dir, "e2e_onnx");
    snprintf(bad, sizeof bad, "%s/bad.onnx", dir);

    /* dynamic batch: all rows, one row, batches through the batcher */
    e2e_server s;
    /* reloads name files relative to --model-dir: copies of the fixed-batch and image models live there */
    char fixed_in[600], image_in[600];
    snprintf(fixed_in, sizeof fixed_in, "%s/fixed.onnx", dir);
    snprintf(image_in, sizeof image_in, "%s/image.onnx", dir);
    if (e2e_install_file(fixed, fixed_in) || e2e_install_file(image, image_in))
        e2e_die("cannot copy the models to %s", dir);
    const char *a[] = {"--model", dyn, "--model-dir", dir, NULL};
    if (e2e_server_start(&s, a) != 0) e2e_die("tripletd did not start on %s", dyn);
    check_model_info(&s, "", 13, 0);
    check_embed(&s, &x, &y, x.n, "dynamic batch, 5 rows");
    check_embed(&s, &x, &y, 1, "dynamic batch, 1 row");

    /* /v1/distance between embedded rows: a row to itself is 0, rows 0 and 1 as PyTorch's */
    e2e_buf q = {0};
    e2e_buf_str(&q, "{\"a\":");
    rows_json(&q, &x, 2);
    e2e_buf_str(&q, ",\"b\":[");
    /* b = [row 0, row 0]: distances d(0,0) = 0 and d(1,0) */
    rows first = {1, x.dim, x.v};
    e2e_buf r0 = {0};
    rows_json(&r0, &first, 1);
    e2e_buf_add(&q, r0.p + 1, strlen(r0.p) - 2);
    e2e_buf_str(&q, ",");
    e2e_buf_add(&q, r0.p + 1, strlen(r0.p) - 2);
    e2e_buf_str(&q, "]}");
    free(r0.p);
    e2e_resp r;
    e2e_post(&s, "/v1/distance", q.p, &r);
    free(q.p);
    if (CHECK(r.status == 200 && r.json, "distance: %ld %s", r.status, r.body ? r.body : "")) {
        size_t n = 0;
        double *d = e2e_jarray(e2e_jget(r.json, "distances"), &n), want = 0;
        for (int i = 0; i < y.dim; i++) want += ((double)y.v[y.dim + i] - y.v[i]) * ((double)y.v[y.dim + i] - y.v[i]);
        CHECK(d && n == 2 && fabs(d[0]) < 1e-6 && e2e_near(d[1], want, RTOL, ATOL), "distances %g %g, want 0 %g",
              d && n ? d[0] : NAN, d && n > 1 ? d[1] : NAN, want);
        free(d);
    }
    e2e_resp_free(&r);

    /* a fixed batch of 4 serving 3 rows (one padded run) and 5 (a full run and a padded one) */
    reload(&s, "fixed.onnx", 200, "reload to the fixed-batch file");
    check_model_info(&s, "", 17, 0);
    check_embed(&s, &x, &y, 3, "fixed batch 4, 3 rows");
    check_embed(&s, &x, &y, 5, "fixed batch 4, 5 rows");

    /* a refused file: 422 naming the problem, the old model keeps serving */
    static const char junk[] = "\x08\x07\x12\x03not an onnx file";
    e2e_write_file(bad, junk, sizeof junk - 1);
    reload(&s, "bad.onnx", 422, "reload to a refused .onnx");
    check_embed(&s, &x, &y, 2, "after a refused reload");

    /* the image model: pixel values 0..255 in, normalised embeddings out, its metadata's defaults */
    reload(&s, "image.onnx", 200, "reload to the image model");
    check_model_info(&s, "fashion-cnn-test", 17, 1);
    check_embed(&s, &px, &py, px.n, "image model on pixel rows");
    e2e_get(&s, "/v1/model", &r);
    if (CHECK(r.json != NULL, "GET /v1/model")) {
        CHECK(e2e_jnum(r.json, "image.channels") == 1 && e2e_jnum(r.json, "image.height") == 28 &&
                  e2e_near(e2e_jnum(r.json, "image.std.0"), 0.353, 1e-6, 0),
              "image preprocessing in /v1/model");
        CHECK_STR(e2e_jstr(r.json, "metric"), "cosine", "metric from metadata_props");
    }
    e2e_resp_free(&r);
    /* triplets (0,1,2) and (3,4,0): cosine distances of PyTorch's normalised embeddings */
    e2e_buf t = {0};
    rows pick = {1, px.dim, NULL};
    static const int idx[3][2] = {{0, 3}, {1, 4}, {2, 0}};
    static const char *const keys[3] = {"anchors", "positives", "negatives"};
    e2e_buf_str(&t, "{");
    for (int k = 0; k < 3; k++) {
        e2e_buf_str(&t, k ? ",\"" : "\"");
        e2e_buf_str(&t, keys[k]);
        e2e_buf_str(&t, "\":[");
        for (int j = 0; j < 2; j++) {
            e2e_buf one = {0};
            pick.v = px.v + (size_t)idx[k][j] * (size_t)px.dim;
            rows_json(&one, &pick, 1);
            e2e_buf_add(&t, one.p + 1, strlen(one.p) - 2);
            e2e_buf_str(&t, j ? "]" : ",");
            free(one.p);
        }
    }
    e2e_buf_str(&t, "}");
    e2e_post(&s, "/v1/loss/triplet", t.p, &r);
    free(t.p);
    if (CHECK(r.status == 200 && r.json, "triplet loss: %ld %s", r.status, r.body ? r.body : "")) {
        for (int j = 0; j < 2; j++) {
            const float *an_ = py.v + (size_t)idx[0][j] * (size_t)py.dim,
                        *p = py.v + (size_t)idx[1][j] * (size_t)py.dim, *ng = py.v + (size_t)idx[2][j] * (size_t)py.dim;
            double ap = 0, an = 0;
            for (int i = 0; i < py.dim; i++) ap += (double)an_[i] * p[i], an += (double)an_[i] * ng[i];
            char path[32];
            snprintf(path, sizeof path, "d_ap.%d", j);
            CHECK(e2e_near(e2e_jnum(r.json, path), 1 - ap, RTOL, ATOL), "d_ap[%d] %g, want %g", j,
                  e2e_jnum(r.json, path), 1 - ap);
            snprintf(path, sizeof path, "d_an.%d", j);
            CHECK(e2e_near(e2e_jnum(r.json, path), 1 - an, RTOL, ATOL), "d_an[%d] %g, want %g", j,
                  e2e_jnum(r.json, path), 1 - an);
        }
    }
    e2e_resp_free(&r);
    e2e_server_stop(&s, 15, 10);

    /* a refused file at startup: the server exits with the loader's message */
    e2e_server s2;
    const char *a2[] = {"--model", bad, NULL};
    CHECK(e2e_server_start(&s2, a2) != 0, "tripletd started on a corrupt .onnx");
    e2e_server_stop(&s2, 9, 5);

    free(x.v), free(y.v), free(px.v), free(py.v);
    remove(bad), remove(fixed_in), remove(image_in), rmdir(dir);
    return e2e_report("e2e_onnx");
}
