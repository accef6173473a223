/* cap-encode's input side: --shard parsing, path lists (arguments and lines), shard slices
 * that together cover every input once, and the ordered pipeline with several decoder threads
 * and failing images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "image/pipeline.h"
#include "core/error.h"

static int count_shard(FILE *f, int k, int n, char *seen, int nseen)
{
	rewind(f);
	cap_paths *p = cap_paths_lines(f, k, n);
	char *s;
	int c = 0, order_ok = 1, last = -1;
	while ((s = cap_paths_next(p))) {
		int i = atoi(s + 1);   /* paths are "pNN" */
		if (i >= 0 && i < nseen)
			seen[i]++;
		order_ok &= i > last && i % n == k - 1;
		last = i;
		free(s);
		c++;
	}
	CHECK(order_ok && !cap_paths_error(p), "shard %d/%d: inputs with i %% %d == %d, in order", k, n, n, k - 1);
	cap_paths_free(p);
	return c;
}

int main(void)
{
	int k, n;
	CHECK(cap_shard_parse("2/8", &k, &n) == 0 && k == 2 && n == 8, "shard 2/8 parses");
	CHECK(cap_shard_parse("1/1", &k, &n) == 0 && k == 1 && n == 1, "shard 1/1 parses");
	const char *bad[] = {"0/3", "4/3", "3", "/3", "1/", "a/b", "1/3x", "-1/3", "1/0", "1/99999999999", ""};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK(cap_shard_parse(bad[i], &k, &n) < 0, "shard '%s' refused: %s", bad[i], cap_errmsg());

	/* 23 paths with empty lines and CRLF endings between them */
	FILE *f = tmpfile();
	for (int i = 0; i < 23; i++)
		fprintf(f, "p%d%s%s", i, i % 3 ? "\n" : "\r\n", i % 5 ? "" : "\n");
	char seen[23] = {0};
	int total = 0;
	for (int s = 1; s <= 4; s++)
		total += count_shard(f, s, 4, seen, 23);
	int once = 1;
	for (int i = 0; i < 23; i++)
		once &= seen[i] == 1;
	CHECK(total == 23 && once, "shards 1..4 of 4 cover all 23 lines once (empty lines skipped, CRLF cut)");
	fclose(f);

	char *argv[] = {"a", "", "b", "c", "d", "e"};
	cap_paths *p = cap_paths_args(argv, 6, 2, 2);
	CHECK(cap_paths_total(p) == 2, "arguments: shard 2/2 of 5 non-empty has 2");
	char *s1 = cap_paths_next(p), *s2 = cap_paths_next(p), *s3 = cap_paths_next(p);
	CHECK(s1 && s2 && !s3 && !strcmp(s1, "b") && !strcmp(s2, "d"), "arguments: shard 2/2 is b, d");
	free(s1);
	free(s2);
	cap_paths_free(p);

	/* The pipeline: missing files fail in order, named, with several decoder threads. */
	char *files[40];
	for (int i = 0; i < 40; i++) {
		files[i] = malloc(32);
		snprintf(files[i], 32, "/nonexistent/img%02d.jpg", i);
	}
	cap_preprocess_opts o;
	cap_preprocess_opts_default(&o);
	cap_pipeline *pl = cap_pipeline_start(cap_paths_args(files, 40, 1, 1), &o, 3, 5);
	CHECK(pl != NULL, "pipeline starts with 3 decoders");
	int got = 0, ordered = 1;
	const cap_pipeline_item *it;
	while (pl && (it = cap_pipeline_next(pl))) {
		ordered &= !it->ok && !strcmp(it->path, files[got]) && strstr(it->err, files[got]) != NULL;
		got++;
	}
	CHECK(got == 40 && ordered, "pipeline: 40 failing images come back in input order, each error naming its file");
	cap_pipeline_free(pl);
	/* stopping early (consumer quits after 2 items) joins the threads cleanly */
	pl = cap_pipeline_start(cap_paths_args(files, 40, 1, 1), &o, 2, 3);
	cap_pipeline_next(pl);
	cap_pipeline_next(pl);
	cap_pipeline_free(pl);
	CHECK(1, "pipeline: early stop");
	for (int i = 0; i < 40; i++)
		free(files[i]);
	return check_exit();
}
