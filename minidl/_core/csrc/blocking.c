/* Cache blocking from the machine: the cache sizes read at run time, and the GEMM block sizes derived from
 * them by the BLIS rules (Low, Igual, Smith & Quintana-Orti 2016, "Analytical modeling is enough for
 * high-performance BLIS"), for any micro-tile MR x NR and element size:
 *   KC: the packed path's K block: one MR x KC panel of A fills at most MDL_L1_SHARE of L1d (row panels run
 *       outside column panels, so that A panel is the one reused from L1 while the B panels stream from L2).
 *       Counting a KC x NR panel of B beside it, as BLIS's rule for its own loop order does (and as this
 *       file did), gave KC 128 for the 14 x 32 float32 tile on a 32 KiB L1d: on the 2-core AVX-512 EPYC
 *       (Zen 4, 1 MiB L2) the products at 256 x 1000 x 1000 then took 10-30% longer on two threads than
 *       with KC 432 (this rule), 2-6% on one; KC 528-1000 measured as 432 (kc sweeps, five 1000x1000 weights
 *       in turn, medians in one process). The whole training step took 4-5% less at batch 256 and 7% at 128
 *       (this build against the one before, steps alternating in one process), up to 16% in slow phases.
 *   skinny_kc, skinny_mc: the K block and the rows of the L2 block (as MC, below) of the products that read
 *       B in place with at most skinny_kc_m rows (op(B) row-major), SGD's update fused into the next product
 *       among them: the update writes a KC x NR strip of W that the product reads right back, from L1 while
 *       that strip and the A panel fit there together (at most MDL_L1_SHARE of L1d);
 *   skinny_kc_m: the most rows whose whole A block fits L1d beside that strip, (m + NR) x skinny_kc
 *       elements (at least one tile's rows, at most skinny_m). Taller products that read B in place take
 *       the packed path's KC and MC: the strip is read back by several A panels that L1 cannot keep, and
 *       longer K blocks reread C less. Measured on the 2-core AVX-512 EPYC (Zen 4), both builds and dtypes,
 *       the short K block against the long one per call (fused update + X W, 1000 x 1000, 2 threads,
 *       alternating, medians): float32 avx512 (this rule: 32 rows) the same within 2% at 10-32 rows, the
 *       long one 5% faster at 40, 5-26% at 48-70; float64 avx512 (26) the same at 10-16, 5-7% faster
 *       at 24-32; float32 avx2 (14) the short one 4-11% faster at 6-16 rows, the long one 3-6% at 24-64;
 *       float64 avx2 (10) the short one 6-13% faster at 6-10, the long one 12% at 24. With the 3/4 L1
 *       share of the other rules (one tile's rows on avx2) batch 10 would lose those 4-6%. Few rows with
 *       a transposed B (packed panel by panel, never fused) take the packed KC too: dY W^T at 48-64 rows
 *       2-5% faster, the step at batch 64 1-4%. The whole product chooses its K block (gemm_template.h),
 *       so every thread sums in the same blocks, whatever its share;
 *   MC: the packed MC x KC block of A fills at most MDL_L2_SHARE of L2 (per core);
 *   NC: the packed KC x NC block of B fills at most MDL_L3_SHARE of L3 divided among the threads (each
 *       thread packs its own block). With row panels outside, that block is reread once per row panel; past
 *       L2 it still was here (1000 x 1000 @ 1000 x 8000, 3.2 MB per thread, 2 threads: 77-102 ms, against
 *       81-108 with column panels outside), so NC keeps the L3 rule; unmeasured on a small-L2 machine;
 *   skinny_m: products of at most this many rows skip packing the B block (gemm_template.h): each B panel
 *       then serves too few micro-tiles to repay a packing pass. The crossover was near the same number of
 *       rows on both machines measured, whatever their tile: 64 rows of 6-row tiles on the 2-core EPYC
 *       (avx2); 64-100 rows of 14-row tiles on the 2-core Xeon (avx512, 2 threads, X W and dY W^T with
 *       1000 x 1000 weights, medians of 21 over six weights, four runs each way: packed 8-15% faster at
 *       100, 128 and 150 rows, even at 84, B read in place faster at 64). So MDL_SKINNY_ROWS, rounded down
 *       to whole tiles (at least one), and the m x skinny_kc block of A stays within the L2 share.
 * Every size is clamped, so the packing buffers stay bounded for any reported cache size (0, 1 byte, 1 TB):
 *   KC in [MDL_KC_MIN, MDL_KC_MAX] (a multiple of 8), MC in [MR, MDL_MC_MAX] and NC in [NR, MDL_NC_MAX]
 *   (multiples of MR and NR). A buffer <= MC x KC and B buffer <= KC x NC elements per thread, reused.
 * The sizes are cpu0's as Linux's sysfs gives them (the kernel's own reading of CPUID), else sysconf's: on
 * the 2-core EPYC, glibc 2.36's sysconf says L3 256 MiB where sysfs says 32 MiB shared by the two cores.
 * Unknown sizes (neither says, or no sysconf) fall back to the 2-core Zen 3 EPYC's 32 KiB / 512 KiB / 32 MiB,
 * for which the skinny rule gives the KC 272 and MC 240 tuned there by hand for the avx2 build (then one KC
 * for both paths); its packed KC, 1024, was measured only on the Zen 4: the avx2 build there took 5-18%
 * less at 256 x 1000 x 1000 with KC 1000 than with 272. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "kernels.h"

#define MDL_L1_DEFAULT (32L << 10)
#define MDL_L2_DEFAULT (512L << 10)
#define MDL_L3_DEFAULT (32L << 20)
#define MDL_L1_SHARE 0.75
#define MDL_L2_SHARE 0.5
#define MDL_L3_SHARE 0.5
#define MDL_SKINNY_ROWS 70
#define MDL_KC_MIN 16
#define MDL_KC_MAX 1024
#define MDL_MC_MAX 2048
#define MDL_NC_MAX 4096

static mdl_cache_sizes detected = {0, 0, 0};
static mdl_cache_sizes override = {0, 0, 0};

/* The first line of a sysfs file, without its newline: 0, or -1 when it cannot be read. */
static int read_line(const char *path, char *line, int size)
{
    FILE *file = fopen(path, "r");
    if (file == NULL) return -1;
    const int ok = fgets(line, size, file) != NULL;
    fclose(file);
    if (!ok) return -1;
    line[strcspn(line, "\n")] = '\0';
    return 0;
}

/* cpu0's cache of this level and type ("Data" or "Unified") in bytes, from
 * /sys/devices/system/cpu/cpu0/cache/index<i>/{level,type,size} (size as "32K", or "32M"); 0 if not there. */
static long sysfs_cache_size(int level, const char *type)
{
    for (int index = 0; index < 16; index++) {
        char path[80], line[32];
        long size;
        char unit = '\0';
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", index);
        if (read_line(path, line, sizeof line) != 0) return 0; /* no more caches */
        if (atoi(line) != level) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", index);
        if (read_line(path, line, sizeof line) != 0 || strcmp(line, type) != 0) continue;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", index);
        if (read_line(path, line, sizeof line) != 0 || sscanf(line, "%ld%c", &size, &unit) < 1 || size <= 0) return 0;
        return unit == 'K' ? size << 10 : unit == 'M' ? size << 20 : unit == 'G' ? size << 30 : size;
    }
    return 0;
}

/* sysconf's name for a cache size where the C library has one (glibc), else -1: sysfs or the fallback only. */
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
#define MDL_SYSCONF_NAME(name) (name)
#else
#define MDL_SYSCONF_NAME(name) (-1)
#endif

static long cache_size(int level, const char *type, int sysconf_name, long fallback)
{
    const long from_sysfs = sysfs_cache_size(level, type);
    if (from_sysfs > 0) return from_sysfs;
    const long from_sysconf = sysconf_name >= 0 ? sysconf(sysconf_name) : 0;
    return from_sysconf > 0 ? from_sysconf : fallback;
}

void mdl_detect_cache_sizes(void)
{
    detected.l1d = cache_size(1, "Data", MDL_SYSCONF_NAME(_SC_LEVEL1_DCACHE_SIZE), MDL_L1_DEFAULT);
    detected.l2 = cache_size(2, "Unified", MDL_SYSCONF_NAME(_SC_LEVEL2_CACHE_SIZE), MDL_L2_DEFAULT);
    detected.l3 = cache_size(3, "Unified", MDL_SYSCONF_NAME(_SC_LEVEL3_CACHE_SIZE), MDL_L3_DEFAULT);
}

mdl_cache_sizes mdl_cache_sizes_detected(void) { return detected; }

void mdl_override_cache_sizes(long l1d, long l2, long l3)
{
    override.l1d = l1d;
    override.l2 = l2;
    override.l3 = l3;
}

mdl_cache_sizes mdl_cache_sizes_in_use(void)
{
    return override.l1d > 0 || override.l2 > 0 || override.l3 > 0 ? override : detected;
}

static mdl_index clamp_index(double value, mdl_index lo, mdl_index hi)
{
    return value < (double)lo ? lo : value > (double)hi ? hi : (mdl_index)value;
}

static mdl_index k_block(double kc) { return clamp_index(kc, MDL_KC_MIN, MDL_KC_MAX) / 8 * 8; }

/* The rows (a multiple of MR) of an MC x KC block of A that fills at most MDL_L2_SHARE of L2. */
static mdl_index l2_rows(double l2, mdl_index kc, int mr, int item)
{
    return clamp_index(MDL_L2_SHARE * l2 / ((double)kc * item), mr, MDL_MC_MAX) / mr * mr;
}

mdl_blocking mdl_derive_blocking(mdl_cache_sizes caches, int threads, int mr, int nr, int item)
{
    mdl_blocking b;
    const double l1 = caches.l1d > 0 ? (double)caches.l1d : 0.0, l2 = caches.l2 > 0 ? (double)caches.l2 : 0.0;
    const double l3 = caches.l3 > 0 ? (double)caches.l3 : 0.0;
    const int t = threads < 1 ? 1 : threads;
    b.kc = k_block(MDL_L1_SHARE * l1 / ((double)mr * item));
    b.mc = l2_rows(l2, b.kc, mr, item);
    b.nc = clamp_index(MDL_L3_SHARE * l3 / t / ((double)b.kc * item), nr, MDL_NC_MAX) / nr * nr;
    b.skinny_kc = k_block(MDL_L1_SHARE * l1 / ((double)(mr + nr) * item));
    b.skinny_mc = l2_rows(l2, b.skinny_kc, mr, item);
    const mdl_index skinny_tiles = MDL_SKINNY_ROWS / mr > 0 ? MDL_SKINNY_ROWS / mr : 1;
    b.skinny_m = (mdl_index)mr * skinny_tiles < b.skinny_mc ? (mdl_index)mr * skinny_tiles : b.skinny_mc;
    const double in_l1 = l1 / ((double)b.skinny_kc * item) - nr; /* rows of A beside a KC x NR strip */
    b.skinny_kc_m = clamp_index(in_l1, mr < b.skinny_m ? mr : b.skinny_m, b.skinny_m);
    return b;
}

mdl_blocking mdl_blocking_for(int threads, int mr, int nr, int item)
{
    return mdl_derive_blocking(mdl_cache_sizes_in_use(), threads, mr, nr, item);
}

/* Threads from the machine: a kernel gives a thread work only when the thread's share takes at least K times
 * what starting and joining the team costs, both measured at run time (dispatch.c: the fork-join cost of
 * this team, and one core's rate on this kind of work with the kernel build in use):
 *   min_per_thread[kind] = K[kind] * fork_join_s * rate[kind]   (elements; the GEMM: flops),
 * clamped to [1/MDL_THRESHOLD_RANGE, MDL_THRESHOLD_RANGE] x the kind's fallback. K was measured where two
 * threads start to beat one (the 2-core Xeon, avx512, both dtypes, 1- and 2-thread medians interleaved, five
 * runs): the elementwise kernels broke even at shares of 1.1-3.4 x fork-join x rate, so K = 4 (a margin:
 * near break-even a second thread gains nothing and risks a stall's back-off); the GEMM at 5-30x, mostly
 * 9-15x, because each of its threads packs its own panels of the shared operand and runs its own edge
 * tiles, work one thread does once, so K = 20 (about 1 MFLOP per thread there, the number tuned by hand).
 * The fallbacks are those hand-tuned numbers (2-core EPYC: sigmoid 32768 and axpby 65536 elements, GEMM
 * 1 MFLOP per thread); a kind gets its fallback when the fork-join cost or its rate is unknown (not positive
 * or not finite: no OpenMP, a fork()ed child, a machine too busy to measure). */
#define MDL_THRESHOLD_RANGE 16.0

static const double fork_join_factor[MDL_WORK_KINDS] = {
    [MDL_WORK_SIGMOID_FWD] = 4.0,
    [MDL_WORK_SIGMOID_BWD] = 4.0,
    [MDL_WORK_AXPBY] = 4.0,
    [MDL_WORK_GEMM] = 20.0,
};

static const double fallback_min_per_thread[MDL_WORK_KINDS] = {
    [MDL_WORK_SIGMOID_FWD] = 32768.0,
    [MDL_WORK_SIGMOID_BWD] = 32768.0,
    [MDL_WORK_AXPBY] = 65536.0,
    [MDL_WORK_GEMM] = 1048576.0,
};

static int positive_finite(double x) { return x > 0.0 && isfinite(x); } /* false for NaN too */

mdl_thread_thresholds mdl_derive_thresholds(double fork_join_s, mdl_work_rates rates)
{
    mdl_thread_thresholds t;
    for (int kind = 0; kind < MDL_WORK_KINDS; kind++) {
        const double fallback = fallback_min_per_thread[kind], rate = rates.per_s[kind];
        const double lo = fallback / MDL_THRESHOLD_RANGE, hi = fallback * MDL_THRESHOLD_RANGE;
        if (!positive_finite(fork_join_s) || !positive_finite(rate)) {
            t.min_per_thread[kind] = fallback;
            continue;
        }
        const double want = fork_join_factor[kind] * fork_join_s * rate;
        t.min_per_thread[kind] = want < lo ? lo : want > hi ? hi : want;
    }
    return t;
}

mdl_thread_thresholds mdl_thresholds_for(int team, int item)
{
    /* The rates first: timed before this call starts a team, whose spinning workers could slow them. */
    const mdl_work_rates rates = mdl_work_rates_measured(item);
    return mdl_derive_thresholds(mdl_fork_join_seconds(team), rates);
}
