/* embed.c - `tripletctl embed`: vectors on stdin (JSON lines or CSV) -> embeddings as JSON lines. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "data.h"
#include "img.h"
#include "model.h"
#include "opt.h"

#define EMB_DEFAULT_BATCH 256
#define EMB_MAX_BATCH 65536
#define EMB_MAX_REPORTS 20 /* bad lines reported one by one; the rest are counted */

static void usage(FILE *f) {
    fprintf(f,
            "usage: tripletctl embed --model MODEL [--normalize|--no-normalize] [--batch N] < INPUT\n"
            "       tripletctl embed --model MODEL [options] --image FILE...\n"
            "\n"
            "Read one vector per line on stdin, either a JSON array of numbers\n"
            "([0.1, 2, -3e-2]) or CSV (0.1,2,-3e-2), each with the model's input dimension,\n"
            "and write one JSON array per vector on stdout (float32 values, %%.9g).\n"
            "Blank lines are skipped. A bad line is reported on stderr with its line\n"
            "number and skipped; the exit status is then 1.\n"
            "\n"
            "  --model PATH      model file: safetensors, or ONNX when the name ends in .onnx\n"
            "  --normalize       L2-normalise the embeddings (default: the model's setting)\n"
            "  --no-normalize    do not normalise\n"
            "  --batch N         vectors per forward pass (default %d, at most %d)\n"
            "  --image FILE...   embed PNG or JPEG files instead of stdin (a model with `image`\n"
            "                    metadata; decoded, converted and resized as proto/images.md says),\n"
            "                    one line per file in order; a bad file is reported and skipped\n",
            EMB_DEFAULT_BATCH, EMB_MAX_BATCH);
}

typedef struct {
    const mdl_model *m;
    int normalize;
    size_t batch, n; /* capacity, rows pending */
    float *x, *y;    /* batch x input_dim, batch x output_dim */
    size_t *line;    /* input line of each pending row */
    mdl_ws ws;
    size_t bad; /* lines refused */
} embedder;

static void report(embedder *e, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(embedder *e, size_t line, const char *fmt, ...) {
    if (e->bad++ >= EMB_MAX_REPORTS) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tripletctl embed: line %zu: ", line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Parse one number field of a CSV line; returns 0 and *out, or -1. */
static int parse_field(const char *s, const char *end, float *out) {
    while (s < end && (*s == ' ' || *s == '\t')) s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t')) end--;
    if (s == end || end - s > 64) return -1;
    char tmp[72];
    memcpy(tmp, s, (size_t)(end - s));
    tmp[end - s] = '\0';
    char *e;
    errno = 0;
    double d = strtod(tmp, &e);
    if (*e != '\0' || !tr_f32_ok(d)) return -1;
    *out = (float)d;
    return 0;
}

/* Parse a line into dst (dim floats). Returns 0, or -1 after reporting. */
static int parse_line(embedder *e, char *s, size_t len, size_t line, float *dst) {
    int dim = mdl_input_dim(e->m);
    const char *p = s;
    while (*p == ' ' || *p == '\t') p++;
    if (*p == '[' || *p == '{') {
        cJSON *a = cJSON_ParseWithLength(s, len);
        int rc = -1;
        if (a == NULL)
            report(e, line, "not valid JSON");
        else if (!cJSON_IsArray(a))
            report(e, line, "JSON value is not an array");
        else if (cJSON_GetArraySize(a) != dim)
            report(e, line, "%d values, the model takes %d", cJSON_GetArraySize(a), dim);
        else {
            long i = 0;
            const cJSON *v;
            for (v = a->child; v; v = v->next, i++) {
                if (!cJSON_IsNumber(v) || !tr_f32_ok(v->valuedouble)) {
                    report(e, line, "value [%ld] is not a finite float32 number", i);
                    break;
                }
                dst[i] = (float)v->valuedouble;
            }
            if (v == NULL) rc = 0;
        }
        cJSON_Delete(a);
        return rc;
    }
    long k = 0;
    const char *f = s, *end = s + len;
    for (;;) {
        const char *c = memchr(f, ',', (size_t)(end - f));
        const char *fe = c ? c : end;
        if (k < dim && parse_field(f, fe, &dst[k]) != 0) {
            report(e, line, "CSV field %ld is not a finite float32 number", k + 1);
            return -1;
        }
        k++;
        if (c == NULL) break;
        f = c + 1;
    }
    if (k != dim) {
        report(e, line, "%ld values, the model takes %d", k, dim);
        return -1;
    }
    return 0;
}

/* Forward the pending rows and print them. Returns 0 or -1 (fatal). */
static int flush(embedder *e) {
    if (e->n == 0) return 0;
    tr_err err;
    size_t od = (size_t)mdl_output_dim(e->m);
    if (mdl_forward(e->m, e->x, e->n, e->y, e->normalize, &e->ws, &err) != TR_OK) {
        fprintf(stderr, "tripletctl embed: %s\n", err.msg);
        return -1;
    }
    for (size_t r = 0; r < e->n; r++) {
        const float *v = e->y + r * od;
        size_t j = 0;
        while (j < od && isfinite(v[j])) j++;
        if (j < od) {
            report(e, e->line[r], "the embedding overflows float32 (input values too large)");
            continue;
        }
        putchar('[');
        for (j = 0; j < od; j++) printf(j ? ",%.9g" : "%.9g", (double)v[j]);
        fputs("]\n", stdout);
    }
    e->n = 0;
    return ferror(stdout) ? -1 : 0;
}

static int parse_batch(const char *v, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long b = strtoull(v, &end, 10);
    if (*v < '0' || *v > '9' || *end != '\0' || errno || b < 1 || b > EMB_MAX_BATCH) {
        fprintf(stderr, "tripletctl embed: --batch: \"%s\" is not an integer in 1..%d\n", v, EMB_MAX_BATCH);
        return -1;
    }
    *out = (size_t)b;
    return 0;
}

/* --image FILE...: each file decoded into the pending batch; a bad file is reported by name. */
static int embed_images(embedder *e, char **files, int n_files) {
    size_t in = (size_t)mdl_input_dim(e->m);
    for (int i = 0; i < n_files; i++) {
        uint8_t *buf;
        size_t len;
        tr_err err;
        tr_clearerr(&err);
        if (dat_read_file(files[i], &buf, &len, &err) != TR_OK) {
            fprintf(stderr, "tripletctl embed: %s\n", err.msg);
            e->bad++;
            continue;
        }
        int rc = img_to_input(buf, len, &e->m->image, IMG_DEFAULT_MAX_PIXELS, e->x + e->n * in, &err);
        free(buf);
        if (rc != TR_OK) {
            fprintf(stderr, "tripletctl embed: %s: %s\n", files[i], err.msg);
            e->bad++;
            continue;
        }
        e->line[e->n++] = (size_t)i + 1;
        if (e->n == e->batch && flush(e)) return -1;
    }
    return flush(e);
}

/* Embed the JSON-lines or CSV rows of stdin in batches, writing JSON lines;
 * bad lines are reported and skipped (e->bad). 0, or -1 on an I/O or
 * forward failure (printed). */
static int embed_stdin(embedder *e) {
    char *buf = NULL;
    size_t cap = 0, line = 0, in = (size_t)mdl_input_dim(e->m);
    int rc = -1;
    ssize_t got;
    while ((got = getline(&buf, &cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        line++;
        while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
        if (strspn(buf, " \t") == len) continue; /* blank */
        if (memchr(buf, '\0', len)) {
            report(e, line, "contains a NUL byte");
            continue;
        }
        if (parse_line(e, buf, len, line, e->x + e->n * in) != 0) continue;
        e->line[e->n++] = line;
        if (e->n == e->batch && flush(e)) goto fail;
    }
    if (ferror(stdin)) {
        fprintf(stderr, "tripletctl embed: reading stdin: %s\n", strerror(errno));
        goto fail;
    }
    if (flush(e)) goto fail;
    if (fflush(stdout) != 0) {
        fprintf(stderr, "tripletctl embed: writing stdout: %s\n", strerror(errno));
        goto fail;
    }
    rc = 0;
fail:
    free(buf);
    return rc;
}

int cmd_embed(int argc, char **argv) {
    const char *model = NULL;
    char **images = NULL;
    int n_images = 0;
    embedder e;
    memset(&e, 0, sizeof e);
    e.normalize = -1;
    e.batch = EMB_DEFAULT_BATCH;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int missing = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--normalize") == 0)
            e.normalize = 1;
        else if (strcmp(a, "--no-normalize") == 0)
            e.normalize = 0;
        else if (strcmp(a, "--image") == 0) {
            images = argv + i + 1;
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) i++, n_images++;
            if (n_images == 0) {
                fprintf(stderr, "tripletctl embed: --image needs at least one FILE\n");
                return 2;
            }
        } else if ((v = cli_opt_value("embed", argc, argv, &i, "--model", &missing))) {
            model = v;
            v = NULL;
        } else if ((v = cli_opt_value("embed", argc, argv, &i, "--batch", &missing))) {
            /* v is checked below */
        } else if (missing) {
            return 2;
        } else {
            fprintf(stderr, "tripletctl embed: unknown argument \"%s\" (see --help)\n", a);
            return 2;
        }
        if (v && parse_batch(v, &e.batch)) return 2;
    }
    if (model == NULL) {
        fprintf(stderr, "tripletctl embed: --model is required\n");
        usage(stderr);
        return 2;
    }
    mdl_model *m = NULL;
    tr_err err;
    if (mdl_load(model, &m, &err) != TR_OK) {
        fprintf(stderr, "tripletctl embed: %s: %s\n", model, err.msg);
        return 1;
    }
    e.m = m;
    int rc = 1;
    if (images && !m->has_image) {
        fprintf(stderr, "tripletctl embed: --image: %s takes no images (its file has no \"image\" metadata)\n", model);
        mdl_free(m);
        return 2;
    }
    size_t in = (size_t)mdl_input_dim(m), od = (size_t)mdl_output_dim(m);
    e.x = malloc(e.batch * in * sizeof(float)); /* batch <= 65536, dims <= 65536: no overflow */
    e.y = malloc(e.batch * od * sizeof(float));
    e.line = malloc(e.batch * sizeof(size_t));
    if (!e.x || !e.y || !e.line) {
        fprintf(stderr, "tripletctl embed: out of memory for a batch of %zu\n", e.batch);
        goto done;
    }
    if (images) {
        if (embed_images(&e, images, n_images)) goto done;
        rc = e.bad ? 1 : 0;
        goto done;
    }
    if (embed_stdin(&e)) goto done;
    if (e.bad > EMB_MAX_REPORTS) fprintf(stderr, "tripletctl embed: ... %zu more bad lines\n", e.bad - EMB_MAX_REPORTS);
    if (e.bad) fprintf(stderr, "tripletctl embed: %zu bad line%s skipped\n", e.bad, e.bad == 1 ? "" : "s");
    rc = e.bad ? 1 : 0;
done:
    free(e.x);
    free(e.y);
    free(e.line);
    mdl_ws_free(&e.ws);
    mdl_free(m);
    return rc;
}
