/* The MPI implementation of the data-parallel table (lib/train/dist.h), built into its own module,
 * libcap-mpi.so, with mpicc where it is found, and loaded by cap_dist_open only when a launcher
 * started the process as one of several ranks: the tools themselves never link MPI.
 *
 * Every call checks MPI's return code (MPI_ERRORS_RETURN on the world communicator) and, on an
 * error, prints the call and MPI's message with the rank on stderr and aborts every rank. */
#include "train/dist.h"
#include <errno.h>
#include <limits.h>
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cap_dist mpi;

static void die(const char *call, int rc)
{
	char msg[MPI_MAX_ERROR_STRING] = "";
	int len = 0;
	MPI_Error_string(rc, msg, &len);
	fprintf(stderr, "%s: rank %d of %d: %s: %s\n", program_invocation_short_name, mpi.rank, mpi.size,
	        call, msg);
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 1);
	exit(1);
}

#define MPI_CHECK(call, expr) do { int rc_ = (expr); if (rc_ != MPI_SUCCESS) die(call, rc_); } while (0)

/* MPI counts are ints: long blocks go in pieces of at most 2^30 elements. */
#define PIECE ((size_t)1 << 30)

static void sum_floats(const cap_dist *d, float *x, size_t n)
{
	(void)d;
	for (size_t i = 0; i < n; i += PIECE) {
		int c = (int)(n - i < PIECE ? n - i : PIECE);
		MPI_CHECK("MPI_Allreduce of the gradient",
		          MPI_Allreduce(MPI_IN_PLACE, x + i, c, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
	}
}

/* Reduced on rank 0 and broadcast: the same bits everywhere whatever the reduction's order. */
static void sum_doubles(const cap_dist *d, double *x, size_t n)
{
	for (size_t i = 0; i < n; i += PIECE) {
		int c = (int)(n - i < PIECE ? n - i : PIECE);
		MPI_CHECK("MPI_Reduce", MPI_Reduce(d->rank == 0 ? MPI_IN_PLACE : x + i, x + i, c, MPI_DOUBLE,
		                                   MPI_SUM, 0, MPI_COMM_WORLD));
		MPI_CHECK("MPI_Bcast", MPI_Bcast(x + i, c, MPI_DOUBLE, 0, MPI_COMM_WORLD));
	}
}

static void broadcast(const cap_dist *d, void *buf, size_t bytes, int root)
{
	(void)d;
	for (size_t i = 0; i < bytes; i += PIECE) {
		int c = (int)(bytes - i < PIECE ? bytes - i : PIECE);
		MPI_CHECK("MPI_Bcast", MPI_Bcast((char *)buf + i, c, MPI_BYTE, root, MPI_COMM_WORLD));
	}
}

static void abort_all(const cap_dist *d)
{
	(void)d;
	fflush(stderr);
	MPI_Abort(MPI_COMM_WORLD, 1);
	exit(1);
}

static void finish(const cap_dist *d)
{
	(void)d;
	MPI_Finalize();
}

__attribute__((visibility("default")))
int cap_dist_module_init(int abi, int size, const cap_dist *host, const cap_ops *ops,
                         const cap_dist **out, char *err, size_t errlen)
{
	(void)host; (void)ops;
	if (abi != CAP_DIST_ABI) {
		snprintf(err, errlen, "built for ABI %d, the tool has %d: rebuild cap", CAP_DIST_ABI, abi);
		return -1;
	}
	int inited = 0;
	MPI_Initialized(&inited);
	if (!inited && MPI_Init(NULL, NULL) != MPI_SUCCESS) {
		snprintf(err, errlen, "MPI_Init failed");
		return -1;
	}
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	int n, r;
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	MPI_Comm_rank(MPI_COMM_WORLD, &r);
	if (n != size) {
		char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
		int len = 0;
		MPI_Get_library_version(v, &len);
		char *nl = strchr(v, '\n');
		if (nl)
			*nl = 0;
		snprintf(err, errlen, "the launcher started %d ranks but MPI (%s) sees %d: was cap built with "
		         "the MPI of this mpirun?", size, v, n);
		MPI_Finalize();
		return -1;
	}
	mpi.abi = CAP_DIST_ABI;
	mpi.name = "mpi";
	mpi.rank = r;
	mpi.size = n;
	mpi.device_memory = 0;
	mpi.sum_floats = sum_floats;
	mpi.sum_doubles = sum_doubles;
	mpi.broadcast = broadcast;
	mpi.abort = abort_all;
	mpi.finish = finish;
	*out = &mpi;
	return 0;
}
