/* y <- alpha * x + beta * y, in place: the optimizers' update (SGD's p <- p - lr * g is alpha = -lr,
 * beta = 1; momentum's b <- m * b + (1 - dampening) * g is alpha = 1 - dampening, beta = m).
 * One pass over memory and no temporary, where NumPy's `p -= lr * g` makes two passes and a temporary
 * as large as p. The array is split into one contiguous range per thread. Memory-bound, so one plain C
 * loop serves every CPU (the compiler vectorizes it); the kernel tables are not involved. */
#ifdef _OPENMP
#include <omp.h>
#endif
#include "kernels.h"

/* Below this many elements per thread, starting threads costs more than the loop (~20 us). */
#define MDL_AXPBY_MIN_PER_THREAD 65536

typedef struct {
    double alpha, beta;
    const void *x;
    void *y;
} axpby_args;

typedef void (*range_fn)(const axpby_args *args, mdl_index lo, mdl_index hi);

static void axpby_range_f32(const axpby_args *args, mdl_index lo, mdl_index hi)
{
    const float alpha = (float)args->alpha, beta = (float)args->beta;
    const float *restrict x = (const float *)args->x;
    float *restrict y = (float *)args->y;
    if (beta == 1.0f)
        for (mdl_index i = lo; i < hi; i++) y[i] += alpha * x[i];
    else
        for (mdl_index i = lo; i < hi; i++) y[i] = alpha * x[i] + beta * y[i];
}

static void axpby_range_f64(const axpby_args *args, mdl_index lo, mdl_index hi)
{
    const double alpha = args->alpha, beta = args->beta;
    const double *restrict x = (const double *)args->x;
    double *restrict y = (double *)args->y;
    if (beta == 1.0)
        for (mdl_index i = lo; i < hi; i++) y[i] += alpha * x[i];
    else
        for (mdl_index i = lo; i < hi; i++) y[i] = alpha * x[i] + beta * y[i];
}

/* fn over [0, n), one contiguous range per thread (range bounds multiples of 16 elements). */
static void split_over_threads(range_fn fn, const axpby_args *args, mdl_index n)
{
    mdl_index nt = mdl_threads_for_call();
    if (n / nt < MDL_AXPBY_MIN_PER_THREAD) nt = n / MDL_AXPBY_MIN_PER_THREAD;
    if (nt <= 1) {
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

void mdl_axpby_f32(float alpha, const float *x, float beta, float *y, mdl_index n)
{
    const axpby_args args = {alpha, beta, x, y};
    split_over_threads(axpby_range_f32, &args, n);
}

void mdl_axpby_f64(double alpha, const double *x, double beta, double *y, mdl_index n)
{
    const axpby_args args = {alpha, beta, x, y};
    split_over_threads(axpby_range_f64, &args, n);
}
