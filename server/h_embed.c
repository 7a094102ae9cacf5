/* h_embed.c - POST /v1/embed and the OpenAI-shaped POST /v1/embeddings. */
#include <stdlib.h>
#include <string.h>

#include "vectors.h"

static const jio_choice FORMATS[] = {{"float", 0}, {"base64", 1}, {NULL, 0}}; /* value: base64 or not */

/* One embedding as an array of numbers or a base64 string. */
static cJSON *embedding_item(const float *v, size_t dim, int b64) {
    if (!b64) return jio_floats(v, dim);
    char *s = jio_b64_encode(v, dim);
    cJSON *x = s ? cJSON_CreateString(s) : NULL;
    free(s);
    return x;
}

/* Shared: parse field `name`, embed with the request's normalize. */
static int embed_field(const srv_ctx *ctx, const cJSON *body, const char *name, size_t *n, size_t *dim, const float **v,
                       int *b64, srv_reply *out) {
    srv_vec_opts o = {1, -1, ctx->state->metric};
    int rc;
    if ((rc = jio_bool(body, "normalize", &o.normalize, out))) return rc;
    if ((rc = jio_enum(body, "encoding_format", FORMATS, b64, out))) return rc;
    *dim = 0;
    return srv_vectors(ctx, body, name, 0, &o, n, dim, v, out);
}

int h_embed(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const FIELDS[] = {"inputs", "normalize", "encoding_format", NULL};
    int b64 = 0;
    const float *v;
    size_t n = 0, dim = 0;
    cJSON *o = NULL, *arr;
    int rc;
    if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
    if ((rc = embed_field(ctx, body, "inputs", &n, &dim, &v, &b64, out))) return rc;
    if (!(o = cJSON_CreateObject())) goto oom;
    cJSON_AddStringToObject(o, "model", ctx->state->model->name);
    cJSON_AddNumberToObject(o, "dim", (double)dim);
    cJSON_AddStringToObject(o, "encoding_format", FORMATS[b64].name);
    if (!(arr = cJSON_AddArrayToObject(o, "embeddings"))) goto oom;
    for (size_t i = 0; i < n; i++) {
        cJSON *e = embedding_item(v + i * dim, dim, b64);
        if (!e) goto oom;
        cJSON_AddItemToArray(arr, e);
    }
    out->body = o;
    return out->status = 200;
oom:
    cJSON_Delete(o);
    return srv_fail(out, 503, "", "out of memory");
}

int h_embeddings(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    /* "user" and "dimensions" are OpenAI client fields: accepted, and
     * dimensions must equal the model's output size */
    static const char *const FIELDS[] = {"input", "model", "encoding_format", "normalize", "user", "dimensions", NULL};
    const char *model = NULL, *user = NULL;
    int b64 = 0;
    const float *v;
    size_t n = 0, dim = 0, want = 0;
    cJSON *o = NULL, *arr, *usage;
    int rc;
    if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
    if ((rc = jio_string(body, "model", &model, out))) return rc;
    if ((rc = jio_string(body, "user", &user, out))) return rc;
    size_t od = (size_t)mdl_output_dim(ctx->state->model);
    if ((rc = jio_size(body, "dimensions", 1, MDL_MAX_VECTOR, &want, out))) return rc;
    if (want && want != od)
        return srv_fail(out, 422, "dimensions", "dimensions: this model returns %zu dimensions, not %zu", od, want);
    if ((rc = embed_field(ctx, body, "input", &n, &dim, &v, &b64, out))) return rc;
    if (!(o = cJSON_CreateObject())) goto oom;
    cJSON_AddStringToObject(o, "object", "list");
    if (!(arr = cJSON_AddArrayToObject(o, "data"))) goto oom;
    for (size_t i = 0; i < n; i++) {
        cJSON *d = cJSON_CreateObject(), *e;
        if (!d) goto oom;
        cJSON_AddItemToArray(arr, d);
        cJSON_AddStringToObject(d, "object", "embedding");
        cJSON_AddNumberToObject(d, "index", (double)i);
        if (!(e = embedding_item(v + i * dim, dim, b64))) goto oom;
        cJSON_AddItemToObject(d, "embedding", e);
    }
    cJSON_AddStringToObject(o, "model", ctx->state->model->name);
    if (!(usage = cJSON_AddObjectToObject(o, "usage"))) goto oom;
    cJSON_AddNumberToObject(usage, "prompt_tokens", 0);
    cJSON_AddNumberToObject(usage, "total_tokens", 0);
    out->body = o;
    return out->status = 200;
oom:
    cJSON_Delete(o);
    return srv_fail(out, 503, "", "out of memory");
}
