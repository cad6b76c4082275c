/* y <- alpha * x + beta * y, in place: the optimizers' update (SGD's p <- p - lr * g is alpha = -lr,
 * beta = 1; momentum's b <- m * b + (1 - dampening) * g is alpha = 1 - dampening, beta = m).
 * One pass over memory and no temporary, where NumPy's `p -= lr * g` makes two passes and a temporary
 * as large as p. The array is split into one contiguous range per thread. Memory-bound, so one plain C
 * loop serves every CPU (the compiler vectorizes it); the kernel tables are not involved.
 * x may be y itself (elementwise, each y[i] is read before it is written), so no restrict. */
#include "kernels.h"

/* Below this many elements per thread, starting threads costs more than the loop (~20 us). */
#define MDL_AXPBY_MIN_PER_THREAD 65536

typedef struct {
    double alpha, beta;
    const void *x;
    void *y;
} axpby_args;

static void axpby_range_f32(const void *args, mdl_index lo, mdl_index hi)
{
    const axpby_args *a = (const axpby_args *)args;
    const float alpha = (float)a->alpha, beta = (float)a->beta;
    const float *x = (const float *)a->x;
    float *y = (float *)a->y;
    if (beta == 1.0f)
        for (mdl_index i = lo; i < hi; i++) y[i] += alpha * x[i];
    else
        for (mdl_index i = lo; i < hi; i++) y[i] = alpha * x[i] + beta * y[i];
}

static void axpby_range_f64(const void *args, mdl_index lo, mdl_index hi)
{
    const axpby_args *a = (const axpby_args *)args;
    const double alpha = a->alpha, beta = a->beta;
    const double *x = (const double *)a->x;
    double *y = (double *)a->y;
    if (beta == 1.0)
        for (mdl_index i = lo; i < hi; i++) y[i] += alpha * x[i];
    else
        for (mdl_index i = lo; i < hi; i++) y[i] = alpha * x[i] + beta * y[i];
}

void mdl_axpby_f32(float alpha, const float *x, float beta, float *y, mdl_index n)
{
    const axpby_args args = {alpha, beta, x, y};
    mdl_parallel_ranges(axpby_range_f32, &args, n, MDL_AXPBY_MIN_PER_THREAD);
}

void mdl_axpby_f64(double alpha, const double *x, double beta, double *y, mdl_index n)
{
    const axpby_args args = {alpha, beta, x, y};
    mdl_parallel_ranges(axpby_range_f64, &args, n, MDL_AXPBY_MIN_PER_THREAD);
}
