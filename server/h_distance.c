/* h_distance.c - POST /v1/distance: row-wise or pairwise distances. */
#include "vectors.h"

int h_distance(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const FIELDS[] = {"a", "b", "metric", "embed", "normalize", "pairwise", NULL};
    srv_vec_opts o;
    const float *a, *b;
    size_t na = 0, nb = 0, dim = 0, cells;
    int pairwise = 0, rc;
    double *d;
    tr_err err;
    cJSON *res = NULL;
    if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
    if ((rc = srv_vec_opts_parse(ctx, body, 1, &o, out))) return rc;
    if ((rc = jio_bool(body, "pairwise", &pairwise, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "a", 0, &o, &na, &dim, &a, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "b", 1, &o, &nb, &dim, &b, out))) return rc;
    if (!pairwise && na != nb)
        return srv_fail(out, 422, "b", "b: expected %zu vectors (as many as a; or set \"pairwise\": true), got %zu", na,
                        nb);
    cells = pairwise ? na * nb : na; /* both <= max-batch */
    if (!(d = srv_doubles(ctx, cells, out))) return out->status;
    if (pairwise) {
        tr_clearerr(&err);
        if ((rc = dist_matrix(o.metric, a, na, b, nb, dim, d, &err)) != TR_OK) return srv_fail_tr(out, rc, &err);
    } else
        dist_rows(o.metric, a, b, na, dim, d);
    if (!(res = cJSON_CreateObject())) goto oom;
    cJSON_AddStringToObject(res, "metric", dist_name(o.metric));
    if (pairwise) {
        cJSON *m = cJSON_AddArrayToObject(res, "matrix");
        if (!m) goto oom;
        for (size_t i = 0; i < na; i++) {
            cJSON *row = jio_doubles(d + i * nb, nb);
            if (!row) goto oom;
            cJSON_AddItemToArray(m, row);
        }
    } else {
        cJSON *arr = jio_doubles(d, na);
        if (!arr) goto oom;
        cJSON_AddItemToObject(res, "distances", arr);
    }
    out->body = res;
    return out->status = 200;
oom:
    cJSON_Delete(res);
    return srv_fail(out, 503, "", "out of memory");
}
