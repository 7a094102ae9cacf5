/* test_srv_config.c - the option table: defaults, env TRIPLETD_<NAME>, flag wins, refusals naming the option. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

static int parse(srv_config *cfg, tr_err *err, const char *a0, const char *a1, const char *a2, const char *a3,
                 const char *a4) {
    char *argv[8] = {"tripletd", (char *)a0, (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    int argc = 1;
    while (argv[argc]) argc++;
    return srv_config_parse(cfg, argc, argv, err);
}

static void clear_env(void) {
    static const char *const VARS[] = {"TRIPLETD_MODEL",      "TRIPLETD_PORT",
                                       "TRIPLETD_MAX_BODY",   "TRIPLETD_METRIC",
                                       "TRIPLETD_MODEL_DIR",  "TRIPLETD_ALLOW_MODEL_PATH",
                                       "TRIPLETD_LOG_FORMAT", NULL};
    for (size_t i = 0; VARS[i]; i++) unsetenv(VARS[i]);
}

static void test_defaults(void **state) {
    (void)state;
    srv_config c;
    tr_err e;
    clear_env();
    assert_int_equal(parse(&c, &e, "--model", "m.safetensors", NULL, NULL, NULL), 0);
    assert_string_equal(c.model, "m.safetensors");
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_int_equal(c.max_body, 8u * 1024 * 1024);
    assert_int_equal(c.max_batch, 1024);
    assert_true(c.threads >= 1);
    assert_true(isnan(c.margin));
    assert_null(c.metric);
    assert_int_equal(c.has_metric, 0);
    assert_null(c.api_key);
    assert_int_equal(c.log_format, SRV_LOG_TEXT);
    assert_int_equal(c.allow_model_path, 0);
    srv_config_free(&c);
}

static void test_env_and_flags(void **state) {
    (void)state;
    srv_config c;
    tr_err e;
    clear_env();
    setenv("TRIPLETD_MODEL", "env.safetensors", 1);
    setenv("TRIPLETD_PORT", "9000", 1);
    setenv("TRIPLETD_MAX_BODY", "2M", 1);
    setenv("TRIPLETD_METRIC", "cosine", 1);
    setenv("TRIPLETD_ALLOW_MODEL_PATH", "true", 1); /* deprecated: accepted only with a model folder */
    setenv("TRIPLETD_MODEL_DIR", ".", 1);
    assert_int_equal(parse(&c, &e, "--port=0", "--margin", "0.5", "--log-format", "json"), 0);
    assert_string_equal(c.model, "env.safetensors"); /* env */
    assert_int_equal(c.port, 0);                     /* flag wins */
    assert_int_equal(c.max_body, 2u * 1024 * 1024);
    assert_int_equal(c.has_metric, 1);
    assert_int_equal(c.metric_v, DIST_COSINE);
    assert_true(c.margin == 0.5);
    assert_int_equal(c.allow_model_path, 1);
    assert_string_equal(c.model_dir, ".");
    assert_int_equal(c.log_format, SRV_LOG_JSON);
    srv_config_free(&c);
    clear_env();
}

typedef struct {
    const char *a[5];
    const char *msg;
} bad_case;

static const bad_case BAD[] = {
    {{"--port", "0", NULL}, "--model: required (the model file to serve; see --help)"},
    {{"--model", "m", "--port", "70000", NULL}, "--port: expected an integer in 0..65535, got \"70000\""},
    {{"--model", "m", "--port", "12x", NULL}, "--port: expected an integer in 0..65535, got \"12x\""},
    {{"--model", "m", "--bogus", NULL}, "unknown option \"--bogus\" (see --help)"},
    {{"--model", "m", "stray", NULL}, "unexpected argument \"stray\" (options start with --; see --help)"},
    {{"--model", "m", "--metric", "l3", NULL},
     "--metric: unknown metric \"l3\" (sqeuclidean, euclidean, cosine or dot)"},
    {{"--model", "m", "--loss", "hinge", NULL},
     "--loss: unknown loss \"hinge\" (triplet, triplet-soft, contrastive or contrastive-squared)"},
    {{"--model", "m", "--margin", "nan", NULL}, "--margin: expected a number in 0..1e+09, got \"nan\""},
    {{"--model", "m", "--max-body", "1Q", NULL},
     "--max-body: expected a whole number in 64..1073741824 (suffix K, M or G allowed), got \"1Q\""},
    {{"--model", "m", "--log-format", "xml", NULL}, "--log-format: expected text, json or off, got \"xml\""},
    {{"--model", "m", "--threads", NULL}, "--threads: missing value"},
    {{"--model", "m", "--api-key-file", "/nonexistent/key", NULL},
     "--api-key-file /nonexistent/key: No such file or directory"},
};

static void test_refusals(void **state) {
    (void)state;
    clear_env();
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        srv_config c;
        tr_err e;
        int rc = parse(&c, &e, BAD[i].a[0], BAD[i].a[1], BAD[i].a[2], BAD[i].a[3], BAD[i].a[4]);
        if (rc != -1) fail_msg("case %zu: rc %d, want -1", i, rc);
        if (strcmp(e.msg, BAD[i].msg) != 0) fail_msg("case %zu: \"%s\", want \"%s\"", i, e.msg, BAD[i].msg);
    }
    /* a bad environment value names the variable */
    setenv("TRIPLETD_PORT", "abc", 1);
    srv_config c;
    tr_err e;
    assert_int_equal(parse(&c, &e, "--model", "m", NULL, NULL, NULL), -1);
    assert_string_equal(e.msg, "TRIPLETD_PORT: expected an integer in 0..65535, got \"abc\"");
    clear_env();
}

static void test_help_version(void **state) {
    (void)state;
    srv_config c;
    tr_err e;
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    assert_non_null(stdout);
    int h = parse(&c, &e, "--help", NULL, NULL, NULL, NULL);
    int v = parse(&c, &e, "--version", NULL, NULL, NULL, NULL);
    fclose(stdout);
    stdout = saved;
    assert_int_equal(h, 1);
    assert_int_equal(v, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_and_flags),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_help_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
