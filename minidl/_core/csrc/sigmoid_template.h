/* Sigmoid drivers: split an array into one contiguous range per thread. Included once per
 * (dtype, instruction set); the including file defines T, SFX and the single-threaded loops
 *   static void FWD_CHUNK(const T *x, T *y, mdl_index n);            y = 1 / (1 + exp(-x))
 *   static void BWD_CHUNK(const T *y, const T *gy, T *gx, mdl_index n); gx = gy * y * (1 - y)
 */
#ifdef _OPENMP
#include <omp.h>
#endif

#define MDL_CAT_(a, b) a##b
#define MDL_CAT(a, b) MDL_CAT_(a, b)
#define FN(name) MDL_CAT(name##_, SFX)

/* Below this many elements per thread, starting threads costs more than the loop. */
#define MDL_SIGMOID_MIN_PER_THREAD 32768

static void FN(sigmoid_fwd)(const T *x, T *y, mdl_index n, int nthreads)
{
    mdl_index nt = nthreads < 1 ? 1 : nthreads;
    if (n / nt < MDL_SIGMOID_MIN_PER_THREAD) nt = n / MDL_SIGMOID_MIN_PER_THREAD;
    if (nt <= 1) {
        FWD_CHUNK(x, y, n);
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
        FWD_CHUNK(x + lo, y + lo, hi - lo);
        last_end = first_end = omp_get_wtime();
    }
    mdl_note_team(last_start - forked_at, last_end - first_end, last_end - forked_at);
#else
    FWD_CHUNK(x, y, n);
#endif
}

static void FN(sigmoid_bwd)(const T *y, const T *gy, T *gx, mdl_index n, int nthreads)
{
    mdl_index nt = nthreads < 1 ? 1 : nthreads;
    if (n / nt < MDL_SIGMOID_MIN_PER_THREAD) nt = n / MDL_SIGMOID_MIN_PER_THREAD;
    if (nt <= 1) {
        BWD_CHUNK(y, gy, gx, n);
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
        BWD_CHUNK(y + lo, gy + lo, gx + lo, hi - lo);
        last_end = first_end = omp_get_wtime();
    }
    mdl_note_team(last_start - forked_at, last_end - first_end, last_end - forked_at);
#else
    BWD_CHUNK(y, gy, gx, n);
#endif
}

#undef FN
