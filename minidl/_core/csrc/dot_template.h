/* Dot-product micro-kernel for gemm_template.h's DOT_KERNEL (A B^T with few rows, both read along rows):
 *     static void DOT_NAME(int mr, int nr, mdl_index k, const T *a, mdl_index lda, const T *b, mdl_index ldb,
 *                          T *c, mdl_index ldc, T alpha, T beta);
 * c[i*ldc + j] = alpha * sum_p a[i*lda + p] b[j*ldb + p] + beta * c[i*ldc + j] for i < mr <= DOT_MR,
 * j < nr <= DOT_NR (c not read when beta == 0, as the micro-kernel's epilogue). A DOT_MR x DOT_NR tile of
 * vectors of partial sums along k, each step loading DOT_MR vectors of A's rows and DOT_NR of B^T's for
 * DOT_MR x DOT_NR FMAs, reduced at the end; rows past mr (nr) repeat the last one (dot_rows) and their sums
 * are dropped. The main loop loads plainly (AVX2's vmaskmovps there made the kernel ~20% slower; AVX-512's
 * masked loads cost nothing either way), the last partial vector of k is masked.
 * Parameters: DOT_NAME, T, DOT_MR, DOT_NR and the vector operations V (the type), LANES, V_ZERO(),
 * V_LOAD(p), V_LOAD_FIRST(p, count) (the first count < LANES lanes, the rest 0), V_FMA(a, b, c) (a b + c),
 * V_SUM(v) (the lanes' sum, a T), and optionally, for DOT_NR 4, V_SUM4(out, a, b, c, d) (out[0..3] = the sums
 * of a, b, c and d: four reductions sharing their shuffles). This file #undefs DOT_NAME, V and the V_ macros
 * and LANES; T, DOT_MR and DOT_NR stay for gemm_template.h, which #undefs them. */
#if !defined(DOT_NAME) || !defined(T) || !defined(DOT_MR) || !defined(DOT_NR) || !defined(V) || !defined(LANES)
#error "dot_template.h: define DOT_NAME, T, DOT_MR, DOT_NR, V, LANES and the V_ operations before including it"
#endif

#define DOT_PREFETCH_BYTES 512 /* of B^T's rows fetched ahead (their lines stream from L2 or L3) */

static void DOT_NAME(int mr, int nr, mdl_index k, const T *a, mdl_index lda, const T *b, mdl_index ldb, T *c,
                     mdl_index ldc, T alpha, T beta)
{
    mdl_index a_off[DOT_MR], b_off[DOT_NR];
    dot_rows(mr, nr, DOT_MR, DOT_NR, lda, ldb, a_off, b_off);
    const T *ar[DOT_MR], *br[DOT_NR];
    for (int i = 0; i < DOT_MR; i++) ar[i] = a + a_off[i];
    for (int j = 0; j < DOT_NR; j++) br[j] = b + b_off[j];
    V acc[DOT_MR][DOT_NR];
    _Pragma("GCC unroll 8") for (int i = 0; i < DOT_MR; i++)
        _Pragma("GCC unroll 8") for (int j = 0; j < DOT_NR; j++) acc[i][j] = V_ZERO();
    mdl_index p = 0;
    for (; p + LANES <= k; p += LANES) {
        V bv[DOT_NR];
        _Pragma("GCC unroll 8") for (int j = 0; j < DOT_NR; j++) {
            _mm_prefetch((const char *)(br[j] + p) + DOT_PREFETCH_BYTES, _MM_HINT_T0);
            bv[j] = V_LOAD(br[j] + p);
        }
        _Pragma("GCC unroll 8") for (int i = 0; i < DOT_MR; i++) {
            const V av = V_LOAD(ar[i] + p);
            _Pragma("GCC unroll 8") for (int j = 0; j < DOT_NR; j++) acc[i][j] = V_FMA(av, bv[j], acc[i][j]);
        }
    }
    if (p < k) {
        V bv[DOT_NR];
        _Pragma("GCC unroll 8") for (int j = 0; j < DOT_NR; j++) bv[j] = V_LOAD_FIRST(br[j] + p, (int)(k - p));
        _Pragma("GCC unroll 8") for (int i = 0; i < DOT_MR; i++) {
            const V av = V_LOAD_FIRST(ar[i] + p, (int)(k - p));
            _Pragma("GCC unroll 8") for (int j = 0; j < DOT_NR; j++) acc[i][j] = V_FMA(av, bv[j], acc[i][j]);
        }
    }
    _Pragma("GCC unroll 8") for (int i = 0; i < DOT_MR; i++) {
        if (i >= mr) break;
        T sums[DOT_NR];
#ifdef V_SUM4
#if DOT_NR != 4
#error "dot_template.h: V_SUM4 needs DOT_NR 4"
#endif
        V_SUM4(sums, acc[i][0], acc[i][1], acc[i][2], acc[i][3]);
#else
        _Pragma("GCC unroll 8") for (int j = 0; j < DOT_NR; j++) sums[j] = j < nr ? V_SUM(acc[i][j]) : (T)0;
#endif
        _Pragma("GCC unroll 8") for (int j = 0; j < DOT_NR; j++)
            if (j < nr) {
                const T sum = alpha * sums[j];
                c[i * ldc + j] = beta == (T)0 ? sum : sum + beta * c[i * ldc + j];
            }
    }
}

#undef DOT_PREFETCH_BYTES
#undef DOT_NAME
#undef V
#undef LANES
#undef V_ZERO
#undef V_LOAD
#undef V_LOAD_FIRST
#undef V_FMA
#undef V_SUM
#undef V_SUM4
