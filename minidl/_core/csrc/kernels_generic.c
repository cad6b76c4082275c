/* Generic kernels: plain C for any CPU (the fallback when AVX2+FMA is missing or not compiled).
 * Same blocking and threading as the AVX2 build; the micro-kernel is a simple register tile. */
#include <math.h>
#include "kernels.h"

/* ---- float32 ---- */
#define T float
#define SFX f32_generic
#define MR 4
#define NR 8
#define MC 128
#define KC 256
#define NC 2048
#define SKINNY_M 16
#define KERNEL_NAME kernel_f32_generic

static void kernel_f32_generic(int mr, int nr, mdl_index kc, const float *a, const float *b,
                               mdl_index b_step, float *c, mdl_index ldc, int overwrite)
{
    float acc[MR][NR] = {{0}};
    for (mdl_index p = 0; p < kc; p++, a += MR, b += b_step)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[r * ldc + j] = overwrite ? acc[r][j] : c[r * ldc + j] + acc[r][j];
}
#include "gemm_template.h"
#undef T
#undef SFX
#undef MR
#undef NR
#undef MC
#undef KC
#undef NC
#undef KERNEL_NAME

/* ---- float64 ---- */
#define T double
#define SFX f64_generic
#define MR 4
#define NR 4
#define MC 128
#define KC 256
#define NC 2048
#define KERNEL_NAME kernel_f64_generic

static void kernel_f64_generic(int mr, int nr, mdl_index kc, const double *a, const double *b,
                               mdl_index b_step, double *c, mdl_index ldc, int overwrite)
{
    double acc[MR][NR] = {{0}};
    for (mdl_index p = 0; p < kc; p++, a += MR, b += b_step)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) c[r * ldc + j] = overwrite ? acc[r][j] : c[r * ldc + j] + acc[r][j];
}
#include "gemm_template.h"
#undef T
#undef SFX
#undef MR
#undef NR
#undef MC
#undef KC
#undef NC
#undef KERNEL_NAME

/* ---- sigmoid: stable form, never exp of a positive number ----
 * sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0, with e = exp(-|x|) in (0, 1]. */
static void fwd_f32_generic(const float *x, float *y, mdl_index n)
{
    for (mdl_index i = 0; i < n; i++) {
        const float e = expf(-fabsf(x[i]));
        const float s = 1.0f / (1.0f + e);
        y[i] = x[i] >= 0.0f ? s : (x[i] < 0.0f ? e * s : x[i] + e); /* NaN stays NaN */
    }
}
static void bwd_f32_generic(const float *y, const float *gy, float *gx, mdl_index n)
{
    for (mdl_index i = 0; i < n; i++) gx[i] = gy[i] * y[i] * (1.0f - y[i]);
}
static void fwd_f64_generic(const double *x, double *y, mdl_index n)
{
    for (mdl_index i = 0; i < n; i++) {
        const double e = exp(-fabs(x[i]));
        const double s = 1.0 / (1.0 + e);
        y[i] = x[i] >= 0.0 ? s : (x[i] < 0.0 ? e * s : x[i] + e);
    }
}
static void bwd_f64_generic(const double *y, const double *gy, double *gx, mdl_index n)
{
    for (mdl_index i = 0; i < n; i++) gx[i] = gy[i] * y[i] * (1.0 - y[i]);
}

#define T float
#define SFX f32_generic
#define FWD_CHUNK fwd_f32_generic
#define BWD_CHUNK bwd_f32_generic
#include "sigmoid_template.h"
#undef T
#undef SFX
#undef FWD_CHUNK
#undef BWD_CHUNK
#define T double
#define SFX f64_generic
#define FWD_CHUNK fwd_f64_generic
#define BWD_CHUNK bwd_f64_generic
#include "sigmoid_template.h"
#undef T
#undef SFX
#undef FWD_CHUNK
#undef BWD_CHUNK

const mdl_kernel_table mdl_generic_kernels = {
    "generic",
    gemm_f32_generic, gemm_f64_generic,
    sigmoid_fwd_f32_generic, sigmoid_fwd_f64_generic,
    sigmoid_bwd_f32_generic, sigmoid_bwd_f64_generic,
};
