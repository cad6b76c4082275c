/* Cache blocking from the machine: the cache sizes read at run time, and the GEMM block sizes derived from
 * them by the BLIS rules (Low, Igual, Smith & Quintana-Orti 2016, "Analytical modeling is enough for
 * high-performance BLIS"), for any micro-tile MR x NR and element size:
 *   KC: one KC x NR panel of B (reused by every micro-tile of the block) and one MR x KC panel of A
 *       (streamed) fill at most MDL_L1_SHARE of L1d;
 *   MC: the packed MC x KC block of A fills at most MDL_L2_SHARE of L2 (per core);
 *   NC: the packed KC x NC block of B fills at most MDL_L3_SHARE of L3 divided among the threads (each
 *       thread packs its own block);
 *   skinny_m: products of at most this many rows skip packing the B block (gemm_template.h): each B panel
 *       then serves at most MDL_SKINNY_TILES micro-tiles, too few to repay a packing pass (on the 2-core
 *       EPYC the crossover was 64 rows of 6-row tiles), and the m x KC block of A stays within the L2 share.
 * Every size is clamped, so the packing buffers stay bounded for any reported cache size (0, 1 byte, 1 TB):
 *   KC in [MDL_KC_MIN, MDL_KC_MAX] (a multiple of 8), MC in [MR, MDL_MC_MAX] and NC in [NR, MDL_NC_MAX]
 *   (multiples of MR and NR). A buffer <= MC x KC and B buffer <= KC x NC elements per thread, reused.
 * Unknown sizes (sysconf gives 0 or -1, or no sysconf) fall back to the 2-core EPYC's 32 KiB / 512 KiB /
 * 32 MiB, for which the rules give what was tuned there by hand. */
#include <unistd.h>
#include "kernels.h"

#define MDL_L1_DEFAULT (32L << 10)
#define MDL_L2_DEFAULT (512L << 10)
#define MDL_L3_DEFAULT (32L << 20)
#define MDL_L1_SHARE 0.75
#define MDL_L2_SHARE 0.5
#define MDL_L3_SHARE 0.5
#define MDL_SKINNY_TILES 11
#define MDL_KC_MIN 16
#define MDL_KC_MAX 1024
#define MDL_MC_MAX 2048
#define MDL_NC_MAX 4096

static mdl_cache_sizes detected = {0, 0, 0};
static mdl_cache_sizes override = {0, 0, 0};

static long sysconf_or(int name, long fallback)
{
    const long value = sysconf(name);
    return value > 0 ? value : fallback;
}

void mdl_detect_cache_sizes(void)
{
#if defined(_SC_LEVEL1_DCACHE_SIZE) && defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    detected.l1d = sysconf_or(_SC_LEVEL1_DCACHE_SIZE, MDL_L1_DEFAULT);
    detected.l2 = sysconf_or(_SC_LEVEL2_CACHE_SIZE, MDL_L2_DEFAULT);
    detected.l3 = sysconf_or(_SC_LEVEL3_CACHE_SIZE, MDL_L3_DEFAULT);
#else
    detected.l1d = MDL_L1_DEFAULT;
    detected.l2 = MDL_L2_DEFAULT;
    detected.l3 = MDL_L3_DEFAULT;
#endif
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

mdl_blocking mdl_derive_blocking(mdl_cache_sizes caches, int threads, int mr, int nr, int item)
{
    mdl_blocking b;
    const double l1 = caches.l1d > 0 ? (double)caches.l1d : 0.0, l2 = caches.l2 > 0 ? (double)caches.l2 : 0.0;
    const double l3 = caches.l3 > 0 ? (double)caches.l3 : 0.0;
    const int t = threads < 1 ? 1 : threads;
    b.kc = clamp_index(MDL_L1_SHARE * l1 / ((double)(mr + nr) * item), MDL_KC_MIN, MDL_KC_MAX) / 8 * 8;
    b.mc = clamp_index(MDL_L2_SHARE * l2 / ((double)b.kc * item), mr, MDL_MC_MAX) / mr * mr;
    b.nc = clamp_index(MDL_L3_SHARE * l3 / t / ((double)b.kc * item), nr, MDL_NC_MAX) / nr * nr;
    b.skinny_m = (mdl_index)mr * MDL_SKINNY_TILES < b.mc ? (mdl_index)mr * MDL_SKINNY_TILES : b.mc;
    return b;
}

mdl_blocking mdl_blocking_for(int threads, int mr, int nr, int item)
{
    return mdl_derive_blocking(mdl_cache_sizes_in_use(), threads, mr, nr, item);
}
