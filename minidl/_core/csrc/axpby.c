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

/* One definition for both dtypes: T is the element type, SFX the suffix of the two functions. */
#define MDL_AXPBY(T, SFX)                                                                           \
    static void axpby_range_##SFX(const void *args, mdl_index lo, mdl_index hi)                     \
    {                                                                                               \
        const axpby_args *a = (const axpby_args *)args;                                             \
        const T alpha = (T)a->alpha, beta = (T)a->beta;                                             \
        const T *x = (const T *)a->x;                                                               \
        T *y = (T *)a->y;                                                                           \
        if (beta == (T)1)                                                                           \
            for (mdl_index i = lo; i < hi; i++) y[i] += alpha * x[i];                               \
        else                                                                                        \
            for (mdl_index i = lo; i < hi; i++) y[i] = alpha * x[i] + beta * y[i];                  \
    }                                                                                               \
    void mdl_axpby_##SFX(T alpha, const T *x, T beta, T *y, mdl_index n)                            \
    {                                                                                               \
        const axpby_args args = {alpha, beta, x, y};                                                \
        mdl_parallel_ranges(axpby_range_##SFX, &args, n, MDL_AXPBY_MIN_PER_THREAD);                 \
    }

MDL_AXPBY(float, f32)
MDL_AXPBY(double, f64)
#undef MDL_AXPBY
