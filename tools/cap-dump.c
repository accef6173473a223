/* cap-dump: prints cap streams as JSON Lines, header first, for eyes and for jq. */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/error.h"
#include "io/mpjson.h"
#include "io/stream.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: cap-dump [--full] [--no-header] [--kind KIND] [FILE...]\n"
	           "Prints a cap stream as JSON Lines: the header, then one line per record.\n"
	           "  --full        print tensors and long strings whole (default: summaries)\n"
	           "  --no-header   print records only\n"
	           "  --kind KIND   refuse streams of another kind\n"
	           "FILE absent or '-' reads standard input.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "full", no_argument, NULL, 'f' },
		{ "no-header", no_argument, NULL, 'H' },
		{ "kind", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	cap_mpjson_opts opts = { .full = 0, .max_string = 200 };
	int header = 1;
	const char *kind = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'f': opts.full = 1; break;
		case 'H': header = 0; break;
		case 'k': kind = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("cap-dump cap %s\n", CAP_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	cap_reader *r = cap_reader_open((const char *const *)argv + optind, argc - optind, kind);
	if (!r) errx(1, "%s", cap_errmsg());
	cap_buf line = { 0 };
	if (header) {
		cap_mpjson_append(&line, cap_reader_header(r), &opts);
		cap_buf_addc(&line, '\n');
		fwrite(line.data, 1, line.len, stdout);
	}
	const msgpack_object *rec;
	int rc;
	while ((rc = cap_reader_next(r, &rec)) == 1) {
		cap_buf_reset(&line);
		cap_mpjson_append(&line, rec, &opts);
		cap_buf_addc(&line, '\n');
		if (fwrite(line.data, 1, line.len, stdout) != line.len) break;
	}
	if (rc < 0) warnx("%s", cap_errmsg());
	cap_buf_free(&line);
	cap_reader_close(r);
	if (fflush(stdout) != 0 || ferror(stdout)) err(1, "stdout");
	return rc < 0 ? 1 : 0;
}
