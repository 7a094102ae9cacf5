/* eval.c - `tripletctl eval`: retrieval quality of a model against raw-input and untrained baselines. */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "data.h"
#include "eval.h"
#include "mlp.h"
#include "opt.h"
#include "par.h"
#include "train.h"

#define EV_BATCH 4096 /* rows per forward call */

typedef struct {
    const char *model, *data, *test, *split, *metric, *classes;
    size_t limit, gallery_limit;
    size_t threads;
    int json, no_map, no_baselines, seed_given, help;
    uint64_t seed;
    double test_fraction;
} eval_args;

static void usage(FILE *f) {
    fprintf(f, "usage: tripletctl eval --model MODEL [--data DATA] [options]\n"
               "\n"
               "Recall@1, Recall@5 and MAP@R of test queries against the training set as\n"
               "gallery (exact kNN), for the model's embeddings and two baselines: the raw\n"
               "inputs (with the model's input preprocessing) and the untrained network\n"
               "(same architecture, the trainer's seeded initial weights).\n"
               "\n"
               "  --model PATH        model file (safetensors, or .onnx; the untrained\n"
               "                      baseline needs a file tripletctl train wrote)\n"
               "  --data SPEC         IDX directory or prefix, .csv[.gz] or .jsonl[.gz]\n"
               "                      (default: Fashion-MNIST, found like `tripletctl train`)\n"
               "  --split NAME        IDX split of the queries (default test; \"train\" runs\n"
               "                      leave-one-out on the training split)\n"
               "  --test SPEC         the queries, any format (default: the IDX test split,\n"
               "                      or for CSV/JSON lines a stratified --test-fraction\n"
               "                      of --data, seed --seed)\n"
               "  --test-fraction F   (default 0.2)\n"
               "  --classes L,L,...   open-set run: queries and gallery of these labels only\n"
               "  --limit N           first N queries only\n"
               "  --gallery-limit N   first N gallery rows only\n"
               "  --metric NAME       sqeuclidean|euclidean|cosine|dot (default: the model's)\n"
               "  --seed S            seed of the untrained baseline's initial weights\n"
               "                      (default: the model's training seed, else 1)\n"
               "  --threads T         threads (default 1)\n"
               "  --no-map            Recall@1/@5 only (MAP@R needs k = R, much slower)\n"
               "  --no-baselines      the model only\n"
               "  --json              one JSON object on stdout\n");
}

#define A(f) offsetof(eval_args, f)
static const cli_opt_def opts[] = {
    {"--model", NULL, CLI_OPT_STR, A(model), 0, 0, NULL},
    {"--data", NULL, CLI_OPT_STR, A(data), 0, 0, NULL},
    {"--test", NULL, CLI_OPT_STR, A(test), 0, 0, NULL},
    {"--test-fraction", NULL, CLI_OPT_DBL, A(test_fraction), 0, 1, NULL},
    {"--split", NULL, CLI_OPT_STR, A(split), 0, 0, NULL},
    {"--metric", NULL, CLI_OPT_STR, A(metric), 0, 0, NULL},
    {"--classes", NULL, CLI_OPT_STR, A(classes), 0, 0, NULL},
    {"--limit", NULL, CLI_OPT_SIZE, A(limit), 0, 0, NULL},
    {"--gallery-limit", NULL, CLI_OPT_SIZE, A(gallery_limit), 0, 0, NULL},
    {"--threads", NULL, CLI_OPT_SIZE, A(threads), 0, 256, NULL},
    {"--seed", NULL, CLI_OPT_U64, A(seed), 0, 0, NULL},
    {"--no-map", NULL, CLI_OPT_SET, A(no_map), 0, 0, NULL},
    {"--no-baselines", NULL, CLI_OPT_SET, A(no_baselines), 0, 0, NULL},
    {"--json", NULL, CLI_OPT_SET, A(json), 0, 0, NULL},
    {"--help", "-h", CLI_OPT_SET, A(help), 0, 0, NULL},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

static int parse_args(int argc, char **argv, eval_args *a) {
    unsigned char seen[N_OPTS];
    memset(a, 0, sizeof *a);
    a->threads = 1;
    a->test_fraction = 0.2;
    if (cli_opts_parse("eval", opts, N_OPTS, argc, argv, a, seen)) return -1;
    a->seed_given = cli_opt_seen(opts, N_OPTS, seen, "--seed");
    return 0;
}

static const char *meta_get(const mdl_model *m, const char *key) {
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[2 * i], key) == 0) return m->meta[2 * i + 1];
    return NULL;
}

/* The training seed from the metadata ("training.seed", "seed" or ", seed N"
 * in the "recipe" line); leaves *seed as is when there is none. */
static void model_seed(const mdl_model *m, uint64_t *seed) {
    const char *s = meta_get(m, "training.seed");
    if (s == NULL) s = meta_get(m, "seed");
    if (s == NULL && (s = meta_get(m, "recipe")) != NULL && (s = strstr(s, ", seed ")) != NULL) s += 7;
    if (s == NULL || *s < '0' || *s > '9') return;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == 0 && end != s) *seed = v;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The batches of EV_BATCH rows, shared among the threads: each its own workspace and first failure. */
typedef struct {
    const mdl_model *m;
    const dat_set *d;
    float *e;
    size_t od;
    mdl_ws *ws;
    int *rc;
    tr_err *err;
} embed_task;

static void embed_part(void *ctx, size_t lo, size_t hi, int tid) {
    embed_task *t = ctx;
    for (size_t k = lo; k < hi && t->rc[tid] == TR_OK; k++) {
        size_t i = k * EV_BATCH, b = t->d->n - i < EV_BATCH ? t->d->n - i : EV_BATCH;
        t->rc[tid] = mdl_forward(t->m, t->d->x + i * t->d->dim, b, t->e + i * t->od, -1, &t->ws[tid], &t->err[tid]);
    }
}

/* Embed d's rows with m into a malloc'd n x output_dim array, the batches on threads threads (the same batches
 * for any thread count: the same embeddings). */
static int embed(const mdl_model *m, const dat_set *d, size_t threads, float **out, tr_err *err) {
    size_t od = (size_t)mdl_output_dim(m), bytes, nb = (d->n + EV_BATCH - 1) / EV_BATCH;
    size_t nt = threads < 1 ? 1 : threads > nb ? (nb ? nb : 1) : threads;
    *out = NULL;
    if (!tr_size_mul(d->n, od, &bytes) || !tr_size_mul(bytes, sizeof(float), &bytes))
        return tr_seterr(err, TR_ELIMIT, "data", "%zu x %zu embeddings overflow", d->n, od);
    embed_task t = {m,
                    d,
                    malloc(bytes ? bytes : 1),
                    od,
                    calloc(nt, sizeof(mdl_ws)),
                    calloc(nt, sizeof(int)),
                    calloc(nt, sizeof(tr_err))};
    par *p = NULL;
    int rc = t.e && t.ws && t.rc && t.err
                 ? par_new((int)nt, &p, err)
                 : tr_seterr(err, TR_ENOMEM, "", "cannot allocate %zu x %zu embeddings", d->n, od);
    if (rc == TR_OK) {
        openblas_set_num_threads(1); /* each thread runs its own GEMMs */
        par_for_id(p, nb, embed_part, &t);
        openblas_set_num_threads((int)threads);
        for (size_t k = 0; k < nt && rc == TR_OK; k++)
            if ((rc = t.rc[k]) != TR_OK && err) *err = t.err[k];
    }
    par_free(p);
    for (size_t k = 0; t.ws && k < nt; k++) mdl_ws_free(&t.ws[k]);
    free(t.ws), free(t.rc), free(t.err);
    if (rc != TR_OK) {
        free(t.e);
        return rc;
    }
    *out = t.e;
    return TR_OK;
}

/* The raw-input baseline sees the inputs as the model does: with its
 * input preprocessing x' = (x - mean) * scale. */
static int preprocess_copy(const mdl_model *m, const dat_set *d, float **out, tr_err *err) {
    size_t nv = d->n * d->dim; /* fits: the dataset exists */
    float *x = malloc((nv ? nv : 1) * sizeof *x);
    if (x == NULL) return tr_seterr(err, TR_ENOMEM, "", "cannot copy %zu x %zu inputs", d->n, d->dim);
    mlp_input_preprocess(m, d->x, d->n, x);
    *out = x;
    return TR_OK;
}

typedef struct {
    const char *key, *label;
    int done;
    evl_result r;
    double seconds;
} row;

static int score(const eval_args *a, dist_metric metric, const float *q, const dat_set *qd, const float *g,
                 const dat_set *gd, size_t dim, int loo, row *out, tr_err *err) {
    evl_opts o;
    evl_opts_default(&o);
    o.threads = (int)a->threads;
    o.exclude_self = loo;
    o.map_at_r = !a->no_map;
    double t0 = now_s();
    /* knn threads call SGEMM themselves: OpenBLAS must not add its own */
    openblas_set_num_threads(1);
    int rc = evl_retrieval(metric, q, qd->labels, qd->n, g, gd->labels, gd->n, dim, &o, &out->r, err);
    openblas_set_num_threads((int)a->threads);
    out->seconds = now_s() - t0;
    out->done = rc == TR_OK;
    return rc;
}

/* Keep the first n rows (0: all). */
static void truncate_set(dat_set *d, size_t n) {
    if (n == 0 || n >= d->n) return;
    if (d->ids != NULL)
        for (size_t i = n; i < d->n; i++) free(d->ids[i]);
    d->n = n;
}

/* Load the queries and the gallery as the options say (whole: the limits
 * apply after the split and the class filter, so they do not change them). */
static int load_sets(const eval_args *a, const char *spec, dat_set **qd, dat_set **gd, int *loo, tr_err *err) {
    dat_opts o;
    dat_set *all = NULL;
    int rc;
    dat_opts_default(&o);
    *qd = *gd = NULL;
    *loo = 0;
    if (a->test) {
        /* explicit query file (any format; an IDX directory gives its test split) */
        if (a->split) return tr_seterr(err, TR_EINVAL, "split", "--split and --test exclude each other");
        if ((rc = dat_load(spec, &o, gd, err)) != TR_OK) return rc;
        o.split = "test";
        return dat_load(a->test, &o, qd, err);
    }
    size_t sl = strlen(spec);
    int text = (sl >= 4 && (strstr(spec, ".csv") || strstr(spec, ".jsonl") || strstr(spec, ".ndjson")));
    if (!text) {
        const char *qs = a->split ? a->split : "test";
        o.split = "train";
        if ((rc = dat_load(spec, &o, gd, err)) != TR_OK) return rc;
        if (strcmp(qs, "train") == 0) {
            /* leave-one-out on the training split */
            *loo = 1;
            return TR_OK;
        }
        o.split = qs;
        return dat_load(spec, &o, qd, err);
    }
    if (a->split) return tr_seterr(err, TR_EINVAL, "split", "--split applies to IDX data; use --test with %s", spec);
    if ((rc = dat_load(spec, &o, &all, err)) != TR_OK) return rc;
    rc = dat_split_holdout(all, a->test_fraction, a->seed_given ? a->seed : 1, gd, qd, err);
    dat_free(all);
    return rc;
}

static cJSON *result_json(const row *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "recall_at_1", r->r.recall_at_1);
    cJSON_AddNumberToObject(o, "recall_at_5", r->r.recall_at_5);
    if (isnan(r->r.map_at_r))
        cJSON_AddNullToObject(o, "map_at_r");
    else
        cJSON_AddNumberToObject(o, "map_at_r", r->r.map_at_r);
    cJSON_AddNumberToObject(o, "mean_r", r->r.mean_r);
    cJSON_AddNumberToObject(o, "n_queries", (double)r->r.n_queries);
    cJSON_AddNumberToObject(o, "n_skipped", (double)r->r.n_skipped);
    cJSON_AddNumberToObject(o, "seconds", r->seconds);
    return o;
}

/* --classes, --gallery-limit and --limit applied to the query and gallery
 * sets (*qd = *gd for leave-one-out); 0, 1 with err set, or 2 (usage,
 * printed). */
static int select_rows(const eval_args *a, const int64_t *classes, size_t nclasses, int loo, dat_set **qd, dat_set **gd,
                       tr_err *err) {
    dat_set *tmp = NULL;
    if (nclasses) {
        if (dat_filter_classes(*gd, classes, nclasses, 1, &tmp, err) != TR_OK) return 1;
        dat_free(*gd);
        *gd = tmp;
        if (!loo) {
            if (dat_filter_classes(*qd, classes, nclasses, 1, &tmp, err) != TR_OK) return 1;
            dat_free(*qd);
            *qd = tmp;
        }
    }
    truncate_set(*gd, a->gallery_limit);
    if (!loo) truncate_set(*qd, a->limit);
    if (loo) {
        *qd = *gd;
        if (a->limit && a->limit < (*gd)->n) {
            fprintf(stderr, "tripletctl eval: --limit does not apply to a leave-one-out run (--split train); "
                            "use --gallery-limit\n");
            return 2;
        }
    }
    return 0;
}

/* The baselines: raw inputs (with the model's input preprocessing) and the
 * untrained network of the same architecture (an MLP, or a layer list
 * tripletctl train wrote as ONNX). */
static int baselines(const eval_args *a, const mdl_model *m, dist_metric metric, const dat_set *qd, const dat_set *gd,
                     int loo, row *rows, tr_err *err) {
    float *qx = NULL, *gx = NULL;
    mdl_model *init = NULL;
    size_t od = (size_t)mdl_output_dim(m);
    int rc;
    if ((rc = preprocess_copy(m, gd, &gx, err)) != TR_OK ||
        (!loo && (rc = preprocess_copy(m, qd, &qx, err)) != TR_OK) ||
        (rc = score(a, metric, loo ? gx : qx, qd, gx, gd, gd->dim, loo, &rows[1], err)) != TR_OK)
        goto done;
    free(qx);
    free(gx);
    qx = gx = NULL;
    /* the untrained network: same architecture and preprocessing, the trainer's seeded init */
    trn_config cfg;
    trn_config_default(&cfg);
    cfg.metric = metric;
    if (a->seed_given)
        cfg.seed = a->seed;
    else
        model_seed(m, &cfg.seed);
    rc = trn_init_like(m, &cfg, &init, err);
    if (rc == TR_EINVAL && strcmp(err->field, "model") == 0) { /* the file does not say how to rebuild it */
        if (!a->json) fprintf(stderr, "tripletctl eval: no untrained baseline: %s\n", err->msg);
        rc = TR_OK;
        goto done;
    }
    if (rc != TR_OK || (rc = embed(init, gd, a->threads, &gx, err)) != TR_OK ||
        (!loo && (rc = embed(init, qd, a->threads, &qx, err)) != TR_OK) ||
        (rc = score(a, metric, loo ? gx : qx, qd, gx, gd, od, loo, &rows[2], err)) != TR_OK)
        goto done;
    if (!a->json) fprintf(stderr, "tripletctl eval: untrained baseline: seed %llu\n", (unsigned long long)cfg.seed);
done:
    free(qx);
    free(gx);
    mdl_free(init);
    return rc;
}

/* The results: one JSON object (--json) or a table; 0, or -1 out of memory. */
static int report(const eval_args *a, const mdl_model *m, const char *spec, const dat_set *qd, const dat_set *gd,
                  int loo, dist_metric metric, const int64_t *classes, size_t nclasses, const row *rows) {
    if (a->json) {
        cJSON *o = cJSON_CreateObject(), *res = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", a->model);
        cJSON_AddStringToObject(o, "model_name", m->name);
        cJSON_AddStringToObject(o, "data", spec);
        cJSON_AddStringToObject(o, "queries", loo ? "leave-one-out" : qd->source);
        cJSON_AddStringToObject(o, "gallery", gd->source);
        cJSON_AddNumberToObject(o, "n_queries", (double)qd->n);
        cJSON_AddNumberToObject(o, "n_gallery", (double)gd->n);
        cJSON_AddStringToObject(o, "metric", dist_name(metric));
        cJSON_AddBoolToObject(o, "leave_one_out", loo);
        if (nclasses) {
            cJSON *c = cJSON_AddArrayToObject(o, "classes");
            for (size_t i = 0; i < nclasses; i++) cJSON_AddItemToArray(c, cJSON_CreateNumber((double)classes[i]));
        } else {
            cJSON_AddNullToObject(o, "classes");
        }
        for (int i = 0; i < 3; i++)
            if (rows[i].done) cJSON_AddItemToObject(res, rows[i].key, result_json(&rows[i]));
        cJSON_AddItemToObject(o, "results", res);
        char *txt = cJSON_Print(o);
        cJSON_Delete(o);
        if (txt == NULL) {
            fprintf(stderr, "tripletctl eval: out of memory\n");
            return -1;
        }
        printf("%s\n", txt);
        free(txt);
    } else {
        printf("%-20s %9s %9s %9s %8s\n", "", "Recall@1", "Recall@5", "MAP@R", "seconds");
        for (int i = 0; i < 3; i++) {
            if (!rows[i].done) continue;
            char mp[16];
            if (isnan(rows[i].r.map_at_r))
                snprintf(mp, sizeof mp, "-");
            else
                snprintf(mp, sizeof mp, "%.4f", rows[i].r.map_at_r);
            printf("%-20s %9.4f %9.4f %9s %8.1f\n", rows[i].label, rows[i].r.recall_at_1, rows[i].r.recall_at_5, mp,
                   rows[i].seconds);
        }
        printf("(%zu queries scored, %zu without a gallery row of their label; metric %s%s)\n", rows[0].r.n_queries,
               rows[0].r.n_skipped, dist_name(metric), nclasses ? "; open-set classes only" : "");
    }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    eval_args a;
    tr_err err;
    mdl_model *m = NULL;
    dat_set *qd = NULL, *gd = NULL;
    float *qe = NULL, *ge = NULL;
    int64_t classes[CLI_MAX_LABELS];
    size_t nclasses = 0;
    char found[1024];
    int rc = 1, loo = 0;
    row rows[3] = {{.key = "model", .label = "model"},
                   {.key = "raw", .label = "raw inputs"},
                   {.key = "untrained", .label = "untrained network"}};
    tr_clearerr(&err);

    if (parse_args(argc, argv, &a)) return 2;
    if (a.help) {
        usage(stdout);
        return 0;
    }
    if (a.model == NULL) {
        fprintf(stderr, "tripletctl eval: --model is required\n");
        usage(stderr);
        return 2;
    }
    if (a.classes && cli_parse_labels("eval", "--classes", a.classes, classes, &nclasses)) return 2;
    if (mdl_load(a.model, &m, &err) != TR_OK) {
        fprintf(stderr, "tripletctl eval: %s\n", err.msg);
        goto done;
    }
    dist_metric metric = m->metric;
    if (a.metric && dist_parse(a.metric, &metric) != 0) {
        fprintf(stderr, "tripletctl eval: --metric: unknown value \"%s\" (see --help)\n", a.metric);
        rc = 2;
        goto done;
    }
    const char *spec = a.data;
    if (spec == NULL) {
        if (dat_find_default(getenv("TRIPLET_DATA"), found, sizeof found, &err) != TR_OK) goto fail;
        spec = found;
    }
    openblas_set_num_threads((int)a.threads);
    if (load_sets(&a, spec, &qd, &gd, &loo, &err) != TR_OK) goto fail;
    if ((rc = select_rows(&a, classes, nclasses, loo, &qd, &gd, &err)) == 1) goto fail;
    if (rc) goto done;
    rc = 1;
    if (gd->dim != (size_t)mdl_input_dim(m) || qd->dim != gd->dim) {
        tr_seterr(&err, TR_EDIM, "data", "%s: rows have %zu features, the model's input is %d", gd->source,
                  qd->dim != gd->dim ? qd->dim : gd->dim, mdl_input_dim(m));
        goto fail;
    }
    size_t od = (size_t)mdl_output_dim(m);
    if (!a.json)
        fprintf(stderr, "tripletctl eval: %zu queries (%s) against %zu gallery rows (%s), %s\n", qd->n,
                loo ? "leave-one-out" : qd->source, gd->n, gd->source, dist_name(metric));

    /* the model */
    if (embed(m, gd, a.threads, &ge, &err) != TR_OK) goto fail;
    if (!loo && embed(m, qd, a.threads, &qe, &err) != TR_OK) goto fail;
    if (score(&a, metric, loo ? ge : qe, qd, ge, gd, od, loo, &rows[0], &err) != TR_OK) goto fail;
    free(qe);
    free(ge);
    qe = ge = NULL;

    if (!a.no_baselines && baselines(&a, m, metric, qd, gd, loo, rows, &err) != TR_OK) goto fail;
    if (report(&a, m, spec, qd, gd, loo, metric, classes, nclasses, rows)) goto done;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "tripletctl eval: %s\n", err.msg);
done:
    if (loo) qd = NULL;
    dat_free(qd);
    dat_free(gd);
    free(qe);
    free(ge);
    mdl_free(m);
    return rc;
}
