/* Kernel selection and thread control. Compiled with generic flags: nothing here may use AVX. */
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#include <pthread.h>
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

int mdl_avx2_compiled(void)
{
#ifdef MINIDL_HAVE_AVX2
    return 1;
#else
    return 0;
#endif
}

int mdl_select_kernels(const char *name)
{
    if (strcmp(name, "generic") == 0) {
        active = &mdl_generic_kernels;
        return 0;
    }
#ifdef MINIDL_HAVE_AVX2
    if (strcmp(name, "avx2") == 0 && mdl_cpu_has_avx2_fma()) {
        active = &mdl_avx2_kernels;
        return 0;
    }
#endif
    return -1;
}

const char *mdl_kernel_name(void) { return active->name; }

int mdl_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* Oversubscription guard. When other processes keep every core busy, a woken OpenMP worker may wait a
 * scheduler tick or two (4-8 ms) before it runs, or be preempted half-way, and a fork-join kernel then
 * takes that long however small it is (measured here at load 4 on 2 cores: sigmoid of 1e6 floats 8 ms
 * with 2 threads, 0.8 ms with 1). So each parallel region reports how late its last thread started and
 * how far apart the threads finished; a thread more than MDL_STALL_S late (wake-up normally takes
 * microseconds, and a static split finishes within a few percent) makes the kernels run on the calling
 * thread for a while, after which threads are tried again.
 * How long: a virtual machine's idle core also wakes late now and then when the host is busy for a
 * moment, and a long back-off after such a hiccup costs more than the hiccup (a 784-1000x5-10 training
 * step at batch 64 measured 27 ms median with a fixed 0.25 s back-off, 21 ms without any). So the
 * back-off starts at MDL_BACKOFF_MIN_S and doubles, up to MDL_BACKOFF_MAX_S, each time threads stall
 * again within one back-off's length of being tried again: the machine is still busy.
 * After idleness: a worker that has slept (OpenMP's workers spin briefly, then sleep) on an idle virtual
 * core often starts 3-5 ms late, on an otherwise idle machine (measured here: after 20 ms without kernels,
 * 22 of 40 regions). That is the price of waking, not a sign of a busy machine, so a start up to
 * MDL_WAKE_S late is forgiven when no parallel region ended in the MDL_IDLE_S before this one began.
 * (A kernel that runs on one thread while backing off counts as a region that just ended: the first
 * region after a back-off is a probe of the machine, not a wake-up.)
 * The state is shared by all calling threads without locks: a race can only misjudge one region. */
#define MDL_STALL_S 0.002
#define MDL_BACKOFF_MIN_S 0.01
#define MDL_BACKOFF_MAX_S 0.5
#define MDL_IDLE_S 0.002
#define MDL_WAKE_S 0.010
static volatile double single_thread_until = 0.0;
static volatile double backoff_s = MDL_BACKOFF_MIN_S;
static volatile double last_kernel_end = -1.0;
static volatile long backoff_count = 0;

void mdl_reset_contention_state(void)
{
    single_thread_until = 0.0;
    backoff_s = MDL_BACKOFF_MIN_S;
    last_kernel_end = -1.0;
}

void mdl_note_team(double start_delay, double finish_spread, double duration)
{
#ifdef _OPENMP
    const double now = omp_get_wtime();
    const int after_idle = now - duration - last_kernel_end > MDL_IDLE_S && start_delay <= MDL_WAKE_S;
    last_kernel_end = now;
    /* A late start delays that thread's finish by as much; what goes beyond was lost mid-way. */
    const double lost_midway = finish_spread - start_delay;
    const int stalled = (start_delay > MDL_STALL_S && !after_idle)
                        || (lost_midway > MDL_STALL_S && lost_midway > 0.25 * duration);
    if (stalled) {
        const int still_busy = now < single_thread_until + backoff_s + duration;
        backoff_s = still_busy ? (2 * backoff_s < MDL_BACKOFF_MAX_S ? 2 * backoff_s : MDL_BACKOFF_MAX_S)
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
        const double now = omp_get_wtime();
        if (now < single_thread_until) {
            last_kernel_end = now; /* not idle: this kernel runs on one thread */
            return 1;
        }
    }
#endif
    return n;
}

void mdl_parallel_ranges(mdl_range_fn fn, const void *args, mdl_index n, mdl_index min_per_thread)
{
    mdl_index nt = mdl_threads_for_call();
    if (n / nt < min_per_thread) nt = n / min_per_thread;
    if (nt <= 1) { /* no OpenMP construct at all: safe in a fork()ed child too */
        fn(args, 0, n);
        return;
    }
#ifdef _OPENMP
    const double forked_at = omp_get_wtime();
    double last_start = forked_at, first_end = 1e300, last_end = forked_at;
#pragma omp parallel num_threads((int)nt) reduction(max : last_start, last_end) reduction(min : first_end)
    {
        last_start = omp_get_wtime();
        const mdl_index team = omp_get_num_threads(), tid = omp_get_thread_num();
        const mdl_index lo = n * tid / team / 16 * 16;
        const mdl_index hi = tid == team - 1 ? n : n * (tid + 1) / team / 16 * 16;
        fn(args, lo, hi);
        last_end = first_end = omp_get_wtime();
    }
    mdl_note_team(last_start - forked_at, last_end - first_end, last_end - forked_at);
#else
    fn(args, 0, n);
#endif
}

int mdl_gemm_f32(mdl_index m, mdl_index n, mdl_index k, const float *A, mdl_index rsa, mdl_index csa,
                 const float *B, mdl_index rsb, mdl_index csb, float *C, mdl_index ldc)
{
    return active->gemm_f32(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, mdl_threads_for_call());
}

int mdl_gemm_f64(mdl_index m, mdl_index n, mdl_index k, const double *A, mdl_index rsa, mdl_index csa,
                 const double *B, mdl_index rsb, mdl_index csb, double *C, mdl_index ldc)
{
    return active->gemm_f64(m, n, k, A, rsa, csa, B, rsb, csb, C, ldc, mdl_threads_for_call());
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
