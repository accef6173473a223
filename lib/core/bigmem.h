/* Large host arrays on transparent huge pages: the feature table, the model's parameters, the
 * backends' buffers and weight copies. On the virtual machines we measure on, a TLB miss whose
 * page walk has itself fallen out of the caches (after a pass over a few dozen MB, an Adam
 * step, a big GEMM) costs microseconds: gathering 64 random 8 KB feature rows from a 49 MB
 * table on 4 KB pages took 0.7-0.9 ms after such a pass, 0.06 ms on 2 MB pages. */
#ifndef CAP_BIGMEM_H
#define CAP_BIGMEM_H
#include <stddef.h>

/* bytes of zeroed memory; from 1 MB on, whole 2 MB pages (rounded up), aligned and marked for
 * huge pages (madvise; a no-op where they are off). NULL when it cannot be had. Freed with
 * free(). The 1 MB bound: a training step's activations of 0.8-1.7 MB on huge pages made the
 * step 2-3% faster (3 interleaved pairs of 100 steps; peak RSS 245 -> 290 MB), and greedy
 * generation 3% faster at batch 64. */
void *cap_big_alloc(size_t bytes);
/* the same, aborting with a message when out of memory (as cap_xmalloc) */
void *cap_big_xalloc(size_t bytes);
/* p (holding old bytes, from cap_big_alloc or NULL) grown to bytes, the contents kept; aborts
 * when out of memory. A growth by doubling copies each byte about once. */
void *cap_big_xgrow(void *p, size_t old, size_t bytes);
#endif
