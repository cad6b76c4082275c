/* AVX2 + FMA kernels. This translation unit alone is compiled with x86-64-v3 flags (setup.py); it is
 * only called after dispatch.c has checked that the CPU supports AVX2 and FMA.
 *
 * GEMM micro-kernels: 6 x 16 (float32) and 6 x 8 (float64) register tiles = 12 accumulators + 2 B
 * vectors + 1 broadcast of the 16 ymm registers. Block sizes come from the caches at run time
 * (blocking.c); on the 2-core EPYC (32 KiB L1d, 512 KiB L2) a sweep of MC 96-240 and KC 192-320 stayed
 * within the +-15% noise of a shared machine, and the rules give MC 240, KC 272 there.
 * Sigmoid: a vectorized exp (Cephes-style range reduction x = n ln2 + r, polynomial in r), applied to
 * -|x| only, so it never overflows; 2^n is applied in two halves so subnormal results stay exact-ish. */
#include <immintrin.h>
#include <string.h>
#include "kernels.h"
#include "x86_pack.h"

#ifndef B_PREFETCH
#define B_PREFETCH 8 /* rows of B fetched ahead by the micro-kernel */
#endif

/* ================================ float32 GEMM ================================ */
/* Lane masks for partial tiles: mask_bits + 16 - nr gives lanes [0, nr) set. */
static const int mask_bits_f32[32] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

/* A pair with kernel_f64_body, not a template: other intrinsics, lanes per ymm (8 / 4) and prefetches. */
MDL_INLINE void kernel_f32_body(const int mr, const int halves, mdl_index kc, const float *a, const float *b,
                                mdl_index b_step, float *c, mdl_index ldc, float alpha, float beta, int nr)
{
    __m256 c0[6], c1[6];
    _Pragma("GCC unroll 6")
    for (int r = 0; r < 6; r++) {
        c0[r] = _mm256_setzero_ps();
        c1[r] = _mm256_setzero_ps();
    }
    /* Fetch the C tile while the k loop runs: its rows are ldc apart and usually not in L1. */
    _Pragma("GCC unroll 6")
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
    }
    /* A short k loop (weight gradients at small batch: k = batch) ends before those lines arrive, and
     * the output is then written at the latency of one memory read per line. So the tile also fetches the
     * lines of the next 16-column strip in its rows: a whole strip of tiles ahead of their use. From
     * memory, 1000x10 @ 10x1000 went from 0.57 to 0.44 ms on 2 threads. */
    if (kc <= 128) {
        _Pragma("GCC unroll 6")
        for (int r = 0; r < mr; r++) {
            _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
        }
    }
    /* Prefetch target. Packed B (b_step == 16): B_PREFETCH rows ahead in the panel. B read in place (the
     * skinny path): the same row of the next 16-column strip, so each B line of a row is requested a
     * whole strip ahead of its use. Rows ahead in the same strip are 4 KiB apart for a 1000-wide B,
     * which the hardware prefetchers do not follow: from memory that ran at 4 GB/s, this at 8.5. */
    const mdl_index b_prefetch_offset = b_step == 16 ? B_PREFETCH * 16 : 16;
#pragma GCC unroll 4
    for (mdl_index p = 0; p < kc; p++) {
        /* In place, a B row segment often straddles two lines: fetch both. */
        _mm_prefetch((const char *)(b + b_prefetch_offset), _MM_HINT_T0);
        _mm_prefetch((const char *)(b + b_prefetch_offset + 15), _MM_HINT_T0);
        const __m256 b0 = _mm256_loadu_ps(b);
        const __m256 b1 = _mm256_loadu_ps(b + 8);
        _Pragma("GCC unroll 6")
        for (int r = 0; r < mr; r++) {
            const __m256 ar = _mm256_broadcast_ss(a + r);
            c0[r] = _mm256_fmadd_ps(ar, b0, c0[r]);
            if (halves == 2) c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
        }
        a += 6;
        b += b_step;
    }
    /* Epilogue c = alpha * acc + beta * c, c not read when beta == 0 (BLAS: NaN there is ignored); for
     * alpha = 1 the multiply is exact and the FMA rounds once, as the plain add did. */
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (nr == 16) {
        _Pragma("GCC unroll 6")
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            c0[r] = _mm256_mul_ps(c0[r], va);
            c1[r] = _mm256_mul_ps(c1[r], va);
            if (beta != 0.0f) {
                c0[r] = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), c0[r]);
                c1[r] = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), c1[r]);
            }
            _mm256_storeu_ps(cr, c0[r]);
            _mm256_storeu_ps(cr + 8, c1[r]);
        }
        return;
    }
    /* Edge tile: masked loads/stores touch only the nr valid columns. */
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(mask_bits_f32 + 16 - nr));
    const __m256i m1 = _mm256_loadu_si256((const __m256i *)(mask_bits_f32 + (nr > 8 ? 24 - nr : 16)));
    _Pragma("GCC unroll 6")
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        c0[r] = _mm256_mul_ps(c0[r], va);
        if (halves == 2) c1[r] = _mm256_mul_ps(c1[r], va);
        if (beta != 0.0f) {
            c0[r] = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr, m0), c0[r]);
            if (halves == 2) c1[r] = _mm256_fmadd_ps(vb, _mm256_maskload_ps(cr + 8, m1), c1[r]);
        }
        _mm256_maskstore_ps(cr, m0, c0[r]);
        if (halves == 2) _mm256_maskstore_ps(cr + 8, m1, c1[r]);
    }
}

/* Each case calls the body with a constant mr, so its loops unroll to straight-line code, and a constant
 * `halves`: an edge tile of at most 8 columns (4 in float64) runs the first B vector's FMAs alone, as the
 * AVX-512 kernels do (there, measured). */
#define MDL_MR_CASES(body, ...)                                                                        \
    switch (mr) {                                                                                    \
    case 6: body(6, __VA_ARGS__); break;                                                             \
    case 5: body(5, __VA_ARGS__); break;                                                             \
    case 4: body(4, __VA_ARGS__); break;                                                             \
    case 3: body(3, __VA_ARGS__); break;                                                             \
    case 2: body(2, __VA_ARGS__); break;                                                             \
    default: body(1, __VA_ARGS__); break;                                                            \
    }

static void kernel_f32_avx2(int mr, int nr, mdl_index kc, const float *a, const float *b, mdl_index b_step,
                            float *c, mdl_index ldc, float alpha, float beta)
{
    if (nr <= 8)
        MDL_MR_CASES(kernel_f32_body, 1, kc, a, b, b_step, c, ldc, alpha, beta, nr)
    else
        MDL_MR_CASES(kernel_f32_body, 2, kc, a, b, b_step, c, ldc, alpha, beta, nr)
}

/* Dot products (gemm_template.h: DOT_KERNEL; dot_template.h): a 4 x 3 tile of C = 12 ymm of partial sums
 * along k, with the 3 vectors of B^T's rows and one of A's: all 16 ymm registers. This build on the 2-core
 * Xeon, dY @ W^T with a 1000x1000 W against the packed path: 5 rows 30-37% faster, 10 rows 20-26%, 16 rows
 * 14%, 24 rows as fast on two threads and 9% faster on one: DOT_MAX_M 16. */
MDL_INLINE float sum_ps(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#define T float
#define DOT_MR 4
#define DOT_NR 3
#define DOT_NAME dot_f32_avx2
#define V __m256
#define LANES 8
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_LOAD_FIRST(p, count) \
    _mm256_maskload_ps(p, _mm256_loadu_si256((const __m256i *)(mdl_lane_mask32 + 8 - (count))))
#define V_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define V_SUM(v) sum_ps(v)
#include "dot_template.h"

#define SFX f32_avx2
#define MR 6
#define NR 16
#define KERNEL_NAME kernel_f32_avx2
#define DOT_KERNEL dot_f32_avx2
#define DOT_MAX_M 16
#define PACK_B_PANEL_TRANS(kc, B, csb, dst) pack_b_trans_ps(kc, B, csb, dst, 16)
#define PACK_A_PANEL_ROWS(kc, A, rsa, dst) pack_a_rows_ps(kc, A, rsa, dst, 6)
#include "gemm_template.h"

/* ================================ float64 GEMM ================================ */
static const long long mask_bits_f64[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

MDL_INLINE void kernel_f64_body(const int mr, const int halves, mdl_index kc, const double *a,
                                const double *b, mdl_index b_step, double *c, mdl_index ldc, double alpha,
                                double beta, int nr)
{
    __m256d c0[6], c1[6];
    _Pragma("GCC unroll 6")
    for (int r = 0; r < 6; r++) {
        c0[r] = _mm256_setzero_pd();
        c1[r] = _mm256_setzero_pd();
    }
    _Pragma("GCC unroll 6")
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + 7), _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (mdl_index p = 0; p < kc; p++) {
        const __m256d b0 = _mm256_loadu_pd(b);
        const __m256d b1 = _mm256_loadu_pd(b + 4);
        _Pragma("GCC unroll 6")
        for (int r = 0; r < mr; r++) {
            const __m256d ar = _mm256_broadcast_sd(a + r);
            c0[r] = _mm256_fmadd_pd(ar, b0, c0[r]);
            if (halves == 2) c1[r] = _mm256_fmadd_pd(ar, b1, c1[r]);
        }
        a += 6;
        b += b_step;
    }
    const __m256d va = _mm256_set1_pd(alpha), vb = _mm256_set1_pd(beta); /* the f32 epilogue's rule */
    if (nr == 8) {
        _Pragma("GCC unroll 6")
        for (int r = 0; r < mr; r++) {
            double *cr = c + r * ldc;
            c0[r] = _mm256_mul_pd(c0[r], va);
            c1[r] = _mm256_mul_pd(c1[r], va);
            if (beta != 0.0) {
                c0[r] = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr), c0[r]);
                c1[r] = _mm256_fmadd_pd(vb, _mm256_loadu_pd(cr + 4), c1[r]);
            }
            _mm256_storeu_pd(cr, c0[r]);
            _mm256_storeu_pd(cr + 4, c1[r]);
        }
        return;
    }
    const __m256i m0 = _mm256_loadu_si256((const __m256i *)(mask_bits_f64 + 8 - nr));
    const __m256i m1 = _mm256_loadu_si256((const __m256i *)(mask_bits_f64 + (nr > 4 ? 12 - nr : 8)));
    _Pragma("GCC unroll 6")
    for (int r = 0; r < mr; r++) {
        double *cr = c + r * ldc;
        c0[r] = _mm256_mul_pd(c0[r], va);
        if (halves == 2) c1[r] = _mm256_mul_pd(c1[r], va);
        if (beta != 0.0) {
            c0[r] = _mm256_fmadd_pd(vb, _mm256_maskload_pd(cr, m0), c0[r]);
            if (halves == 2) c1[r] = _mm256_fmadd_pd(vb, _mm256_maskload_pd(cr + 4, m1), c1[r]);
        }
        _mm256_maskstore_pd(cr, m0, c0[r]);
        if (halves == 2) _mm256_maskstore_pd(cr + 4, m1, c1[r]);
    }
}

static void kernel_f64_avx2(int mr, int nr, mdl_index kc, const double *a, const double *b, mdl_index b_step,
                            double *c, mdl_index ldc, double alpha, double beta)
{
    if (nr <= 4)
        MDL_MR_CASES(kernel_f64_body, 1, kc, a, b, b_step, c, ldc, alpha, beta, nr)
    else
        MDL_MR_CASES(kernel_f64_body, 2, kc, a, b, b_step, c, ldc, alpha, beta, nr)
}
#undef MDL_MR_CASES

MDL_INLINE double sum_pd(__m256d v)
{
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

#define T double
#define DOT_MR 4
#define DOT_NR 3
#define DOT_NAME dot_f64_avx2
#define V __m256d
#define LANES 4
#define V_ZERO() _mm256_setzero_pd()
#define V_LOAD(p) _mm256_loadu_pd(p)
#define V_LOAD_FIRST(p, count) \
    _mm256_maskload_pd(p, _mm256_loadu_si256((const __m256i *)(mdl_lane_mask64 + 4 - (count))))
#define V_FMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define V_SUM(v) sum_pd(v)
#include "dot_template.h"

#define SFX f64_avx2
#define MR 6
#define NR 8
#define KERNEL_NAME kernel_f64_avx2
#define DOT_KERNEL dot_f64_avx2
#define DOT_MAX_M 16
#define PACK_B_PANEL_TRANS(kc, B, csb, dst) pack_b_trans_pd(kc, B, csb, dst, 8)
#define PACK_A_PANEL_ROWS(kc, A, rsa, dst) pack_a_rows_pd(kc, A, rsa, dst, 6)
#include "gemm_template.h"

/* ================================ sigmoid ================================ */
/* exp(x) for x in [-104, 0] (float32): x = n ln2 + r, |r| <= ln2/2, Cephes expf polynomial (~1 ulp). */
MDL_INLINE __m256 exp_neg_ps(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(-104.0f), x); /* max(c, NaN) returns NaN: NaN propagates */
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500E-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n as 2^(n/2) * 2^(n - n/2): each factor stays a normal number down to n = -150. */
    const __m256i n = _mm256_cvtps_epi32(fx);
    const __m256i n1 = _mm256_srai_epi32(n, 1);
    const __m256i n2 = _mm256_sub_epi32(n, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

MDL_INLINE __m256 sigmoid_ps(__m256 x)
{
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 e = exp_neg_ps(_mm256_xor_ps(_mm256_and_ps(x, abs_mask), _mm256_set1_ps(-0.0f)));
    const __m256 s = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_add_ps(_mm256_set1_ps(1.0f), e));
    const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    return _mm256_blendv_ps(s, _mm256_mul_ps(e, s), neg);
}

/* fwd/bwd_f32_avx2 pair with fwd/bwd_f64_avx2, not a template: other intrinsics, 8 vs. 4 lanes a ymm. */
static void fwd_f32_avx2(const float *x, float *y, mdl_index n)
{
    mdl_index i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm256_storeu_ps(y + i, sigmoid_ps(_mm256_loadu_ps(x + i)));
        _mm256_storeu_ps(y + i + 8, sigmoid_ps(_mm256_loadu_ps(x + i + 8)));
    }
    for (; i < n; i += 8) {
        float buf[8] = {0};
        const mdl_index rest = n - i < 8 ? n - i : 8;
        memcpy(buf, x + i, (size_t)rest * sizeof(float));
        _mm256_storeu_ps(buf, sigmoid_ps(_mm256_loadu_ps(buf)));
        memcpy(y + i, buf, (size_t)rest * sizeof(float));
    }
}

static void bwd_f32_avx2(const float *y, const float *gy, float *gx, mdl_index n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    mdl_index i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 yv = _mm256_loadu_ps(y + i);
        const __m256 t = _mm256_mul_ps(_mm256_loadu_ps(gy + i), yv);
        _mm256_storeu_ps(gx + i, _mm256_mul_ps(t, _mm256_sub_ps(one, yv)));
    }
    for (; i < n; i++) gx[i] = gy[i] * y[i] * (1.0f - y[i]);
}

/* exp(x) for x in [-746, 0] (float64): Cody-Waite reduction with ln2 = hi + lo, Taylor to degree 13
 * (truncation error < 1e-17 relative for |r| <= ln2/2). */
MDL_INLINE __m256d exp_neg_pd(__m256d x)
{
    x = _mm256_max_pd(_mm256_set1_pd(-746.0), x);
    const __m256d fx = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634074)),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(fx, _mm256_set1_pd(6.93145751953125E-1), x);
    r = _mm256_fnmadd_pd(fx, _mm256_set1_pd(1.42860682030941723212E-6), r);
    static const double inv_fact[14] = {
        1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};
    __m256d p = _mm256_set1_pd(inv_fact[13]);
    for (int i = 12; i >= 0; i--) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(inv_fact[i]));
    const __m128i n = _mm256_cvtpd_epi32(fx);
    const __m128i n1 = _mm_srai_epi32(n, 1);
    const __m128i n2 = _mm_sub_epi32(n, n1);
    const __m256i bias = _mm256_set1_epi64x(1023);
    const __m256i e1 = _mm256_add_epi64(_mm256_cvtepi32_epi64(n1), bias);
    const __m256i e2 = _mm256_add_epi64(_mm256_cvtepi32_epi64(n2), bias);
    const __m256d s1 = _mm256_castsi256_pd(_mm256_slli_epi64(e1, 52));
    const __m256d s2 = _mm256_castsi256_pd(_mm256_slli_epi64(e2, 52));
    return _mm256_mul_pd(_mm256_mul_pd(p, s1), s2);
}

MDL_INLINE __m256d sigmoid_pd(__m256d x)
{
    const __m256d abs_mask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7fffffffffffffffLL));
    const __m256d e = exp_neg_pd(_mm256_xor_pd(_mm256_and_pd(x, abs_mask), _mm256_set1_pd(-0.0)));
    const __m256d s = _mm256_div_pd(_mm256_set1_pd(1.0), _mm256_add_pd(_mm256_set1_pd(1.0), e));
    const __m256d neg = _mm256_cmp_pd(x, _mm256_setzero_pd(), _CMP_LT_OQ);
    return _mm256_blendv_pd(s, _mm256_mul_pd(e, s), neg);
}

static void fwd_f64_avx2(const double *x, double *y, mdl_index n)
{
    mdl_index i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_pd(y + i, sigmoid_pd(_mm256_loadu_pd(x + i)));
        _mm256_storeu_pd(y + i + 4, sigmoid_pd(_mm256_loadu_pd(x + i + 4)));
    }
    for (; i < n; i += 4) {
        double buf[4] = {0};
        const mdl_index rest = n - i < 4 ? n - i : 4;
        memcpy(buf, x + i, (size_t)rest * sizeof(double));
        _mm256_storeu_pd(buf, sigmoid_pd(_mm256_loadu_pd(buf)));
        memcpy(y + i, buf, (size_t)rest * sizeof(double));
    }
}

static void bwd_f64_avx2(const double *y, const double *gy, double *gx, mdl_index n)
{
    const __m256d one = _mm256_set1_pd(1.0);
    mdl_index i = 0;
    for (; i + 4 <= n; i += 4) {
        const __m256d yv = _mm256_loadu_pd(y + i);
        const __m256d t = _mm256_mul_pd(_mm256_loadu_pd(gy + i), yv);
        _mm256_storeu_pd(gx + i, _mm256_mul_pd(t, _mm256_sub_pd(one, yv)));
    }
    for (; i < n; i++) gx[i] = gy[i] * y[i] * (1.0 - y[i]);
}

#define T float
#define SFX f32_avx2
#define FWD_CHUNK fwd_f32_avx2
#define BWD_CHUNK bwd_f32_avx2
#include "sigmoid_template.h"

#define T double
#define SFX f64_avx2
#define FWD_CHUNK fwd_f64_avx2
#define BWD_CHUNK bwd_f64_avx2
#include "sigmoid_template.h"

/* ---- axpby ---- */
#define T float
#define SFX f32_avx2
#include "axpby_template.h"

#define T double
#define SFX f64_avx2
#include "axpby_template.h"

const mdl_kernel_table mdl_avx2_kernels = {
    "avx2",
    6, 16, 6, 8,
    gemm_f32_avx2, gemm_f64_avx2,
    sigmoid_fwd_f32_avx2, sigmoid_fwd_f64_avx2,
    sigmoid_bwd_f32_avx2, sigmoid_bwd_f64_avx2,
    axpby_f32_avx2, axpby_f64_avx2,
};
