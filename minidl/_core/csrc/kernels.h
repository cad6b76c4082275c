/* minidl compiled core: the C interface between the Cython wrappers (_kernels.pyx) and the kernels.
 *
 * Every kernel exists in several builds: a generic one (plain C, any CPU) and, on x86-64, an AVX2+FMA build
 * (kernels_avx2.c, x86-64-v3 flags) and an AVX-512 build (kernels_avx512.c, x86-64-v4 flags), each compiled
 * in its own translation unit. dispatch.c picks one at import time from what the CPU and OS report, so a
 * CPU never executes an instruction it lacks.
 *
 * Conventions: sizes and strides are in elements (not bytes) and signed; op(A)[i, p] = A[i*rsa + p*csa]
 * and op(B)[p, j] = B[p*rsb + j*csb], so a transpose or a non-contiguous view is only a choice of strides.
 * C is written with row stride ldc and unit column stride. Functions return 0, or -1 when out of memory.
 */
#ifndef MINIDL_KERNELS_H
#define MINIDL_KERNELS_H

#include <stddef.h>

typedef ptrdiff_t mdl_index;

/* A weight update pending on op(B) = W (K x N, row-major, writable): W <- beta W + alpha U^T V, with U
 * (rows x K) and V (rows x N) row-major. A product that reads W in place (gemm_template.h: the skinny path)
 * applies it to each K block of W right before reading the block back from L2 (gemm_fused), so the update and
 * the product make one pass over W; elsewhere (or with more rows than a K block) the update runs first as a
 * GEMM of its own, and so it does where `fuse` is 0 (which of the two is faster depends on the machine and the
 * shapes: minidl/timed_choice.py).
 * Either way the results are bitwise those of the update followed by the product. */
typedef struct {
    const void *u, *v;
    mdl_index rows, ldu, ldv;
    double alpha, beta;
    int fuse;
} mdl_weight_update;

typedef struct {
    const char *name;
    int mr_f32, nr_f32, mr_f64, nr_f64; /* the GEMM micro-tiles: rows x columns of C per micro-kernel call */
    int (*gemm_f32)(mdl_index m, mdl_index n, mdl_index k,
                    const float *A, mdl_index rsa, mdl_index csa,
                    const float *B, mdl_index rsb, mdl_index csb,
                    float *C, mdl_index ldc, float alpha, float beta, const float *bias,
                    const mdl_weight_update *update, int nthreads);
    int (*gemm_f64)(mdl_index m, mdl_index n, mdl_index k,
                    const double *A, mdl_index rsa, mdl_index csa,
                    const double *B, mdl_index rsb, mdl_index csb,
                    double *C, mdl_index ldc, double alpha, double beta, const double *bias,
                    const mdl_weight_update *update, int nthreads);
    /* threads: mdl_parallel_ranges */
    void (*sigmoid_fwd_f32)(const float *x, float *y, mdl_index n);
    void (*sigmoid_fwd_f64)(const double *x, double *y, mdl_index n);
    void (*sigmoid_bwd_f32)(const float *y, const float *gy, float *gx, mdl_index n);
    void (*sigmoid_bwd_f64)(const double *y, const double *gy, double *gx, mdl_index n);
    void (*axpby_f32)(float alpha, const float *x, float beta, float *y, mdl_index n);
    void (*axpby_f64)(double alpha, const double *x, double beta, double *y, mdl_index n);
} mdl_kernel_table;

extern const mdl_kernel_table mdl_generic_kernels;
#ifdef MINIDL_HAVE_AVX2
extern const mdl_kernel_table mdl_avx2_kernels;
#endif
#ifdef MINIDL_HAVE_AVX512
extern const mdl_kernel_table mdl_avx512_kernels;
#endif

/* blocking.c: cache sizes (bytes; L1d and L2 per core, L3 shared) and the GEMM blocking derived from them */
typedef struct {
    long l1d, l2, l3;
} mdl_cache_sizes;
typedef struct {
    mdl_index mc, kc, nc;                   /* the packed path */
    mdl_index skinny_m;                     /* B read in place up to this many rows of A */
    mdl_index skinny_kc, skinny_mc;         /* the blocks of those products (SGD's fused update among them) */
    mdl_index skinny_kc_m;                  /* ... up to this many rows; more take kc and mc */
} mdl_blocking;
void mdl_detect_cache_sizes(void);        /* once at import: sysfs, else sysconf, else the fallback sizes */
mdl_cache_sizes mdl_cache_sizes_detected(void);
void mdl_override_cache_sizes(long l1d, long l2, long l3); /* tests, benchmarks; all <= 0: detected */
mdl_cache_sizes mdl_cache_sizes_in_use(void);
mdl_blocking mdl_derive_blocking(mdl_cache_sizes caches, int threads, int mr, int nr, int item);
mdl_blocking mdl_blocking_for(int threads, int mr, int nr, int item); /* from the sizes in use */

/* blocking.c, continued: how much work a thread must get before a kernel gives it any. Per kind of work,
 * one core's rate (elements per second; the GEMM: flops per second) and the least work per thread
 * (elements; the GEMM: flops). */
typedef enum {
    MDL_WORK_SIGMOID_FWD,
    MDL_WORK_SIGMOID_BWD,
    MDL_WORK_AXPBY,
    MDL_WORK_GEMM,
    MDL_WORK_KINDS
} mdl_work;
typedef struct {
    double per_s[MDL_WORK_KINDS];
} mdl_work_rates;
typedef struct {
    double min_per_thread[MDL_WORK_KINDS];
} mdl_thread_thresholds;
mdl_thread_thresholds mdl_derive_thresholds(double fork_join_s, mdl_work_rates rates);
/* for a team of `team` threads and `item`-byte floats, from what dispatch.c measured on this machine */
mdl_thread_thresholds mdl_thresholds_for(int team, int item);

/* buffers.c: the calling thread's packing buffer `slot` (0: A, 1: B, 2: a pending update's U) of at least
 * `bytes`, 64-byte aligned (NULL when out of memory); kept for the thread's next calls and freed when the
 * thread exits. */
void *mdl_thread_buffer(int slot, size_t bytes);
long mdl_threads_with_buffers(int ever);  /* threads holding packing buffers now (ever: since import) */

/* dispatch.c */
void mdl_init(void);                     /* once at import: registers the fork handler */
int mdl_cpu_has_avx2_fma(void);          /* 1 if the CPU and OS support AVX2 + FMA */
/* The kernel builds, fastest first, i = 0, 1, ...: name (NULL past the last), compiled into this binary,
 * runnable on this CPU and OS. */
const char *mdl_kernel_build_name(int i);
int mdl_kernel_build_compiled(int i);
int mdl_kernel_build_cpu_supports(int i);
int mdl_select_kernels(const char *name); /* a build's name; 0 on success, -1 if unavailable here */
const char *mdl_kernel_name(void);
void mdl_kernel_tile(int item, int *mr, int *nr); /* the active build's micro-tile for 4- or 8-byte floats */
int mdl_openmp_enabled(void);
/* At most this many threads, whatever is asked or OMP_NUM_THREADS says: GCC's OpenMP runtime crashed on a
 * team of 100000 (segfault), and no machine has that many cores. */
#define MDL_MAX_THREADS 4096
void mdl_set_num_threads(int n);         /* clamped to [1, MDL_MAX_THREADS] */
int mdl_get_num_threads(void);           /* always 1 in a fork()ed child */
int mdl_threads_for_call(void);          /* the above, or 1 while backing off (oversubscribed machine) */
/* After each parallel region: how many threads ran it, how late (s) its last thread started, how far apart
 * the threads finished, how long it took, and the CPU seconds the calling thread spent on its own share (< 0:
 * not measured in this region); a stalled thread makes the kernels use one thread for a while when the
 * recent regions lost at least as much time as their threads saved (see dispatch.c). */
void mdl_note_team(int team, double start_delay, double finish_spread, double duration, double master_cpu);
int mdl_sample_region(void); /* 1 for the regions whose calling thread's CPU time is measured (one in four) */
double mdl_thread_cpu_s(void); /* the calling thread's CPU time (s); < 0 where the system has no such clock */
/* That record, kept the same way by every parallel region (dispatch.c, gemm_template.h; files that include
 * omp.h): MDL_TEAM_RECORD before the region declares its clocks, MDL_TEAM_REDUCTIONS goes in the region's
 * pragma (OpenMP macro-expands its directives), a thread with work brackets it with MDL_TEAM_THREAD_STARTED()
 * and MDL_TEAM_THREAD_ENDED(), and MDL_TEAM_NOTE() after the region reports it. Macros, not a struct:
 * OpenMP reduces plain variables only (mdl_master_cpu is shared: only thread 0 writes it). */
#define MDL_TEAM_RECORD                                                                                    \
    const double mdl_forked_at = omp_get_wtime();                                                          \
    double mdl_last_start = mdl_forked_at, mdl_first_end = 1e300, mdl_last_end = mdl_forked_at;            \
    int mdl_ran = 0;                                                                                       \
    const int mdl_sampled = mdl_sample_region();                                                           \
    double mdl_master_cpu = -1.0
#define MDL_TEAM_REDUCTIONS                                                                                \
    reduction(max : mdl_last_start, mdl_last_end) reduction(min : mdl_first_end) reduction(+ : mdl_ran)
#define MDL_TEAM_THREAD_STARTED()                                                                          \
    (mdl_ran = 1, mdl_last_start = omp_get_wtime(),                                                        \
     mdl_sampled && omp_get_thread_num() == 0 ? (void)(mdl_master_cpu = mdl_thread_cpu_s()) : (void)0)
#define MDL_TEAM_THREAD_ENDED()                                                                            \
    (mdl_sampled && omp_get_thread_num() == 0 && mdl_master_cpu >= 0.0                                     \
         ? (void)(mdl_master_cpu = mdl_thread_cpu_s() - mdl_master_cpu) : (void)0,                         \
     mdl_last_end = mdl_first_end = omp_get_wtime())
#define MDL_TEAM_NOTE()                                                                                    \
    mdl_note_team(mdl_ran, mdl_last_start - mdl_forked_at, mdl_last_end - mdl_first_end,                   \
                  mdl_last_end - mdl_forked_at, mdl_master_cpu)
long mdl_backoff_count(void);
int mdl_take_largest_team(void);         /* most threads one region ran on since the last call; 0: none */
void mdl_reset_contention_state(void);   /* tests: forget earlier stalls and back-offs */
void mdl_contention_window(double *lost, double *saved); /* tests: the guard's window (dispatch.c) */
void mdl_set_test_clock(double seconds); /* tests: the guard's clock reads `seconds`; < 0: the real clock */
/* What starting and joining a team of `team` threads costs (s), measured at the first call for that team;
 * 0 for team <= 1; -1 where it cannot be measured (no OpenMP, a fork()ed child, a busy machine: see
 * dispatch.c). */
double mdl_fork_join_seconds(int team);
void mdl_set_test_fork_join(double seconds); /* tests: the cost of every team of 2+; < 0: measured */
/* One core's speed on each kind of work with the active kernel build and `item`-byte floats, measured on the
 * calling thread at the first call for that build and size (0 without OpenMP: no threads to decide on). */
mdl_work_rates mdl_work_rates_measured(int item);

/* fn(args, lo, hi) over [0, n) in one contiguous range per thread (bounds multiples of 16 elements), on at
 * most n / (the least work per thread of `kind` for `item`-byte floats: mdl_thresholds_for) threads; reports
 * the region to mdl_note_team. Every parallel region (here and in the GEMM) starts the whole team of
 * mdl_threads_for_call() threads, and those without work return at once: a team that shrank would make
 * GCC's OpenMP runtime end its surplus workers and start new ones for the next larger team, each new thread
 * paying for its own packing buffers. */
typedef void (*mdl_range_fn)(const void *args, mdl_index lo, mdl_index hi);
void mdl_parallel_ranges(mdl_range_fn fn, const void *args, mdl_index n, mdl_work kind, int item);

/* C <- alpha op(A) @ op(B) + beta C (BLAS gemm semantics: C is not read when beta == 0), then C[i, j] += bias[j]
 * where bias is not NULL (n elements, contiguous, not overlapping C): added to each tile of C as its last K
 * block is stored, the same bits as adding it afterwards. */
int mdl_gemm_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index rsa, mdl_index csa,
                 const float *B, mdl_index rsb, mdl_index csb, float *C, mdl_index ldc, float alpha, float beta,
                 const float *bias);
int mdl_gemm_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index rsa, mdl_index csa,
                 const double *B, mdl_index rsb, mdl_index csb, double *C, mdl_index ldc, double alpha,
                 double beta, const double *bias);
/* C <- A @ W (+ bias, as in mdl_gemm; m x k times k x n, C row-major, ldc) after `update` was applied to W
 * (row stride ldw): fused into the product's pass over W where the product reads W in place (few rows of A:
 * the skinny path), else the update first, then the product. When out of memory: -1 (W unchanged) or -2 (W changed:
 * the separate update ran, or ran in part; C not computed). */
int mdl_gemm_after_update_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index lda, float *W,
                              mdl_index ldw, float *C, mdl_index ldc, const float *bias,
                              const mdl_weight_update *update);
int mdl_gemm_after_update_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index lda, double *W,
                              mdl_index ldw, double *C, mdl_index ldc, const double *bias,
                              const mdl_weight_update *update);
void mdl_sigmoid_fwd_f32(const float *x, float *y, mdl_index n);
void mdl_sigmoid_fwd_f64(const double *x, double *y, mdl_index n);
void mdl_sigmoid_bwd_f32(const float *y, const float *gy, float *gx, mdl_index n);
void mdl_sigmoid_bwd_f64(const double *y, const double *gy, double *gx, mdl_index n);

/* y <- alpha * x + beta * y over n contiguous elements (axpby_template.h) */
void mdl_axpby_f32(float alpha, const float *x, float beta, float *y, mdl_index n);
void mdl_axpby_f64(double alpha, const double *x, double beta, double *y, mdl_index n);

#endif
