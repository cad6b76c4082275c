/* The caching allocator for NumPy array data (memory_pool.c). */
#ifndef MDL_MEMORY_POOL_H
#define MDL_MEMORY_POOL_H

#include <stddef.h>
#include <Python.h>
#include <numpy/ndarraytypes.h>

typedef struct {
    size_t hits, misses, evictions, cached_bytes;
} mdl_pool_stats;

PyDataMem_Handler *mdl_pool_handler(void); /* NumPy's handler struct: wrap it in a "mem_handler" capsule */
mdl_pool_stats mdl_pool_get_stats(void);
void mdl_pool_trim(size_t keep_bytes);     /* free the oldest kept blocks until at most keep_bytes stay */
void mdl_pool_set_cap(size_t bytes);       /* the most bytes kept; trims to it */
size_t mdl_pool_cap(void);
void mdl_pool_use_huge_pages(int allowed); /* reads the THP mode and size (sysfs); 0: none */
size_t mdl_pool_huge_page_bytes(void);     /* the huge page blocks are aligned to; 0: none */

#endif
