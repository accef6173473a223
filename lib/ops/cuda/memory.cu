/* Backend memory of the CUDA backend: device memory from the stream-ordered allocator, moved on
 * the module's one stream (see ops.h, "Memory"). upload copies from pageable host memory, which
 * the driver stages before cudaMemcpyAsync returns, so the caller may reuse its buffer at once;
 * download waits for the stream. */
#include "ops/cuda/cuda.h"

void *cap_cuda_alloc(size_t bytes)
{
	void *p = NULL;
	cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, cap_cuda.stream);
	if (e == cudaSuccess)
		e = cudaMemsetAsync(p, 0, bytes ? bytes : 1, cap_cuda.stream);
	if (e != cudaSuccess) {
		cudaGetLastError();   /* out of memory is not sticky: clear it for the caller's next try */
		cap_fail("CUDA: cannot allocate %zu bytes of device memory: %s", bytes, cudaGetErrorString(e));
		if (p)
			cudaFreeAsync(p, cap_cuda.stream);
		return NULL;
	}
	return p;
}

void cap_cuda_free(void *p)
{
	if (p)
		CUDA_CHECK("free", cudaFreeAsync(p, cap_cuda.stream));
}

void cap_cuda_upload(void *dst, const void *src, size_t bytes)
{
	if (bytes)
		CUDA_CHECK("upload", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cap_cuda.stream));
	if (cap_cuda.sync_each)
		cap_cuda_sync();
}

void cap_cuda_download(void *dst, const void *src, size_t bytes)
{
	if (bytes)
		CUDA_CHECK("download", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cap_cuda.stream));
	CUDA_CHECK("download (waiting for the queued ops)", cudaStreamSynchronize(cap_cuda.stream));
}

void cap_cuda_copy(void *dst, const void *src, size_t bytes)
{
	if (bytes && dst != src)
		CUDA_CHECK("copy", cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cap_cuda.stream));
	if (cap_cuda.sync_each)
		cap_cuda_sync();
}

void cap_cuda_zero(void *dst, size_t bytes)
{
	if (bytes)
		CUDA_CHECK("zero", cudaMemsetAsync(dst, 0, bytes, cap_cuda.stream));
	if (cap_cuda.sync_each)
		cap_cuda_sync();
}

void cap_cuda_sync(void)
{
	CUDA_CHECK("sync (waiting for the queued ops)", cudaStreamSynchronize(cap_cuda.stream));
}

/* Nothing derived from an operand is kept (the products round their operands inside cuBLAS). */
void cap_cuda_freeze(const float *x, size_t n)
{
	(void)x;
	(void)n;
}

void cap_cuda_thaw(const float *x)
{
	(void)x;
}

/* The host side runs no threads of its own. */
int cap_cuda_set_threads(int n)
{
	(void)n;
	return 0;
}
