/* The NCCL implementation of the data-parallel table (lib/train/dist.h) for --device cuda: the
 * gradient is summed in device memory by ncclAllReduce, so that it never crosses the host; the
 * scalars, broadcasts and aborts go through the MPI table it wraps, which also carries NCCL's
 * unique id from rank 0 to the others. Built into libcap-nccl.so where nccl.h is found (plain C
 * against the CUDA runtime's and NCCL's headers), loaded by cap_dist_use_device.
 *
 * Each rank uses the CUDA device the backend chose (its current device; give every rank its own
 * GPU, e.g. srun --gpus-per-task=1 or CUDA_VISIBLE_DEVICES per local rank: NCCL refuses two
 * ranks on one GPU). The reduction runs on a stream of its own after the backend's queued work
 * has finished (ops->sync), and is waited for before the caller goes on: exact and simple, with
 * no overlap of communication and the backward pass. */
#include "train/dist.h"
#include <cuda_runtime.h>
#include <errno.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cap_dist nccl;
static const cap_dist *host;
static const cap_ops *dev_ops;
static ncclComm_t comm;
static cudaStream_t stream;

static void fail(const char *call, const char *msg)
{
	fprintf(stderr, "%s: rank %d of %d: %s: %s\n", program_invocation_short_name, nccl.rank, nccl.size,
	        call, msg);
	fflush(stderr);
	host->abort(host);
	exit(1);
}

static void sum_floats(const cap_dist *d, float *x, size_t n)
{
	(void)d;
	dev_ops->sync();   /* the gradient is complete once the backend's queue is done */
	ncclResult_t r = ncclAllReduce(x, x, n, ncclFloat, ncclSum, comm, stream);
	if (r != ncclSuccess)
		fail("ncclAllReduce of the gradient", ncclGetErrorString(r));
	cudaError_t e = cudaStreamSynchronize(stream);
	if (e != cudaSuccess)
		fail("ncclAllReduce of the gradient (waiting for it)", cudaGetErrorString(e));
}

static void sum_doubles(const cap_dist *d, double *x, size_t n) { (void)d; host->sum_doubles(host, x, n); }
static void broadcast(const cap_dist *d, void *buf, size_t bytes, int root)
{
	(void)d;
	host->broadcast(host, buf, bytes, root);
}
static void abort_all(const cap_dist *d) { (void)d; host->abort(host); }
static void finish(const cap_dist *d)
{
	(void)d;
	ncclCommDestroy(comm);
	cudaStreamDestroy(stream);
	host->finish(host);
}

__attribute__((visibility("default")))
int cap_dist_module_init(int abi, int size, const cap_dist *h, const cap_ops *ops,
                         const cap_dist **out, char *err, size_t errlen)
{
	if (abi != CAP_DIST_ABI) {
		snprintf(err, errlen, "built for ABI %d, the tool has %d: rebuild cap", CAP_DIST_ABI, abi);
		return -1;
	}
	if (!h || !ops || h->size != size || size < 2) {
		snprintf(err, errlen, "NCCL needs the MPI table of a job of several ranks and a backend");
		return -1;
	}
	host = h;
	dev_ops = ops;
	/* Every rank takes part in the broadcast of the id before any can fail alone. */
	ncclUniqueId id;
	memset(&id, 0, sizeof id);
	ncclResult_t r = ncclSuccess;
	if (h->rank == 0)
		r = ncclGetUniqueId(&id);
	double bad = r != ncclSuccess;
	h->sum_doubles(h, &bad, 1);
	if (bad) {
		snprintf(err, errlen, "ncclGetUniqueId on rank 0: %s", ncclGetErrorString(r));
		return -1;
	}
	h->broadcast(h, &id, sizeof id, 0);
	cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking);
	if (e != cudaSuccess) {
		snprintf(err, errlen, "cudaStreamCreate: %s", cudaGetErrorString(e));
		return -1;
	}
	if ((r = ncclCommInitRank(&comm, size, id, h->rank)) != ncclSuccess) {
		snprintf(err, errlen, "ncclCommInitRank (rank %d of %d): %s", h->rank, size, ncclGetErrorString(r));
		return -1;
	}
	nccl = *h;
	nccl.name = "nccl";
	nccl.device_memory = 1;
	nccl.sum_floats = sum_floats;
	nccl.sum_doubles = sum_doubles;
	nccl.broadcast = broadcast;
	nccl.abort = abort_all;
	nccl.finish = finish;
	nccl.impl = NULL;
	*out = &nccl;
	return 0;
}
