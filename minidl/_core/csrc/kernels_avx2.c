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

#define MDL_INLINE static inline __attribute__((always_inline))
#ifndef B_PREFETCH
#define B_PREFETCH 8 /* rows of B fetched ahead by the micro-kernel */
#endif

/* ================================ float32 GEMM ================================ */
/* Lane masks for partial tiles: mask_bits + 16 - nr gives lanes [0, nr) set. */
static const int mask_bits_f32[32] = {-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

/* A pair with kernel_f64_body, not a template: other intrinsics, lanes per ymm (8 / 4) and prefetches. */
MDL_INLINE void kernel_f32_body(const int mr, mdl_index kc, const float *a, const float *b, mdl_index b_step,
                                float *c, mdl_index ldc, int overwrite, int nr)
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
            c1[r] = _mm256_fmadd_ps(ar, b1, c1[r]);
        }
        a += 6;
        b += b_step;
    }
    if (nr == 16) {
        _Pragma("GCC unroll 6")
        for (int r = 0; r < mr; r++) {
            float *cr = c + r * ldc;
            if (!overwrite) {
                c0[r] = _mm256_add_ps(c0[r], _mm256_loadu_ps(cr));
                c1[r] = _mm256_add_ps(c1[r], _mm256_loadu_ps(cr + 8));
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
        if (!overwrite) {
            c0[r] = _mm256_add_ps(c0[r], _mm256_maskload_ps(cr, m0));
            c1[r] = _mm256_add_ps(c1[r], _mm256_maskload_ps(cr + 8, m1));
        }
        _mm256_maskstore_ps(cr, m0, c0[r]);
        _mm256_maskstore_ps(cr + 8, m1, c1[r]);
    }
}

/* A pair with kernel_f64_avx2 as the bodies are: each calls its own body with a constant mr. */
static void kernel_f32_avx2(int mr, int nr, mdl_index kc, const float *a, const float *b, mdl_index b_step,
                            float *c, mdl_index ldc, int overwrite)
{
    switch (mr) {
    case 6: kernel_f32_body(6, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 5: kernel_f32_body(5, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 4: kernel_f32_body(4, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 3: kernel_f32_body(3, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 2: kernel_f32_body(2, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    default: kernel_f32_body(1, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    }
}

MDL_INLINE void transpose8_ps(__m256 *r)
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Transposed B (op(B)[p, c] = B[p + c*csb]): 8 x 8 register transposes instead of a scalar gather.
 * A pair with pack_b_trans_f64_avx2, not a template: floats take 8 x 8 transposes, doubles 4 x 4. */
static void pack_b_trans_f32_avx2(mdl_index kc, const float *B, mdl_index csb, float *dst)
{
    mdl_index p = 0;
    for (; p + 8 <= kc; p += 8) {
        if ((p & 15) == 0) /* the next panel's 16 source rows, one line each, a panel ahead of use */
            for (int i = 16; i < 32; i++) _mm_prefetch((const char *)(B + p + i * csb), _MM_HINT_T0);
        for (int g = 0; g < 16; g += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(B + p + (g + i) * csb);
            transpose8_ps(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (p + i) * 16 + g, r[i]);
        }
    }
    for (; p < kc; p++)
        for (int c = 0; c < 16; c++) dst[p * 16 + c] = B[p + c * csb];
}



/* Row-major A (op(A)[r, p] = A[r*rsa + p]) into an MR = 6 panel: 6 rows x 8 columns per 8 x 8 transpose
 * (rows 6 and 7 zero), then 6 floats per column.
 * A pair with pack_a_rows_f64_avx2, not a template: that one needs two 4 x 4 transposes per 4 columns. */
static void pack_a_rows_f32_avx2(mdl_index kc, const float *A, mdl_index rsa, float *dst)
{
    mdl_index p = 0;
    for (; p + 8 <= kc; p += 8) {
        __m256 r[8];
        for (int i = 0; i < 6; i++) r[i] = _mm256_loadu_ps(A + i * rsa + p);
        r[6] = r[7] = _mm256_setzero_ps();
        transpose8_ps(r);
        for (int j = 0; j < 8; j++) {
            float *d = dst + (p + j) * 6;
            _mm_storeu_ps(d, _mm256_castps256_ps128(r[j]));
            _mm_storel_pi((__m64 *)(d + 4), _mm256_extractf128_ps(r[j], 1));
        }
    }
    for (; p < kc; p++)
        for (int i = 0; i < 6; i++) dst[p * 6 + i] = A[i * rsa + p];
}

#define T float
#define SFX f32_avx2
#define MR 6
#define NR 16
#define KERNEL_NAME kernel_f32_avx2
#define PACK_B_PANEL_TRANS pack_b_trans_f32_avx2
#define PACK_A_PANEL_ROWS pack_a_rows_f32_avx2
#include "gemm_template.h"

/* ================================ float64 GEMM ================================ */
static const long long mask_bits_f64[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

MDL_INLINE void kernel_f64_body(const int mr, mdl_index kc, const double *a, const double *b,
                                mdl_index b_step, double *c, mdl_index ldc, int overwrite, int nr)
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
            c1[r] = _mm256_fmadd_pd(ar, b1, c1[r]);
        }
        a += 6;
        b += b_step;
    }
    if (nr == 8) {
        _Pragma("GCC unroll 6")
        for (int r = 0; r < mr; r++) {
            double *cr = c + r * ldc;
            if (!overwrite) {
                c0[r] = _mm256_add_pd(c0[r], _mm256_loadu_pd(cr));
                c1[r] = _mm256_add_pd(c1[r], _mm256_loadu_pd(cr + 4));
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
        if (!overwrite) {
            c0[r] = _mm256_add_pd(c0[r], _mm256_maskload_pd(cr, m0));
            c1[r] = _mm256_add_pd(c1[r], _mm256_maskload_pd(cr + 4, m1));
        }
        _mm256_maskstore_pd(cr, m0, c0[r]);
        _mm256_maskstore_pd(cr + 4, m1, c1[r]);
    }
}

static void kernel_f64_avx2(int mr, int nr, mdl_index kc, const double *a, const double *b, mdl_index b_step,
                            double *c, mdl_index ldc, int overwrite)
{
    switch (mr) {
    case 6: kernel_f64_body(6, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 5: kernel_f64_body(5, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 4: kernel_f64_body(4, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 3: kernel_f64_body(3, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    case 2: kernel_f64_body(2, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    default: kernel_f64_body(1, kc, a, b, b_step, c, ldc, overwrite, nr); break;
    }
}

MDL_INLINE void transpose4_pd(__m256d *r)
{
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

static void pack_b_trans_f64_avx2(mdl_index kc, const double *B, mdl_index csb, double *dst)
{
    mdl_index p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int g = 0; g < 8; g += 4) {
            __m256d r[4];
            for (int i = 0; i < 4; i++) r[i] = _mm256_loadu_pd(B + p + (g + i) * csb);
            transpose4_pd(r);
            for (int i = 0; i < 4; i++) _mm256_storeu_pd(dst + (p + i) * 8 + g, r[i]);
        }
    }
    for (; p < kc; p++)
        for (int c = 0; c < 8; c++) dst[p * 8 + c] = B[p + c * csb];
}



static void pack_a_rows_f64_avx2(mdl_index kc, const double *A, mdl_index rsa, double *dst)
{
    mdl_index p = 0;
    for (; p + 4 <= kc; p += 4) {
        __m256d lo[4], hi[4];
        for (int i = 0; i < 4; i++) lo[i] = _mm256_loadu_pd(A + i * rsa + p);
        hi[0] = _mm256_loadu_pd(A + 4 * rsa + p);
        hi[1] = _mm256_loadu_pd(A + 5 * rsa + p);
        hi[2] = hi[3] = _mm256_setzero_pd();
        transpose4_pd(lo);
        transpose4_pd(hi);
        for (int j = 0; j < 4; j++) {
            double *d = dst + (p + j) * 6;
            _mm256_storeu_pd(d, lo[j]);
            _mm_storeu_pd(d + 4, _mm256_castpd256_pd128(hi[j]));
        }
    }
    for (; p < kc; p++)
        for (int i = 0; i < 6; i++) dst[p * 6 + i] = A[i * rsa + p];
}

#define T double
#define SFX f64_avx2
#define MR 6
#define NR 8
#define KERNEL_NAME kernel_f64_avx2
#define PACK_B_PANEL_TRANS pack_b_trans_f64_avx2
#define PACK_A_PANEL_ROWS pack_a_rows_f64_avx2
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

const mdl_kernel_table mdl_avx2_kernels = {
    "avx2",
    gemm_f32_avx2, gemm_f64_avx2,
    sigmoid_fwd_f32_avx2, sigmoid_fwd_f64_avx2,
    sigmoid_bwd_f32_avx2, sigmoid_bwd_f64_avx2,
};
