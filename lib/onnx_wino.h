/* onnx_wino.h - 3x3 stride-1 convolutions by Winograd F(2x2, 3x3) on the packed-weight SGEMM. */
#ifndef ONNX_WINO_H
#define ONNX_WINO_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_op.h"
#include "onnx_sgemm.h"

#define ONX_WINO_MAX_W 4096 /* the widest output row */

/* 1 when window w with c input and m output channels in one group runs here: a 3x3 kernel,
 * stride and dilation 1, at least 8 channels in and out, an output of at least 32 2x2 tiles, on
 * a CPU with AVX2 and FMA (AVX-512F and AVX-512VL: wider transforms). */
int onx_wino_ok(const onx_win *w, int64_t grp, int64_t c, int64_t m);
/* 1 when onx_wino runs w (a 3x3 kernel over 7x7 planes, padding 1) with each plane's 16 tiles in one AVX-512 vector:
 * fast enough from a few samples a call to beat the output-channel kernel (onnx_convpx.c), which onx_wino_ok leaves
 * such outputs to (16 tiles a sample). */
int onx_wino_p7_ok(const onx_win *w, int64_t grp, int64_t c, int64_t m);

/* Floats of the transformed weights for kernel kn: 16 packed m x c matrices. */
size_t onx_wino_pack_len(onx_kern kn, int64_t m, int64_t c);
/* wt (m x c x 3 x 3) -> out: U = G g G^T per (m, c), each of its 16 entries packed as A; tmp:
 * m * c floats of scratch. */
void onx_wino_pack(onx_kern kn, const float *wt, int64_t m, int64_t c, float *tmp, float *out);

/* What the Winograd variants share (onnx_wino4.c is F(4x4, 3x3)). g(a, v0, v1, v2): row a of the variant's G
 * applied to 3 values. onx_wino_pack_with: wt (m x c x 3 x 3) -> out, U = G w G^T per (m, c) in double, each of
 * its alpha x alpha entries packed as A (onx_pack_a_len(kn, m, c) floats apart). */
typedef double (*onx_wino_g)(int a, double v0, double v1, double v2);
void onx_wino_pack_with(onx_kern kn, const float *wt, int64_t m, int64_t c, int alpha, onx_wino_g g, float *tmp,
                        float *out);
/* The nxi GEMMs: Y[xi] (m x cols, at yt + xi * m * cols) = U[xi] V[xi] (c x cols, at v + xi * c * cols), U[xi]
 * packed at pk + xi * onx_pack_a_len(kn, m, c); sw: onx_sgemm_work() floats. */
void onx_wino_gemms(onx_kern kn, int nxi, int64_t m, int64_t c, int64_t cols, const float *pk, const float *v,
                    float *yt, float *sw);
/* Channels are read one plane at a time between transforms that write more than they read: the next plane (n
 * floats at p) is fetched while this one is transformed (the hardware prefetcher restarts on each plane). */
void onx_prefetch_plane(const float *p, int64_t n);
/* Samples one pass of F(2x2) or F(4x4) takes: as many as keep its GEMMs within cols tile columns at T tiles a sample,
 * at least 1, at most n. */
int64_t onx_wino_per_pass(int64_t cols, int64_t T, int64_t n);
/* The geometry of a Winograd convolution with tile x tile output tiles (2: F(2x2), 4: F(4x4)): input and output
 * planes, the top and left padding, and T tiles per sample, tyc rows of txc (a last partial tile counts). */
typedef struct {
    int64_t H, W, OH, OW, pt, pl, tyc, txc, T;
} onx_wgeo;
onx_wgeo onx_wino_geo(const onx_win *w, int tile);
/* Floats of a row of a column-split input plane for txc tiles a row: whole 16-lane chunks and one more, so that the
 * last chunk's load at u + 1 stays inside. */
int64_t onx_wino_plane_w(int64_t txc);

/* Floats of work onx_wino needs for up to n samples (it never shrinks as n grows). */
size_t onx_wino_work(const onx_win *w, int64_t c, int64_t m, int64_t n);
/* y (n x m x OH x OW) = act(conv(x, weights) + bias + res), x n x c x H x W, pk from onx_wino_pack;
 * bias and res (shaped as y: a residual Add fused into the Conv) may be NULL. */
void onx_wino(onx_kern kn, const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n,
              const float *bias, const float *res, onx_act act, float lo, float hi, float *y, float *work);

/* The input transform alone, for the weight gradient of training (nn_wino.c): T =
 * onx_wino_tiles(w) 2x2 output tiles per sample; v[xi * c * ns * T + ch * ns * T + s * T + t] =
 * (B^T d B)[xi] of tile t of channel ch of sample s of x (ns x c x H x W). work:
 * onx_wino_in_work(w) floats. */
int64_t onx_wino_tiles(const onx_win *w);
size_t onx_wino_in_work(const onx_win *w);
void onx_wino_in(const onx_win *w, int64_t c, const float *x, int64_t ns, float *v, float *work);
/* The adjoint of the output transform: z[xi * m * ns * T + i * ns * T + s * T + t] = (A dY A^T)[xi] of the 2x2
 * tile t of plane i of sample s of dy (ns x m x OH x OW). */
void onx_wino_out_adj(const onx_win *w, int64_t m, const float *dy, int64_t ns, float *z);

/* A Winograd variant's entry points, for callers that pick one per layer at load (onnx_k_conv.c): F(2x2, 3x3)
 * here, F(4x4, 3x3) in onnx_wino4.h. */
typedef struct {
    size_t (*pack_len)(onx_kern kn, int64_t m, int64_t c);
    void (*pack)(onx_kern kn, const float *wt, int64_t m, int64_t c, float *tmp, float *out);
    size_t (*work)(const onx_win *w, int64_t c, int64_t m, int64_t n);
    void (*run)(onx_kern kn, const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n,
                const float *bias, const float *res, onx_act act, float lo, float hi, float *y, float *work);
} onx_wino_impl;
extern const onx_wino_impl onx_wino_f2;

#endif
