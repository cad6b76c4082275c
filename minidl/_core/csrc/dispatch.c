/* Kernel selection and thread control. Compiled with generic flags: nothing here may use AVX. */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#include <pthread.h>
#endif
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif
#include "kernels.h"

static const mdl_kernel_table *active = &mdl_generic_kernels;
static int num_threads = 0; /* 0: not initialized yet */

/* GCC's libgomp is not fork-safe: a child of a process whose OpenMP thread pool has started inherits a
 * pool whose threads do not exist, and its next parallel region waits for them forever. So a forked
 * child (multiprocessing's default on Linux) runs every kernel on its calling thread, never entering
 * OpenMP. */
static volatile int in_forked_child = 0;
#ifdef _OPENMP
static void mark_forked_child(void) { in_forked_child = 1; }
#endif

void mdl_init(void)
{
    mdl_detect_cache_sizes();
#ifdef _OPENMP
    static int registered = 0;
    if (!registered) {
        pthread_atfork(NULL, NULL, mark_forked_child);
        registered = 1;
    }
#endif
}

int mdl_cpu_has_avx2_fma(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    /* libgcc's detection also checks that the OS saves the ymm registers (OSXSAVE + XCR0). */
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

/* AVX-512 F, CD, BW, DQ and VL (x86-64-v4, with AVX2, FMA and BMI1/2 of v3), from cpuid, and the OS saving the
 * zmm and opmask registers on a context switch: XCR0 (xgetbv) bits 1-2 (xmm, ymm) and 5-7 (opmask, the
 * upper halves of zmm0-15, zmm16-31). A CPU may report AVX-512 that its OS does not enable. */
static int cpu_has_avx512(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
    unsigned eax, ebx, ecx, edx, xcr0_lo, xcr0_hi;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 0xE6) != 0xE6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned needed = bit_AVX512F | bit_AVX512CD | bit_AVX512BW | bit_AVX512DQ | bit_AVX512VL | bit_BMI |
                            bit_BMI2;
    return (ebx & needed) == needed && mdl_cpu_has_avx2_fma();
#else
    return 0;
#endif
}

static int always(void) { return 1; }

/* Every kernel build, fastest first: its name, whether this CPU and OS can run it, and its table (NULL when
 * the build was not compiled). A new instruction set is one more entry here. */
static const struct {
    const char *name;
    int (*cpu_supports)(void);
    const mdl_kernel_table *table;
} builds[] = {
#ifdef MINIDL_HAVE_AVX512
    {"avx512", cpu_has_avx512, &mdl_avx512_kernels},
#else
    {"avx512", cpu_has_avx512, NULL},
#endif
#ifdef MINIDL_HAVE_AVX2
    {"avx2", mdl_cpu_has_avx2_fma, &mdl_avx2_kernels},
#else
    {"avx2", mdl_cpu_has_avx2_fma, NULL},
#endif
    {"generic", always, &mdl_generic_kernels},
};
#define MDL_BUILDS ((int)(sizeof builds / sizeof builds[0]))

const char *mdl_kernel_build_name(int i) { return i >= 0 && i < MDL_BUILDS ? builds[i].name : NULL; }
int mdl_kernel_build_compiled(int i) { return i >= 0 && i < MDL_BUILDS && builds[i].table != NULL; }
int mdl_kernel_build_cpu_supports(int i) { return i >= 0 && i < MDL_BUILDS && builds[i].cpu_supports(); }

int mdl_select_kernels(const char *name)
{
    for (int i = 0; i < MDL_BUILDS; i++)
        if (strcmp(name, builds[i].name) == 0 && builds[i].table != NULL && builds[i].cpu_supports()) {
            active = builds[i].table;
            return 0;
        }
    return -1;
}

const char *mdl_kernel_name(void) { return active->name; }

void mdl_kernel_tile(int item, int *mr, int *nr)
{
    *mr = item == 4 ? active->mr_f32 : active->mr_f64;
    *nr = item == 4 ? active->nr_f32 : active->nr_f64;
}

int mdl_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Oversubscription guard (mdl_note_team, mdl_threads_for_call), in three sentences and two reasons:
 * A parallel region has stalled when its threads finish more than MDL_STALL_S and more than
 * MDL_STALL_SHARE of its time apart (other processes started a thread late, or preempted it).
 * A stall makes the kernels run on the calling thread for a back-off of MDL_BACKOFF_MIN_S, doubled up to
 * MDL_BACKOFF_MAX_S each time the threads stall again within one back-off of their return, but only while
 * the recent regions lost at least as much as their threads saved: a region of duration D on t threads in
 * which the calling thread spent C seconds of CPU on its share did work one thread would have needed about
 * t C for, so it saved (t - 1) C and lost D - C; summed over the sampled regions of the last MDL_LOSS_WINDOW_S
 * (weights decaying exponentially), threads pay while the losses stay below the savings (an empty window,
 * nothing measured yet, does not count as paying).
 * A start up to MDL_WAKE_S late is no stall when the workers had been idle for MDL_IDLE_S (no parallel
 * region): that is a worker waking from sleep, as the first region after a back-off always does, so that an
 * idle machine gets its threads back at once (a busy one stalls again in the next region and doubles).
 * Why the window: a neighbour that takes a core now and then stalls a few regions among many, and backing off
 * at each such stall kept the training step on one thread most of the time. On the 2-core EPYC with a process
 * spinning 4 ms of every 34 (12% of one core), the batch-256 step of minidl bench train took 90 ms (16-20
 * back-offs in 8 s) against 52-54 ms on an idle machine; with the window 55-56 ms, no back-off. Why CPU time:
 * on a busy machine both threads are preempted, so how far apart they finish no longer shows what was lost.
 * With two processes spinning on both cores, a window of finish spreads alone kept the threads at batch 10
 * (19-47 ms per step on average, against 9-14 backing off at every stall); with CPU time 9-11 ms.
 * The state is shared by all calling threads without locks, which is safe because a race can only
 * misjudge one region (one back-off too many or too few). Times come from now_s(), which tests replace. */
#define MDL_STALL_S 0.002      /* a worker wakes in microseconds; one lost scheduler tick is 4 ms */
#define MDL_STALL_SHARE 0.25   /* less is a static split's imbalance, cheaper than one thread */
#define MDL_WAKE_S 0.010       /* a sleeping worker on an idle virtual core was measured 3-5 ms late */
#define MDL_IDLE_S 0.002       /* a gap this long lets OpenMP's workers stop spinning and fall asleep */
#define MDL_BACKOFF_MIN_S 0.01 /* a VM's one-off hiccup costs less than a long back-off (21 vs 27 ms/step) */
#define MDL_BACKOFF_MAX_S 0.5  /* once the machine is free again, threads return within half a second */
#define MDL_LOSS_WINDOW_S 0.05 /* the past that decides: a dozen regions at batch 256, hundreds at 10 (not tuned) */
#define MDL_SAMPLE_EVERY 4     /* regions per CPU-time sample: a thread's CPU clock is a system call (~0.75 us) */
static volatile double single_thread_until = 0.0;
static volatile double backoff_s = MDL_BACKOFF_MIN_S;
static volatile double last_region_end = -1.0;
static volatile long backoff_count = 0;
static volatile int largest_team = 0;
static volatile double lost_recent = 0.0;  /* the window's sums (s) */
static volatile double saved_recent = 0.0;
static volatile double window_at = -1.0;    /* when they were last updated */
static volatile unsigned regions_begun = 0;
static volatile double test_clock = -1.0; /* >= 0: the time now_s() reports (mdl_set_test_clock) */

#ifdef _OPENMP
static double now_s(void) { return test_clock >= 0.0 ? test_clock : omp_get_wtime(); }
#endif

void mdl_set_test_clock(double seconds) { test_clock = seconds; }

void mdl_reset_contention_state(void)
{
    single_thread_until = 0.0;
    backoff_s = MDL_BACKOFF_MIN_S;
    last_region_end = -1.0;
    lost_recent = saved_recent = 0.0;
    window_at = -1.0;
}

void mdl_contention_window(double *lost, double *saved)
{
    *lost = lost_recent;
    *saved = saved_recent;
}

int mdl_sample_region(void) { return regions_begun++ % MDL_SAMPLE_EVERY == 0; }

double mdl_thread_cpu_s(void)
{
#ifdef CLOCK_THREAD_CPUTIME_ID
    struct timespec t;
    if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t) == 0) return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
#endif
    return -1.0;
}

void mdl_note_team(int team, double start_delay, double finish_spread, double duration, double master_cpu)
{
    if (team > largest_team) largest_team = team;
#ifdef _OPENMP
    const double now = now_s();
    const int after_idle = now - duration - last_region_end > MDL_IDLE_S;
    last_region_end = now;
    if (master_cpu >= 0.0 && team > 1) {
        const double keep = window_at < 0.0 ? 0.0 : exp(-(now - window_at) / MDL_LOSS_WINDOW_S);
        const double cpu = master_cpu < duration ? master_cpu : duration;
        lost_recent = lost_recent * keep + (duration - cpu);
        saved_recent = saved_recent * keep + (team - 1) * cpu;
        window_at = now;
    }
    /* A late start delays that thread's finish by as much, so finish_spread counts it too. */
    const double lost = finish_spread - (after_idle && start_delay <= MDL_WAKE_S ? start_delay : 0.0);
    if (lost > MDL_STALL_S && lost > MDL_STALL_SHARE * duration && lost_recent >= saved_recent) {
        const int again = now - duration < single_thread_until + backoff_s;
        backoff_s = again ? (2 * backoff_s < MDL_BACKOFF_MAX_S ? 2 * backoff_s : MDL_BACKOFF_MAX_S)
                          : MDL_BACKOFF_MIN_S;
        single_thread_until = now + backoff_s;
        backoff_count++;
    }
#else
    (void)start_delay;
    (void)finish_spread;
    (void)duration;
    (void)master_cpu;
#endif
}

int mdl_take_largest_team(void)
{
    const int team = largest_team;
    largest_team = 0;
    return team;
}

long mdl_backoff_count(void) { return backoff_count; }

void mdl_set_num_threads(int n) { num_threads = n < 1 ? 1 : n > MDL_MAX_THREADS ? MDL_MAX_THREADS : n; }

int mdl_get_num_threads(void)
{
    if (in_forked_child) return 1;
    if (num_threads == 0) {
#ifdef _OPENMP
        num_threads = omp_get_max_threads(); /* the cores we may use, or OMP_NUM_THREADS */
        if (num_threads > MDL_MAX_THREADS) num_threads = MDL_MAX_THREADS;
#else
        num_threads = 1;
#endif
    }
#ifdef _OPENMP
    return num_threads;
#else
    return 1;
#endif
}

static __thread int probing = 0; /* this thread is timing kernels for the work rates: one thread only */

int mdl_threads_for_call(void)
{
    if (probing) return 1;
    const int n = mdl_get_num_threads();
#ifdef _OPENMP
    if (n > 1) {
        if (now_s() < single_thread_until) return 1;
    }
#endif
    return n;
}

/* What the thread thresholds (blocking.c) are derived from, measured at the first call that needs them (a
 * kernel call with a team of 2+), never at import, so importing starts no thread:
 * - The fork-join cost of a team of n threads: the median of MDL_FORK_JOIN_REGIONS back-to-back parallel
 *   regions of n threads that only do the reduction every kernel's region does, after one that starts the
 *   threads (as the kernels' regions follow each other in a training step, their workers still spinning).
 *   A region slower than MDL_FORK_JOIN_MAX_S means other processes hold the cores: the measurement stops,
 *   the kernels keep the fallback thresholds, and it is tried again MDL_FORK_JOIN_RETRY_S later. Cached per
 *   team size (up to MDL_TEAM_CACHE threads; a larger team keeps the fallbacks).
 * - One core's rate on each kind of work: the active build's own kernels timed on the calling thread
 *   (the fastest of MDL_PROBE_RUNS after a warm-up: anything else running only slows a run) over MDL_PROBE_ELEMENTS elements (in L2, as a thread's
 *   share near the thresholds is) and a MDL_PROBE_SIDE^3 GEMM: ~0.1 ms for the SIMD builds, ~1 ms for the
 *   generic one. Measured, not tabled: the rates differ 25x between builds (the generic build's C sigmoid),
 *   2-4x between dtypes and kernels, and with another machine's clock, caches and vector units. Cached per
 *   build and dtype. */
#ifdef _OPENMP
#define MDL_FORK_JOIN_REGIONS 9
#define MDL_FORK_JOIN_MAX_S 200e-6 /* 16 threads time-sharing 2 cores took 140 us; a hot team is ~1-10 us */
#define MDL_FORK_JOIN_RETRY_S 1.0
#define MDL_TEAM_CACHE 1024
#define MDL_PROBE_ELEMENTS 8192 /* 1-4 us a run (SIMD builds), 70-160 us (generic sigmoid) */
#define MDL_PROBE_SIDE 48        /* 221 kFLOP: 4-30 us */
#define MDL_PROBE_RUNS 5
_Static_assert(MDL_PROBE_ELEMENTS >= MDL_PROBE_SIDE * MDL_PROBE_SIDE, "the GEMM probe fits the buffers");
static volatile double fork_join_s[MDL_TEAM_CACHE + 1];        /* 0: not measured yet */
static volatile double fork_join_retry_at[MDL_TEAM_CACHE + 1]; /* omp_get_wtime() after a failed try */
static volatile int fork_join_sink;
static mdl_work_rates rates_of[MDL_BUILDS][2]; /* [build][item == 8] */
static int rates_known[MDL_BUILDS][2];

static double median(double *v, int n)
{
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            const double swap = v[j];
            v[j] = v[j - 1];
            v[j - 1] = swap;
        }
    return v[n / 2];
}

static double measure_fork_join(int team)
{
    double took[MDL_FORK_JOIN_REGIONS];
    for (int r = -1; r < MDL_FORK_JOIN_REGIONS; r++) { /* r = -1 starts the threads: not counted */
        int ran = 0;
        const double start = omp_get_wtime();
#pragma omp parallel num_threads(team) reduction(+ : ran)
        ran = 1;
        const double t = omp_get_wtime() - start;
        fork_join_sink = ran;
        if (r < 0) continue;
        if (t > MDL_FORK_JOIN_MAX_S) return -1.0;
        took[r] = t;
    }
    return median(took, MDL_FORK_JOIN_REGIONS);
}

/* One run of `kind` on the probe buffers x, y, z (MDL_PROBE_ELEMENTS each), on one thread. */
static void run_probe(const mdl_kernel_table *t, int item, int kind, void *x, void *y, void *z)
{
    const mdl_index s = MDL_PROBE_SIDE, n = MDL_PROBE_ELEMENTS;
    if (item == 4) {
        float *a = (float *)x, *b = (float *)y, *c = (float *)z;
        if (kind == MDL_WORK_SIGMOID_FWD) t->sigmoid_fwd_f32(a, c, n);
        if (kind == MDL_WORK_SIGMOID_BWD) t->sigmoid_bwd_f32(b, a, c, n);
        if (kind == MDL_WORK_AXPBY) t->axpby_f32(0.5f, a, 1.0f, c, n);
        if (kind == MDL_WORK_GEMM) t->gemm_f32(s, s, s, a, s, 1, b, s, 1, c, s, 1.0f, 0.0f, NULL, NULL, 1);
    } else {
        double *a = (double *)x, *b = (double *)y, *c = (double *)z;
        if (kind == MDL_WORK_SIGMOID_FWD) t->sigmoid_fwd_f64(a, c, n);
        if (kind == MDL_WORK_SIGMOID_BWD) t->sigmoid_bwd_f64(b, a, c, n);
        if (kind == MDL_WORK_AXPBY) t->axpby_f64(0.5, a, 1.0, c, n);
        if (kind == MDL_WORK_GEMM) t->gemm_f64(s, s, s, a, s, 1, b, s, 1, c, s, 1.0, 0.0, NULL, NULL, 1);
    }
}

static mdl_work_rates measure_rates(const mdl_kernel_table *t, int item)
{
    mdl_work_rates rates = {{0}};
    const mdl_index n = MDL_PROBE_ELEMENTS; /* >= MDL_PROBE_SIDE^2: the GEMM's operands fit too */
    void *buffer = NULL;
    if (posix_memalign(&buffer, 64, 3 * (size_t)n * (size_t)item) != 0) return rates;
    char *x = (char *)buffer, *y = x + n * item, *z = y + n * item;
    for (mdl_index i = 0; i < n; i++) { /* inputs in [-8, 8] (both signs) and sigmoid outputs in (0, 1) */
        const double xi = (double)(i % 33 - 16) * 0.5, yi = (double)(i % 7 + 1) / 9.0;
        if (item == 4) {
            ((float *)x)[i] = (float)xi;
            ((float *)y)[i] = (float)yi;
            ((float *)z)[i] = 0.0f;
        } else {
            ((double *)x)[i] = xi;
            ((double *)y)[i] = yi;
            ((double *)z)[i] = 0.0;
        }
    }
    probing = 1;
    for (int kind = 0; kind < MDL_WORK_KINDS; kind++) {
        double took[MDL_PROBE_RUNS];
        for (int r = -1; r < MDL_PROBE_RUNS; r++) { /* r = -1 warms the caches: not counted */
            const double start = omp_get_wtime();
            run_probe(t, item, kind, x, y, z);
            if (r >= 0) took[r] = omp_get_wtime() - start;
        }
        const double work = kind == MDL_WORK_GEMM ? 2.0 * MDL_PROBE_SIDE * MDL_PROBE_SIDE * MDL_PROBE_SIDE
                                                  : (double)n;
        double seconds = took[0];
        for (int r = 1; r < MDL_PROBE_RUNS; r++) seconds = took[r] < seconds ? took[r] : seconds;
        rates.per_s[kind] = seconds > 0.0 ? work / seconds : 0.0;
    }
    probing = 0;
    free(buffer);
    return rates;
}
#endif
static volatile double test_fork_join = -1.0; /* >= 0: the cost mdl_fork_join_seconds reports */

void mdl_set_test_fork_join(double seconds) { test_fork_join = seconds; }

double mdl_fork_join_seconds(int team)
{
    if (team <= 1) return 0.0;
    if (test_fork_join >= 0.0) return test_fork_join;
#ifdef _OPENMP
    if (in_forked_child || team > MDL_TEAM_CACHE) return -1.0;
    if (fork_join_s[team] > 0.0) return fork_join_s[team];
    if (omp_get_wtime() < fork_join_retry_at[team]) return -1.0;
    const double seconds = measure_fork_join(team);
    if (seconds > 0.0)
        fork_join_s[team] = seconds;
    else
        fork_join_retry_at[team] = omp_get_wtime() + MDL_FORK_JOIN_RETRY_S;
    return seconds;
#else
    return -1.0;
#endif
}

mdl_work_rates mdl_work_rates_measured(int item)
{
    mdl_work_rates none = {{0}};
#ifdef _OPENMP
    const mdl_kernel_table *t = active;
    const int d = item == 8;
    for (int b = 0; b < MDL_BUILDS; b++) {
        if (builds[b].table != t) continue;
        /* Concurrent first calls may both measure; either result serves. */
        if (!__atomic_load_n(&rates_known[b][d], __ATOMIC_ACQUIRE)) {
            rates_of[b][d] = measure_rates(t, item);
            __atomic_store_n(&rates_known[b][d], 1, __ATOMIC_RELEASE);
        }
        return rates_of[b][d];
    }
#else
    (void)item;
#endif
    return none;
}

void mdl_parallel_ranges(mdl_range_fn fn, const void *args, mdl_index n, mdl_work kind, int item)
{
    const int team_size = mdl_threads_for_call();
    mdl_index nt = team_size;
    if (team_size > 1) {
        const double min_per_thread = mdl_thresholds_for(team_size, item).min_per_thread[kind];
        if ((double)n / (double)nt < min_per_thread) nt = (mdl_index)((double)n / min_per_thread);
    }
    if (nt <= 1) { /* no OpenMP construct at all: safe in a fork()ed child too */
        fn(args, 0, n);
        return;
    }
#ifdef _OPENMP
    MDL_TEAM_RECORD;
    /* The whole team starts (kernels.h: a shrinking team makes the runtime replace threads); nt work. */
#pragma omp parallel num_threads(team_size) MDL_TEAM_REDUCTIONS
    {
        const mdl_index team = omp_get_num_threads() < nt ? omp_get_num_threads() : nt;
        const mdl_index tid = omp_get_thread_num();
        if (tid < team) {
            MDL_TEAM_THREAD_STARTED();
            const mdl_index lo = n * tid / team / 16 * 16;
            const mdl_index hi = tid == team - 1 ? n : n * (tid + 1) / team / 16 * 16;
            fn(args, lo, hi);
            MDL_TEAM_THREAD_ENDED();
        }
    }
    MDL_TEAM_NOTE();
#else
    fn(args, 0, n);
#endif
}

int mdl_gemm_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index rsa, mdl_index csa,
                 const float *B, mdl_index rsb, mdl_index csb, float *C, mdl_index ldc, float alpha, float beta,
                 const float *bias)
{
    return active->gemm_f32(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, alpha, beta, bias, NULL,
                            mdl_threads_for_call());
}

int mdl_gemm_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index rsa, mdl_index csa,
                 const double *B, mdl_index rsb, mdl_index csb, double *C, mdl_index ldc, double alpha,
                 double beta, const double *bias)
{
    return active->gemm_f64(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, alpha, beta, bias, NULL,
                            mdl_threads_for_call());
}

int mdl_gemm_after_update_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index lda, float *W,
                              mdl_index ldw, float *C, mdl_index ldc, const float *bias,
                              const mdl_weight_update *update)
{
    return active->gemm_f32(m, n, k, A, lda, 1, W, ldw, 1, C, ldc, 1.0f, 0.0f, bias, update, mdl_threads_for_call());
}

int mdl_gemm_after_update_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index lda, double *W,
                              mdl_index ldw, double *C, mdl_index ldc, const double *bias,
                              const mdl_weight_update *update)
{
    return active->gemm_f64(m, n, k, A, lda, 1, W, ldw, 1, C, ldc, 1.0, 0.0, bias, update, mdl_threads_for_call());
}

void mdl_sigmoid_fwd_f32(const float *x, float *y, mdl_index n)
{
    active->sigmoid_fwd_f32(x, y, n);
}

void mdl_sigmoid_fwd_f64(const double *x, double *y, mdl_index n)
{
    active->sigmoid_fwd_f64(x, y, n);
}

void mdl_sigmoid_bwd_f32(const float *y, const float *gy, float *gx, mdl_index n)
{
    active->sigmoid_bwd_f32(y, gy, gx, n);
}

void mdl_sigmoid_bwd_f64(const double *y, const double *gy, double *gx, mdl_index n)
{
    active->sigmoid_bwd_f64(y, gy, gx, n);
}

void mdl_axpby_f32(float alpha, const float *x, float beta, float *y, mdl_index n)
{
    active->axpby_f32(alpha, x, beta, y, n);
}

void mdl_axpby_f64(double alpha, const double *x, double beta, double *y, mdl_index n)
{
    active->axpby_f64(alpha, x, beta, y, n);
}
