/* cap-dump: prints cap streams as JSON Lines, header first, for eyes and for jq; a model or
 * weights file (safetensors, .pth) as one JSON line: its tensors, metadata and history. */
#include <err.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/outfile.h"
#include "io/modelinfo.h"
#include "io/mpjson.h"
#include "io/stream.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: cap-dump [--full] [--no-header] [--kind KIND] [-o OUT] [FILE...]\n"
	           "Prints a cap stream as JSON Lines: the header, then one line per record;\n"
	           "a model or weights file (.safetensors, .pth) as one line: its tensors, its\n"
	           "metadata and (for cap-train's models) the training history.\n"
	           "  --full        print tensors and long strings whole (default: summaries)\n"
	           "  --no-header   print records only\n"
	           "  --kind KIND   refuse streams of another kind\n"
	           "  -o, --output OUT  write there (atomically) instead of standard output\n"
	           "FILE absent or '-' reads standard input.\n");
}

/* Every FILE a model file: one JSON line each. */
static int dump_models(char **files, int n, const cap_mpjson_opts *opts, FILE *out)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	cap_buf line = { 0 };
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		if (cap_model_info_pack(&pk, files[i]) < 0) {
			warnx("%s", cap_errmsg());
			rc = 1;
		} else {
			msgpack_unpacked u;
			msgpack_unpacked_init(&u);
			if (msgpack_unpack_next(&u, sb.data, sb.size, NULL) != MSGPACK_UNPACK_SUCCESS) {
				warnx("%s: internal: could not read back its description", files[i]);
				rc = 1;
			} else {
				cap_buf_reset(&line);
				cap_mpjson_append(&line, &u.data, opts);
				cap_buf_addc(&line, '\n');
				fwrite(line.data, 1, line.len, out);
			}
			msgpack_unpacked_destroy(&u);
		}
		msgpack_sbuffer_destroy(&sb);
	}
	cap_buf_free(&line);
	return rc;
}

static int dump_streams(char **files, int n, const char *kind, int header,
                        const cap_mpjson_opts *opts, FILE *out)
{
	cap_reader *r = cap_reader_open((const char *const *)files, n, kind);
	if (!r) { warnx("%s", cap_errmsg()); return 1; }
	cap_buf line = { 0 };
	if (header) {
		cap_mpjson_append(&line, cap_reader_header(r), opts);
		cap_buf_addc(&line, '\n');
		fwrite(line.data, 1, line.len, out);
	}
	const msgpack_object *rec;
	int rc;
	while ((rc = cap_reader_next(r, &rec)) == 1) {
		cap_buf_reset(&line);
		cap_mpjson_append(&line, rec, opts);
		cap_buf_addc(&line, '\n');
		if (fwrite(line.data, 1, line.len, out) != line.len) break;
	}
	if (rc < 0) warnx("%s", cap_errmsg());
	cap_buf_free(&line);
	cap_reader_close(r);
	return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "full", no_argument, NULL, 'f' },
		{ "no-header", no_argument, NULL, 'H' },
		{ "kind", required_argument, NULL, 'k' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	cap_mpjson_opts opts = { .full = 0, .max_string = 200 };
	int header = 1;
	const char *kind = NULL, *out_path = NULL;
	int c;
	while ((c = cap_getopt(argc, argv, "o:", longopts)) != -1) {
		switch (c) {
		case 'f': opts.full = 1; break;
		case 'H': header = 0; break;
		case 'k': kind = optarg; break;
		case 'o': out_path = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("cap-dump cap %s\n", CAP_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	char **files = argv + optind;
	int n = argc - optind, models = 0;
	for (int i = 0; i < n; i++) {
		int k = cap_model_file_sniff(files[i]);
		if (k < 0) errx(1, "%s", cap_errmsg());
		models += k;
	}
	if (models && models < n) {
		warnx("give either streams or model files, not both");
		return 2;
	}
	if (models && kind) {
		warnx("--kind: %s is a model file, not a stream", files[0]);
		return 2;
	}
	cap_outfile *o = cap_outfile_open(out_path);
	if (!o) errx(1, "%s", cap_errmsg());
	FILE *out = cap_outfile_fp(o);
	int rc = models ? dump_models(files, n, &opts, out) : dump_streams(files, n, kind, header, &opts, out);
	if (rc) {
		cap_outfile_abort(o);
		return rc;
	}
	if (cap_outfile_close(o) < 0) errx(1, "%s", cap_errmsg());
	return 0;
}
