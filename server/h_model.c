/* h_model.c - GET /v1/model: what is loaded and the effective scoring defaults. */
#include "handlers.h"

int h_model(const srv_ctx *ctx, const cJSON *body, srv_reply *out)
{
    const srv_state *st = ctx->state;
    const mdl_model *m = st->model;
    cJSON *o = cJSON_CreateObject(), *layers;
    (void)body;
    if (!o) goto oom;
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddStringToObject(o, "description", m->description);
    cJSON_AddNumberToObject(o, "input_dim", mdl_input_dim(m));
    cJSON_AddNumberToObject(o, "output_dim", mdl_output_dim(m));
    if (!(layers = cJSON_AddArrayToObject(o, "layers"))) goto oom;
    for (int i = 0; i < m->n_layers; i++) {
        cJSON *l = cJSON_CreateObject();
        if (!l) goto oom;
        cJSON_AddItemToArray(layers, l);
        cJSON_AddNumberToObject(l, "in", m->layers[i].in);
        cJSON_AddNumberToObject(l, "out", m->layers[i].out);
        cJSON_AddStringToObject(l, "activation", i + 1 < m->n_layers ? mdl_act_name(m->act) : "identity");
        cJSON_AddBoolToObject(l, "bias", m->layers[i].b != NULL);
    }
    cJSON_AddBoolToObject(o, "normalize", m->normalize);
    cJSON_AddStringToObject(o, "metric", dist_name(st->metric));
    cJSON_AddStringToObject(o, "loss", loss_name(st->triplet_loss));
    cJSON_AddStringToObject(o, "pair_loss", loss_name(st->pair_loss));
    cJSON_AddNumberToObject(o, "margin", st->margin);
    cJSON_AddNumberToObject(o, "parameters", (double)m->n_params);
    cJSON_AddStringToObject(o, "dtype", m->dtype);
    cJSON_AddStringToObject(o, "sha256", m->sha256);
    cJSON_AddStringToObject(o, "path", st->model_path);
    cJSON_AddStringToObject(o, "loaded_at", st->loaded_at_iso);
    cJSON_AddNumberToObject(o, "generation", st->generation);
    if (st->gallery) {
        cJSON *g = cJSON_AddObjectToObject(o, "gallery");
        if (!g) goto oom;
        cJSON_AddNumberToObject(g, "n", (double)st->gallery->n);
        cJSON_AddNumberToObject(g, "dim", (double)st->gallery->dim);
        cJSON_AddStringToObject(g, "sha256", st->gallery->sha256);
        cJSON_AddBoolToObject(g, "labels", st->gallery->labels != NULL);
        cJSON_AddBoolToObject(g, "ids", st->gallery->ids != NULL);
    } else cJSON_AddNullToObject(o, "gallery");
    out->body = o;
    return out->status = 200;
oom:
    cJSON_Delete(o);
    return srv_fail(out, 503, "", "out of memory");
}
