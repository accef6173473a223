/* Backend memory of the host backends: plain heap memory (see ops.h, "Memory"). */
#include "ops/host.h"
#include "core/bigmem.h"
#include "core/error.h"
#include <stdlib.h>
#include <string.h>

/* Buffers of 1 MB and more (the state and logits of a generation batch, a training batch's
 * activations) go on transparent huge pages (core/bigmem.h): faulting in 4 KB pages on first
 * touch made a greedy run of 1,000 captions at batch 1,000 slower on these virtual machines:
 * with huge pages its loop took 0.29-0.30 s against 0.32-0.34, the whole process 0.38-0.41 s
 * against 0.39-0.43 (4 interleaved pairs; training steps unchanged). */
void *cap_host_alloc(size_t bytes)
{
	void *p = cap_big_alloc(bytes);
	if (!p)
		cap_fail("out of memory (%zu bytes)", bytes);
	return p;
}

void cap_host_free(void *p) { free(p); }

/* upload, download and copy are all one memmove on the host (dst may equal src: a mirror
 * downloaded onto its own data). */
void cap_host_copy(void *dst, const void *src, size_t bytes)
{
	if (bytes && dst != src)
		memmove(dst, src, bytes);
}

void cap_host_zero(void *dst, size_t bytes)
{
	if (bytes)
		memset(dst, 0, bytes);
}

void cap_host_sync(void) {}
void cap_host_freeze(const float *x, size_t n) { (void)x; (void)n; }
void cap_host_thaw(const float *x) { (void)x; }

int cap_ref_set_threads(int n) { (void)n; return 0; }

static cap_precision host_precision = CAP_PRECISION_FP32;

int cap_ref_set_precision(cap_precision p)
{
	if (p == CAP_PRECISION_TF32)
		return cap_fail("the tf32 precision needs --device cuda (TF32 is a GPU tensor-core format)");
	host_precision = p;
	return 0;
}

cap_precision cap_host_precision(void) { return host_precision; }
