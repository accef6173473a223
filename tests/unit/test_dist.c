/* lib/train/dist.h without a launcher: the launcher's environment (Open MPI, MPICH, srun;
 * malformed values refused), the single table (identity, agree), the GPU a rank picks. */
#include "check.h"
#include "core/error.h"
#include "train/dist.h"
#include <stdlib.h>
#include <string.h>

static const char *const all_vars[] = {
	"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMI_SIZE", "PMI_RANK", "SLURM_STEP_NUM_TASKS",
	"SLURM_PROCID", "OMPI_COMM_WORLD_LOCAL_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALNRANKS",
	"MPI_LOCALRANKID", "SLURM_STEP_TASKS_PER_NODE", "SLURM_LOCALID", "CUDA_VISIBLE_DEVICES",
};

static void clear(void)
{
	for (size_t i = 0; i < sizeof all_vars / sizeof all_vars[0]; i++)
		unsetenv(all_vars[i]);
}

static void launcher(void)
{
	int n, r;
	clear();
	CHECK(cap_dist_launcher(&n, &r) == 0 && n == 1 && r == 0, "no launcher: one process");
	setenv("OMPI_COMM_WORLD_SIZE", "4", 1);
	setenv("OMPI_COMM_WORLD_RANK", "3", 1);
	CHECK(cap_dist_launcher(&n, &r) == 0 && n == 4 && r == 3, "Open MPI: rank 3 of 4");
	clear();
	setenv("PMI_SIZE", "2", 1);
	setenv("PMI_RANK", "1", 1);
	CHECK(cap_dist_launcher(&n, &r) == 0 && n == 2 && r == 1, "MPICH: rank 1 of 2");
	clear();
	setenv("SLURM_STEP_NUM_TASKS", "16", 1);
	setenv("SLURM_PROCID", "9", 1);
	CHECK(cap_dist_launcher(&n, &r) == 0 && n == 16 && r == 9, "srun: rank 9 of 16");
	setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
	setenv("OMPI_COMM_WORLD_RANK", "0", 1);
	CHECK(cap_dist_launcher(&n, &r) == 0 && n == 2, "mpirun's own variables come first");
	setenv("OMPI_COMM_WORLD_RANK", "2", 1);
	CHECK(cap_dist_launcher(&n, &r) < 0 && strstr(cap_errmsg(), "OMPI_COMM_WORLD_RANK"),
	      "rank beyond the size refused: %s", cap_errmsg());
	setenv("OMPI_COMM_WORLD_SIZE", "2x", 1);
	CHECK(cap_dist_launcher(&n, &r) < 0 && strstr(cap_errmsg(), "2x"), "malformed size refused: %s",
	      cap_errmsg());
	clear();
	const cap_dist *d = NULL;
	CHECK(cap_dist_open(&d) == 0 && d == cap_dist_single(), "no launcher: the single table, no module");
}

static void single(void)
{
	const cap_dist *d = cap_dist_single();
	float x[3] = { 1, 2, 3 };
	double y[2] = { 4, 5 };
	d->sum_floats(d, x, 3);
	d->sum_doubles(d, y, 2);
	d->broadcast(d, y, sizeof y, 0);
	CHECK(d->size == 1 && d->rank == 0 && x[2] == 3 && y[1] == 5, "single: the sums are the identity");
	CHECK(cap_dist_agree(d, 0) == 0 && cap_dist_agree(d, 1) == -1, "single: agree returns the outcome");
}

static void pick_gpu(void)
{
	cap_dist two = *cap_dist_single();
	two.size = 2;
	clear();
	CHECK(cap_dist_pick_gpu(&two) == -1 && !getenv("CUDA_VISIBLE_DEVICES"), "no local rank: no GPU chosen");
	setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "4", 1);
	setenv("OMPI_COMM_WORLD_LOCAL_RANK", "2", 1);
	const char *v;
	CHECK(cap_dist_pick_gpu(&two) == 2 && (v = getenv("CUDA_VISIBLE_DEVICES")) && !strcmp(v, "2"),
	      "local rank 2 of 4 sees GPU 2");
	setenv("CUDA_VISIBLE_DEVICES", "5", 1);
	CHECK(cap_dist_pick_gpu(&two) == -1 && !strcmp(getenv("CUDA_VISIBLE_DEVICES"), "5"),
	      "CUDA_VISIBLE_DEVICES given (srun --gpus-per-task) is kept");
	clear();
	setenv("SLURM_STEP_TASKS_PER_NODE", "2(x4)", 1);
	setenv("SLURM_LOCALID", "1", 1);
	CHECK(cap_dist_pick_gpu(&two) == 1, "srun: local id 1 of 2(x4) sees GPU 1");
	clear();
	setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "1", 1);
	setenv("OMPI_COMM_WORLD_LOCAL_RANK", "0", 1);
	CHECK(cap_dist_pick_gpu(&two) == -1 && !getenv("CUDA_VISIBLE_DEVICES"), "one rank a node: left alone");
	CHECK(cap_dist_pick_gpu(cap_dist_single()) == -1, "one process: left alone");
	clear();
}

int main(void)
{
	launcher();
	single();
	pick_gpu();
	return check_exit();
}
