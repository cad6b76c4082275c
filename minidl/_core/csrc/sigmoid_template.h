/* Sigmoid drivers: split an array into one contiguous range per thread (mdl_parallel_ranges; threads given
 * work only above the least work per thread derived from the machine, blocking.c). Included
 * once per (dtype, instruction set). The including file #defines the parameters, then #includes this
 * file, which #undefs every one of them at its end and stops with #error if a required one is missing:
 * T, SFX and either the single-threaded loops
 *   FWD_CHUNK: static void FWD_CHUNK(const T *x, T *y, mdl_index n);              y = 1 / (1 + exp(-x))
 *   BWD_CHUNK: static void BWD_CHUNK(const T *y, const T *gy, T *gx, mdl_index n); gx = gy * y * (1 - y)
 * or EXP and FABS, T's exp and fabs (expf, fabsf for float), with which this file writes those loops
 * in plain C.
 */
#if !defined(T) || !defined(SFX)
#error "sigmoid_template.h: define T and SFX before including it"
#endif
#if defined(FWD_CHUNK) != defined(BWD_CHUNK) || defined(EXP) != defined(FABS)
#error "sigmoid_template.h: define FWD_CHUNK with BWD_CHUNK, and EXP with FABS"
#endif
#if defined(FWD_CHUNK) == defined(EXP)
#error "sigmoid_template.h: define either FWD_CHUNK and BWD_CHUNK, or EXP and FABS"
#endif

#define MDL_CAT_(a, b) a##b
#define MDL_CAT(a, b) MDL_CAT_(a, b)
#define FN(name) MDL_CAT(name##_, SFX)

#ifdef EXP
/* Stable form, never exp of a positive number: sigmoid(x) = 1 / (1 + e) for x >= 0 and e / (1 + e)
 * for x < 0, with e = exp(-|x|) in (0, 1]. */
static void FN(fwd)(const T *x, T *y, mdl_index n)
{
    for (mdl_index i = 0; i < n; i++) {
        const T e = EXP(-FABS(x[i]));
        const T s = (T)1 / ((T)1 + e);
        y[i] = x[i] >= (T)0 ? s : (x[i] < (T)0 ? e * s : x[i] + e); /* NaN stays NaN */
    }
}
static void FN(bwd)(const T *y, const T *gy, T *gx, mdl_index n)
{
    for (mdl_index i = 0; i < n; i++) gx[i] = gy[i] * y[i] * ((T)1 - y[i]);
}
#define FWD_CHUNK FN(fwd)
#define BWD_CHUNK FN(bwd)
#endif

typedef struct {
    const T *in, *grad_out;
    T *out;
} FN(sigmoid_args);

static void FN(fwd_range)(const void *args, mdl_index lo, mdl_index hi)
{
    const FN(sigmoid_args) *a = (const FN(sigmoid_args) *)args;
    FWD_CHUNK(a->in + lo, a->out + lo, hi - lo);
}

static void FN(bwd_range)(const void *args, mdl_index lo, mdl_index hi)
{
    const FN(sigmoid_args) *a = (const FN(sigmoid_args) *)args;
    BWD_CHUNK(a->in + lo, a->grad_out + lo, a->out + lo, hi - lo);
}

static void FN(sigmoid_fwd)(const T *x, T *y, mdl_index n)
{
    const FN(sigmoid_args) args = {x, NULL, y};
    mdl_parallel_ranges(FN(fwd_range), &args, n, MDL_WORK_SIGMOID_FWD, (int)sizeof(T));
}

static void FN(sigmoid_bwd)(const T *y, const T *gy, T *gx, mdl_index n)
{
    const FN(sigmoid_args) args = {y, gy, gx};
    mdl_parallel_ranges(FN(bwd_range), &args, n, MDL_WORK_SIGMOID_BWD, (int)sizeof(T));
}

/* Every parameter and helper macro ends here: the next block defines its own. */
#undef T
#undef SFX
#undef FWD_CHUNK
#undef BWD_CHUNK
#undef EXP
#undef FABS
#undef FN
#undef MDL_CAT
#undef MDL_CAT_
