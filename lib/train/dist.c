/* Data parallelism (see dist.h): the single-process table, the launcher's environment, and the
 * loader of the MPI and NCCL modules. */
#include "train/dist.h"
#include "core/error.h"
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void single_sum_floats(const cap_dist *d, float *x, size_t n) { (void)d; (void)x; (void)n; }
static void single_sum_doubles(const cap_dist *d, double *x, size_t n) { (void)d; (void)x; (void)n; }
static void single_broadcast(const cap_dist *d, void *buf, size_t bytes, int root)
{
	(void)d; (void)buf; (void)bytes; (void)root;
}
static void single_abort(const cap_dist *d) { (void)d; exit(1); }
static void single_finish(const cap_dist *d) { (void)d; }

static const cap_dist single = {
	.abi = CAP_DIST_ABI, .name = "single", .rank = 0, .size = 1, .device_memory = 0,
	.sum_floats = single_sum_floats, .sum_doubles = single_sum_doubles,
	.broadcast = single_broadcast, .abort = single_abort, .finish = single_finish,
};

const cap_dist *cap_dist_single(void) { return &single; }

/* A decimal variable of the environment: 1 and *v when set, 0 when unset, -1 when malformed. */
static int env_int(const char *name, long *v)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return 0;
	char *end;
	errno = 0;
	long x = strtol(s, &end, 10);
	if (errno || *end || x < 0 || x > 1000000)
		return cap_fail("%s='%s' is not a rank count or rank", name, s);
	*v = x;
	return 1;
}

int cap_dist_launcher(int *size, int *rank)
{
	static const char *const vars[][2] = {
		{ "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK" },   /* Open MPI's mpirun */
		{ "PMI_SIZE", "PMI_RANK" },                           /* MPICH, Intel MPI, srun --mpi=pmi2 */
		{ "SLURM_STEP_NUM_TASKS", "SLURM_PROCID" },           /* srun */
	};
	*size = 1;
	*rank = 0;
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		long n = 0, r = 0;
		int hs = env_int(vars[i][0], &n), hr = env_int(vars[i][1], &r);
		if (hs < 0 || hr < 0)
			return -1;
		if (!hs)
			continue;
		if (n < 1 || r >= n)
			return cap_fail("%s=%ld and %s=%ld do not make a rank of a job", vars[i][0], n, vars[i][1], r);
		*size = (int)n;
		*rank = (int)r;
		return 0;
	}
	return 0;
}

/* DIR/lib/cap/NAME beside DIR/bin/cap-x (the build tree and an installed PREFIX alike), or the
 * file the environment variable names. */
static void module_path(const char *env, const char *name, char *out, size_t n)
{
	const char *e = getenv(env);
	if (e && *e) {
		snprintf(out, n, "%s", e);
		return;
	}
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	char *slash;
	if (len > 0) {
		exe[len] = 0;
		if ((slash = strrchr(exe, '/'))) {
			*slash = 0;   /* DIR/bin */
			if ((slash = strrchr(exe, '/')))
				*slash = 0;   /* DIR */
			snprintf(out, n, "%s/lib/cap/%s", exe, name);
			return;
		}
	}
	snprintf(out, n, "%s", name);
}

/* Loads a module and runs its entry point. RTLD_GLOBAL: MPI libraries load their own components
 * with dlopen, and those resolve MPI's symbols in the global namespace. */
static int load_module(const char *path, int size, const cap_dist *host, const cap_ops *ops,
                       const cap_dist **out)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	if (!h)
		return cap_fail("cannot load %s: %s", path, dlerror());
	cap_dist_module_init_fn init = (cap_dist_module_init_fn)dlsym(h, CAP_DIST_MODULE_INIT);
	if (!init) {
		dlclose(h);
		return cap_fail("%s is not a cap data-parallel module (no %s)", path, CAP_DIST_MODULE_INIT);
	}
	char err[512] = "";
	const cap_dist *d = NULL;
	if (init(CAP_DIST_ABI, size, host, ops, &d, err, sizeof err) < 0 || !d)
		return cap_fail("%s: %s", path, err[0] ? err : "the module failed to start");
	if (d->abi != CAP_DIST_ABI)
		return cap_fail("%s was built for ABI %d, this tool needs %d: rebuild it", path, d->abi, CAP_DIST_ABI);
	*out = d;   /* never unloaded: MPI lives as long as the process */
	return 0;
}

int cap_dist_open(const cap_dist **out)
{
	*out = &single;
	int size, rank;
	const char *e = getenv("CAP_MPI");
	if (e && !strcmp(e, "0"))   /* one process, whatever the environment says */
		return 0;
	if (cap_dist_launcher(&size, &rank) < 0)
		return -1;
	if (size == 1)
		return 0;
	char path[PATH_MAX + 32];
	module_path("CAP_MPI_MODULE", "libcap-mpi.so", path, sizeof path);
	if (access(path, F_OK) != 0)
		return cap_fail("started as rank %d of %d, but this build of cap has no MPI support (no %s): "
		                "build cap where mpicc is found (Debian: libopenmpi-dev), or run one process",
		                rank, size, path);
	return load_module(path, size, NULL, NULL, out);
}

const cap_dist *cap_dist_open_or_exit(void)
{
	const cap_dist *d;
	if (cap_dist_open(&d) < 0) {
		fprintf(stderr, "%s: %s\n", program_invocation_short_name, cap_errmsg());
		exit(1);
	}
	return d;
}

int cap_dist_pick_gpu(const cap_dist *d)
{
	const char *vis = getenv("CUDA_VISIBLE_DEVICES");
	if (d->size == 1 || (vis && *vis))
		return -1;
	static const char *const vars[][2] = {
		{ "OMPI_COMM_WORLD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK" },   /* Open MPI */
		{ "MPI_LOCALNRANKS", "MPI_LOCALRANKID" },                         /* MPICH */
		{ "SLURM_STEP_TASKS_PER_NODE", "SLURM_LOCALID" },                 /* srun */
	};
	for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
		long n = 0, r = 0;
		/* srun writes tasks per node as "2(x4)" or "2,1": the leading count is this node's
		 * when all nodes hold the same, and a local id is below it anyway. */
		const char *sz = getenv(vars[i][0]);
		if (!sz || !*sz || env_int(vars[i][1], &r) != 1)
			continue;
		n = strtol(sz, NULL, 10);
		if (n < 2 || r >= n)
			return -1;
		char v[24];
		snprintf(v, sizeof v, "%ld", r);
		setenv("CUDA_VISIBLE_DEVICES", v, 1);
		return (int)r;
	}
	return -1;
}

int cap_dist_use_device(const cap_dist **d, const cap_ops *ops)
{
	if ((*d)->size == 1 || ops->host_memory || (*d)->device_memory)
		return 0;
	const char *e = getenv("CAP_NCCL");
	if (e && !strcmp(e, "0"))
		return 0;
	char path[PATH_MAX + 32];
	module_path("CAP_NCCL_MODULE", "libcap-nccl.so", path, sizeof path);
	if (access(path, F_OK) != 0)
		return 0;   /* gradients go through host memory and MPI */
	return load_module(path, (*d)->size, *d, ops, d);
}

void cap_dist_die(const cap_dist *d, const char *msg)
{
	if (d->size > 1)
		fprintf(stderr, "%s: rank %d of %d: %s\n", program_invocation_short_name, d->rank, d->size, msg);
	else
		fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg);
	fflush(stderr);
	d->abort(d);
	exit(1);   /* not reached */
}

int cap_dist_agree(const cap_dist *d, int failed)
{
	if (d->size == 1)
		return failed ? -1 : 0;
	double n = failed != 0;
	d->sum_doubles(d, &n, 1);
	if (n == 0)
		return 0;
	/* Each failing rank says why (rank 0 alone when every rank failed, which is mostly the same
	 * failure), then rank 0 alone stops them all: one MPI_Abort, not one per rank. */
	if (n == d->size ? d->rank == 0 : failed) {
		if (n == d->size)
			fprintf(stderr, "%s: %s (on every rank)\n", program_invocation_short_name, cap_errmsg());
		else
			fprintf(stderr, "%s: rank %d of %d: %s\n", program_invocation_short_name, d->rank, d->size,
			        cap_errmsg());
		fflush(stderr);
	}
	double done = 0;
	d->sum_doubles(d, &done, 1);   /* everything said before anyone stops */
	if (d->rank == 0)
		d->abort(d);
	for (int i = 0; i < 600; i++)
		sleep(1);
	d->abort(d);
	exit(1);
}

void cap_dist_die_all(const cap_dist *d, const char *msg)
{
	if (d->rank == 0 || d->size == 1) {
		fprintf(stderr, "%s: %s\n", program_invocation_short_name, msg);
		fflush(stderr);
		d->abort(d);
		exit(1);
	}
	/* Rank 0 meets the same failure and stops this process; wait for it (bounded, in case it
	 * does not). */
	for (int i = 0; i < 600; i++)
		sleep(1);
	fprintf(stderr, "%s: rank %d of %d: %s\n", program_invocation_short_name, d->rank, d->size, msg);
	d->abort(d);
	exit(1);
}
