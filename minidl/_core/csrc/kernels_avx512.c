/* AVX-512 kernels (F, CD, BW, DQ, VL: x86-64-v4). This translation unit alone is compiled with those flags
 * (setup.py); it is only called after dispatch.c has checked the CPU's features and that the OS saves the
 * zmm and mask registers (cpuid + xgetbv).
 *
 * GEMM micro-kernels: 14 x 32 (float32) and 14 x 16 (float64) register tiles = 28 accumulators + 2 B
 * vectors of the 32 zmm registers; A is broadcast from memory inside each FMA ({1to16}). Edge tiles use
 * mask registers. Block sizes come from the caches at run time (blocking.c); packing: x86_pack.h.
 * Sigmoid: the AVX2 build's exp (Cephes range reduction x = n ln2 + r, polynomial in r) at 16 or 8 lanes,
 * with 2^n applied by vscalefps/pd (one rounding, exact down to the subnormals); tails by masked loads. */
#include <immintrin.h>
#include "kernels.h"
#include "x86_pack.h"

#define B_PREFETCH 8           /* rows of packed B fetched ahead by the micro-kernel */
#define B_PREFETCH_IN_PLACE 16 /* rows of B read in place (the skinny path) */

/* ================================ float32 GEMM ================================ */
/* A pair with kernel_f64_body, not a template: other intrinsics, lanes per zmm (16 / 8), masks. */
MDL_INLINE void kernel_f32_body(const int mr, const int halves, mdl_index kc, const float *a, const float *b,
                                mdl_index b_step, float *c, mdl_index ldc, float alpha, float beta, int nr)
{
    __m512 c0[14], c1[14];
    _Pragma("GCC unroll 14")
    for (int r = 0; r < 14; r++) {
        c0[r] = _mm512_setzero_ps();
        c1[r] = _mm512_setzero_ps();
    }
    /* Fetch the C tile while the k loop runs. Not also the next 32-column strip of its rows for a short k
     * loop, as the AVX2 kernel does (measured on an EPYC): on the 2-core Xeon that made the SGD update at
     * batch 10 (1000x10 @ 10x1000 into W) 8-12% slower, and the fused update + product 6-8%; batch 32 and
     * 64 0-4% (alternating in one process, median ratios of 25 rounds). */
    _Pragma("GCC unroll 14")
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        if (halves == 2) {
            _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 31), _MM_HINT_T0);
        }
    }
    /* Packed B (b_step == 32): B_PREFETCH rows ahead. B read in place: B_PREFETCH_IN_PLACE rows ahead in the
     * same strip (each row of a 1000-wide B in its own 4 KiB page, which the hardware prefetchers do not
     * follow). X @ W at 10 x 1000 @ 1000 x 1000 on the 2-core Xeon: 0.20-0.21 ns per element of W on one
     * thread, 0.16 on two, against 0.24-0.25 and 0.18 fetching the same row of the next strip (AVX2's rule,
     * measured on the EPYC); 8 to 32 rows ahead all did about as well, 64 worse. */
    const mdl_index b_prefetch_offset = b_step == 32 ? B_PREFETCH * 32 : B_PREFETCH_IN_PLACE * b_step;
#pragma GCC unroll 2
    for (mdl_index p = 0; p < kc; p++) {
        _mm_prefetch((const char *)(b + b_prefetch_offset), _MM_HINT_T0);
        if (halves == 2) _mm_prefetch((const char *)(b + b_prefetch_offset + 16), _MM_HINT_T0);
        if (b_step != 32) _mm_prefetch((const char *)(b + b_prefetch_offset + 31), _MM_HINT_T0);
        const __m512 b0 = _mm512_loadu_ps(b);
        const __m512 b1 = _mm512_loadu_ps(b + 16);
        _Pragma("GCC unroll 14")
        for (int r = 0; r < mr; r++) {
            const __m512 ar = _mm512_set1_ps(a[r]);
            c0[r] = _mm512_fmadd_ps(ar, b0, c0[r]);
            if (halves == 2) c1[r] = _mm512_fmadd_ps(ar, b1, c1[r]);
        }
        a += 14;
        b += b_step;
    }
    const __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1);
    const __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    /* Epilogue c = alpha * acc + beta * c, c not read when beta == 0 (BLAS: NaN there is ignored); for
     * alpha = 1 the multiply is exact and the FMA rounds once, as the plain add did. */
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
    _Pragma("GCC unroll 14")
    for (int r = 0; r < mr; r++) {
        float *cr = c + r * ldc;
        c0[r] = _mm512_mul_ps(c0[r], va);
        if (halves == 2) c1[r] = _mm512_mul_ps(c1[r], va);
        if (beta != 0.0f) {
            c0[r] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), c0[r]);
            if (halves == 2) c1[r] = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), c1[r]);
        }
        _mm512_mask_storeu_ps(cr, m0, c0[r]);
        if (halves == 2) _mm512_mask_storeu_ps(cr + 16, m1, c1[r]);
    }
}

/* Each case calls the body with a constant mr, so its loops unroll to straight-line code, and a constant
 * `halves`, the B vectors the tile's columns span: an edge tile of at most 16 columns (8 in float64) runs the
 * first vector's FMAs alone instead of filling masked-off lanes too. Before, the 8-column last strip of a
 * 1000-wide C cost a full tile (1/32 of such a GEMM): the training step at batch 256 is 1.4% and 2.8% faster
 * on 2 threads, 1 thread 0.2%, batch 10 and 64 -0.8 to 3.6% (tools/ab_kernels.py --step, two runs each). */
#define MDL_MR_CASES(body, ...)                                                                        \
    switch (mr) {                                                                                    \
    case 14: body(14, __VA_ARGS__); break;                                                           \
    case 13: body(13, __VA_ARGS__); break;                                                           \
    case 12: body(12, __VA_ARGS__); break;                                                           \
    case 11: body(11, __VA_ARGS__); break;                                                           \
    case 10: body(10, __VA_ARGS__); break;                                                           \
    case 9: body(9, __VA_ARGS__); break;                                                             \
    case 8: body(8, __VA_ARGS__); break;                                                             \
    case 7: body(7, __VA_ARGS__); break;                                                             \
    case 6: body(6, __VA_ARGS__); break;                                                             \
    case 5: body(5, __VA_ARGS__); break;                                                             \
    case 4: body(4, __VA_ARGS__); break;                                                             \
    case 3: body(3, __VA_ARGS__); break;                                                             \
    case 2: body(2, __VA_ARGS__); break;                                                             \
    default: body(1, __VA_ARGS__); break;                                                            \
    }

static void kernel_f32_avx512(int mr, int nr, mdl_index kc, const float *a, const float *b, mdl_index b_step,
                              float *c, mdl_index ldc, float alpha, float beta)
{
    if (nr <= 16)
        MDL_MR_CASES(kernel_f32_body, 1, kc, a, b, b_step, c, ldc, alpha, beta, nr)
    else
        MDL_MR_CASES(kernel_f32_body, 2, kc, a, b, b_step, c, ldc, alpha, beta, nr)
}

/* out[0..3] = the lane sums of a, b, c, d: pairs of them added lane-interleaved, then the 128-bit lanes, 12
 * instructions where four _mm512_reduce_add_ps take 32. For the dot-product kernel's 20 reductions per tile:
 * the input gradient 10 x 1000 @ (1000 x 1000)^T 2-4% faster on 1 and 2 threads, 32 rows 3% (tools/ab_kernels.py;
 * 6% in a C loop over the kernel alone). */
static inline void sum4_ps(float *out, __m512 a, __m512 b, __m512 c, __m512 d)
{
    const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b)); /* a b a b per lane */
    const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    const __m512 abcd = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, 0x44), _mm512_shuffle_ps(ab, cd, 0xEE));
    const __m256 half = _mm256_add_ps(_mm512_castps512_ps256(abcd), _mm512_extractf32x8_ps(abcd, 1));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(half), _mm256_extractf128_ps(half, 1)));
}

/* Dot products (gemm_template.h: DOT_KERNEL; dot_template.h): a 5 x 4 tile of C = 20 zmm of partial sums
 * along k, each step loading 5 vectors of A's rows and 4 of B^T's for 20 FMAs. Of the tiles tried on the
 * 2-core Xeon (10x1000 @ (1000x1000)^T), 5x4 and 5x5 ran at 0.13-0.17 ns per element on two threads; 10x2,
 * 4x6, 5x6 and 2x10 at 0.14-0.24. Against the packed path (1000x1000 B^T): 16 and 24 rows 25-50% faster on
 * one thread, 7-30% on two; 32 rows as fast on one thread and 14% faster on two; 40 rows 8% slower, 64 rows
 * 20% slower: DOT_MAX_M 32. */
#define T float
#define DOT_MR 5
#define DOT_NR 4
#define DOT_NAME dot_f32_avx512
#define V __m512
#define LANES 16
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_LOAD_FIRST(p, count) _mm512_maskz_loadu_ps((__mmask16)((1u << (count)) - 1), p)
#define V_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define V_SUM(v) _mm512_reduce_add_ps(v)
#define V_SUM4(out, a, b, c, d) sum4_ps(out, a, b, c, d)
#include "dot_template.h"

#define SFX f32_avx512
#define MR 14
#define NR 32
#define KERNEL_NAME kernel_f32_avx512
#define DOT_KERNEL dot_f32_avx512
#define DOT_MAX_M 32
#define PACK_B_PANEL_TRANS(kc, B, csb, dst) pack_b_trans_ps(kc, B, csb, dst, 32)
#define PACK_A_PANEL_ROWS(kc, A, rsa, dst) pack_a_rows_ps(kc, A, rsa, dst, 14)
#include "gemm_template.h"

/* ================================ float64 GEMM ================================ */
MDL_INLINE void kernel_f64_body(const int mr, const int halves, mdl_index kc, const double *a,
                                const double *b, mdl_index b_step, double *c, mdl_index ldc, double alpha,
                                double beta, int nr)
{
    __m512d c0[14], c1[14];
    _Pragma("GCC unroll 14")
    for (int r = 0; r < 14; r++) {
        c0[r] = _mm512_setzero_pd();
        c1[r] = _mm512_setzero_pd();
    }
    _Pragma("GCC unroll 14")
    for (int r = 0; r < mr; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        if (halves == 2) {
            _mm_prefetch((const char *)(c + r * ldc + 8), _MM_HINT_T0);
            _mm_prefetch((const char *)(c + r * ldc + 15), _MM_HINT_T0);
        }
    }
    const mdl_index b_prefetch_offset = b_step == 16 ? B_PREFETCH * 16 : B_PREFETCH_IN_PLACE * b_step;
#pragma GCC unroll 2
    for (mdl_index p = 0; p < kc; p++) {
        _mm_prefetch((const char *)(b + b_prefetch_offset), _MM_HINT_T0);
        if (halves == 2) _mm_prefetch((const char *)(b + b_prefetch_offset + 8), _MM_HINT_T0);
        if (b_step != 16) _mm_prefetch((const char *)(b + b_prefetch_offset + 15), _MM_HINT_T0);
        const __m512d b0 = _mm512_loadu_pd(b);
        const __m512d b1 = _mm512_loadu_pd(b + 8);
        _Pragma("GCC unroll 14")
        for (int r = 0; r < mr; r++) {
            const __m512d ar = _mm512_set1_pd(a[r]);
            c0[r] = _mm512_fmadd_pd(ar, b0, c0[r]);
            if (halves == 2) c1[r] = _mm512_fmadd_pd(ar, b1, c1[r]);
        }
        a += 14;
        b += b_step;
    }
    const __mmask8 m0 = nr >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << nr) - 1);
    const __mmask8 m1 = nr >= 16 ? (__mmask8)0xFF : nr > 8 ? (__mmask8)((1u << (nr - 8)) - 1) : 0;
    const __m512d va = _mm512_set1_pd(alpha), vb = _mm512_set1_pd(beta); /* the f32 epilogue's rule */
    _Pragma("GCC unroll 14")
    for (int r = 0; r < mr; r++) {
        double *cr = c + r * ldc;
        c0[r] = _mm512_mul_pd(c0[r], va);
        if (halves == 2) c1[r] = _mm512_mul_pd(c1[r], va);
        if (beta != 0.0) {
            c0[r] = _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(m0, cr), c0[r]);
            if (halves == 2) c1[r] = _mm512_fmadd_pd(vb, _mm512_maskz_loadu_pd(m1, cr + 8), c1[r]);
        }
        _mm512_mask_storeu_pd(cr, m0, c0[r]);
        if (halves == 2) _mm512_mask_storeu_pd(cr + 8, m1, c1[r]);
    }
}

static void kernel_f64_avx512(int mr, int nr, mdl_index kc, const double *a, const double *b,
                              mdl_index b_step, double *c, mdl_index ldc, double alpha, double beta)
{
    if (nr <= 8)
        MDL_MR_CASES(kernel_f64_body, 1, kc, a, b, b_step, c, ldc, alpha, beta, nr)
    else
        MDL_MR_CASES(kernel_f64_body, 2, kc, a, b, b_step, c, ldc, alpha, beta, nr)
}
#undef MDL_MR_CASES

/* sum4_ps for float64: lanes (128 bits) of a b a b and c d c d, then a b c d in 256 bits. */
static inline void sum4_pd(double *out, __m512d a, __m512d b, __m512d c, __m512d d)
{
    const __m512d ab = _mm512_add_pd(_mm512_unpacklo_pd(a, b), _mm512_unpackhi_pd(a, b));
    const __m512d cd = _mm512_add_pd(_mm512_unpacklo_pd(c, d), _mm512_unpackhi_pd(c, d));
    const __m512d abcd = _mm512_add_pd(_mm512_shuffle_f64x2(ab, cd, 0x88), _mm512_shuffle_f64x2(ab, cd, 0xDD));
    const __m512d pairs = _mm512_shuffle_f64x2(abcd, abcd, 0xD8); /* lanes 0 2 1 3: a b c d, a b c d */
    _mm256_storeu_pd(out, _mm256_add_pd(_mm512_castpd512_pd256(pairs), _mm512_extractf64x4_pd(pairs, 1)));
}

#define T double
#define DOT_MR 5
#define DOT_NR 4
#define DOT_NAME dot_f64_avx512
#define V __m512d
#define LANES 8
#define V_ZERO() _mm512_setzero_pd()
#define V_LOAD(p) _mm512_loadu_pd(p)
#define V_LOAD_FIRST(p, count) _mm512_maskz_loadu_pd((__mmask8)((1u << (count)) - 1), p)
#define V_FMA(a, b, c) _mm512_fmadd_pd(a, b, c)
#define V_SUM(v) _mm512_reduce_add_pd(v)
#define V_SUM4(out, a, b, c, d) sum4_pd(out, a, b, c, d)
#include "dot_template.h"

#define SFX f64_avx512
#define MR 14
#define NR 16
#define KERNEL_NAME kernel_f64_avx512
#define DOT_KERNEL dot_f64_avx512
#define DOT_MAX_M 32
#define PACK_B_PANEL_TRANS(kc, B, csb, dst) pack_b_trans_pd(kc, B, csb, dst, 16)
#define PACK_A_PANEL_ROWS(kc, A, rsa, dst) pack_a_rows_pd(kc, A, rsa, dst, 14)
#include "gemm_template.h"

/* ================================ sigmoid ================================ */
/* exp(x) for x in [-104, 0] (float32): the Cephes expf polynomial of kernels_avx2.c (~1 ulp). */
MDL_INLINE __m512 exp_neg_ps(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x); /* max(c, NaN) returns NaN: NaN propagates */
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500E-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073E-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894E-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459E-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201E-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, fx);
}

MDL_INLINE __m512 sigmoid_ps(__m512 x)
{
    const __m512 e = exp_neg_ps(_mm512_castsi512_ps(
        _mm512_or_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000)))); /* -|x| */
    const __m512 s = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    const __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(s, neg, e, s);
}

/* fwd/bwd_f32_avx512 pair with fwd/bwd_f64_avx512, not a template: other intrinsics, 16 vs. 8 lanes. */
static void fwd_f32_avx512(const float *x, float *y, mdl_index n)
{
    mdl_index i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(y + i, sigmoid_ps(_mm512_loadu_ps(x + i)));
        _mm512_storeu_ps(y + i + 16, sigmoid_ps(_mm512_loadu_ps(x + i + 16)));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, sigmoid_ps(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

static void bwd_f32_avx512(const float *y, const float *gy, float *gx, mdl_index n)
{
    const __m512 one = _mm512_set1_ps(1.0f);
    for (mdl_index i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        const __m512 yv = _mm512_maskz_loadu_ps(m, y + i);
        const __m512 t = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, gy + i), yv);
        _mm512_mask_storeu_ps(gx + i, m, _mm512_mul_ps(t, _mm512_sub_ps(one, yv)));
    }
}

/* exp(x) for x in [-746, 0] (float64): kernels_avx2.c's Cody-Waite reduction and degree-13 Taylor. */
MDL_INLINE __m512d exp_neg_pd(__m512d x)
{
    x = _mm512_max_pd(_mm512_set1_pd(-746.0), x);
    const __m512d fx = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(1.4426950408889634074)),
                                            _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(fx, _mm512_set1_pd(6.93145751953125E-1), x);
    r = _mm512_fnmadd_pd(fx, _mm512_set1_pd(1.42860682030941723212E-6), r);
    static const double inv_fact[14] = {
        1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};
    __m512d p = _mm512_set1_pd(inv_fact[13]);
    for (int i = 12; i >= 0; i--) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(inv_fact[i]));
    return _mm512_scalef_pd(p, fx);
}

MDL_INLINE __m512d sigmoid_pd(__m512d x)
{
    const __m512d e = exp_neg_pd(_mm512_castsi512_pd(
        _mm512_or_si512(_mm512_castpd_si512(x), _mm512_set1_epi64((long long)0x8000000000000000ULL))));
    const __m512d s = _mm512_div_pd(_mm512_set1_pd(1.0), _mm512_add_pd(_mm512_set1_pd(1.0), e));
    const __mmask8 neg = _mm512_cmp_pd_mask(x, _mm512_setzero_pd(), _CMP_LT_OQ);
    return _mm512_mask_mul_pd(s, neg, e, s);
}

static void fwd_f64_avx512(const double *x, double *y, mdl_index n)
{
    mdl_index i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm512_storeu_pd(y + i, sigmoid_pd(_mm512_loadu_pd(x + i)));
        _mm512_storeu_pd(y + i + 8, sigmoid_pd(_mm512_loadu_pd(x + i + 8)));
    }
    for (; i < n; i += 8) {
        const __mmask8 m = n - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - i)) - 1);
        _mm512_mask_storeu_pd(y + i, m, sigmoid_pd(_mm512_maskz_loadu_pd(m, x + i)));
    }
}

static void bwd_f64_avx512(const double *y, const double *gy, double *gx, mdl_index n)
{
    const __m512d one = _mm512_set1_pd(1.0);
    for (mdl_index i = 0; i < n; i += 8) {
        const __mmask8 m = n - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (n - i)) - 1);
        const __m512d yv = _mm512_maskz_loadu_pd(m, y + i);
        const __m512d t = _mm512_mul_pd(_mm512_maskz_loadu_pd(m, gy + i), yv);
        _mm512_mask_storeu_pd(gx + i, m, _mm512_mul_pd(t, _mm512_sub_pd(one, yv)));
    }
}

#define T float
#define SFX f32_avx512
#define FWD_CHUNK fwd_f32_avx512
#define BWD_CHUNK bwd_f32_avx512
#include "sigmoid_template.h"

#define T double
#define SFX f64_avx512
#define FWD_CHUNK fwd_f64_avx512
#define BWD_CHUNK bwd_f64_avx512
#include "sigmoid_template.h"

/* ---- axpby: the template's loop, vectorized by the compiler at 16 float lanes (-mprefer-vector-width=512) */
#define T float
#define SFX f32_avx512
#include "axpby_template.h"

#define T double
#define SFX f64_avx512
#include "axpby_template.h"

const mdl_kernel_table mdl_avx512_kernels = {
    "avx512",
    14, 32, 14, 16,
    gemm_f32_avx512, gemm_f64_avx512,
    sigmoid_fwd_f32_avx512, sigmoid_fwd_f64_avx512,
    sigmoid_bwd_f32_avx512, sigmoid_bwd_f64_avx512,
    axpby_f32_avx512, axpby_f64_avx512,
};
