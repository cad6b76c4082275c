/* Kernel selection and thread control. Compiled with generic flags: nothing here may use AVX. */
#include <stdlib.h>
#include <string.h>
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

/* Oversubscription guard (mdl_note_team, mdl_threads_for_call), in three sentences:
 * A parallel region has stalled when its threads finish more than MDL_STALL_S and more than
 * MDL_STALL_SHARE of its time apart (other processes on every core started a thread late, or preempted it).
 * A stall makes the kernels run on the calling thread for a back-off of MDL_BACKOFF_MIN_S, doubled up to
 * MDL_BACKOFF_MAX_S each time the threads stall again within one back-off of their return.
 * A start up to MDL_WAKE_S late is no stall when the workers had been idle for MDL_IDLE_S (no parallel
 * region): that is a worker waking from sleep, as the first region after a back-off always does, so that an
 * idle machine gets its threads back at once (a busy one stalls again in the next region and doubles).
 * The state is shared by all calling threads without locks, which is safe because a race can only
 * misjudge one region (one back-off too many or too few). Times come from now_s(), which tests replace. */
#define MDL_STALL_S 0.002      /* a worker wakes in microseconds; one lost scheduler tick is 4 ms */
#define MDL_STALL_SHARE 0.25   /* less is a static split's imbalance, cheaper than one thread */
#define MDL_WAKE_S 0.010       /* a sleeping worker on an idle virtual core was measured 3-5 ms late */
#define MDL_IDLE_S 0.002       /* a gap this long lets OpenMP's workers stop spinning and fall asleep */
#define MDL_BACKOFF_MIN_S 0.01 /* a VM's one-off hiccup costs less than a long back-off (21 vs 27 ms/step) */
#define MDL_BACKOFF_MAX_S 0.5  /* once the machine is free again, threads return within half a second */
static volatile double single_thread_until = 0.0;
static volatile double backoff_s = MDL_BACKOFF_MIN_S;
static volatile double last_region_end = -1.0;
static volatile long backoff_count = 0;
static volatile int largest_team = 0;
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
}

void mdl_note_team(int team, double start_delay, double finish_spread, double duration)
{
    if (team > largest_team) largest_team = team;
#ifdef _OPENMP
    const double now = now_s();
    const int after_idle = now - duration - last_region_end > MDL_IDLE_S;
    last_region_end = now;
    /* A late start delays that thread's finish by as much, so finish_spread counts it too. */
    const double lost = finish_spread - (after_idle && start_delay <= MDL_WAKE_S ? start_delay : 0.0);
    if (lost > MDL_STALL_S && lost > MDL_STALL_SHARE * duration) {
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
#endif
}

int mdl_take_largest_team(void)
{
    const int team = largest_team;
    largest_team = 0;
    return team;
}

long mdl_backoff_count(void) { return backoff_count; }

void mdl_set_num_threads(int n) { num_threads = n < 1 ? 1 : n; }

int mdl_get_num_threads(void)
{
    if (in_forked_child) return 1;
    if (num_threads == 0) {
#ifdef _OPENMP
        num_threads = omp_get_max_threads(); /* the cores we may use, or OMP_NUM_THREADS */
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

int mdl_threads_for_call(void)
{
    const int n = mdl_get_num_threads();
#ifdef _OPENMP
    if (n > 1) {
        if (now_s() < single_thread_until) return 1;
    }
#endif
    return n;
}

void mdl_parallel_ranges(mdl_range_fn fn, const void *args, mdl_index n, mdl_index min_per_thread)
{
    const int team_size = mdl_threads_for_call();
    mdl_index nt = team_size;
    if (n / nt < min_per_thread) nt = n / min_per_thread;
    if (nt <= 1) { /* no OpenMP construct at all: safe in a fork()ed child too */
        fn(args, 0, n);
        return;
    }
#ifdef _OPENMP
    const double forked_at = omp_get_wtime();
    double last_start = forked_at, first_end = 1e300, last_end = forked_at;
    int ran = 0;
    /* The whole team starts (kernels.h: a shrinking team makes the runtime replace threads); nt work. */
#pragma omp parallel num_threads(team_size) reduction(max : last_start, last_end) reduction(min : first_end) \
    reduction(+ : ran)
    {
        const mdl_index team = omp_get_num_threads() < nt ? omp_get_num_threads() : nt;
        const mdl_index tid = omp_get_thread_num();
        if (tid < team) {
            ran = 1;
            last_start = omp_get_wtime();
            const mdl_index lo = n * tid / team / 16 * 16;
            const mdl_index hi = tid == team - 1 ? n : n * (tid + 1) / team / 16 * 16;
            fn(args, lo, hi);
            last_end = first_end = omp_get_wtime();
        }
    }
    mdl_note_team(ran, last_start - forked_at, last_end - first_end, last_end - forked_at);
#else
    fn(args, 0, n);
#endif
}

int mdl_gemm_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index rsa, mdl_index csa,
                 const float *B, mdl_index rsb, mdl_index csb, float *C, mdl_index ldc, float alpha, float beta)
{
    return active->gemm_f32(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, alpha, beta, mdl_threads_for_call());
}

int mdl_gemm_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index rsa, mdl_index csa,
                 const double *B, mdl_index rsb, mdl_index csb, double *C, mdl_index ldc, double alpha,
                 double beta)
{
    return active->gemm_f64(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, alpha, beta, mdl_threads_for_call());
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
