/* Decoder threads and the ordered ring (see encode_pipeline.h).
 *
 * Item number s lives in slot s % depth. A worker takes the next number and path under the
 * lock, but only while that number is less than depth ahead of the consumer, so it owns its
 * slot exclusively while it decodes without the lock. The consumer waits for its slot to be
 * ready; handing back a slot (on the next call) lets the workers move on. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "image/pipeline.h"
#include "core/error.h"

int cap_shard_parse(const char *s, int *k, int *n)
{
	char *end;
	errno = 0;
	long a = strtol(s, &end, 10);
	if (end == s || *end != '/' || errno)
		return cap_fail("shard '%s': expected K/N, e.g. 2/8", s);
	const char *s2 = end + 1;
	long b = strtol(s2, &end, 10);
	if (end == s2 || *end || errno || b < 1 || b > 1000000000 || a < 1 || a > b)
		return cap_fail("shard '%s': expected K/N with 1 <= K <= N", s);
	*k = (int)a;
	*n = (int)b;
	return 0;
}

struct cap_paths {
	char *const *argv;
	int argc, next_arg;
	FILE *f;
	char *line;
	size_t cap;
	int error;
	uint64_t index;
	int k, n;
};

static cap_paths *paths_new(int k, int n)
{
	cap_paths *p = cap_xcalloc(1, sizeof *p);
	p->k = k;
	p->n = n;
	return p;
}

cap_paths *cap_paths_args(char *const *argv, int argc, int shard_k, int shard_n)
{
	cap_paths *p = paths_new(shard_k, shard_n);
	p->argv = argv;
	p->argc = argc;
	return p;
}

cap_paths *cap_paths_lines(FILE *f, int shard_k, int shard_n)
{
	cap_paths *p = paths_new(shard_k, shard_n);
	p->f = f;
	return p;
}

/* The next input path of all shards, borrowed, or NULL. */
static const char *next_any(cap_paths *p)
{
	if (!p->f) {
		while (p->next_arg < p->argc && !p->argv[p->next_arg][0])
			p->next_arg++;
		return p->next_arg < p->argc ? p->argv[p->next_arg++] : NULL;
	}
	for (;;) {
		errno = 0;
		ssize_t len = getline(&p->line, &p->cap, p->f);
		if (len < 0) {
			if (ferror(p->f)) {
				p->error = 1;
				cap_fail("reading the list of images: %s", strerror(errno ? errno : EIO));
			}
			return NULL;
		}
		while (len > 0 && (p->line[len - 1] == '\n' || p->line[len - 1] == '\r'))
			p->line[--len] = 0;
		if (len > 0 && strlen(p->line) == (size_t)len)
			return p->line;
		/* empty lines (and lines with a NUL, which no path can hold) are skipped */
	}
}

char *cap_paths_next(cap_paths *p)
{
	const char *s;
	while ((s = next_any(p))) {
		uint64_t i = p->index++;
		if (i % (uint64_t)p->n == (uint64_t)(p->k - 1))
			return cap_xstrdup(s);
	}
	return NULL;
}

int cap_paths_error(const cap_paths *p) { return p->error; }

long cap_paths_total(const cap_paths *p)
{
	if (p->f)
		return -1;
	long total = 0, i = 0;
	for (int a = 0; a < p->argc; a++)
		if (p->argv[a][0] && i++ % p->n == p->k - 1)
			total++;
	return total;
}

void cap_paths_free(cap_paths *p)
{
	if (!p)
		return;
	free(p->line);
	free(p);
}

typedef struct slot {
	int ready;
	cap_pipeline_item item;
	char *path, *err;
	float *pixels;
} slot;

struct cap_pipeline {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	cap_paths *paths;
	cap_preprocess_opts opts;
	int depth, nthreads;
	slot *slots;
	pthread_t *threads;
	uint64_t next_seq;     /* number the next worker takes */
	uint64_t cons_seq;     /* number the consumer waits for */
	int held;              /* the consumer holds slot cons_seq - 1 */
	int ended, stop;
	int read_error;
	char *read_msg;
};

static void *worker(void *arg)
{
	cap_pipeline *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (!p->stop && !p->ended && p->next_seq - p->cons_seq + (uint64_t)p->held >= (uint64_t)p->depth)
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop || p->ended)
			break;
		char *path = cap_paths_next(p->paths);
		if (!path) {
			p->ended = 1;
			if (cap_paths_error(p->paths)) {
				p->read_error = 1;
				p->read_msg = cap_xstrdup(cap_errmsg());
			}
			pthread_cond_broadcast(&p->cv);
			break;
		}
		uint64_t seq = p->next_seq++;
		slot *s = &p->slots[seq % (uint64_t)p->depth];
		pthread_mutex_unlock(&p->mu);

		cap_image img = {0};
		s->path = path;
		s->err = NULL;
		if (cap_image_load(path, &img) < 0 || cap_preprocess(&img, &p->opts, s->pixels) < 0) {
			const char *m = cap_errmsg();
			/* make sure the message names the file */
			if (strncmp(m, path, strlen(path)) == 0)
				s->err = cap_xstrdup(m);
			else {
				size_t n = strlen(path) + strlen(m) + 3;
				s->err = cap_xmalloc(n);
				snprintf(s->err, n, "%s: %s", path, m);
			}
		}
		cap_image_free(&img);

		pthread_mutex_lock(&p->mu);
		s->ready = 1;
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

cap_pipeline *cap_pipeline_start(cap_paths *paths, const cap_preprocess_opts *o, int nthreads, int depth)
{
	if (cap_preprocess_opts_check(o) < 0) {
		cap_paths_free(paths);
		return NULL;
	}
	if (nthreads < 1)
		nthreads = 1;
	if (depth < nthreads)
		depth = nthreads;
	cap_pipeline *p = cap_xcalloc(1, sizeof *p);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->paths = paths;
	p->opts = *o;
	p->depth = depth;
	p->slots = cap_xcalloc((size_t)depth, sizeof *p->slots);
	size_t npix = (size_t)3 * o->crop * o->crop;
	for (int i = 0; i < depth; i++)
		p->slots[i].pixels = cap_xmalloc(npix * sizeof(float));
	p->threads = cap_xcalloc((size_t)nthreads, sizeof *p->threads);
	for (int i = 0; i < nthreads; i++) {
		int rc = pthread_create(&p->threads[i], NULL, worker, p);
		if (rc) {
			cap_fail("cannot start a decoder thread: %s", strerror(rc));
			cap_pipeline_free(p);
			return NULL;
		}
		p->nthreads++;
	}
	return p;
}

static void release_held(cap_pipeline *p)
{
	if (!p->held)
		return;
	slot *s = &p->slots[(p->cons_seq - 1) % (uint64_t)p->depth];
	free(s->path);
	free(s->err);
	s->path = s->err = NULL;
	s->ready = 0;
	p->held = 0;
	pthread_cond_broadcast(&p->cv);
}

const cap_pipeline_item *cap_pipeline_next(cap_pipeline *p)
{
	pthread_mutex_lock(&p->mu);
	release_held(p);
	slot *s = &p->slots[p->cons_seq % (uint64_t)p->depth];
	while (!s->ready && !(p->ended && p->cons_seq == p->next_seq))
		pthread_cond_wait(&p->cv, &p->mu);
	if (!s->ready) {
		pthread_mutex_unlock(&p->mu);
		return NULL;
	}
	p->cons_seq++;
	p->held = 1;
	pthread_mutex_unlock(&p->mu);
	s->item.path = s->path;
	s->item.ok = s->err == NULL;
	s->item.err = s->err;
	s->item.pixels = s->pixels;
	return &s->item;
}

int cap_pipeline_read_error(const cap_pipeline *p, const char **msg)
{
	if (p->read_error && msg)
		*msg = p->read_msg;
	return p->read_error;
}

void cap_pipeline_free(cap_pipeline *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = 1;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (int i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (int i = 0; i < p->depth; i++) {
		free(p->slots[i].path);
		free(p->slots[i].err);
		free(p->slots[i].pixels);
	}
	free(p->slots);
	free(p->threads);
	cap_paths_free(p->paths);
	free(p->read_msg);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
