/* cap-tokenize: builds a word vocabulary (a Hugging Face tokenizer.json) from caption files,
 * encodes captions to a captions stream, and decodes ids back to text. The tokenizer itself
 * lives in lib/text/tokenizer.c, the caption file readers in lib/text/caption_sources.c. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "text/caption_sources.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/file.h"
#include "core/outfile.h"
#include "text/split.h"
#include "io/stream.h"
#include "text/tokenizer.h"

static void usage(FILE *f)
{
	fprintf(f,
	  "usage: cap-tokenize vocab [--min-count N] [--split FILE] [--format F] [--keep-punct]\n"
	  "                          [-o tokenizer.json] [FILE...]\n"
	  "       cap-tokenize encode --tokenizer tokenizer.json [--split FILE] [--format F]\n"
	  "                          [-o OUT] [FILE...]\n"
	  "       cap-tokenize decode [--tokenizer tokenizer.json] [FILE...]\n"
	  "vocab   counts the words of the captions and writes a Hugging Face tokenizer.json\n"
	  "encode  writes a captions stream: one record {image, n, text, ids} per caption\n"
	  "decode  prints 'image<TAB>text' per record of a stream with ids (captions, generated),\n"
	  "        or one text per line of whitespace-separated ids\n"
	  "  --min-count N      keep words seen at least N times (default 5)\n"
	  "  --split FILE       use only the captions of the images listed in FILE\n"
	  "  --format F         flickr8k, csv, coco, karpathy or tsv (default: detected)\n"
	  "  --keep-punct       keep punctuation-only tokens (default: dropped)\n"
	  "  --tokenizer FILE   tokenizer.json (decode: default from the stream header)\n"
	  "  -o, --output FILE  write there (atomically) instead of standard output\n"
	  "FILE absent or '-' reads standard input.\n");
}

/* A usage error: the message and the same short hint as cap_opt_int's, or (fmt NULL) the usage. */
static _Noreturn void usage_error(const char *fmt, const char *arg)
{
	if (fmt) {
		fprintf(stderr, "cap-tokenize: ");
		fprintf(stderr, fmt, arg);
		fprintf(stderr, "\nTry 'cap-tokenize --help'.\n");
	} else {
		usage(stderr);
	}
	exit(2);
}

/* ---------------------------------------------------------------- options */

enum cmd { CMD_VOCAB, CMD_ENCODE, CMD_DECODE };

struct opts {
	enum cmd cmd;
	unsigned long min_count;
	const char *split, *tokenizer, *output;
	cap_caption_format format;
	int keep_punct;
	const char **files;
	int nfiles;
};

/* ---------------------------------------------------------------- split lists */

/* The image names of a split file, value 0 = not seen yet. */
static cap_wordmap *read_split(const char *path)
{
	cap_wordmap *m;
	if (cap_split_read(path, &m)) errx(1, "%s", cap_errmsg());
	return m;
}

/* After reading: the split must have matched images of the input. */
static void check_split(const char *path, const cap_wordmap *split)
{
	size_t n = cap_wordmap_size(split), used = 0, first_unused = SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		if (cap_wordmap_value(split, i)) used++;
		else if (first_unused == SIZE_MAX) first_unused = i;
	}
	if (used == 0)
		errx(1, "%s: split file names no image of the input (%zu names, first '%s')", path, n,
		     cap_wordmap_key(split, 0, NULL));
	if (used < n)
		warnx("%s: %zu of its %zu images have no captions in the input (first '%s')", path, n - used,
		      n, cap_wordmap_key(split, first_unused, NULL));
}

/* ---------------------------------------------------------------- reading captions */

struct run {
	const struct opts *o;
	cap_wordmap *split;
	cap_caption_source src;
	size_t captions;
	/* vocab */
	cap_wordmap *counts;
	/* encode */
	const cap_tokenizer *tok;
	cap_writer *w;
	cap_buf source;
	const char *file;
	cap_pretok pre;
};

static int in_split(struct run *r, const cap_caption *c)
{
	if (!r->split) return 1;
	uint32_t *v = cap_wordmap_get(r->split, c->image, c->image_len);
	if (!v) return 0;
	*v = 1;
	return 1;
}

static int count_caption(void *ctx, const cap_caption *c)
{
	struct run *r = ctx;
	if (!in_split(r, c)) return 0;
	if (cap_pretokenize(&r->pre, c->text, c->text_len, r->o->keep_punct) < 0)
		return cap_fail_prefix("%s: line %llu", r->file, (unsigned long long)c->line);
	for (size_t i = 0; i < r->pre.n; i++) {
		const cap_piece *p = &r->pre.pieces[i];
		if (p->special >= 0) continue;
		uint32_t *n = cap_wordmap_put(r->counts, r->pre.norm + p->off, p->len, NULL);
		if (*n < UINT32_MAX) (*n)++;
	}
	r->captions++;
	return 0;
}

static void write_header(struct run *r)
{
	size_t jlen;
	const char *json = cap_tokenizer_json(r->tok, &jlen);
	msgpack_packer *pk = cap_writer_packer(r->w);
	cap_pack_header(pk, "captions", 5);
	cap_pack_kv_str(pk, "tokenizer", cap_tokenizer_digest(r->tok));
	cap_pack_kv_uint(pk, "vocab_size", cap_tokenizer_vocab_size(r->tok));
	cap_pack_str(pk, "tokenizer_json");
	cap_pack_strn(pk, json, jlen);
	cap_pack_kv_str(pk, "source", r->source.data);
	cap_pack_kv_str(pk, "tool", "cap-tokenize " CAP_VERSION);
}

static int encode_caption(void *ctx, const cap_caption *c)
{
	struct run *r = ctx;
	if (!in_split(r, c)) return 0;
	if (r->captions == 0) {  /* the header waits for the first record: empty input writes nothing */
		write_header(r);
		if (cap_writer_end(r->w) < 0) return -1;
	}
	if (cap_tokenizer_encode(r->tok, c->text, c->text_len, &r->pre) < 0)
		return cap_fail_prefix("%s: line %llu", r->file, (unsigned long long)c->line);
	msgpack_packer *pk = cap_writer_packer(r->w);
	msgpack_pack_map(pk, 4);
	cap_pack_str(pk, "image");
	cap_pack_strn(pk, c->image, c->image_len);
	cap_pack_kv_uint(pk, "n", c->n);
	cap_pack_str(pk, "text");
	cap_pack_strn(pk, c->text, c->text_len);
	cap_pack_str(pk, "ids");
	cap_pack_u32_array(pk, r->pre.ids, r->pre.n_ids);
	if (cap_writer_end(r->w) < 0) return -1;
	r->captions++;
	return 0;
}

static const char *base_name(const char *p)
{
	if (strcmp(p, "-") == 0) return "<stdin>";
	const char *s = strrchr(p, '/');
	return s && s[1] ? s + 1 : p;
}

/* Reads every input file through fn. Returns 0 or -1 (message set). */
static int read_inputs(struct run *r, cap_caption_fn fn)
{
	static const char *const stdin_only[] = { "-" };
	const char *const *files = r->o->nfiles ? r->o->files : stdin_only;
	int n = r->o->nfiles ? r->o->nfiles : 1;
	r->src.format = r->o->format;
	for (int i = 0; i < n; i++) {
		char *d;
		size_t len;
		r->file = strcmp(files[i], "-") == 0 ? "<stdin>" : files[i];
		if (cap_read_file(files[i], 0, &d, &len) < 0) return -1;
		int rc = cap_caption_read(&r->src, r->file, d, len, fn, r);
		free(d);
		if (rc) return -1;
	}
	const cap_caption_source *s = &r->src;
	if (s->skipped_images == 1)
		warnx("%s: line %llu: skipped %zu lines of image '%s': not a .jpg, .jpeg or .png name (a known "
		      "defect of the Flickr8k token file; no such image exists)", s->skipped_file,
		      (unsigned long long)s->skipped_line, s->skipped, s->skipped_image);
	else if (s->skipped)
		warnx("%s: line %llu: skipped %zu lines of %zu images whose names do not end in .jpg, .jpeg "
		      "or .png (first '%s')", s->skipped_file, (unsigned long long)s->skipped_line,
		      s->skipped, s->skipped_images, s->skipped_image);
	if (r->split) check_split(r->o->split, r->split);
	if (r->captions == 0)
		return cap_fail("%s: empty input (no captions)", n == 1 ? r->file : "the inputs");
	return 0;
}

static void run_free(struct run *r)
{
	cap_wordmap_free(r->split);
	cap_wordmap_free(r->counts);
	cap_caption_source_free(&r->src);
	cap_buf_free(&r->source);
	cap_pretok_free(&r->pre);
}

static int cmd_vocab(const struct opts *o)
{
	struct run r = { .o = o };
	r.counts = cap_wordmap_new();
	if (o->split) r.split = read_split(o->split);
	if (read_inputs(&r, count_caption) < 0) errx(1, "%s", cap_errmsg());
	if (o->min_count > UINT32_MAX) errx(2, "--min-count: too large");
	cap_tokenizer *t = cap_tokenizer_build(r.counts, (uint32_t)o->min_count, o->keep_punct);
	size_t len;
	const char *json = cap_tokenizer_json(t, &len);
	int rc = cap_write_file_atomic(o->output, json, len);
	if (rc < 0) warnx("%s", cap_errmsg());
	cap_tokenizer_free(t);
	run_free(&r);
	return rc < 0 ? 1 : 0;
}

static int cmd_encode(const struct opts *o)
{
	struct run r = { .o = o };
	cap_tokenizer *t = cap_tokenizer_load(o->tokenizer);
	if (!t) errx(1, "%s", cap_errmsg());
	r.tok = t;
	if (o->split) r.split = read_split(o->split);
	for (int i = 0; i < (o->nfiles ? o->nfiles : 1); i++) {
		if (i) cap_buf_addc(&r.source, ',');
		cap_buf_adds(&r.source, base_name(o->nfiles ? o->files[i] : "-"));
	}
	cap_outfile_refuse_tty(o->output, "use -o FILE, or pipe it into cap-dump");
	r.w = cap_writer_open(o->output);
	if (!r.w) errx(1, "%s", cap_errmsg());
	int rc = read_inputs(&r, encode_caption);
	if (rc < 0) {
		warnx("%s", cap_errmsg());
		cap_writer_abort(r.w);
	} else if (cap_writer_close(r.w) < 0) {
		warnx("%s", cap_errmsg());
		rc = -1;
	}
	cap_tokenizer_free(t);
	run_free(&r);
	return rc < 0 ? 1 : 0;
}

/* ---------------------------------------------------------------- decode */

/* The first byte of a file, or EOF; stdin's is pushed back for the reader that follows. */
static int first_byte(const char *path)
{
	if (strcmp(path, "-") == 0) {
		int c = getc(stdin);
		if (c != EOF) ungetc(c, stdin);
		return c;
	}
	FILE *f = fopen(path, "rb");
	if (!f) err(1, "%s", path);
	int c = getc(f);
	fclose(f);
	return c;
}

static int is_msgpack_map(int c) { return (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf; }

static int decode_stream(const struct opts *o, const char *const *files, int n)
{
	cap_reader *rd = cap_reader_open(files, n, NULL);
	if (!rd) errx(1, "%s", cap_errmsg());
	const msgpack_object *h = cap_reader_header(rd);
	const char *name = cap_reader_name(rd);
	cap_tokenizer *t = NULL;
	const msgpack_object *tj = cap_map_get(h, "tokenizer_json");
	char *hdig = cap_obj_strdup(cap_map_get(h, "tokenizer"));
	if (o->tokenizer) {
		if (!(t = cap_tokenizer_load(o->tokenizer))) errx(1, "%s", cap_errmsg());
		if (hdig && strcmp(hdig, cap_tokenizer_digest(t)) != 0)
			errx(1, "%s: the stream was made with tokenizer %.12s..., %s is %.12s...", name, hdig,
			     o->tokenizer, cap_tokenizer_digest(t));
	} else {
		if (!tj || tj->type != MSGPACK_OBJECT_STR)
			errx(2, "%s: the header carries no tokenizer_json: give --tokenizer", name);
		if (!(t = cap_tokenizer_parse(tj->via.str.ptr, tj->via.str.size)))
			errx(1, "%s: header tokenizer_json: %s", name, cap_errmsg());
	}
	free(hdig);
	const msgpack_object *rec;
	cap_buf out = { 0 };
	uint32_t *ids = NULL;
	size_t nids;
	int rc;
	while ((rc = cap_reader_next(rd, &rec)) == 1) {
		cap_buf_reset(&out);
		const msgpack_object *im = cap_map_get(rec, "image");
		if (im && im->type == MSGPACK_OBJECT_STR) cap_buf_add(&out, im->via.str.ptr, im->via.str.size);
		else cap_buf_addc(&out, '-');
		cap_buf_addc(&out, '\t');
		if (cap_rec_u32_array(rd, rec, "ids", &ids, &nids, SIZE_MAX / sizeof *ids) < 0) { rc = -1; break; }
		if (cap_tokenizer_decode(t, ids, nids, &out) < 0) {
			cap_reader_fail(rd, "%s", cap_errmsg());
			rc = -1;
			break;
		}
		free(ids);
		ids = NULL;
		cap_buf_addc(&out, '\n');
		if (fwrite(out.data, 1, out.len, stdout) != out.len) break;
	}
	if (rc < 0) warnx("%s", cap_errmsg());
	free(ids);
	cap_buf_free(&out);
	cap_tokenizer_free(t);
	cap_reader_close(rd);
	return rc < 0 ? 1 : 0;
}

static int decode_text(const struct opts *o, const char *const *files, int n)
{
	if (!o->tokenizer) usage_error("decode: ids as text need --tokenizer%s", "");
	cap_tokenizer *t = cap_tokenizer_load(o->tokenizer);
	if (!t) errx(1, "%s", cap_errmsg());
	cap_buf out = { 0 };
	uint32_t *ids = NULL;
	size_t cap = 0, nids;
	int rc = 0;
	for (int f = 0; f < n && rc == 0; f++) {
		char *d;
		size_t len;
		const char *name = strcmp(files[f], "-") == 0 ? "<stdin>" : files[f];
		if (cap_read_file(files[f], 0, &d, &len) < 0) { warnx("%s", cap_errmsg()); rc = -1; break; }
		uint64_t line = 0;
		for (size_t pos = 0; pos < len && rc == 0;) {
			const char *s = d + pos, *nl = memchr(s, '\n', len - pos);
			size_t l = nl ? (size_t)(nl - s) : len - pos;
			pos += l + (nl ? 1 : 0);
			line++;
			nids = 0;
			for (size_t i = 0; i < l;) {
				if (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == ',') { i++; continue; }
				unsigned long long v = 0;
				size_t j = i;
				while (j < l && s[j] >= '0' && s[j] <= '9' && v <= UINT32_MAX) v = v * 10 + (unsigned)(s[j++] - '0');
				if (j == i || v > UINT32_MAX || (j < l && s[j] != ' ' && s[j] != '\t' && s[j] != '\r' && s[j] != ',')) {
					warnx("%s: line %llu: expected ids (unsigned integers separated by spaces)", name,
					      (unsigned long long)line);
					rc = -1;
					break;
				}
				if (nids == cap) { cap = cap ? 2 * cap : 64; ids = cap_xrealloc(ids, cap * sizeof *ids); }
				ids[nids++] = (uint32_t)v;
				i = j;
			}
			if (rc) break;
			cap_buf_reset(&out);
			if (cap_tokenizer_decode(t, ids, nids, &out) < 0) {
				warnx("%s: line %llu: %s", name, (unsigned long long)line, cap_errmsg());
				rc = -1;
				break;
			}
			cap_buf_addc(&out, '\n');
			if (fwrite(out.data, 1, out.len, stdout) != out.len) rc = -1;
		}
		free(d);
	}
	free(ids);
	cap_buf_free(&out);
	cap_tokenizer_free(t);
	return rc < 0 ? 1 : 0;
}

static int cmd_decode(const struct opts *o)
{
	static const char *const stdin_only[] = { "-" };
	const char *const *files = o->nfiles ? o->files : stdin_only;
	int n = o->nfiles ? o->nfiles : 1;
	int c = first_byte(files[0]);
	if (c == EOF) errx(1, "%s: empty input", strcmp(files[0], "-") == 0 ? "<stdin>" : files[0]);
	return is_msgpack_map(c) ? decode_stream(o, files, n) : decode_text(o, files, n);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "min-count", required_argument, NULL, 'm' },
		{ "split", required_argument, NULL, 's' },
		{ "format", required_argument, NULL, 'f' },
		{ "keep-punct", no_argument, NULL, 'p' },
		{ "tokenizer", required_argument, NULL, 't' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .min_count = 5, .format = CAP_CAPTIONS_AUTO };
	if (argc < 2) { fprintf(stderr, "cap-tokenize: missing command (vocab, encode or decode)\n"); usage_error(NULL, NULL); }
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) { usage(stdout); return 0; }
	if (strcmp(cmd, "--version") == 0) { printf("cap-tokenize cap %s\n", CAP_VERSION); return 0; }
	if (strcmp(cmd, "vocab") == 0) o.cmd = CMD_VOCAB;
	else if (strcmp(cmd, "encode") == 0) o.cmd = CMD_ENCODE;
	else if (strcmp(cmd, "decode") == 0) o.cmd = CMD_DECODE;
	else usage_error("unknown command '%s' (vocab, encode or decode)", cmd);
	int seen[256] = { 0 }, c;
	while ((c = cap_getopt(argc - 1, argv + 1, "o:", longopts)) != -1) {
		char *end;
		switch (c) {
		case 'm':
			errno = 0;
			o.min_count = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-' || o.min_count < 1 || o.min_count > UINT32_MAX)
				usage_error("--min-count: '%s' is not a count from 1 to 4294967295", optarg);
			break;
		case 's': o.split = optarg; break;
		case 'f':
			if (cap_caption_format_parse(optarg, &o.format) < 0)
				usage_error("--format: unknown format '%s' (flickr8k, csv, coco, karpathy, tsv)", optarg);
			break;
		case 'p': o.keep_punct = 1; break;
		case 't': o.tokenizer = optarg; break;
		case 'o': o.output = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("cap-tokenize cap %s\n", CAP_VERSION); return 0;
		default: usage_error(NULL, NULL);
		}
		seen[c & 0xff] = 1;
	}
	o.files = (const char **)argv + 1 + optind;
	o.nfiles = argc - 1 - optind;
	/* Options that mean nothing for the command are mistakes, not silently ignored. */
	static const char *const allowed[] = { "mspfo", "tsfo", "t" };
	static const struct { char c; const char *name; } names[] = {
		{ 'm', "--min-count" }, { 's', "--split" }, { 'f', "--format" }, { 'p', "--keep-punct" },
		{ 't', "--tokenizer" }, { 'o', "--output" },
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (seen[(unsigned char)names[i].c] && !strchr(allowed[o.cmd], names[i].c))
			usage_error("%s does not apply to this command", names[i].name);
	if (o.cmd == CMD_ENCODE && !o.tokenizer) usage_error("encode needs --tokenizer FILE%s", "");
	int rc;
	switch (o.cmd) {
	case CMD_VOCAB: rc = cmd_vocab(&o); break;
	case CMD_ENCODE: rc = cmd_encode(&o); break;
	default: rc = cmd_decode(&o); break;
	}
	/* A write error already reported (rc != 0) is not reported again. */
	if ((fflush(stdout) != 0 || ferror(stdout)) && rc == 0) err(1, "stdout");
	return rc;
}
