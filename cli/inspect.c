/* inspect.c - `tripletctl inspect MODEL [--json]`: validate a model file and describe it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "model.h"

static void usage(FILE *f) {
    fprintf(f, "usage: tripletctl inspect MODEL [--json]\n"
               "\n"
               "Load and validate a model file (proto/model-format.md) and print its layers\n"
               "(in, out, activation), dimensions, parameter count, dtype, scoring defaults\n"
               "(normalize, metric, loss, margin), every metadata entry and the file's sha256.\n"
               "Exit status 1 with the validation message when the file is refused.\n"
               "\n"
               "  --json   one JSON object on stdout instead of text\n");
}

/* Activation applied after layer l: the model's between layers, none after the last. */
static const char *layer_act(const mdl_model *m, int l) { return l + 1 < m->n_layers ? mdl_act_name(m->act) : "none"; }

static void print_text(const mdl_model *m, const char *path) {
    printf("model:        %s\n", path);
    printf("name:         %s\n", m->name[0] ? m->name : "(none)");
    if (m->description[0]) printf("description:  %s\n", m->description);
    printf("sha256:       %s\n", m->sha256);
    printf("dtype:        %s\n", m->dtype);
    printf("dims:         %d", mdl_input_dim(m));
    for (int l = 0; l < m->n_layers; l++) printf(" -> %d", m->layers[l].out);
    printf("  (input %d, output %d)\n", mdl_input_dim(m), mdl_output_dim(m));
    printf("parameters:   %zu\n", m->n_params);
    printf("activation:   %s\n", mdl_act_name(m->act));
    printf("normalize:    %s\n", m->normalize ? "true" : "false");
    printf("metric:       %s\n", dist_name(m->metric));
    printf("loss:         %s\n", loss_name(m->loss));
    printf("margin:       %.9g\n", m->margin);
    printf("input:        %s%s%s\n", m->in_mean ? "input.mean " : "", m->in_scale ? "input.scale " : "",
           m->in_mean || m->in_scale ? "(x' = (x - mean) * scale)" : "raw (no preprocessing tensors)");
    printf("layers:       %d\n", m->n_layers);
    for (int l = 0; l < m->n_layers; l++)
        printf("  %2d  %6d -> %-6d  bias %-3s  then %s\n", l, m->layers[l].in, m->layers[l].out,
               m->layers[l].b ? "yes" : "no", layer_act(m, l));
    printf("metadata:     %zu entr%s\n", m->n_meta, m->n_meta == 1 ? "y" : "ies");
    for (size_t i = 0; i < m->n_meta; i++) printf("  %s = %s\n", m->meta[2 * i], m->meta[2 * i + 1]);
}

static int print_json(const mdl_model *m, const char *path) {
    int ok = 1;
    cJSON *o = cJSON_CreateObject(), *layers = NULL, *meta = NULL;
    char *s = NULL;
    if (o == NULL) goto fail;
    ok &= cJSON_AddStringToObject(o, "path", path) != NULL;
    ok &= cJSON_AddStringToObject(o, "name", m->name) != NULL;
    ok &= cJSON_AddStringToObject(o, "description", m->description) != NULL;
    ok &= cJSON_AddStringToObject(o, "sha256", m->sha256) != NULL;
    ok &= cJSON_AddStringToObject(o, "dtype", m->dtype) != NULL;
    ok &= cJSON_AddNumberToObject(o, "input_dim", mdl_input_dim(m)) != NULL;
    ok &= cJSON_AddNumberToObject(o, "output_dim", mdl_output_dim(m)) != NULL;
    cJSON *dims = cJSON_AddArrayToObject(o, "dims");
    ok &= dims != NULL && cJSON_AddItemToArray(dims, cJSON_CreateNumber(mdl_input_dim(m)));
    for (int l = 0; ok && l < m->n_layers; l++) ok &= cJSON_AddItemToArray(dims, cJSON_CreateNumber(m->layers[l].out));
    ok &= cJSON_AddNumberToObject(o, "parameters", (double)m->n_params) != NULL;
    ok &= cJSON_AddStringToObject(o, "activation", mdl_act_name(m->act)) != NULL;
    ok &= cJSON_AddBoolToObject(o, "normalize", m->normalize) != NULL;
    ok &= cJSON_AddStringToObject(o, "metric", dist_name(m->metric)) != NULL;
    ok &= cJSON_AddStringToObject(o, "loss", loss_name(m->loss)) != NULL;
    ok &= cJSON_AddNumberToObject(o, "margin", m->margin) != NULL;
    ok &= cJSON_AddBoolToObject(o, "input_mean", m->in_mean != NULL) != NULL;
    ok &= cJSON_AddBoolToObject(o, "input_scale", m->in_scale != NULL) != NULL;
    ok &= (layers = cJSON_AddArrayToObject(o, "layers")) != NULL;
    for (int l = 0; ok && l < m->n_layers; l++) {
        cJSON *ly = cJSON_CreateObject();
        ok &= ly != NULL && cJSON_AddItemToArray(layers, ly);
        if (!ok) break;
        ok &= cJSON_AddNumberToObject(ly, "in", m->layers[l].in) != NULL;
        ok &= cJSON_AddNumberToObject(ly, "out", m->layers[l].out) != NULL;
        ok &= cJSON_AddBoolToObject(ly, "bias", m->layers[l].b != NULL) != NULL;
        ok &= cJSON_AddStringToObject(ly, "activation", layer_act(m, l)) != NULL;
    }
    ok &= ok && (meta = cJSON_AddObjectToObject(o, "metadata")) != NULL;
    for (size_t i = 0; ok && i < m->n_meta; i++) ok &= cJSON_AddStringToObject(meta, m->meta[2 * i], m->meta[2 * i + 1]) != NULL;
    if (!ok || (s = cJSON_Print(o)) == NULL) goto fail;
    printf("%s\n", s);
    free(s);
    cJSON_Delete(o);
    return 0;
fail:
    fprintf(stderr, "tripletctl inspect: out of memory\n");
    cJSON_Delete(o);
    return 1;
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "tripletctl inspect: unknown option \"%s\" (see --help)\n", argv[i]);
            return 2;
        } else if (path == NULL) path = argv[i];
        else {
            fprintf(stderr, "tripletctl inspect: one MODEL only (got \"%s\" and \"%s\")\n", path, argv[i]);
            return 2;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "tripletctl inspect: MODEL is required\n");
        usage(stderr);
        return 2;
    }
    mdl_model *m = NULL;
    tr_err err;
    tr_clearerr(&err);
    if (mdl_load(path, &m, &err) != TR_OK) {
        /* I/O errors already start with the path */
        if (strncmp(err.msg, path, strlen(path)) == 0) fprintf(stderr, "tripletctl inspect: %s\n", err.msg);
        else fprintf(stderr, "tripletctl inspect: %s: %s\n", path, err.msg);
        return 1;
    }
    int rc = 0;
    if (json) rc = print_json(m, path);
    else print_text(m, path);
    mdl_free(m);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
