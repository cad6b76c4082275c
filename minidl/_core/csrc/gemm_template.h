/* GEMM driver, the BLIS/GotoBLAS way (Goto & van de Geijn 2008, "Anatomy of high-performance matrix
 * multiplication"; Van Zee & van de Geijn 2015, BLIS). Included once per (dtype, instruction set).
 *
 *   for jc in N step NC:            B block KC x NC lives in L3
 *     for pc in K step KC:          pack op(B)[pc:pc+kc, jc:jc+nc] into NR-wide panels
 *       for ic in M step MC:        pack op(A)[ic:ic+mc, pc:pc+kc] into MR-tall panels (L2)
 *         for ir in mc step MR:     one A panel (MR x kc) stays in L1
 *           for jr in nc step NR:   micro-kernel: C[MR x NR] (+)= A panel @ B panel (from L2)
 *
 * The two inner loops run in this order (BLIS has jr outside ir) while the packed KC x NC block of B fits
 * in L2 as the MC x KC block of A does: consecutive micro-kernels then write consecutive tiles of the same MR
 * rows of C, so each row is read and written left to right, the hardware prefetchers follow it, and the
 * micro-kernel's prefetch of the next tile is the one it needs. With jr outside, C was walked down 32-column
 * strips, a 4 KiB stride for a 1000-wide float32 C. That matters where C's traffic does, as in SGD's
 * W <- W - lr X^T dY (beta = 1, K = the batch): on the 2-core AVX-512 VM, 1000x1000 with K = 10 / 64 / 128
 * / 256 on 2 threads took 0.27-0.38 / 0.83-0.99 / 1.30-1.62 / 2.63-2.90 ms before and 0.26-0.31 /
 * 0.73-0.78 / 1.00-1.43 / 2.08-2.53 after (8 W's in turn, medians of 41, three runs); the forward and
 * input-gradient products at batch 256 and 1000 were as fast or faster (B blocks of 200 x 1000 floats
 * there, within the L2 share). A larger B block (the 2-core EPYC's 512 KiB L2: 272 x 512 floats per thread)
 * is reread from L3 for every row panel; then the loops run BLIS's way (the B panel stays in L1, the A block
 * streams from L2): there, on two threads, the 1000x1000 layers' products at batch 128 and 256 took 2-9%
 * less, the training step at batch 128 / 256 6% / 3% less, and 1000 x 1000 x 1000 1-3% more (151 and 51
 * alternating calls, two or three runs; see tools/ab_kernels.py).
 *
 * Transposes and strided views are absorbed by the packing (it reads through strides); edge panels are
 * zero-padded so the micro-kernel always runs at full width (it masks its stores to the valid columns).
 * Threads: the output is split into a grid of tm x tn independent blocks (one per thread, aligned to
 * MR/NR), so threads need no barrier and each owns persistent packing buffers. Products with few rows
 * (M <= skinny_m) reuse each B panel only a few times: with row-contiguous op(B) the micro-kernel reads B
 * in place (10x784x1000 went from ~44 to ~62 GFLOP/s on one core); otherwise (a transposed B, as in
 * dY @ W^T) each panel is packed right before its use, while it is in L1, instead of the whole KC x NC
 * block first (1 MB for a 1000-wide B, more than L2): 10x1000 @ (1000x1000)^T went from 33 to 47
 * GFLOP/s on one core, and from memory from 0.95 to 0.80 ms.
 *
 * Block sizes (MC, KC, NC and the skinny threshold) come from the machine's cache sizes at run time, the
 * least work per thread from its measured fork-join cost and speed (blocking.c); the packing buffers are
 * the calling thread's, reused across calls (buffers.c).
 *
 * Parameters: the including file #defines them, then #includes this file, which #undefs every one of
 * them at its end (so no value leaks into the next block) and stops with #error if a required one is
 * missing. Required: T, SFX, MR, NR and exactly one of
 *   KERNEL_NAME: a function
 *     static void KERNEL_NAME(int mr, int nr, mdl_index kc, const T *a, const T *b, mdl_index b_step,
 *                             T *c, mdl_index ldc, T alpha, T beta);
 *     which computes the mr x nr corner of the MR x NR tile: c = alpha * a_panel @ b_panel + beta * c
 *     (b rows b_step apart, always NR readable columns), never reading c when beta == 0;
 *   GENERIC_KERNEL: this file writes that function in plain C (an MR x NR tile of accumulators).
 * Optional, faster packing of full panels: PACK_B_PANEL_TRANS(kc, B, csb, dst) when rsb == 1,
 * PACK_A_PANEL_ROWS(kc, A, rsa, dst) when csa == 1.
 * Optional, dot products for A B^T with few rows (the input gradient dY W^T at small batch): DOT_KERNEL, a
 * function
 *     static void DOT_KERNEL(int mr, int nr, mdl_index k, const T *a, mdl_index lda, const T *b,
 *                            mdl_index ldb, T *c, mdl_index ldc, T alpha, T beta);
 * which computes c[i*ldc + j] = alpha * sum_p a[i*lda + p] b[j*ldb + p] + beta * c[i*ldc + j] for i < mr <=
 * DOT_MR, j < nr <= DOT_NR (c not read when beta == 0), with DOT_MR, DOT_NR and DOT_MAX_M (the most rows
 * of op(A) it is used for) defined beside it. See gemm_dot_block.
 */
#if !defined(T) || !defined(SFX) || !defined(MR) || !defined(NR)
#error "gemm_template.h: define T, SFX, MR and NR before including it"
#endif
#if defined(KERNEL_NAME) == defined(GENERIC_KERNEL)
#error "gemm_template.h: define exactly one of KERNEL_NAME (a micro-kernel) and GENERIC_KERNEL"
#endif

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MDL_CAT_(a, b) a##b
#define MDL_CAT(a, b) MDL_CAT_(a, b)
#define FN(name) MDL_CAT(name##_, SFX)

#ifdef GENERIC_KERNEL
/* Plain-C micro-kernel: the compiler keeps the MR x NR accumulators in registers as far as it can. */
static void FN(kernel)(int mr, int nr, mdl_index kc, const T *a, const T *b, mdl_index b_step, T *c,
                       mdl_index ldc, T alpha, T beta)
{
    T acc[MR][NR] = {{0}};
    for (mdl_index p = 0; p < kc; p++, a += MR, b += b_step)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += a[r] * b[j];
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++)
            c[r * ldc + j] = beta == (T)0 ? alpha * acc[r][j] : alpha * acc[r][j] + beta * c[r * ldc + j];
}
#define MDL_MICRO_KERNEL FN(kernel)
#else
#define MDL_MICRO_KERNEL KERNEL_NAME
#endif

static inline mdl_index FN(ceil_div)(mdl_index a, mdl_index b) { return (a + b - 1) / b; }
static inline mdl_index FN(min_index)(mdl_index a, mdl_index b) { return a < b ? a : b; }

/* op(A)[0:mr, 0:kc] -> dst[p*MR + r], rows mr..MR-1 zero. */
static void FN(pack_a_panel)(int mr, mdl_index kc, const T *A, mdl_index rsa, mdl_index csa, T *dst)
{
    if (rsa == 1 && mr == MR) {
        for (mdl_index p = 0; p < kc; p++)
            for (int r = 0; r < MR; r++) dst[p * MR + r] = A[p * csa + r];
        return;
    }
    if (csa == 1 && mr == MR) {
#ifdef PACK_A_PANEL_ROWS
        PACK_A_PANEL_ROWS(kc, A, rsa, dst);
#else
        for (mdl_index p = 0; p < kc; p++)
            for (int r = 0; r < MR; r++) dst[p * MR + r] = A[r * rsa + p];
#endif
        return;
    }
    for (mdl_index p = 0; p < kc; p++) {
        int r = 0;
        for (; r < mr; r++) dst[p * MR + r] = A[r * rsa + p * csa];
        for (; r < MR; r++) dst[p * MR + r] = (T)0;
    }
}

/* op(B)[0:kc, 0:nr] -> dst[p*NR + c], columns nr..NR-1 zero. */
static void FN(pack_b_panel)(int nr, mdl_index kc, const T *B, mdl_index rsb, mdl_index csb, T *dst)
{
    if (csb == 1 && nr == NR) {
        for (mdl_index p = 0; p < kc; p++) memcpy(dst + p * NR, B + p * rsb, NR * sizeof(T));
        return;
    }
#ifdef PACK_B_PANEL_TRANS
    if (rsb == 1 && nr == NR) {
        PACK_B_PANEL_TRANS(kc, B, csb, dst);
        return;
    }
#endif
    if (rsb == 1) {
        /* Transposed B: walk each source column (contiguous in p) once. */
        for (int c = 0; c < nr; c++)
            for (mdl_index p = 0; p < kc; p++) dst[p * NR + c] = B[p + c * csb];
        for (mdl_index p = 0; p < kc; p++)
            for (int c = nr; c < NR; c++) dst[p * NR + c] = (T)0;
        return;
    }
    for (mdl_index p = 0; p < kc; p++) {
        int c = 0;
        for (; c < nr; c++) dst[p * NR + c] = B[p * rsb + c * csb];
        for (; c < NR; c++) dst[p * NR + c] = (T)0;
    }
}

/* op(B)[0:kc, 0:nc] -> NR-wide panels at dst + jr * kc, as pack_b_panel lays them out. Row-major op(B) is copied
 * PACK_B_GROUP panels (256 bytes of a row) at a time, row by row: one panel's part of a row straddles two cache
 * lines where rows are not line-aligned (a 1000-wide float32 B), and down a 272-row panel those lines leave L1
 * before the next panel takes their other half. On the 2-core EPYC (avx2), packing B was 13% of the time of
 * 256x1000 @ 1000x1000 on two threads (py-spy); this way that product took 2-3% less on one and on two threads
 * (201 alternating calls, five runs); groups of 128 and 1024 bytes gained 2% and 0-2%. */
#define PACK_B_GROUP (256 / (NR * (int)sizeof(T)) > 1 ? 256 / (NR * (int)sizeof(T)) : 1)
static void FN(pack_b_block)(mdl_index nc, mdl_index kc, const T *B, mdl_index rsb, mdl_index csb, T *dst)
{
    mdl_index jr = 0;
    if (csb == 1)
        for (; jr + PACK_B_GROUP * NR <= nc; jr += PACK_B_GROUP * NR)
            for (mdl_index p = 0; p < kc; p++)
                for (int g = 0; g < PACK_B_GROUP; g++)
                    memcpy(dst + (jr + g * NR) * kc + p * NR, B + p * rsb + jr + g * NR, NR * sizeof(T));
    for (; jr < nc; jr += NR)
        FN(pack_b_panel)((int)FN(min_index)(NR, nc - jr), kc, B + jr * csb, rsb, csb, dst + jr * kc);
}

#ifdef DOT_KERNEL
/* C[0:m, 0:n] = alpha op(A) op(B) + beta C for op(A) read along its rows (csa == 1) and op(B) = B^T read
 * along B's rows (rsb == 1), as in the input gradient dY W^T with W laid out (fan_in, fan_out): each
 * element of C is the dot product of two rows that lie contiguous in memory, so nothing is packed. The
 * kernel keeps a DOT_MR x DOT_NR tile of C as vectors of partial sums along k and reduces them at the end;
 * the rows of op(A) are cut into tiles of even height, which stay in L1 while B^T's rows stream past once
 * per tile. The packed path instead transposes every panel of B^T before use (24 shuffles per 64 floats
 * on AVX-512, as many as the micro-kernel's FMAs at 10 rows): 10x1000 @ (1000x1000)^T on the 2-core Xeon
 * took 0.48 ns per element of B on one thread and 0.23 on two that way, 0.28 and 0.14-0.16 this way.
 * With more rows the packing pays for itself (at 40 and 64 rows the packed path was 7-20% faster). */
static void FN(gemm_dot_block)(mdl_index m, mdl_index n, mdl_index k, const T *A, mdl_index rsa, const T *B,
                               mdl_index csb, T *C, mdl_index ldc, T alpha, T beta)
{
    const mdl_index tiles = FN(ceil_div)(m, DOT_MR), rows = FN(ceil_div)(m, tiles);
    for (mdl_index j = 0; j < n; j += DOT_NR)
        for (mdl_index i = 0; i < m; i += rows)
            DOT_KERNEL((int)FN(min_index)(rows, m - i), (int)FN(min_index)(DOT_NR, n - j), k, A + i * rsa, rsa,
                       B + j * csb, csb, C + i * ldc + j, ldc, alpha, beta);
}
#endif

/* One thread's block sizes (sizes_for). */
typedef struct {
    mdl_index mc, kc, nc;
    int skinny;
    int dot;        /* gemm_dot_block instead of packing */
    int rows_outer; /* the packed path's row panels outside its column panels (see gemm_block) */
} FN(block_sizes);

/* Whether a product of `rows` rows with op(B)'s column step csb takes the skinny path's K block (blocking.c):
 * B read in place by so few rows of A that they stay in L1 beside a strip of B (SGD's update fused into the
 * product writes that strip just before the product reads it). */
static inline int FN(skinny_k)(mdl_index rows, mdl_index csb, const mdl_blocking *blk)
{
    return rows <= blk->skinny_kc_m && csb == 1;
}

static inline mdl_index FN(k_block)(mdl_index rows, mdl_index csb, const mdl_blocking *blk)
{
    return FN(skinny_k)(rows, csb, blk) ? blk->skinny_kc : blk->kc;
}

/* The rows of A (or columns of W in the fused update) whose K block fills L2's share, beside k_block. */
static inline mdl_index FN(l2_block)(mdl_index rows, mdl_index csb, const mdl_blocking *blk)
{
    return FN(skinny_k)(rows, csb, blk) ? blk->skinny_mc : blk->mc;
}

/* One thread's block sizes for its m x n share of a product of `rows` rows: even K blocks (K = 257 becomes
 * 129 + 128, not 256 + 1), at most blk's sizes. The whole product chooses the K block, so every thread sums
 * over the same blocks whatever its share (a share of few rows still reads B in place). */
static FN(block_sizes) FN(sizes_for)(mdl_index m, mdl_index n, mdl_index k, mdl_index rows, mdl_index csb,
                                     const mdl_blocking *blk, int dot)
{
    FN(block_sizes) s;
    const mdl_index kc = FN(k_block)(rows, csb, blk), mc = FN(l2_block)(rows, csb, blk);
    s.dot = dot;
    s.kc = FN(ceil_div)(k, FN(ceil_div)(k, kc));
    s.mc = FN(min_index)(mc, FN(ceil_div)(FN(ceil_div)(m, FN(ceil_div)(m, mc)), MR) * MR);
    s.nc = FN(min_index)(blk->nc, FN(ceil_div)(FN(ceil_div)(n, FN(ceil_div)(n, blk->nc)), NR) * NR);
    s.skinny = m <= blk->skinny_m;
    s.rows_outer = s.kc * s.nc <= mc * kc;
    return s;
}

/* The calling thread's packing buffers for a block (pa, pb): 0, or -1 when out of memory. */
static int FN(block_buffers)(FN(block_sizes) s, T **pa, T **pb)
{
    *pa = (T *)mdl_thread_buffer(0, (size_t)(s.mc * s.kc) * sizeof(T));
    *pb = (T *)mdl_thread_buffer(1, (size_t)(s.skinny ? s.kc * NR : s.nc * s.kc) * sizeof(T));
    return *pa == NULL || *pb == NULL ? -1 : 0;
}

/* C[0:mr, 0:nr] += bias[0:nr] on every row: the bias epilogue, on a tile of C just stored, still in L1. Added
 * to the final sums as a separate add would, so the bits are those of that add (ops.linear's y = x W + b). */
static inline void FN(add_bias)(mdl_index mr, mdl_index nr, T *C, mdl_index ldc, const T *bias)
{
    for (mdl_index i = 0; i < mr; i++)
        for (mdl_index j = 0; j < nr; j++) C[i * ldc + j] += bias[j];
}

/* gemm_block's tile at column `col` of its C: the micro-kernel, then the bias epilogue where bias is given. */
static inline void FN(block_tile)(int mr, int nr, mdl_index kc, const T *a, const T *b, mdl_index b_step, T *C,
                                  mdl_index ldc, mdl_index col, T alpha, T beta, const T *bias)
{
    MDL_MICRO_KERNEL(mr, nr, kc, a, b, b_step, C + col, ldc, alpha, beta);
    if (bias) FN(add_bias)(mr, nr, C + col, ldc, bias + col);
}

/* One thread's share: C[0:m, 0:n] = alpha op(A)[0:m, :] @ op(B)[:, 0:n] + beta C[0:m, 0:n] (k >= 1), with
 * the buffers of block_buffers; then + bias[0:n] on every row where bias is not NULL, tile by tile as the
 * last K block stores it. */
static void FN(gemm_block)(mdl_index m, mdl_index n, mdl_index k, const T *A, mdl_index rsa, mdl_index csa,
                           const T *B, mdl_index rsb, mdl_index csb, T *C, mdl_index ldc, T alpha, T beta,
                           const T *bias, FN(block_sizes) s, T *pa, T *pb)
{
#ifdef DOT_KERNEL
    if (s.dot) {
        FN(gemm_dot_block)(m, n, k, A, rsa, B, csb, C, ldc, alpha, beta);
        if (bias) FN(add_bias)(m, n, C, ldc, bias); /* a block of at most DOT_MAX_M rows, just written */
        return;
    }
#endif
    const int direct_b = s.skinny && csb == 1;
    for (mdl_index jc = 0; jc < n; jc += s.nc) {
        const mdl_index nc = FN(min_index)(s.nc, n - jc);
        for (mdl_index pc = 0; pc < k; pc += s.kc) {
            const mdl_index kc = FN(min_index)(s.kc, k - pc);
            const T beta_pc = pc == 0 ? beta : (T)1; /* later K blocks add to the first's result */
            const T *bias_pc = pc + kc == k ? bias : NULL; /* the epilogue, after the last K block */
            if (!s.skinny)
                FN(pack_b_block)(nc, kc, B + pc * rsb + jc * csb, rsb, csb, pb);
            for (mdl_index ic = 0; ic < m; ic += s.mc) {
                const mdl_index mc = FN(min_index)(s.mc, m - ic);
                for (mdl_index ir = 0; ir < mc; ir += MR)
                    FN(pack_a_panel)((int)FN(min_index)(MR, mc - ir), kc, A + (ic + ir) * rsa + pc * csa,
                                     rsa, csa, pa + ir * kc);
                if (!s.skinny) {
                    if (s.rows_outer) /* each row of C is written left to right (see above) */
                        for (mdl_index ir = 0; ir < mc; ir += MR) {
                            const int mr = (int)FN(min_index)(MR, mc - ir);
                            for (mdl_index jr = 0; jr < nc; jr += NR)
                                FN(block_tile)(mr, (int)FN(min_index)(NR, nc - jr), kc, pa + ir * kc, pb + jr * kc, NR,
                                               C + (ic + ir) * ldc, ldc, jc + jr, alpha, beta_pc, bias_pc);
                        }
                    else /* BLIS's order: the B panel stays in L1, the A block streams from L2 */
                        for (mdl_index jr = 0; jr < nc; jr += NR) {
                            const int nr = (int)FN(min_index)(NR, nc - jr);
                            for (mdl_index ir = 0; ir < mc; ir += MR)
                                FN(block_tile)((int)FN(min_index)(MR, mc - ir), nr, kc, pa + ir * kc, pb + jr * kc, NR,
                                               C + (ic + ir) * ldc, ldc, jc + jr, alpha, beta_pc, bias_pc);
                        }
                    continue;
                }
                for (mdl_index jr = 0; jr < nc; jr += NR) { /* skinny: each B panel serves every row panel */
                    const int nr = (int)FN(min_index)(NR, nc - jr);
                    const T *b_panel;
                    mdl_index b_step;
                    if (direct_b && nr == NR) {
                        b_panel = B + pc * rsb + (jc + jr);
                        b_step = rsb;
                    } else {
                        FN(pack_b_panel)(nr, kc, B + pc * rsb + (jc + jr) * csb, rsb, csb, pb);
                        b_panel = pb;
                        b_step = NR;
                    }
                    for (mdl_index ir = 0; ir < mc; ir += MR)
                        FN(block_tile)((int)FN(min_index)(MR, mc - ir), nr, kc, pa + ir * kc, b_panel, b_step,
                                       C + (ic + ir) * ldc, ldc, jc + jr, alpha, beta_pc, bias_pc);
                }
            }
        }
    }
}

/* Split the output into tm x tn thread blocks; the cost counts padded micro-tiles, packing, and the rows of C
 * cut by a column boundary. SGD's W <- W - lr X^T dY (1000x1000, K = 10) split into column halves took
 * 0.24-0.27 ns per element of W on the 2-core Xeon, into row halves 0.12-0.17, though the packing and padding
 * are the same; rows padded to whole cache lines (no line written by both threads) changed neither. Each
 * thread walking half rows instead of whole rows costs that. MDL_SHARED_ROW_COST is the difference per row
 * cut, ~90 ns, in the cost's units (about 400 FMA instructions of two cores). */
#define MDL_SHARED_ROW_COST 400.0
static void FN(partition)(mdl_index m, mdl_index n, mdl_index k, int nt, int *tm, int *tn)
{
    double best = -1.0;
    for (int rows = 1; rows <= nt; rows++) {
        if (nt % rows) continue;
        const int cols = nt / rows;
        const double mb = (double)(FN(ceil_div)(FN(ceil_div)(m, MR), rows) * MR);
        const double nb = (double)(FN(ceil_div)(FN(ceil_div)(n, NR), cols) * NR);
        const double cost = mb * nb * (double)k / 16.0 + (mb + nb) * (double)k + (cols - 1) * mb * MDL_SHARED_ROW_COST;
        if (best < 0.0 || cost < best) {
            best = cost;
            *tm = rows;
            *tn = cols;
        }
    }
}

/* The least work per thread derived from the machine (blocking.c): how many of team_size threads get some. */
static int FN(threads_for)(double flops, int team_size)
{
    if (team_size <= 1) return 1;
    const double min_flops = mdl_thresholds_for(team_size, (int)sizeof(T)).min_per_thread[MDL_WORK_GEMM];
    const int nt = flops / (double)team_size < min_flops ? (int)(flops / min_flops) : team_size;
    return nt < 1 ? 1 : nt;
}

/* Rows [pc, pc+kc) of W (the K block) for columns [j_lo, j_hi): W <- beta_u W + alpha_u U^T V there, then
 * out[0:m, j_lo:j_hi] = alpha A[:, pc:pc+kc] @ W[pc:pc+kc, j_lo:j_hi] + beta_out out (see gemm_fused). The
 * columns go in chunks whose kc rows stay in L2 (MC columns for that K block: blocking.c), so the product
 * reads back from L2 what the update has just written. pb holds kc x NR (an edge strip of W) + rows x NR (of V). */
static void FN(fused_block)(mdl_index m, mdl_index n, mdl_index pc, mdl_index kc, mdl_index j_lo, mdl_index j_hi,
                            const T *A, mdl_index rsa, mdl_index csa, T *W, mdl_index ldw, T *out, mdl_index ldo,
                            T alpha, T beta_out, const mdl_weight_update *update, mdl_index chunk, int pack, T *pa,
                            T *pb, T *pu)
{
    const mdl_index rows = update->rows;
    const T *V = (const T *)update->v;
    T *pv = pb + kc * NR;
    if (pack) { /* else pa and pu hold this block's panels already (the thread's previous columns were in it) */
        for (mdl_index ir = 0; ir < m; ir += MR)
            FN(pack_a_panel)((int)FN(min_index)(MR, m - ir), kc, A + ir * rsa + pc * csa, rsa, csa, pa + ir * kc);
        for (mdl_index pi = 0; pi < kc; pi += MR) /* U^T rows pc..pc+kc in MR-row panels, as the update's GEMM packs them */
            FN(pack_a_panel)((int)FN(min_index)(MR, kc - pi), rows, (const T *)update->u + pc + pi, 1, update->ldu,
                             pu + pi * rows);
    }
    const mdl_index edge = n - n % NR; /* the first column of a partial last strip (n when there is none) */
    for (mdl_index c0 = j_lo; c0 < j_hi; c0 += chunk) {
        const mdl_index c1 = FN(min_index)(j_hi, c0 + chunk);
        if (edge < n && edge >= c0 && edge < c1) /* the kernel reads NR columns of V: pad that strip's once */
            FN(pack_b_panel)((int)(n - edge), rows, V + edge, update->ldv, 1, pv);
        for (mdl_index pi = 0; pi < kc; pi += MR) /* the update, row panel by row panel: rows left to right */
            for (mdl_index j = c0; j < c1; j += NR) {
                const int nr = (int)FN(min_index)(NR, n - j);
                MDL_MICRO_KERNEL((int)FN(min_index)(MR, kc - pi), nr, rows, pu + pi * rows, nr < NR ? pv : V + j,
                                 nr < NR ? NR : update->ldv, W + (pc + pi) * ldw + j, ldw, (T)update->alpha,
                                 (T)update->beta);
            }
        for (mdl_index j = c0; j < c1; j += NR) { /* the product over the block, as the skinny path runs it */
            const int nr = (int)FN(min_index)(NR, n - j);
            const T *b_panel = W + pc * ldw + j;
            mdl_index b_step = ldw;
            if (nr < NR) {
                FN(pack_b_panel)(nr, kc, b_panel, ldw, 1, pb);
                b_panel = pb;
                b_step = NR;
            }
            for (mdl_index ir = 0; ir < m; ir += MR)
                MDL_MICRO_KERNEL((int)FN(min_index)(MR, m - ir), nr, kc, pa + ir * kc, b_panel, b_step,
                                 out + ir * ldo + j, ldo, alpha, beta_out);
        }
    }
}

/* C = alpha A @ W + beta C after W <- beta_u W + alpha_u U^T V, in one pass over W (few rows of A: the
 * skinny path; the update's rows fit a K block). W is cut into the product's K blocks; in each, the update
 * runs row panel by row panel (as its own GEMM does), then the product's partial sum over the block reads
 * those rows back from L2. The threads share a wave of blocks (below), in grains of NR-column strips
 * of one block (any thread may take any grain: the results do not depend on who does which): the wave's
 * first block adds to C, each other to a partial sum of its own, and after the wave the partial sums are
 * added to C in block order. So every element of C gets the sums, order and roundings of the two GEMMs
 * (the product's epilogue c + alpha acc per K block), on any number of threads, and W those of the update's
 * GEMM. Before, each thread took a column range of W and walked each 32-column strip down a K block,
 * updating and reading it: on the 2-core Xeon at 10 x 1000 @ 1000 x 1000 (update of 10 rows) that took
 * 0.34-0.46 ns per element of W on two threads, more than the update's GEMM and the product one after the
 * other (0.30-0.36); this way 0.29-0.33. Returns 0, or -1 when out of memory (W unchanged). */
#define MDL_FUSED_GRAINS 16 /* grains per thread and wave: 8 and 32 measured the same */
static int FN(gemm_fused)(mdl_index m, mdl_index n, mdl_index k, const T *A, mdl_index rsa, mdl_index csa, T *W,
                          mdl_index ldw, T *C, mdl_index ldc, T alpha, T beta, const T *bias,
                          const mdl_weight_update *update, int team_size, const mdl_blocking *blk)
{
    const FN(block_sizes) s = FN(sizes_for)(m, n, k, m, 1, blk, 0); /* m <= skinny_m: B read in place */
    const mdl_index rows = update->rows, blocks = FN(ceil_div)(k, s.kc), strips = FN(ceil_div)(n, NR);
    const mdl_index l2_cols = FN(l2_block)(m, 1, blk);
    const mdl_index chunk = l2_cols > NR ? l2_cols / NR * NR : NR;
    const size_t pa_size = (size_t)(FN(ceil_div)(m, MR) * MR * s.kc), pb_size = (size_t)((s.kc + rows) * NR),
                 pu_size = (size_t)(FN(ceil_div)(s.kc, MR) * MR * rows);
    const int nt = FN(threads_for)(2.0 * ((double)m + (double)rows) * (double)n * (double)k, team_size);
    if (nt == 1) { /* no OpenMP construct at all: safe in a fork()ed child too */
        T *pa = (T *)mdl_thread_buffer(0, pa_size * sizeof(T)), *pb = (T *)mdl_thread_buffer(1, pb_size * sizeof(T)),
          *pu = (T *)mdl_thread_buffer(2, pu_size * sizeof(T));
        if (pa == NULL || pb == NULL || pu == NULL) return -1;
        for (mdl_index b = 0; b < blocks; b++)
            FN(fused_block)(m, n, b * s.kc, FN(min_index)(s.kc, k - b * s.kc), 0, n, A, rsa, csa, W, ldw, C, ldc, alpha,
                            b == 0 ? beta : (T)1, update, chunk, 1, pa, pb, pu);
        if (bias) FN(add_bias)(m, n, C, ldc, bias);
        return 0;
    }
    /* A wave has at least as many blocks as threads and as many more as the partial sums of an L2 share
     * (skinny_mc x skinny_kc elements) hold: each wave ends in two barriers, and all five K blocks of a 1000-row W
     * in one wave were 15% faster than waves of two (batch 10, 2 threads), as fast at batch 64. */
    const mdl_index in_l2 = (mdl_index)((size_t)(blk->skinny_mc * blk->skinny_kc) / ((size_t)m * (size_t)n));
    const mdl_index wave = FN(min_index)(blocks, nt > 1 + in_l2 ? nt : 1 + in_l2);
    /* A wave's work goes in grains of `grain` strips of one block, about MDL_FUSED_GRAINS per thread. Each
     * thread takes its own share's grains in turn (an atomic counter per share, one cache line each), then
     * what is left of the others', and packs A and U^T again only when its next grain is in another block.
     * With fixed equal shares, the halves took up to 10% different times from wave to wave on the 2-core
     * EPYC (one thread reads C back, the other writes a partial sum), and py-spy found the main thread
     * waiting at the barrier in 24% (batch 64) and 31% (batch 10) of its samples. Taking grains, the fused
     * call took 3-15% less at batch 10, 32 and 64 (2 threads; tools/ab_kernels.py, 301 alternating calls,
     * four runs), the whole step 2-5% less (--step, three runs). */
    const int team_max = nt < team_size ? nt : team_size;
    const mdl_index grain = FN(ceil_div)(wave * strips, (mdl_index)team_max * MDL_FUSED_GRAINS);
    const mdl_index per_block = FN(ceil_div)(strips, grain);
    const size_t partial_bytes = ((size_t)(wave - 1) * (size_t)m * (size_t)n * sizeof(T) + 63) / 64 * 64;
    T *partial = (T *)mdl_thread_buffer(3, partial_bytes + (size_t)team_max * 64);
    if (partial == NULL) return -1;
    mdl_index *next_grain = (mdl_index *)((char *)partial + partial_bytes); /* share t's at [t * LINE] */
    enum { LINE = 64 / sizeof(mdl_index) };
    int failed = 0, any_failed = 0;
#ifdef _OPENMP
    MDL_TEAM_RECORD;
#pragma omp parallel num_threads(team_size) reduction(| : failed) MDL_TEAM_REDUCTIONS
#endif
    {
        int team = 1, tid = 0;
#ifdef _OPENMP
        team = omp_get_num_threads() < nt ? omp_get_num_threads() : nt;
        tid = omp_get_thread_num();
#endif
        T *pa = NULL, *pb = NULL, *pu = NULL;
        if (tid < team) {
#ifdef _OPENMP
            MDL_TEAM_THREAD_STARTED();
#endif
            pa = (T *)mdl_thread_buffer(0, pa_size * sizeof(T));
            pb = (T *)mdl_thread_buffer(1, pb_size * sizeof(T));
            pu = (T *)mdl_thread_buffer(2, pu_size * sizeof(T));
            if (pa == NULL || pb == NULL || pu == NULL) {
#ifdef _OPENMP
#pragma omp atomic write
#endif
                any_failed = 1;
            }
            next_grain[tid * LINE] = FN(min_index)(wave, blocks) * per_block * tid / team; /* the first wave's */
        }
#ifdef _OPENMP
#pragma omp barrier /* every thread has its buffers before any row of W changes */
#pragma omp atomic read
#endif
        failed = any_failed;
        for (mdl_index first = 0; first < blocks && !failed; first += wave) {
            const mdl_index in_wave = FN(min_index)(wave, blocks - first), grains = in_wave * per_block;
            mdl_index packed_pc = -1; /* the block whose panels pa and pu hold */
            for (int v = 0; tid < team && v < team; v++) { /* its own share, then the others' in turn */
                const int owner = (tid + v) % team;
                const mdl_index g_end = grains * (owner + 1) / team;
                for (;;) {
                    mdl_index g;
#ifdef _OPENMP
#pragma omp atomic capture
#endif
                    g = next_grain[owner * LINE]++;
                    if (g >= g_end) break;
                    const mdl_index b = g / per_block, s0 = g % per_block * grain;
                    const mdl_index s1 = FN(min_index)(strips, s0 + grain), pc = (first + b) * s.kc;
                    FN(fused_block)(m, n, pc, FN(min_index)(s.kc, k - pc), s0 * NR, FN(min_index)(n, s1 * NR), A, rsa,
                                    csa, W, ldw, b == 0 ? C : partial + (size_t)(b - 1) * (size_t)(m * n),
                                    b == 0 ? ldc : n, alpha, b > 0 ? (T)0 : first == 0 ? beta : (T)1, update, chunk,
                                    pc != packed_pc, pa, pb, pu);
                    packed_pc = pc;
                }
            }
#ifdef _OPENMP
#pragma omp barrier
#endif
            const T *bias_last = first + wave >= blocks ? bias : NULL; /* the epilogue, after the last wave */
            if ((in_wave > 1 || bias_last) && tid < team) { /* C += the wave's partial sums, in block order */
                const mdl_index j0 = n * tid / team, j1 = n * (tid + 1) / team;
                for (mdl_index i = 0; i < m; i++) {
                    T *c = C + i * ldc;
                    for (mdl_index b = 1; b < in_wave; b++) {
                        const T *p = partial + (size_t)(b - 1) * (size_t)(m * n) + i * n;
                        for (mdl_index j = j0; j < j1; j++) c[j] += p[j];
                    }
                    if (bias_last) FN(add_bias)(1, j1 - j0, c + j0, ldc, bias_last + j0);
                }
            }
            if (tid < team) /* the next wave's start; no thread takes a grain before the barrier */
                next_grain[tid * LINE] = FN(min_index)(wave, blocks - first - wave) * per_block * tid / team;
#ifdef _OPENMP
#pragma omp barrier
#endif
        }
#ifdef _OPENMP
        if (tid < team) MDL_TEAM_THREAD_ENDED();
#endif
    }
#ifdef _OPENMP
    MDL_TEAM_NOTE();
#endif
    return failed ? -1 : 0;
}

/* C = alpha op(A) @ op(B) + beta C (BLAS gemm: C is not read when beta == 0, and neither A nor B when
 * alpha == 0 or k == 0, so NaN there is ignored), then C[i, j] += bias[j] where bias is not NULL (add_bias, on
 * each tile as its last K block is stored; in the fused product after the last wave). With `update`
 * (kernels.h; B row-major, csb == 1), B gets that update first: fused into the product's pass over B (gemm_fused)
 * for few rows of A where update->fuse, else as a GEMM of its own beforehand. Returns 0, or when out of memory -1
 * (B unchanged) or -2 (B changed: the separate update ran, or ran in part). */
static int FN(gemm)(mdl_index m, mdl_index n, mdl_index k, const T *A, mdl_index rsa, mdl_index csa,
                    const T *B, mdl_index rsb, mdl_index csb, T *C, mdl_index ldc, T alpha, T beta, const T *bias,
                    const mdl_weight_update *update, int nthreads)
{
    const int team_size = nthreads < 1 ? 1 : nthreads;
    const mdl_blocking blk = mdl_blocking_for(team_size, MR, NR, (int)sizeof(T));
    int updated = 0;
    if (update != NULL) {
        if (update->fuse && m > 0 && n > 0 && k > 0 && alpha != (T)0 && m <= blk.skinny_m && update->rows > 0 &&
            update->rows <= FN(k_block)(k, 1, &blk) && (T)update->alpha != (T)0) /* the update's GEMM: one K block */
            return FN(gemm_fused)(m, n, k, A, rsa, csa, (T *)B, rsb, C, ldc, alpha, beta, bias, update, team_size,
                                  &blk);
        /* B <- beta_u B + alpha_u U^T V: the call SGD makes (bitwise the same as the fused update) */
        if (FN(gemm)(k, n, update->rows, (const T *)update->u, 1, update->ldu, (const T *)update->v, update->ldv,
                     1, (T *)B, rsb, (T)update->alpha, (T)update->beta, NULL, NULL, nthreads) != 0)
            return -2; /* a thread ran out of memory: the others may have updated their blocks */
        updated = 1;
    }
    const int out_of_memory = updated ? -2 : -1;
    if (m <= 0 || n <= 0) return 0;
    if (k <= 0 || alpha == (T)0) {
        for (mdl_index i = 0; i < m; i++)
            for (mdl_index j = 0; j < n; j++) C[i * ldc + j] = beta == (T)0 ? (T)0 : beta * C[i * ldc + j];
        if (bias) FN(add_bias)(m, n, C, ldc, bias);
        return 0;
    }
#ifdef DOT_KERNEL
    /* csb != 1: B^T is no vector (rsb == csb == 1 only when n or k is 1), so SGD's own update GEMM of a
     * 1-column weight stays on the micro-kernel the fused update runs, bit for bit. */
    const int dot = csa == 1 && rsb == 1 && csb != 1 && m <= DOT_MAX_M; /* the threads split C by columns */
#else
    const int dot = 0;
#endif
    const int nt = FN(threads_for)(2.0 * (double)m * (double)n * (double)k, team_size);
    if (nt == 1) { /* no OpenMP construct at all: safe in a fork()ed child too */
        const FN(block_sizes) s = FN(sizes_for)(m, n, k, m, csb, &blk, dot);
        T *pa, *pb;
        if (FN(block_buffers)(s, &pa, &pb) != 0) return out_of_memory;
        FN(gemm_block)(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, alpha, beta, bias, s, pa, pb);
        return 0;
    }
    int failed = 0;
#ifdef _OPENMP
    MDL_TEAM_RECORD;
    /* The whole team starts (kernels.h: a shrinking team makes the runtime replace threads); nt work. */
#pragma omp parallel num_threads(team_size) reduction(| : failed) MDL_TEAM_REDUCTIONS
#endif
    {
        int team = 1, tid = 0;
#ifdef _OPENMP
        team = omp_get_num_threads() < nt ? omp_get_num_threads() : nt;
        tid = omp_get_thread_num();
#endif
        if (tid < team) {
#ifdef _OPENMP
            MDL_TEAM_THREAD_STARTED();
#endif
            int tm = 1, tn = team;
            if (!dot) FN(partition)(m, n, k, team, &tm, &tn);
            const int rb = tid / tn, cb = tid % tn;
            const mdl_index mp = FN(ceil_div)(m, MR), np_ = FN(ceil_div)(n, NR);
            const mdl_index i0 = FN(min_index)(m, mp * rb / tm * MR), i1 = FN(min_index)(m, mp * (rb + 1) / tm * MR);
            const mdl_index j0 = FN(min_index)(n, np_ * cb / tn * NR), j1 = FN(min_index)(n, np_ * (cb + 1) / tn * NR);
            if (i1 > i0 && j1 > j0) {
                const FN(block_sizes) s = FN(sizes_for)(i1 - i0, j1 - j0, k, m, csb, &blk, dot);
                T *pa, *pb;
                failed = FN(block_buffers)(s, &pa, &pb) != 0;
                if (!failed)
                    FN(gemm_block)(i1 - i0, j1 - j0, k, A + i0 * rsa, rsa, csa, B + j0 * csb, rsb, csb,
                                   C + i0 * ldc + j0, ldc, alpha, beta, bias ? bias + j0 : NULL, s, pa, pb);
            }
#ifdef _OPENMP
            MDL_TEAM_THREAD_ENDED();
#endif
        }
    }
#ifdef _OPENMP
    MDL_TEAM_NOTE();
#endif
    return failed ? out_of_memory : 0;
}

/* Every parameter and helper macro ends here: the next block defines its own. */
#undef T
#undef SFX
#undef MR
#undef NR
#undef KERNEL_NAME
#undef GENERIC_KERNEL
#undef PACK_B_PANEL_TRANS
#undef PACK_A_PANEL_ROWS
#undef DOT_KERNEL
#undef DOT_MR
#undef DOT_NR
#undef DOT_MAX_M
#undef MDL_MICRO_KERNEL
#undef MDL_SHARED_ROW_COST
#undef PACK_B_GROUP
#undef FN
#undef MDL_CAT
#undef MDL_CAT_
