/* Recorded runs of ops as CUDA graphs (see ops.h, "recorded runs of ops"), offered in the table
 * with CAP_CUDA_GRAPHS=1 only. A training step issues a hundred and more small launches (the
 * recurrence's product and gate kernel at every time step, forward and backward); recorded once
 * per batch shape and replayed, they cost one launch.
 *
 * A key is recorded on its second sighting: the first runs as usual, so that whatever an op sets
 * up on its first use of a shape (cuBLAS's choices, the bf16 scratch buffers growing) is in place
 * and nothing is allocated while recording. The scratch buffers are the one memory of the module
 * that recordings share and that moves: when one grows, every recording is dropped
 * (cap_cuda_scratch calls cap_cuda_graph_forget). At most SLOTS recordings are kept; the one
 * used longest ago makes room. Recording uses the thread-local capture mode: other threads'
 * CUDA calls are not affected. */
#include "ops/cuda/cuda.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOTS = 64 };

typedef struct recording {
	uint64_t key;
	int seen;                /* the key has been seen (run as usual once) */
	cudaGraphExec_t exec;    /* its recording, once made */
	uint64_t used;           /* when last seen, on the counter below */
} recording;

static recording recs[SLOTS];
static uint64_t now;
static recording *recording_now;
static long n_recorded, n_replayed, n_dropped;

/* At exit, on stderr: how much was recorded and replayed (while graphs are on request, the
 * evidence that they were used at all). */
static void report(void)
{
	fprintf(stderr, "%s: CUDA graphs: %ld recorded, %ld replays, %ld dropped\n",
	        program_invocation_short_name, n_recorded, n_replayed, n_dropped);
}

void cap_cuda_graph_report_at_exit(void)
{
	atexit(report);
}

static recording *find(uint64_t key)
{
	for (int i = 0; i < SLOTS; i++)
		if (recs[i].seen && recs[i].key == key)
			return &recs[i];
	return NULL;
}

static void drop(recording *r)
{
	if (r->exec) {
		CUDA_CHECK("graph_forget", cudaGraphExecDestroy(r->exec));   /* freed once it has run */
		n_dropped++;
	}
	memset(r, 0, sizeof *r);
}

/* A slot for a new key: a free one, else the one used longest ago. */
static recording *make_room(void)
{
	recording *best = &recs[0];
	for (int i = 0; i < SLOTS; i++) {
		if (!recs[i].seen)
			return &recs[i];
		if (recs[i].used < best->used)
			best = &recs[i];
	}
	drop(best);
	return best;
}

int cap_cuda_graph_replay(uint64_t key)
{
	recording *r = find(key);
	if (!r || !r->exec || recording_now)
		return 0;
	r->used = ++now;
	CUDA_CHECK("graph_replay", cudaGraphLaunch(r->exec, cap_cuda.stream));
	n_replayed++;
	return 1;
}

int cap_cuda_graph_begin(uint64_t key)
{
	if (recording_now || cap_cuda.sync_each)   /* CAP_CUDA_SYNC's waits cannot be recorded */
		return -1;
	recording *r = find(key);
	if (!r) {   /* first sighting: run as usual */
		r = make_room();
		r->key = key;
		r->seen = 1;
		r->used = ++now;
		return -1;
	}
	if (r->exec)   /* the caller should have replayed it */
		return -1;
	CUDA_CHECK("graph_begin", cudaStreamBeginCapture(cap_cuda.stream, cudaStreamCaptureModeThreadLocal));
	recording_now = r;
	return 0;
}

void cap_cuda_graph_end(void)
{
	recording *r = recording_now;
	if (!r)
		cap_cuda_die("graph_end", __FILE__, __LINE__, "usage", "graph_end without graph_begin");
	recording_now = NULL;
	cudaGraph_t g = NULL;
	CUDA_CHECK("graph_end (ending the recording)", cudaStreamEndCapture(cap_cuda.stream, &g));
	CUDA_CHECK("graph_end (instantiating the recording)", cudaGraphInstantiate(&r->exec, g, 0));
	CUDA_CHECK("graph_end", cudaGraphDestroy(g));
	r->used = ++now;
	CUDA_CHECK("graph_end (launching the recording)", cudaGraphLaunch(r->exec, cap_cuda.stream));
	n_recorded++;
}

void cap_cuda_graph_forget(void)
{
	if (recording_now)   /* memory moving under a recording: a bug of the caller's */
		cap_cuda_die("graph_forget", __FILE__, __LINE__, "usage",
		             "memory was allocated or freed while a run of ops was being recorded");
	for (int i = 0; i < SLOTS; i++)
		drop(&recs[i]);
}
