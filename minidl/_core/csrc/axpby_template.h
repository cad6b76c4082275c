/* y <- alpha * x + beta * y, in place: the optimizers' update (SGD's p <- p - lr * g is alpha = -lr,
 * beta = 1; momentum's b <- m * b + (1 - dampening) * g is alpha = 1 - dampening, beta = m).
 * One pass over memory and no temporary, where NumPy's `p -= lr * g` makes two passes and a temporary
 * as large as p. The array is split into one contiguous range per thread (mdl_parallel_ranges), threads
 * given work only above the least work per thread derived from the machine (blocking.c).
 * Memory-bound, so the loop is plain C: included once per (dtype, instruction set), the compiler
 * vectorizes it with that build's flags (4 float lanes generic, 8 with AVX2, 16 with AVX-512).
 * x may be y itself (elementwise, each y[i] is read before it is written), so no restrict.
 * Parameters T and SFX; this file #undefs them at its end. */
#if !defined(T) || !defined(SFX)
#error "axpby_template.h: define T and SFX before including it"
#endif

#define MDL_CAT_(a, b) a##b
#define MDL_CAT(a, b) MDL_CAT_(a, b)
#define FN(name) MDL_CAT(name##_, SFX)

typedef struct {
    T alpha, beta;
    const T *x;
    T *y;
} FN(axpby_args);

static void FN(axpby_range)(const void *args, mdl_index lo, mdl_index hi)
{
    const FN(axpby_args) *a = (const FN(axpby_args) *)args;
    const T alpha = a->alpha, beta = a->beta;
    const T *x = a->x;
    T *y = a->y;
    if (beta == (T)1)
        for (mdl_index i = lo; i < hi; i++) y[i] += alpha * x[i];
    else
        for (mdl_index i = lo; i < hi; i++) y[i] = alpha * x[i] + beta * y[i];
}

static void FN(axpby)(T alpha, const T *x, T beta, T *y, mdl_index n)
{
    const FN(axpby_args) args = {alpha, beta, x, y};
    mdl_parallel_ranges(FN(axpby_range), &args, n, MDL_WORK_AXPBY, (int)sizeof(T));
}

/* Every parameter and helper macro ends here: the next block defines its own. */
#undef T
#undef SFX
#undef FN
#undef MDL_CAT
#undef MDL_CAT_
