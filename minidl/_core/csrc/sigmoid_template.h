/* Sigmoid drivers: split an array into one contiguous range per thread (mdl_parallel_ranges). Included
 * once per (dtype, instruction set); the including file defines T, SFX and the single-threaded loops
 *   static void FWD_CHUNK(const T *x, T *y, mdl_index n);            y = 1 / (1 + exp(-x))
 *   static void BWD_CHUNK(const T *y, const T *gy, T *gx, mdl_index n); gx = gy * y * (1 - y)
 */
#define MDL_CAT_(a, b) a##b
#define MDL_CAT(a, b) MDL_CAT_(a, b)
#define FN(name) MDL_CAT(name##_, SFX)

/* Below this many elements per thread, starting threads costs more than the loop. */
#define MDL_SIGMOID_MIN_PER_THREAD 32768

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
    mdl_parallel_ranges(FN(fwd_range), &args, n, MDL_SIGMOID_MIN_PER_THREAD);
}

static void FN(sigmoid_bwd)(const T *y, const T *gy, T *gx, mdl_index n)
{
    const FN(sigmoid_args) args = {y, gy, gx};
    mdl_parallel_ranges(FN(bwd_range), &args, n, MDL_SIGMOID_MIN_PER_THREAD);
}

#undef FN
