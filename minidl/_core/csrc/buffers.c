/* Per-thread packing buffers, shared by every kernel build and dtype (a thread runs one GEMM at a time).
 * A buffer grows to the largest request it has seen, which the cache blocking bounds (blocking.c), and is
 * reused by every later call: no malloc and no page faults once a thread's buffers have their size. When
 * the thread exits (OpenMP's runtime ends surplus workers when a team shrinks; Python threads end), a
 * pthread key's destructor frees them, so memory follows the threads alive, never the threads ever made. */
#include <stdlib.h>
#ifndef _WIN32
#include <pthread.h>
#endif
#include "kernels.h"

#define MDL_BUFFER_SLOTS 4

typedef struct {
    void *ptr[MDL_BUFFER_SLOTS];
    size_t bytes[MDL_BUFFER_SLOTS];
} thread_buffers;

static __thread thread_buffers buffers;
static volatile long buffers_alive = 0; /* threads holding buffers now (tests) */
static volatile long buffers_made = 0;  /* threads that ever held buffers (tests) */

#ifndef _WIN32
static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void free_at_exit(void *arg)
{
    thread_buffers *b = (thread_buffers *)arg;
    for (int i = 0; i < MDL_BUFFER_SLOTS; i++) {
        free(b->ptr[i]);
        b->ptr[i] = NULL;
        b->bytes[i] = 0;
    }
    __atomic_sub_fetch(&buffers_alive, 1, __ATOMIC_RELAXED);
}

static void make_exit_key(void) { pthread_key_create(&exit_key, free_at_exit); }
#endif

void *mdl_thread_buffer(int slot, size_t bytes)
{
    thread_buffers *b = &buffers;
    if (b->bytes[slot] >= bytes && b->ptr[slot] != NULL) return b->ptr[slot];
    const size_t rounded = (bytes + 63) / 64 * 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, rounded ? rounded : 64) != 0) return NULL;
    int first = 1;
    for (int i = 0; i < MDL_BUFFER_SLOTS; i++) first = first && b->ptr[i] == NULL;
    free(b->ptr[slot]);
    b->ptr[slot] = p;
    b->bytes[slot] = rounded;
    if (first) {
        __atomic_add_fetch(&buffers_alive, 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&buffers_made, 1, __ATOMIC_RELAXED);
#ifndef _WIN32
        pthread_once(&exit_key_once, make_exit_key);
        pthread_setspecific(exit_key, b);
#endif
    }
    return p;
}

long mdl_threads_with_buffers(int ever) { return ever ? buffers_made : buffers_alive; }
