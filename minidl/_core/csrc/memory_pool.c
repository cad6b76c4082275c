/* A caching allocator for NumPy array data (NumPy's configurable memory routines, NEP 49), the way
 * PyTorch's allocators keep freed blocks for the next step instead of handing them back to the OS.
 *
 * A training step allocates and frees the same multi-megabyte arrays every iteration (activations,
 * gradients, the factors of a pending weight gradient). With glibc's defaults those come from mmap or
 * from the top of the heap, which free() gives back, so the next step pays a page fault for every 4 KiB
 * it writes again. Here a freed block of at least MDL_POOL_MIN_BYTES is kept, up to a cap on the bytes
 * kept (oldest dropped first), and the next request that it fits without wasting more than a quarter of
 * it gets it back. Blocks are 64-byte aligned (a cache line, one AVX-512 vector). Only arrays allocated
 * while the handler is active (minidl._core.memory_pool(): the autograd engine, module calls, a pending
 * weight gradient's materialization) use it; NumPy frees every array with the handler that allocated it.
 *
 * Each block starts with a header holding its capacity (realloc and free need it). A mutex guards the
 * cache (NumPy may free from any thread); a fork()ed child re-creates it.
 *
 * Blocks of at least one transparent huge page (Linux THP in "always" or "madvise" mode: 2 MiB on x86-64,
 * read from sysfs at import) start on a huge-page boundary, are padded to whole huge pages when that adds
 * at most a quarter, and are advised MADV_HUGEPAGE over their whole huge pages. A GEMM walks a weight's
 * column strips, one row (4 KB apart) after another: with 4 KiB pages each row is a page of its own and the
 * TLB misses; with 2 MiB pages it does not. NumPy itself advises only blocks of 4 MiB or more, so a
 * 1000 x 1000 float32 weight (4.0 MB) did not get them. Measured on the 2-core Xeon (2 threads): the
 * kernels over five 1000 x 1000 weights at 10 and 64 rows 2-8% faster (medians of 200 interleaved calls);
 * the 784-1000x5-10 sigmoid step with huge-page weights against a twin with NumPy's, alternating blocks in
 * one process, two runs: batch 10 2-3% faster, batch 64 -1 to +1%, batch 256 undecided (per-block ratios
 * 0.5-1.8 on this VM). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#ifdef __linux__
#include <sys/mman.h>
#endif
#include "memory_pool.h"

#define MDL_POOL_HEADER 64                  /* keeps the data 64-byte aligned */
#define MDL_POOL_MIN_BYTES (64L << 10)      /* smaller blocks: glibc's own bins serve them well */
#define MDL_POOL_SLOTS 256
#define MDL_POOL_DEFAULT_CAP (256L << 20)

typedef struct {
    void *base;
    size_t capacity;
} cached_block;

static cached_block cache[MDL_POOL_SLOTS];  /* oldest first */
static int cached_count = 0;
static size_t cached_bytes = 0;
static size_t cap_bytes = MDL_POOL_DEFAULT_CAP;
static mdl_pool_stats stats = {0, 0, 0, 0};
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void reinit_in_child(void) { pthread_mutex_init(&lock, NULL); }
static void register_atfork(void) { pthread_atfork(NULL, NULL, reinit_in_child); }

static size_t *header_of(void *data) { return (size_t *)((char *)data - MDL_POOL_HEADER); }

static size_t huge_page_bytes = 0; /* 0: blocks get no huge pages */

void mdl_pool_use_huge_pages(int allowed)
{
    huge_page_bytes = 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (!allowed) return;
    char mode[256] = {0};
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f == NULL) return;
    const size_t n = fread(mode, 1, sizeof mode - 1, f);
    fclose(f);
    mode[n] = '\0';
    if (strstr(mode, "[always]") == NULL && strstr(mode, "[madvise]") == NULL) return;
    long bytes = 0;
    f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
    if (f == NULL) return;
    if (fscanf(f, "%ld", &bytes) != 1) bytes = 0;
    fclose(f);
    if (bytes >= 8192 && bytes <= (1L << 30) && (bytes & (bytes - 1)) == 0) huge_page_bytes = (size_t)bytes;
#else
    (void)allowed;
#endif
}

size_t mdl_pool_huge_page_bytes(void) { return huge_page_bytes; }

/* A new block of `capacity` data bytes (or more: huge-page padding); NULL when out of memory. */
static void *fresh_block(size_t capacity)
{
    const size_t huge = huge_page_bytes;
    if (capacity > SIZE_MAX - MDL_POOL_HEADER - huge) return NULL;
    size_t total = MDL_POOL_HEADER + capacity, align = 64;
    if (huge != 0 && total >= huge) {
        const size_t padded = (total + huge - 1) / huge * huge;
        if (padded - total <= total / 4) total = padded;
        align = huge;
    }
    void *base = NULL;
    if (posix_memalign(&base, align, total) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == huge && huge != 0) (void)madvise(base, total / huge * huge, MADV_HUGEPAGE); /* advice only */
#endif
    *(size_t *)base = total - MDL_POOL_HEADER;
    return (char *)base + MDL_POOL_HEADER;
}

/* Drop cache[i] from the cache (not freed). Call with the lock held. */
static void remove_slot(int i)
{
    cached_bytes -= cache[i].capacity;
    memmove(cache + i, cache + i + 1, (size_t)(cached_count - i - 1) * sizeof(cached_block));
    cached_count--;
}

static void *pool_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size < (size_t)MDL_POOL_MIN_BYTES) return fresh_block(size ? size : 1);
    if (size > SIZE_MAX - 4096 - MDL_POOL_HEADER) return NULL; /* no rounding past SIZE_MAX */
    const size_t wanted = (size + 4095) / 4096 * 4096;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&lock);
    int best = -1;
    for (int i = cached_count - 1; i >= 0; i--) /* newest first: likelier still in cache */
        if (cache[i].capacity >= wanted && cache[i].capacity - wanted <= cache[i].capacity / 4 &&
            (best < 0 || cache[i].capacity < cache[best].capacity))
            best = i;
    void *data = NULL;
    if (best >= 0) {
        data = (char *)cache[best].base + MDL_POOL_HEADER;
        remove_slot(best);
        stats.hits++;
    } else {
        stats.misses++;
    }
    pthread_mutex_unlock(&lock);
    return data != NULL ? data : fresh_block(wanted);
}

static void pool_free(void *ctx, void *data, size_t size)
{
    (void)ctx;
    (void)size; /* the header knows the capacity, which may exceed the size asked for */
    if (data == NULL) return;
    void *base = header_of(data);
    const size_t capacity = *(size_t *)base;
    if (capacity < (size_t)MDL_POOL_MIN_BYTES) {
        free(base);
        return;
    }
    void *dropped[MDL_POOL_SLOTS + 1];
    int n_dropped = 0;
    pthread_once(&atfork_once, register_atfork);
    pthread_mutex_lock(&lock);
    if (capacity > cap_bytes) {
        dropped[n_dropped++] = base;
    } else {
        while (cached_count > 0 && (cached_count == MDL_POOL_SLOTS || cached_bytes + capacity > cap_bytes)) {
            dropped[n_dropped++] = cache[0].base;
            remove_slot(0);
            stats.evictions++;
        }
        cache[cached_count].base = base;
        cache[cached_count].capacity = capacity;
        cached_count++;
        cached_bytes += capacity;
    }
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < n_dropped; i++) free(dropped[i]); /* outside the lock */
}

static void *pool_calloc(void *ctx, size_t count, size_t item)
{
    if (item != 0 && count > SIZE_MAX / item) return NULL;
    void *data = pool_malloc(ctx, count * item);
    if (data != NULL) memset(data, 0, count * item);
    return data;
}

static void *pool_realloc(void *ctx, void *data, size_t size)
{
    if (data == NULL) return pool_malloc(ctx, size);
    const size_t capacity = *header_of(data);
    if (size <= capacity && (capacity < (size_t)MDL_POOL_MIN_BYTES || size >= capacity / 2)) return data;
    void *moved = pool_malloc(ctx, size);
    if (moved == NULL) return NULL; /* realloc's rule: the old block stays valid */
    memcpy(moved, data, size < capacity ? size : capacity);
    pool_free(ctx, data, capacity);
    return moved;
}

static PyDataMem_Handler handler = {
    "minidl_memory_pool",
    1,
    {NULL, pool_malloc, pool_calloc, pool_realloc, pool_free},
};

PyDataMem_Handler *mdl_pool_handler(void) { return &handler; }

mdl_pool_stats mdl_pool_get_stats(void)
{
    pthread_mutex_lock(&lock);
    mdl_pool_stats s = stats;
    s.cached_bytes = cached_bytes;
    pthread_mutex_unlock(&lock);
    return s;
}

void mdl_pool_trim(size_t keep_bytes)
{
    for (;;) {
        void *base = NULL;
        pthread_mutex_lock(&lock);
        if (cached_count > 0 && cached_bytes > keep_bytes) {
            base = cache[0].base;
            remove_slot(0);
        }
        pthread_mutex_unlock(&lock);
        if (base == NULL) return;
        free(base);
    }
}

void mdl_pool_set_cap(size_t bytes)
{
    pthread_mutex_lock(&lock);
    cap_bytes = bytes;
    pthread_mutex_unlock(&lock);
    mdl_pool_trim(bytes); /* what no longer fits under the cap goes now */
}

size_t mdl_pool_cap(void) { return cap_bytes; }
