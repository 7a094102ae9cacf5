/* onnx_k_gemm.c - Gemm and MatMul on OpenBLAS SGEMM. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_fc.h"
#include "onnx_op.h"

/* Gemm: nd->i = {transA, transB, M, K, N}; nd->f = {alpha, beta}. */
static int infer_gemm(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const known[] = {"alpha", "beta", "transA", "transB", NULL};
    int rc;
    if ((rc = onx_arity(g, nd, 2, 3, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 2, 2, err)) || (rc = onx_need(g, nd, 1, ONX_F32, 2, 2, err)))
        return rc;
    int64_t ta = 0, tb = 0;
    float alpha = 1.0f, beta = 1.0f;
    if ((rc = onx_attr_int(g, nd, "transA", &ta, err)) < 0 || (rc = onx_attr_int(g, nd, "transB", &tb, err)) < 0 ||
        (rc = onx_attr_float(g, nd, "alpha", &alpha, err)) < 0 || (rc = onx_attr_float(g, nd, "beta", &beta, err)) < 0)
        return rc;
    const onx_value *a = onx_in(g, nd, 0), *b = onx_in(g, nd, 1), *c = onx_in(g, nd, 2);
    onx_dim m = a->dim[ta ? 1 : 0], k = a->dim[ta ? 0 : 1], kb = b->dim[tb ? 1 : 0], n = b->dim[tb ? 0 : 1];
    char sa[128], sb[128];
    if (!onx_deq(k, kb) || k.p || n.p || (ta && m.p))
        return onx_fail(g, nd, err, "shapes %s and %s do not multiply (transA %lld, transB %lld)",
                        onx_shape_str(a, sa, sizeof sa), onx_shape_str(b, sb, sizeof sb), (long long)ta, (long long)tb);
    onx_dim o[2] = {m, n};
    if (c) {
        onx_value mn = {0};
        mn.rank = 2, mn.dim[0] = m, mn.dim[1] = n;
        onx_dim bd[ONX_MAX_RANK];
        int r;
        if (c->dtype != ONX_F32 || c->rank > 2 || !onx_broadcast(&mn, c, &r, bd) || r != 2 || !onx_deq(bd[0], m) ||
            !onx_deq(bd[1], n))
            return onx_fail(g, nd, err, "C %s does not broadcast to [%s,%lld]", onx_shape_str(c, sa, sizeof sa),
                            onx_dstr(m, sb, sizeof sb), (long long)n.c);
    }
    nd->i[0] = ta, nd->i[1] = tb, nd->i[3] = k.c, nd->i[4] = n.c;
    nd->f[0] = alpha, nd->f[1] = beta;
    onx_set_out(g, nd, 0, ONX_F32, 2, o);
    return TR_OK;
}

static void run_gemm(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    int ta = (int)nd->i[0], tb = (int)nd->i[1];
    int m = (int)out[0].d[0], k = (int)nd->i[3], n = (int)nd->i[4];
    float *y = out[0].p, beta = 0.0f;
    if (nd->n_in > 2 && in[2].p && nd->f[1] != 0.0f) {
        int64_t st[ONX_MAX_RANK];
        onx_bstrides(&in[2], 2, out[0].d, st);
        const float *c = in[2].p;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) y[(size_t)i * (size_t)n + (size_t)j] = nd->f[1] * c[i * st[0] + j * st[1]];
        beta = 1.0f;
    }
    if (!ta && tb && onx_fc_ok(m)) { /* a few samples through B (N x K) as it is stored */
        if (beta == 0.0f) memset(y, 0, sizeof(float) * out[0].n);
        onx_fc(in[0].p, m, k, in[1].p, n, nd->f[0], y);
    } else if (m == 1 && !ta)
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? n : k, tb ? k : n, nd->f[0], in[1].p,
                    tb ? k : n, in[0].p, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, nd->f[0],
                    in[0].p, ta ? m : k, in[1].p, tb ? k : n, beta, y, n);
    onx_act_apply(nd->act, nd->act_lo, nd->act_hi, y, out[0].n);
}

static double gemm_macs(const onx_node *nd, const onx_t *in, const onx_t *out) {
    (void)in;
    return (double)out[0].n * (double)nd->i[3];
}

/* MatMul: A [..., M, K] x B [K, N]; 1-D operands promoted as numpy does. nd->i = {K, N, batched}.
 * B of rank <= 2 multiplies all of A's rows at once; a batched B
 * (rank >= 3) broadcasts against A's batch dimensions as numpy does (each aligned pair equal or one
 * of them 1; B's rank at most A's, so the batch stays A's first dimension): one GEMM per matrix. */
static int infer_matmul(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc;
    if ((rc = onx_arity(g, nd, 2, 2, 1, err)) || (rc = onx_need(g, nd, 0, ONX_F32, 1, ONX_MAX_RANK, err)) ||
        (rc = onx_need(g, nd, 1, ONX_F32, 1, ONX_MAX_RANK, err)))
        return rc;
    const onx_value *a = onx_in(g, nd, 0), *b = onx_in(g, nd, 1);
    char sa[128], sb[128];
    onx_dim k = a->dim[a->rank - 1], kb = b->dim[b->rank >= 2 ? b->rank - 2 : 0];
    onx_dim n = b->rank >= 2 ? b->dim[b->rank - 1] : onx_d(1);
    int batched = b->rank > 2, ok = onx_deq(k, kb) && !k.p && !n.p;
    onx_dim o[ONX_MAX_RANK];
    int r = 0;
    for (int i = 0; i < a->rank - 1; i++) o[r++] = a->dim[i];
    if (batched) {
        ok = ok && b->rank <= a->rank;
        for (int i = 0, off = a->rank - b->rank; ok && i < b->rank - 2; i++) {
            onx_dim da = a->dim[off + i], db = b->dim[i];
            if (onx_deq(da, db) || onx_deq(db, onx_d(1))) continue;
            ok = onx_deq(da, onx_d(1)) && off + i > 0 && !db.p; /* A's 1 takes B's size; never the batch's place */
            o[off + i] = db;
        }
    }
    if (!ok)
        return onx_fail(g, nd, err,
                        "shapes %s and %s do not multiply (a batched B broadcasts against A's dimensions "
                        "after the batch)",
                        onx_shape_str(a, sa, sizeof sa), onx_shape_str(b, sb, sizeof sb));
    if (b->rank >= 2) o[r++] = n;
    nd->i[0] = k.c, nd->i[1] = n.c, nd->i[2] = batched;
    onx_set_out(g, nd, 0, ONX_F32, r, o);
    return TR_OK;
}

static void run_matmul(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)tmp;
    int k = (int)nd->i[0], n = (int)nd->i[1];
    const float *a = in[0].p, *b = in[1].p;
    float *y = out[0].p;
    if (!nd->i[2]) { /* every row of A times one B */
        int rows = k ? (int)(in[0].n / (size_t)k) : 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, n, k, 1.0f, a, k, b, n, 0.0f, y, n);
    } else { /* one GEMM per matrix of the output, A's and B's matrices picked by broadcasting */
        int ra = in[0].rank, nb = ra - 2, off = ra - in[1].rank;
        int m = (int)in[0].d[ra - 2];
        int64_t sa[ONX_MAX_RANK], sb[ONX_MAX_RANK], idx[ONX_MAX_RANK] = {0}, da = 1, db = 1;
        for (int i = nb - 1; i >= 0; i--) { /* strides in matrices; 0 where a dimension of 1 broadcasts */
            sa[i] = in[0].d[i] == 1 ? 0 : da;
            da *= in[0].d[i];
            int j = i - off;
            sb[i] = j < 0 || in[1].d[j] == 1 ? 0 : db;
            db *= j < 0 ? 1 : in[1].d[j];
        }
        size_t mats = out[0].n / ((size_t)m * (size_t)n);
        for (size_t t = 0; t < mats; t++) {
            int64_t oa = 0, ob = 0;
            for (int i = 0; i < nb; i++) oa += idx[i] * sa[i], ob += idx[i] * sb[i];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f,
                        a + (size_t)oa * (size_t)m * (size_t)k, k, b + (size_t)ob * (size_t)k * (size_t)n, n, 0.0f,
                        y + t * (size_t)m * (size_t)n, n);
            for (int i = nb - 1; i >= 0; i--) {
                if (++idx[i] < out[0].d[i]) break;
                idx[i] = 0;
            }
        }
    }
    onx_act_apply(nd->act, nd->act_lo, nd->act_hi, out[0].p, out[0].n);
}

static double matmul_macs(const onx_node *nd, const onx_t *in, const onx_t *out) {
    (void)in;
    return (double)out[0].n * (double)nd->i[0];
}

const onx_op onx_ops_gemm[] = {
    {"Gemm", 7, infer_gemm, run_gemm, NULL, gemm_macs, 1},
    {"MatMul", 1, infer_matmul, run_matmul, NULL, matmul_macs, 1},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
