/* Packing with AVX2 register transposes, for the x86 builds (kernels_avx2.c, kernels_avx512.c), each of
 * which compiles this file with its own flags. A panel's width (nr) or height (mr) is an argument that
 * each build passes as a constant, so every call compiles to straight-line code for its micro-tile:
 *   pack_b_trans_*: transposed B (op(B)[p, c] = B[p + c*csb]) into a kc x nr panel (8 x 8 float or 4 x 4
 *                   double transposes instead of a scalar gather; the next panel's source rows are
 *                   prefetched a panel ahead of use);
 *   pack_a_rows_*:  row-major A (op(A)[r, p] = A[r*rsa + p]) into an mr x kc panel (mr <= 16), rows padded
 *                   to the transpose width with zeros and only the mr valid ones stored.
 * The template's signatures for PACK_B_PANEL_TRANS / PACK_A_PANEL_ROWS are these without the width. */
#ifndef MDL_X86_PACK_H
#define MDL_X86_PACK_H

#include <immintrin.h>
#include "kernels.h"

#define MDL_INLINE static inline __attribute__((always_inline))

static const int mdl_lane_mask32[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static const long long mdl_lane_mask64[8] = {-1, -1, -1, -1, 0, 0, 0, 0};

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

MDL_INLINE void transpose4_pd(__m256d *r)
{
    const __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    const __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* The first `count` lanes of v to dst (8 floats or 4 doubles: a plain store). */
MDL_INLINE void store_first_ps(float *dst, __m256 v, int count)
{
    if (count == 8)
        _mm256_storeu_ps(dst, v);
    else
        _mm256_maskstore_ps(dst, _mm256_loadu_si256((const __m256i *)(mdl_lane_mask32 + 8 - count)), v);
}

MDL_INLINE void store_first_pd(double *dst, __m256d v, int count)
{
    if (count == 4)
        _mm256_storeu_pd(dst, v);
    else
        _mm256_maskstore_pd(dst, _mm256_loadu_si256((const __m256i *)(mdl_lane_mask64 + 4 - count)), v);
}

/* Where the rows of a dot-product tile start, in elements from its first row (gemm_template.h: DOT_KERNEL;
 * strides may be negative): rows past mr of A (nr of B^T) repeat the last one, so the kernel runs at full
 * size and drops their sums. */
MDL_INLINE void dot_rows(int mr, int nr, int tile_m, int tile_n, mdl_index lda, mdl_index ldb, mdl_index *a_off,
                         mdl_index *b_off)
{
    for (int i = 0; i < tile_m; i++) a_off[i] = (mdl_index)(i < mr ? i : mr - 1) * lda;
    for (int j = 0; j < tile_n; j++) b_off[j] = (mdl_index)(j < nr ? j : nr - 1) * ldb;
}

MDL_INLINE void pack_b_trans_ps(mdl_index kc, const float *B, mdl_index csb, float *dst, const int nr)
{
    mdl_index p = 0;
    for (; p + 8 <= kc; p += 8) {
        if ((p & 15) == 0) /* the next panel's nr source rows, one line each, a panel ahead of use */
            for (int i = nr; i < 2 * nr; i++) _mm_prefetch((const char *)(B + p + i * csb), _MM_HINT_T0);
        for (int g = 0; g < nr; g += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(B + p + (g + i) * csb);
            transpose8_ps(r);
            for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (p + i) * nr + g, r[i]);
        }
    }
    for (; p < kc; p++)
        for (int c = 0; c < nr; c++) dst[p * nr + c] = B[p + c * csb];
}

MDL_INLINE void pack_a_rows_ps(mdl_index kc, const float *A, mdl_index rsa, float *dst, const int mr)
{
    mdl_index p = 0;
    for (; p + 8 <= kc; p += 8)
        for (int g = 0; g < mr; g += 8) {
            const int rows = mr - g < 8 ? mr - g : 8;
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = i < rows ? _mm256_loadu_ps(A + (g + i) * rsa + p) : _mm256_setzero_ps();
            transpose8_ps(r);
            for (int j = 0; j < 8; j++) store_first_ps(dst + (p + j) * mr + g, r[j], rows);
        }
    for (; p < kc; p++)
        for (int i = 0; i < mr; i++) dst[p * mr + i] = A[i * rsa + p];
}

MDL_INLINE void pack_b_trans_pd(mdl_index kc, const double *B, mdl_index csb, double *dst, const int nr)
{
    mdl_index p = 0;
    for (; p + 4 <= kc; p += 4)
        for (int g = 0; g < nr; g += 4) {
            __m256d r[4];
            for (int i = 0; i < 4; i++) r[i] = _mm256_loadu_pd(B + p + (g + i) * csb);
            transpose4_pd(r);
            for (int i = 0; i < 4; i++) _mm256_storeu_pd(dst + (p + i) * nr + g, r[i]);
        }
    for (; p < kc; p++)
        for (int c = 0; c < nr; c++) dst[p * nr + c] = B[p + c * csb];
}

MDL_INLINE void pack_a_rows_pd(mdl_index kc, const double *A, mdl_index rsa, double *dst, const int mr)
{
    mdl_index p = 0;
    for (; p + 4 <= kc; p += 4)
        for (int g = 0; g < mr; g += 4) {
            const int rows = mr - g < 4 ? mr - g : 4;
            __m256d r[4];
            for (int i = 0; i < 4; i++) r[i] = i < rows ? _mm256_loadu_pd(A + (g + i) * rsa + p) : _mm256_setzero_pd();
            transpose4_pd(r);
            for (int j = 0; j < 4; j++) store_first_pd(dst + (p + j) * mr + g, r[j], rows);
        }
    for (; p < kc; p++)
        for (int i = 0; i < mr; i++) dst[p * mr + i] = A[i * rsa + p];
}

#endif
