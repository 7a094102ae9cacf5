/* test_nn_arch.c - lib/nn_arch.c: good --arch strings (shapes, offsets, formatting) and a table of bad ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "nn_arch.h"

static const nn_shape FASHION = {1, 28, 28};

static void test_recipe(void **state) {
    (void)state;
    nn_arch a;
    tr_err err;
    const char *s = "conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,maxpool2,flatten,fc256,relu,fc128";
    assert_int_equal(nn_arch_parse(s, FASHION, &a, &err), TR_OK);
    assert_int_equal(a.n, 12);
    const nn_layer *L = a.l;
    assert_int_equal(L[0].kind, NN_CONV);
    assert_int_equal(L[0].out, 32);
    assert_int_equal(L[0].k, 3);
    assert_int_equal(L[0].pad, 1);
    assert_int_equal(L[0].stride, 1);
    assert_int_equal(L[0].groups, 1);
    assert_int_equal(L[0].outs.c, 32);
    assert_int_equal(L[0].outs.h, 28);
    assert_int_equal(L[0].n_w, 32 * 9);
    assert_int_equal(L[0].b_off, 32 * 9);
    assert_int_equal(L[1].kind, NN_BN);
    assert_int_equal(L[1].w_off, 32 * 9 + 32);
    assert_int_equal(L[1].n_w, 32);
    assert_int_equal(L[1].s_off, 0);
    assert_int_equal(L[1].n_s, 64);
    assert_int_equal(L[3].outs.h, 14);
    assert_int_equal(L[4].n_w, 64 * 32 * 9);
    assert_int_equal(L[5].s_off, 64);
    assert_int_equal(L[7].outs.h, 7);
    assert_int_equal(L[8].outs.c, 3136);
    assert_int_equal(L[8].outs.h, 1);
    assert_int_equal(L[9].n_w, 256 * 3136);
    assert_int_equal(nn_arch_out_dim(&a), 128);
    size_t np = 32 * 9 + 32 + 64 + 64 * 32 * 9 + 64 + 128 + 3136 * 256 + 256 + 256 * 128 + 128;
    assert_int_equal(a.n_params, np);
    assert_int_equal(a.n_state, 2 * (32 + 64));
    assert_int_equal(L[11].b_off + L[11].n_b, np);
    char buf[512];
    nn_arch_format(&a, buf, sizeof buf);
    assert_string_equal(buf, s);
    nn_kind act;
    assert_false(nn_arch_is_mlp(&a, &act));
}

static void test_options_and_roundtrip(void **state) {
    (void)state;
    static const struct {
        const char *in, *canon;
        nn_shape last; /* output shape */
    } cases[] = {
        {"conv8k3s2p1g1", "conv8k3s2p1", {8, 14, 14}},
        {"conv8k5s1p0", "conv8k5", {8, 24, 24}},
        {"conv4k1,conv8k3g4,gap", "conv4k1,conv8k3g4,gap", {8, 1, 1}},
        {"maxpool3s2p1", "maxpool3s2p1", {1, 14, 14}},
        {"avgpool2s2", "avgpool2", {1, 14, 14}},
        {"avgpool4s1", "avgpool4s1", {1, 25, 25}},
        {"flatten,dropout0.25,fc10,gelu,fc3,tanh,sigmoid", "flatten,dropout0.25,fc10,gelu,fc3,tanh,sigmoid", {3, 1, 1}},
        {"flatten,bn,fc4", "flatten,bn,fc4", {4, 1, 1}},
        {"conv2k28", "conv2k28", {2, 1, 1}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_arch a, b;
        tr_err err;
        char buf[256];
        int rc = nn_arch_parse(cases[i].in, FASHION, &a, &err);
        if (rc) print_error("%s: %s\n", cases[i].in, err.msg);
        assert_int_equal(rc, TR_OK);
        nn_arch_format(&a, buf, sizeof buf);
        assert_string_equal(buf, cases[i].canon);
        nn_shape o = a.l[a.n - 1].outs;
        assert_int_equal(o.c, cases[i].last.c);
        assert_int_equal(o.h, cases[i].last.h);
        assert_int_equal(o.w, cases[i].last.w);
        assert_int_equal(nn_arch_parse(buf, FASHION, &b, &err), TR_OK);
        assert_memory_equal(&a, &b, sizeof a);
    }
    /* grouped conv: weight [out, in/groups, k, k] */
    nn_arch a;
    tr_err err;
    assert_int_equal(nn_arch_parse("conv4k1,conv8k3g4", FASHION, &a, &err), TR_OK);
    assert_int_equal(a.l[1].n_w, 8 * 1 * 9);
}

static void test_mlp_form(void **state) {
    (void)state;
    nn_arch a;
    tr_err err;
    char buf[256];
    nn_kind act;
    /* an image input of 784 values is taken as flat */
    assert_int_equal(nn_arch_parse("784-256-128", FASHION, &a, &err), TR_OK);
    assert_int_equal(a.input.c, 784);
    assert_int_equal(a.input.h, 1);
    nn_arch_format(&a, buf, sizeof buf);
    assert_string_equal(buf, "fc256,relu,fc128");
    assert_int_equal(a.n_params, 784 * 256 + 256 + 256 * 128 + 128);
    assert_true(nn_arch_is_mlp(&a, &act));
    assert_int_equal(act, NN_RELU);
    assert_int_equal(nn_arch_parse("4-3", (nn_shape){4, 1, 1}, &a, &err), TR_OK);
    assert_true(nn_arch_is_mlp(&a, &act));
    assert_int_equal(act, NN_KIND_COUNT);
    assert_int_equal(nn_arch_parse("fc8,tanh,fc3", (nn_shape){4, 1, 1}, &a, &err), TR_OK);
    assert_true(nn_arch_is_mlp(&a, &act));
    assert_int_equal(act, NN_TANH);
    assert_int_equal(nn_arch_parse("fc8,tanh,fc3,relu,fc2", (nn_shape){4, 1, 1}, &a, &err), TR_OK);
    assert_false(nn_arch_is_mlp(&a, &act));
    assert_int_equal(nn_arch_parse("fc8,relu", (nn_shape){4, 1, 1}, &a, &err), TR_OK);
    assert_false(nn_arch_is_mlp(&a, &act));
}

static void test_bad(void **state) {
    (void)state;
    static const struct {
        const char *arch, *msg;
    } cases[] = {
        {"", "arch layer 0 \"\": empty layer"},
        {"conv32k3p1,,relu", "arch layer 1 \"\": empty layer"},
        {"conv32k3p1,", "arch layer 1 \"\": empty layer"},
        {"conv", "arch layer 0 \"conv\": expected the output channels (a number) at \"\""},
        {"conv32", "arch layer 0 \"conv32\": expected \"k<kernel>\" after the channels (e.g. conv32k3p1)"},
        {"conv0k3", "arch layer 0 \"conv0k3\": output channels 0 is not in 1..65536"},
        {"conv8k3x", "arch layer 0 \"conv8k3x\": unexpected \"x\" (options here: spg, in that order)"},
        {"conv8k3p1s2", "arch layer 0 \"conv8k3p1s2\": unexpected \"s2\" (options here: spg, in that order)"},
        {"conv8k3s0", "arch layer 0 \"conv8k3s0\": stride 0 is not in 1..64"},
        {"conv8k29", "arch layer 0 \"conv8k29\": kernel 29 is larger than its padded input 28x28 (padding 0)"},
        {"conv8k3,conv6k3g4",
         "arch layer 1 \"conv6k3g4\": groups 4 does not divide the input channels 8 and the output channels 6"},
        {"maxpool2,maxpool2,maxpool2,maxpool2,maxpool2",
         "arch layer 4 \"maxpool2\": kernel 2 is larger than its padded input 1x1 (padding 0)"},
        {"maxpool2p2", "arch layer 0 \"maxpool2p2\": padding 2 is more than half the kernel 2"},
        {"avgpool", "arch layer 0 \"avgpool\": expected the kernel (a number) at \"\""},
        {"fc10", "arch layer 0 \"fc10\": a fully connected layer needs a flat input, got 1x28x28 (add flatten or gap "
                 "before it)"},
        {"flatten,fc10x", "arch layer 1 \"fc10x\": unexpected \"x\" after the width"},
        {"dropout", "arch layer 0 \"dropout\": expected the probability (e.g. dropout0.25)"},
        {"dropout1", "arch layer 0 \"dropout1\": probability 1 is not in [0, 1)"},
        {"dropout0.5x", "arch layer 0 \"dropout0.5x\": unexpected \"x\" after the probability"},
        {"relu,swish", "arch layer 1 \"swish\": unknown layer (conv<out>k<k>[s][p][g], bn, relu, gelu, tanh, sigmoid, "
                       "maxpool<k>[s][p], avgpool<k>[s][p], gap, dropout<p>, flatten, fc<out>)"},
        {"784-256-", "arch \"784-256-\": expected a number at \"\""},
        {"784", "arch \"784\": needs at least an input and an output width"},
        {"784-0", "arch \"784-0\": width 0 is not in 1..65536"},
        {"784x256", "arch \"784x256\": unexpected \"x\" (widths are joined by '-')"},
        {"100-10", "arch \"100-10\": input width 100, but the input has 784 values (1x28x28)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nn_arch a;
        tr_err err;
        int rc = nn_arch_parse(cases[i].arch, FASHION, &a, &err);
        if (rc == TR_OK || strcmp(err.msg, cases[i].msg) != 0)
            print_error("arch \"%s\": got rc %d \"%s\"\n", cases[i].arch, rc, rc ? err.msg : "");
        assert_int_not_equal(rc, TR_OK);
        assert_string_equal(err.msg, cases[i].msg);
        assert_string_equal(err.field, "arch");
    }
    /* too many layers, an over-long layer, a bad input shape */
    char many[NN_MAX_LAYERS * 6 + 16] = "";
    for (int i = 0; i <= NN_MAX_LAYERS; i++) strcat(many, i ? ",relu" : "relu");
    nn_arch a;
    tr_err err;
    assert_int_equal(nn_arch_parse(many, FASHION, &a, &err), TR_ELIMIT);
    assert_string_equal(err.msg, "arch has more than 64 layers");
    char longl[100];
    memset(longl, 'x', sizeof longl - 1);
    longl[sizeof longl - 1] = '\0';
    assert_int_equal(nn_arch_parse(longl, FASHION, &a, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "layer text is longer than 63 bytes"));
    assert_int_equal(nn_arch_parse("relu", (nn_shape){0, 28, 28}, &a, &err), TR_EINVAL);
    assert_string_equal(err.field, "input");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipe),
        cmocka_unit_test(test_options_and_roundtrip),
        cmocka_unit_test(test_mlp_form),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
