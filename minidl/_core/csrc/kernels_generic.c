/* Generic kernels: plain C for any CPU (the fallback when AVX2+FMA is missing or not compiled).
 * Same blocking and threading as the AVX2 build; the templates write the micro-kernel (a simple register
 * tile, GENERIC_KERNEL) and the sigmoid loops (from EXP and FABS) once for both dtypes.
 * Each block only #defines the templates' parameters; the template #undefs them again. */
#include <math.h>
#include "kernels.h"

/* ---- float32 GEMM ---- */
#define T float
#define SFX f32_generic
#define MR 4
#define NR 8
#define GENERIC_KERNEL
#include "gemm_template.h"

/* ---- float64 GEMM ---- */
#define T double
#define SFX f64_generic
#define MR 4
#define NR 4
#define GENERIC_KERNEL
#include "gemm_template.h"

/* ---- sigmoid ---- */
#define T float
#define SFX f32_generic
#define EXP expf
#define FABS fabsf
#include "sigmoid_template.h"

#define T double
#define SFX f64_generic
#define EXP exp
#define FABS fabs
#include "sigmoid_template.h"

/* ---- axpby ---- */
#define T float
#define SFX f32_generic
#include "axpby_template.h"

#define T double
#define SFX f64_generic
#include "axpby_template.h"

const mdl_kernel_table mdl_generic_kernels = {
    "generic",
    4, 8, 4, 4,
    gemm_f32_generic, gemm_f64_generic,
    sigmoid_fwd_f32_generic, sigmoid_fwd_f64_generic,
    sigmoid_bwd_f32_generic, sigmoid_bwd_f64_generic,
    axpby_f32_generic, axpby_f64_generic,
};
