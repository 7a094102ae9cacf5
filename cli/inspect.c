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
               "Load and validate a model file (proto/model-format.md: safetensors, or ONNX\n"
               "when the name ends in .onnx) and print its layers (an MLP: in, out,\n"
               "activation; an ONNX graph: input and output shapes, ops by count, opset,\n"
               "multiply-adds), dimensions, parameter count, dtype, scoring defaults\n"
               "(normalize, metric, loss, margin), the image preprocessing, every metadata\n"
               "entry and the file's sha256.\n"
               "Exit status 1 with the validation message when the file is refused.\n"
               "\n"
               "  --json   one JSON object on stdout instead of text\n");
}

static const cJSON *item(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

/* The MLP's layers, from the same description GET /v1/model serves. */
static void print_mlp(const cJSON *d) {
    const cJSON *layers = item(d, "layers"), *ly;
    int mean = cJSON_IsTrue(item(d, "input_mean")), scale = cJSON_IsTrue(item(d, "input_scale")), l = 0;
    printf("activation:   %s\n", cJSON_GetStringValue(item(d, "activation")));
    printf("input:        %s%s%s\n", mean ? "input.mean " : "", scale ? "input.scale " : "",
           mean || scale ? "(x' = (x - mean) * scale)" : "raw (no preprocessing tensors)");
    printf("layers:       %d\n", cJSON_GetArraySize(layers));
    cJSON_ArrayForEach(ly, layers) {
        printf("  %2d  %6.0f -> %-6.0f  bias %-3s  then %s\n", l++, cJSON_GetNumberValue(item(ly, "in")),
               cJSON_GetNumberValue(item(ly, "out")), cJSON_IsTrue(item(ly, "bias")) ? "yes" : "no",
               cJSON_GetStringValue(item(ly, "activation")));
    }
}

static void print_shape(const char *label, const cJSON *io) {
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(io, "shape"), *d;
    printf("%s \"%s\" [", label, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(io, "name")));
    cJSON_ArrayForEach(d, sh) {
        if (cJSON_IsString(d))
            printf("%s%s", d == sh->child ? "" : ", ", d->valuestring);
        else
            printf("%s%.0f", d == sh->child ? "" : ", ", d->valuedouble);
    }
    printf("]\n");
}

/* The graph's summary, from the same description GET /v1/model serves. */
static void print_graph(const cJSON *d) {
    const cJSON *ops = cJSON_GetObjectItemCaseSensitive(d, "ops"), *op;
    const cJSON *fb = cJSON_GetObjectItemCaseSensitive(d, "fixed_batch");
    printf("opset:        %.0f\n", cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "opset")));
    print_shape("input:       ", cJSON_GetObjectItemCaseSensitive(d, "input"));
    print_shape("output:      ", cJSON_GetObjectItemCaseSensitive(d, "output"));
    if (cJSON_IsNumber(fb))
        printf("batch:        fixed at %.0f (shorter batches are padded, longer ones split)\n", fb->valuedouble);
    else
        printf("batch:        dynamic\n");
    printf("multiply-adds per sample: %.0f\n", cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(d, "macs")));
    printf("ops:          %d kinds\n", cJSON_GetArraySize(ops));
    cJSON_ArrayForEach(op, ops)
        printf("  %-24s %4.0f\n", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(op, "op")),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(op, "count")));
}

static void print_text(const mdl_model *m, const cJSON *d, const char *path) {
    const cJSON *dims = item(d, "dims"), *dm;
    printf("model:        %s\n", path);
    printf("format:       %s\n", mdl_format_name(m));
    printf("name:         %s\n", m->name[0] ? m->name : "(none)");
    if (m->description[0]) printf("description:  %s\n", m->description);
    printf("sha256:       %s\n", m->sha256);
    printf("dtype:        %s\n", m->dtype);
    if (m->format == MDL_FMT_SAFETENSORS) {
        printf("dims:         ");
        cJSON_ArrayForEach(dm, dims) printf("%s%.0f", dm == dims->child ? "" : " -> ", dm->valuedouble);
        printf("  (input %d, output %d)\n", mdl_input_dim(m), mdl_output_dim(m));
    } else
        printf("dims:         input %d, output %d (per sample, flattened)\n", mdl_input_dim(m), mdl_output_dim(m));
    printf("parameters:   %zu\n", m->n_params);
    printf("normalize:    %s\n", m->normalize ? "true" : "false");
    printf("metric:       %s\n", dist_name(m->metric));
    printf("loss:         %s\n", loss_name(m->loss));
    printf("margin:       %.9g\n", m->margin);
    if (m->has_image)
        printf("image:        %d x %d x %d (channels x height x width); x/255, then (x - mean) / std per channel\n",
               m->image.channels, m->image.height, m->image.width);
    if (m->format == MDL_FMT_SAFETENSORS)
        print_mlp(d);
    else
        print_graph(d);
    printf("metadata:     %zu entr%s\n", m->n_meta, m->n_meta == 1 ? "y" : "ies");
    for (size_t i = 0; i < m->n_meta; i++) printf("  %s = %s\n", m->meta[2 * i], m->meta[2 * i + 1]);
}

static int print_json(cJSON *d, const char *path) {
    char *s = NULL;
    if (!cJSON_AddStringToObject(d, "path", path) || (s = cJSON_Print(d)) == NULL) {
        fprintf(stderr, "tripletctl inspect: out of memory\n");
        return 1;
    }
    printf("%s\n", s);
    free(s);
    return 0;
}

int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "tripletctl inspect: unknown option \"%s\" (see --help)\n", argv[i]);
            return 2;
        } else if (path == NULL)
            path = argv[i];
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
        /* I/O errors already name the path */
        if (strstr(err.msg, path))
            fprintf(stderr, "tripletctl inspect: %s\n", err.msg);
        else
            fprintf(stderr, "tripletctl inspect: %s: %s\n", path, err.msg);
        return 1;
    }
    int rc = 0;
    cJSON *d = mdl_describe_json(m);
    if (d == NULL) {
        fprintf(stderr, "tripletctl inspect: out of memory\n");
        rc = 1;
    } else if (json)
        rc = print_json(d, path);
    else
        print_text(m, d, path);
    cJSON_Delete(d);
    mdl_free(m);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
