/* nn_arch.c - the --arch layer list: parsing, shapes, parameter offsets, formatting. */
#include "nn_arch.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NN_MAX_WIDTH 65536              /* channels or features of one layer */
#define NN_MAX_KERNEL 64                /* kernel, stride, padding */
#define NN_MAX_VALUES ((size_t)1 << 24) /* values per sample of any layer */
#define NN_MAX_PARAMS ((size_t)512 << 20)
#define NN_TOKEN 64 /* bytes of one layer's text kept for messages */

static const char *const kind_names[NN_KIND_COUNT] = {"conv",    "bn",      "relu", "gelu",    "tanh",    "sigmoid",
                                                      "maxpool", "avgpool", "gap",  "dropout", "flatten", "fc"};

const char *nn_kind_name(nn_kind k) {
    return (unsigned)k < NN_KIND_COUNT ? kind_names[k] : "?";
}

/* One layer being parsed: its index and text, for every message. */
typedef struct {
    int idx;
    char text[NN_TOKEN];
    tr_err *err;
} tok;

static int bad(const tok *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int bad(const tok *t, const char *fmt, ...) {
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return tr_seterr(t->err, TR_EINVAL, "arch", "arch layer %d \"%s\": %s", t->idx, t->text, why);
}

/* A positive decimal integer at *p (advanced past it) in lo..hi. */
static int read_int(const tok *t, const char **p, const char *what, int lo, int hi, int *out) {
    const char *s = *p;
    long v = 0;
    if (*s < '0' || *s > '9') return bad(t, "expected the %s (a number) at \"%s\"", what, s);
    while (*s >= '0' && *s <= '9') {
        if (v <= 100000000) v = v * 10 + (*s - '0');
        s++;
    }
    if (v < lo || v > hi) return bad(t, "%s %ld is not in %d..%d", what, v, lo, hi);
    *p = s;
    *out = (int)v;
    return TR_OK;
}

/* Optional suffixes "<letter><int>", letters[i] setting vals[i] in lo[i]..hi[i], in that order, each at most once. */
static int read_opts(const tok *t, const char **p, const char *letters, const char *const *what, const int *lo,
                     const int *hi, int *vals) {
    size_t next = 0;
    while (**p) {
        const char *l = strchr(letters + next, **p);
        if (l == NULL) return bad(t, "unexpected \"%s\" (options here: %s, in that order)", *p, letters);
        size_t i = (size_t)(l - letters);
        (*p)++;
        if (read_int(t, p, what[i], lo[i], hi[i], &vals[i])) return TR_EINVAL;
        next = i + 1;
    }
    return TR_OK;
}

/* The parameters of one layer from its text (shapes come later). */
static int parse_layer(const tok *t, nn_layer *L) {
    static const char *const what[] = {"stride", "padding", "groups"};
    static const int lo[] = {1, 0, 1}, hi[] = {NN_MAX_KERNEL, NN_MAX_KERNEL, NN_MAX_WIDTH};
    const char *s = t->text, *p;
    memset(L, 0, sizeof *L);
    L->stride = 1;
    L->groups = 1;
    if (strncmp(s, "conv", 4) == 0) {
        p = s + 4;
        int v[3] = {1, 0, 1};
        L->kind = NN_CONV;
        if (read_int(t, &p, "output channels", 1, NN_MAX_WIDTH, &L->out)) return TR_EINVAL;
        if (*p != 'k') return bad(t, "expected \"k<kernel>\" after the channels (e.g. conv32k3p1)");
        p++;
        if (read_int(t, &p, "kernel", 1, NN_MAX_KERNEL, &L->k)) return TR_EINVAL;
        if (read_opts(t, &p, "spg", what, lo, hi, v)) return TR_EINVAL;
        L->stride = v[0];
        L->pad = v[1];
        L->groups = v[2];
        return TR_OK;
    }
    int is_max = strncmp(s, "maxpool", 7) == 0, is_avg = strncmp(s, "avgpool", 7) == 0;
    if (is_max || is_avg) {
        p = s + 7;
        L->kind = is_max ? NN_MAXPOOL : NN_AVGPOOL;
        if (read_int(t, &p, "kernel", 1, NN_MAX_KERNEL, &L->k)) return TR_EINVAL;
        int v[2] = {L->k, 0};
        if (read_opts(t, &p, "sp", what, lo, hi, v)) return TR_EINVAL;
        L->stride = v[0];
        L->pad = v[1];
        if (L->pad > L->k / 2) return bad(t, "padding %d is more than half the kernel %d", L->pad, L->k);
        return TR_OK;
    }
    if (strncmp(s, "fc", 2) == 0 && s[2] >= '0' && s[2] <= '9') {
        p = s + 2;
        L->kind = NN_FC;
        if (read_int(t, &p, "output features", 1, NN_MAX_WIDTH, &L->out)) return TR_EINVAL;
        if (*p) return bad(t, "unexpected \"%s\" after the width", p);
        return TR_OK;
    }
    if (strncmp(s, "dropout", 7) == 0) {
        char *end;
        p = s + 7;
        L->kind = NN_DROPOUT;
        if (*p < '0' || *p > '9') return bad(t, "expected the probability (e.g. dropout0.25)");
        double v = strtod(p, &end);
        if (*end) return bad(t, "unexpected \"%s\" after the probability", end);
        if (!(v >= 0 && v < 1)) return bad(t, "probability %g is not in [0, 1)", v);
        L->p = (float)v;
        return TR_OK;
    }
    static const nn_kind plain[] = {NN_BN, NN_RELU, NN_GELU, NN_TANH, NN_SIGMOID, NN_GAP, NN_FLATTEN};
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (strcmp(s, kind_names[plain[i]]) == 0) {
            L->kind = plain[i];
            return TR_OK;
        }
    if (*s == '\0') return bad(t, "empty layer");
    return bad(t, "unknown layer (conv<out>k<k>[s][p][g], bn, relu, gelu, tanh, sigmoid, maxpool<k>[s][p], "
                  "avgpool<k>[s][p], gap, dropout<p>, flatten, fc<out>)");
}

/* Output size of a window of k with stride and padding over n, or 0 when it does not fit. */
static int window_out(int n, int k, int stride, int pad) {
    int span = n + 2 * pad;
    return span < k ? 0 : (span - k) / stride + 1;
}

/* Shapes and parameter offsets of L given its input shape. */
static int shape_layer(const tok *t, nn_layer *L, nn_shape in, size_t *np, size_t *ns) {
    nn_shape o = in;
    size_t c = (size_t)in.c;
    L->in = in;
    switch (L->kind) {
    case NN_CONV:
        if (in.c % L->groups || L->out % L->groups)
            return bad(t, "groups %d does not divide the input channels %d and the output channels %d", L->groups, in.c,
                       L->out);
        /* fall through */
    case NN_MAXPOOL:
    case NN_AVGPOOL:
        o.h = window_out(in.h, L->k, L->stride, L->pad);
        o.w = window_out(in.w, L->k, L->stride, L->pad);
        if (o.h == 0 || o.w == 0)
            return bad(t, "kernel %d is larger than its padded input %dx%d (padding %d)", L->k, in.h, in.w, L->pad);
        if (L->kind == NN_CONV) {
            o.c = L->out;
            L->n_w = (size_t)L->out * (c / (size_t)L->groups) * (size_t)L->k * (size_t)L->k;
            L->n_b = (size_t)L->out;
        }
        break;
    case NN_BN:
        L->n_w = L->n_b = c;
        L->n_s = 2 * c;
        break;
    case NN_GAP:
        o.h = o.w = 1;
        break;
    case NN_FLATTEN:
        o = (nn_shape){in.c * in.h * in.w, 1, 1};
        break;
    case NN_FC:
        if (in.h != 1 || in.w != 1)
            return bad(t, "a fully connected layer needs a flat input, got %dx%dx%d (add flatten or gap before it)",
                       in.c, in.h, in.w);
        o.c = L->out;
        L->n_w = (size_t)L->out * c;
        L->n_b = (size_t)L->out;
        break;
    default:
        break;
    }
    if ((size_t)o.c * (size_t)o.h * (size_t)o.w > NN_MAX_VALUES)
        return bad(t, "output %dx%dx%d has more than %zu values per sample", o.c, o.h, o.w, NN_MAX_VALUES);
    L->outs = o;
    L->w_off = *np;
    L->b_off = *np + L->n_w;
    *np += L->n_w + L->n_b;
    L->s_off = *ns;
    *ns += L->n_s;
    if (*np > NN_MAX_PARAMS) return bad(t, "the network has more than %zu parameters", NN_MAX_PARAMS);
    return TR_OK;
}

/* The MLP form "784-256-128": fc256,relu,fc128 over a flat input of 784. */
static int parse_mlp(const char *s, nn_shape input, char *list, size_t cap, nn_shape *flat, tr_err *err) {
    size_t o = 0, n = 0;
    const char *p = s;
    long first = 0;
    list[0] = '\0';
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9')
            return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": expected a number at \"%s\"", s, p);
        long v = strtol(p, &end, 10);
        if (v < 1 || v > NN_MAX_WIDTH)
            return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": width %ld is not in 1..%d", s, v, NN_MAX_WIDTH);
        if (n == 0)
            first = v;
        else if (2 * n - 1 > NN_MAX_LAYERS)
            return tr_seterr(err, TR_ELIMIT, "arch", "arch \"%s\": more than %d layers", s, NN_MAX_LAYERS);
        else
            o += (size_t)snprintf(list + o, cap - o, "%sfc%ld", n > 1 ? ",relu," : "", v);
        n++;
        if (*end == '\0') break;
        if (*end != '-')
            return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": unexpected \"%c\" (widths are joined by '-')", s,
                             *end);
        p = end + 1;
    }
    if (n < 2) return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": needs at least an input and an output width", s);
    long have = (long)input.c * input.h * input.w;
    if (have != first)
        return tr_seterr(err, TR_EDIM, "arch", "arch \"%s\": input width %ld, but the input has %ld values (%dx%dx%d)",
                         s, first, have, input.c, input.h, input.w);
    *flat = (nn_shape){(int)first, 1, 1};
    return TR_OK;
}

int nn_arch_parse(const char *s, nn_shape input, nn_arch *a, tr_err *err) {
    char mlp[NN_MAX_LAYERS * 12];
    memset(a, 0, sizeof *a);
    if (input.c < 1 || input.h < 1 || input.w < 1 || input.c > NN_MAX_WIDTH ||
        (size_t)input.c * (size_t)input.h * (size_t)input.w > NN_MAX_VALUES)
        return tr_seterr(err, TR_EINVAL, "input", "input shape %dx%dx%d is not a positive shape of at most %zu values",
                         input.c, input.h, input.w, NN_MAX_VALUES);
    if (s[0] >= '0' && s[0] <= '9') {
        int rc = parse_mlp(s, input, mlp, sizeof mlp, &input, err);
        if (rc) return rc;
        s = mlp;
    }
    a->input = input;
    nn_shape cur = input;
    const char *p = s;
    for (int i = 0;; i++) {
        tok t = {i, "", err};
        size_t len = strcspn(p, ",");
        snprintf(t.text, sizeof t.text, "%.*s", (int)(len < NN_TOKEN - 1 ? len : NN_TOKEN - 1), p);
        if (len >= NN_TOKEN) return bad(&t, "layer text is longer than %d bytes", NN_TOKEN - 1);
        if (i >= NN_MAX_LAYERS) return tr_seterr(err, TR_ELIMIT, "arch", "arch has more than %d layers", NN_MAX_LAYERS);
        nn_layer *L = &a->l[i];
        if (parse_layer(&t, L) || shape_layer(&t, L, cur, &a->n_params, &a->n_state)) return TR_EINVAL;
        cur = L->outs;
        a->n = i + 1;
        if (p[len] == '\0') break;
        p += len + 1;
    }
    return TR_OK;
}

void nn_arch_format(const nn_arch *a, char *buf, size_t len) {
    size_t o = 0;
    if (len == 0) return;
    buf[0] = '\0';
    for (int i = 0; i < a->n && o < len; i++) {
        const nn_layer *L = &a->l[i];
        char one[NN_TOKEN];
        int k = 0;
        switch (L->kind) {
        case NN_CONV:
            k = snprintf(one, sizeof one, "conv%dk%d", L->out, L->k);
            if (L->stride != 1) k += snprintf(one + k, sizeof one - (size_t)k, "s%d", L->stride);
            if (L->pad) k += snprintf(one + k, sizeof one - (size_t)k, "p%d", L->pad);
            if (L->groups != 1) snprintf(one + k, sizeof one - (size_t)k, "g%d", L->groups);
            break;
        case NN_MAXPOOL:
        case NN_AVGPOOL:
            k = snprintf(one, sizeof one, "%s%d", kind_names[L->kind], L->k);
            if (L->stride != L->k) k += snprintf(one + k, sizeof one - (size_t)k, "s%d", L->stride);
            if (L->pad) snprintf(one + k, sizeof one - (size_t)k, "p%d", L->pad);
            break;
        case NN_FC:
            snprintf(one, sizeof one, "fc%d", L->out);
            break;
        case NN_DROPOUT:
            snprintf(one, sizeof one, "dropout%g", (double)L->p);
            break;
        default:
            snprintf(one, sizeof one, "%s", nn_kind_name(L->kind));
            break;
        }
        int w = snprintf(buf + o, len - o, "%s%s", i ? "," : "", one);
        if (w < 0) break;
        o += (size_t)w;
    }
}

size_t nn_arch_out_dim(const nn_arch *a) {
    nn_shape s = a->n ? a->l[a->n - 1].outs : a->input;
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

int nn_arch_is_mlp(const nn_arch *a, nn_kind *act) {
    *act = NN_KIND_COUNT;
    for (int i = 0; i < a->n; i++) {
        nn_kind k = a->l[i].kind;
        if (i % 2 == 0 ? k != NN_FC : (k != NN_RELU && k != NN_GELU && k != NN_TANH && k != NN_SIGMOID)) return 0;
        if (i % 2 == 1 && *act != NN_KIND_COUNT && k != *act) return 0;
        if (i % 2 == 1) *act = k;
    }
    return a->n % 2 == 1 && a->input.h == 1 && a->input.w == 1;
}
