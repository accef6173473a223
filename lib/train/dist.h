/* Data parallelism for cap-train: the few collective operations a training run needs, behind one
 * small table, so that the trainer never names MPI or NCCL. Implementations:
 *   single  one process: every operation is the identity (always built; the default);
 *   mpi     MPI, in a module (libcap-mpi.so, built where mpicc is found) loaded only when a
 *           launcher started the process as one of several ranks;
 *   nccl    NCCL for --device cuda, in a module (libcap-nccl.so, built where nccl.h is found):
 *           sums the gradient in device memory; the rest goes through the mpi table it wraps.
 * cap grows no networking of its own: the engines are those the cluster already has.
 *
 * Launchers are recognised by what they put in the environment: OMPI_COMM_WORLD_SIZE and
 * OMPI_COMM_WORLD_RANK (Open MPI's mpirun), PMI_SIZE and PMI_RANK (MPICH's and Intel MPI's
 * mpiexec, srun --mpi=pmi2), SLURM_STEP_NUM_TASKS and SLURM_PROCID (srun). Without them, or
 * with one rank, the process is single and loads nothing: a tool started without mpirun pays
 * nothing for MPI (measured on Debian 12's Open MPI 4.1: a tool linked with libmpi starts 2 ms
 * slower, cannot start at all where libmpi is not installed, and MPI_Init without a launcher
 * takes 0.46 s). The modules are found beside the tools as the CUDA module is (DIR/bin/cap-x
 * loads DIR/lib/cap/libcap-mpi.so), or where CAP_MPI_MODULE and CAP_NCCL_MODULE point.
 *
 * Collectives are called by every rank in the same order. Results are identical on every rank
 * (sum_doubles reduces to rank 0 and broadcasts; sum_floats is MPI_Allreduce, whose algorithms
 * in Open MPI and MPICH compute each element once; the trainer compares the weights of all ranks
 * at every epoch's end to make sure).
 *
 * Failures: a rank that fails prints its message ("PROG: rank R of N: ...") and calls abort,
 * which stops every rank (MPI_Abort) with status 1; a rank that dies is noticed by the launcher,
 * which stops the others. */
#ifndef CAP_DIST_H
#define CAP_DIST_H
#include <stddef.h>
#include "ops/ops.h"

#define CAP_DIST_ABI 1   /* bumped when the table changes; a loaded module must match */

typedef struct cap_dist cap_dist;
struct cap_dist {
	int abi;                 /* CAP_DIST_ABI */
	const char *name;        /* "single", "mpi", "nccl" */
	int rank, size;          /* 0 <= rank < size */
	int device_memory;       /* 1: sum_floats takes the backend's device memory, 0: host memory */
	/* x (n floats) becomes, on every rank, the sum over the ranks of their x. */
	void (*sum_floats)(const cap_dist *d, float *x, size_t n);
	/* The same for n doubles of host memory. */
	void (*sum_doubles)(const cap_dist *d, double *x, size_t n);
	/* bytes of host memory from rank root to every rank. */
	void (*broadcast)(const cap_dist *d, void *buf, size_t bytes, int root);
	/* Stops every rank with status 1; never returns. The caller has printed why. */
	void (*abort)(const cap_dist *d);
	/* The orderly end of a run that succeeded on this rank (MPI_Finalize). */
	void (*finish)(const cap_dist *d);
	void *impl;
};

/* The single-process table. */
const cap_dist *cap_dist_single(void);
/* The number of ranks and this process's rank as the launcher's environment gives them
 * (1 and 0 when no launcher is recognised). -1 with cap_errmsg() when the variables are
 * malformed. */
int cap_dist_launcher(int *size, int *rank);
/* The table for this process: single, or mpi when a launcher started several ranks (MPI is
 * initialised here); single whatever the environment says when CAP_MPI is "0" (a cap-train
 * that a rank of another job runs as a plain process). -1 with cap_errmsg() when this build has no MPI module, the module cannot
 * be loaded, or MPI sees another number of ranks than the launcher announced. */
int cap_dist_open(const cap_dist **out);
/* cap_dist_open for a tool: on failure prints "PROG: message" and exits 1. */
const cap_dist *cap_dist_open_or_exit(void);
/* For --device cuda, before the backend starts: when several ranks share a node and
 * CUDA_VISIBLE_DEVICES is unset, makes the node's local rank k see GPU k alone (one GPU a rank,
 * as NCCL needs; srun --gpus-per-task sets CUDA_VISIBLE_DEVICES itself, which is then kept).
 * Returns the GPU chosen, or -1 when it leaves the environment as it is. */
int cap_dist_pick_gpu(const cap_dist *d);
/* For a backend whose memory is not the host's (cuda): replaces *d by the nccl table wrapping it
 * when there are several ranks, this build has the NCCL module and CAP_NCCL is not "0"; keeps *d
 * otherwise (the trainer then sums gradients through host memory). 0, or -1 with cap_errmsg()
 * when the module is there but NCCL cannot start. */
int cap_dist_use_device(const cap_dist **d, const cap_ops *ops);
/* Ends the process after a failure of this rank: prints "PROG: msg" ("PROG: rank R of N: msg"
 * with several ranks) on stderr and exits 1, stopping every rank. */
void cap_dist_die(const cap_dist *d, const char *msg) __attribute__((noreturn));
/* The same for a failure every rank meets at the same point with the same message (a NaN loss
 * of the reduced batch): rank 0 alone prints it and stops the others, which wait for that. */
void cap_dist_die_all(const cap_dist *d, const char *msg) __attribute__((noreturn));

/* After a phase that every rank runs without collectives (reading the streams): failed is this
 * rank's outcome, its message in cap_errmsg(). Returns 0 when no rank failed. Otherwise, with
 * several ranks, each failing rank prints its message (rank 0 alone, "... (on every rank)", when
 * all failed) and every rank stops with status 1; one process returns -1 (the message is the
 * caller's to print). */
int cap_dist_agree(const cap_dist *d, int failed);

/* The entry point a module exports (CAP_DIST_MODULE_INIT): for mpi, host is NULL and size the
 * launcher's count, checked against MPI's; for nccl, host is the mpi table the module wraps and
 * ops the backend whose memory it reduces. Fills *out, or returns -1 with a message in err. */
typedef int (*cap_dist_module_init_fn)(int abi, int size, const cap_dist *host, const cap_ops *ops,
                                       const cap_dist **out, char *err, size_t errlen);
#define CAP_DIST_MODULE_INIT "cap_dist_module_init"
#endif
