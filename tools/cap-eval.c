/* cap-eval: scores generated captions against references with BLEU-1..4, CIDEr-D and ROUGE-L
 * as coco-caption computes them (lib/eval/metrics.h). Text is normalised with cap-tokenize's rules. */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "text/caption_sources.h"
#include "core/cli.h"
#include "core/outfile.h"
#include "core/error.h"
#include "core/file.h"
#include "eval/evalset.h"
#include "eval/metrics.h"
#include "text/split.h"
#include "io/stream.h"
#include "text/tokenizer.h"

static void usage(FILE *f)
{
	fprintf(f,
	  "usage: cap-eval --references REFS [--split FILE] [--format F] [--json] [--per-image]\n"
	  "                [-o OUT] [GENERATED...]\n"
	  "Scores generated captions (cap-generate streams or IMAGE<TAB>CAPTION lines; absent or\n"
	  "'-': stdin) against references with BLEU-1..4, CIDEr-D and ROUGE-L as coco-caption.\n"
	  "  --references REFS  a captions stream or a file cap-tokenize reads (Flickr8k token\n"
	  "                     file, captions.txt CSV, COCO or Karpathy JSON, TSV); repeatable\n"
	  "  --split FILE       only references of the images listed in FILE (one name a line)\n"
	  "  --format F         format of REFS: flickr8k, csv, coco, karpathy, tsv (default: guess)\n"
	  "  --json             print the scores as one JSON object\n"
	  "  --per-image        also print each image's scores\n"
	  "  -o, --output OUT   write the scores there (atomically) instead of standard output\n"
	  "BLEU and ROUGE-L are on a 0-1 scale; CIDEr-D is on coco-caption's scale (x10, 0-10).\n");
}

typedef struct ctx {
	cap_evalset *set;
	cap_pretok pt;
	cap_buf words;          /* NUL-separated words of the current text */
	const char **wp;        /* pointers into words */
	size_t wp_cap;
	cap_wordmap *split;     /* images to keep, or NULL */
	size_t kept, dropped;   /* references kept / outside the split */
} ctx;

/* Normalises text with the tokenizer's rules (lowercase, \w+ words, punctuation dropped);
 * special tokens count as their literal text (a generated "<unk>" stays one word). Returns the
 * number of words in c->wp, or -1 on invalid UTF-8. */
static long normalise(ctx *c, const char *text, size_t len)
{
	if (cap_pretokenize(&c->pt, text, len, 0) < 0) return -1;
	cap_buf_reset(&c->words);
	size_t *offs = cap_xmalloc((c->pt.n ? c->pt.n : 1) * sizeof *offs);
	for (size_t i = 0; i < c->pt.n; i++) {
		const cap_piece *p = &c->pt.pieces[i];
		offs[i] = c->words.len;
		if (p->special >= 0) cap_buf_adds(&c->words, cap_tok_special[p->special]);
		else cap_buf_add(&c->words, c->pt.norm + p->off, p->len);
		cap_buf_addc(&c->words, 0);
	}
	if (c->pt.n > c->wp_cap) {
		c->wp_cap = c->pt.n * 2;
		c->wp = cap_xrealloc(c->wp, c->wp_cap * sizeof *c->wp);
	}
	/* <start>/<end>/<pad> are markers, not words. */
	size_t n = 0;
	for (size_t i = 0; i < c->pt.n; i++) {
		int sp = c->pt.pieces[i].special;
		if (sp == CAP_TOK_START || sp == CAP_TOK_END || sp == CAP_TOK_PAD) continue;
		c->wp[n++] = c->words.data + offs[i];
	}
	free(offs);
	return (long)n;
}

static int in_split(const ctx *c, const char *image, size_t len)
{
	return !c->split || cap_wordmap_get(c->split, image, len) != NULL;
}

/* One reference caption of image (NUL-terminated, len bytes): dropped outside the split,
 * otherwise normalised and added. -1 on invalid UTF-8. */
static int add_ref_text(ctx *c, const char *image, size_t len, const char *text, size_t tlen)
{
	if (!in_split(c, image, len)) { c->dropped++; return 0; }
	long n = normalise(c, text, tlen);
	if (n < 0) return -1;
	cap_evalset_add_ref(c->set, image, c->wp, (size_t)n);
	c->kept++;
	return 0;
}

static int add_ref(void *vc, const cap_caption *cp)
{
	if (add_ref_text(vc, cp->image, cp->image_len, cp->text, cp->text_len) < 0)
		return cap_fail("line %llu: %s", (unsigned long long)cp->line, cap_errmsg());
	return 0;
}

static int looks_like_stream(const char *data, size_t len)
{
	unsigned char b = len ? (unsigned char)data[0] : 0;
	return len && ((b >= 0x80 && b <= 0x8f) || b == 0xde || b == 0xdf);
}

static int peek_stream(const char *path, int *is_stream)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f) return cap_fail("%s: %s", path, strerror(errno));
	int ch = getc(f);
	char b = (char)ch;
	*is_stream = ch != EOF && looks_like_stream(&b, 1);
	if (f == stdin) { if (ch != EOF) ungetc(ch, f); }
	else fclose(f);
	return 0;
}

/* Reads a stream of one kind and hands each record's image (copied, NUL-terminated) and its
 * text field to add; *count (if given) counts the records. A record add fails is reported
 * through the reader with the field's name. */
typedef int (*text_fn)(ctx *c, const char *image, size_t len, const char *text, size_t tlen);

static int read_stream_texts(ctx *c, const char *path, const char *kind, const char *key,
                             text_fn add, size_t *count)
{
	const char *paths[1] = { path };
	cap_reader *r = cap_reader_open(paths, 1, kind);
	if (!r) return -1;
	const msgpack_object *rec;
	int k;
	while ((k = cap_reader_next(r, &rec)) == 1) {
		const char *img, *text;
		size_t il, tl;
		if (cap_rec_str(r, rec, "image", &img, &il) < 0 || cap_rec_str(r, rec, key, &text, &tl) < 0) {
			k = -1;
			break;
		}
		char *name = cap_xmalloc(il + 1);
		memcpy(name, img, il);
		name[il] = 0;
		int rc = add(c, name, il, text, tl);
		free(name);
		if (rc < 0) { cap_reader_fail(r, "%s: %s", key, cap_errmsg()); k = -1; break; }
		if (count) (*count)++;
	}
	cap_reader_close(r);
	return k < 0 ? -1 : 0;
}

static int read_refs(ctx *c, cap_caption_source *src, const char *path)
{
	char *data;
	size_t len;
	if (cap_read_file(path, 0, &data, &len) < 0) return -1;
	int rc;
	if (looks_like_stream(data, len)) {
		free(data);
		if (strcmp(path, "-") == 0) return cap_fail("-: read references from a file, not stdin");
		return read_stream_texts(c, path, "captions", "text", add_ref_text, NULL);
	}
	rc = cap_caption_read(src, path, data, len, add_ref, c);
	free(data);
	return rc < 0 ? -1 : 0;
}

/* Matches a generated caption to the references by its image name, or, when that names no
 * referenced image, by its last path component (cap-encode without --basename keeps paths). */
static const char *ref_name(const ctx *c, const char *image)
{
	if (cap_evalset_has_refs(c->set, image)) return image;
	const char *slash = strrchr(image, '/');
	if (slash && slash[1] && cap_evalset_has_refs(c->set, slash + 1)) return slash + 1;
	return image;
}

static int add_hyp(ctx *c, const char *image, size_t len, const char *text, size_t tlen)
{
	(void)len;   /* image is NUL-terminated; len is there to fit text_fn */
	long n = normalise(c, text, tlen);
	if (n < 0) return -1;
	return cap_evalset_add_hyp(c->set, ref_name(c, image), c->wp, (size_t)n);
}

/* IMAGE<TAB>CAPTION lines (cap-generate --text). */
static int read_generated_text(ctx *c, const char *path, size_t *count)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f) return cap_fail("%s: %s", path, strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int rc = 0;
	while ((len = getline(&line, &cap, f)) > 0) {
		lineno++;
		if (line[len - 1] == '\n') line[--len] = 0;
		if (len && line[len - 1] == '\r') line[--len] = 0;
		if (len == 0) continue;
		char *tab = memchr(line, '\t', (size_t)len);
		if (!tab || tab == line || memchr(line, 0, (size_t)len)) {
			rc = cap_fail("%s: line %lu: expected IMAGE<TAB>CAPTION", path, lineno);
			break;
		}
		*tab = 0;
		if (add_hyp(c, line, (size_t)(tab - line), tab + 1, (size_t)(line + len - tab - 1)) < 0) {
			rc = cap_fail_prefix("%s: line %lu", path, lineno);
			break;
		}
		(*count)++;
	}
	if (rc == 0 && ferror(f)) rc = cap_fail("%s: %s", path, strerror(errno));
	free(line);
	if (f != stdin) fclose(f);
	return rc;
}

static void json_scores(cap_buf *b, const cap_scores *s)
{
	cap_buf_printf(b, "\"bleu\":[%.9g,%.9g,%.9g,%.9g],\"cider_d\":%.9g,\"rouge_l\":%.9g",
	               s->bleu[0], s->bleu[1], s->bleu[2], s->bleu[3], s->cider, s->rouge_l);
}

int main(int argc, char **argv)
{
	enum { O_REFS = 256, O_SPLIT, O_FORMAT, O_JSON, O_PER, O_HELP, O_VERSION };
	static const struct option longopts[] = {
		{ "references", required_argument, NULL, O_REFS },
		{ "split", required_argument, NULL, O_SPLIT },
		{ "format", required_argument, NULL, O_FORMAT },
		{ "json", no_argument, NULL, O_JSON },
		{ "per-image", no_argument, NULL, O_PER },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char **refs = cap_xcalloc((size_t)argc + 1, sizeof *refs);
	int nrefs = 0, json = 0, per = 0;
	const char *split = NULL, *out_path = NULL;
	cap_caption_source src = { 0 };
	src.format = CAP_CAPTIONS_AUTO;
	int c;
	while ((c = cap_getopt(argc, argv, "o:", longopts)) != -1) {
		switch (c) {
		case O_REFS: refs[nrefs++] = optarg; break;
		case O_SPLIT: split = optarg; break;
		case O_FORMAT:
			if (cap_caption_format_parse(optarg, &src.format) < 0) {
				warnx("--format: unknown format '%s' (flickr8k, csv, coco, karpathy, tsv)", optarg);
				fprintf(stderr, "Try 'cap-eval --help'.\n");
				free(refs);
				return 2;
			}
			break;
		case O_JSON: json = 1; break;
		case O_PER: per = 1; break;
		case 'o': out_path = optarg; break;
		case O_HELP: usage(stdout); free(refs); return 0;
		case O_VERSION: printf("cap-eval cap %s\n", CAP_VERSION); free(refs); return 0;
		default: usage(stderr); free(refs); return 2;
		}
	}
	if (nrefs == 0) { warnx("--references is required"); usage(stderr); free(refs); return 2; }

	ctx cx = { 0 };
	cx.set = cap_evalset_new();
	if (split && cap_split_read(split, &cx.split) < 0) errx(1, "%s", cap_errmsg());
	for (int i = 0; i < nrefs; i++)
		if (read_refs(&cx, &src, refs[i]) < 0) errx(1, "%s", cap_errmsg());
	if (src.skipped)
		warnx("%s: skipped %zu captions of %zu images whose names are not image files (e.g. %s)",
		      src.skipped_file, src.skipped, src.skipped_images, src.skipped_image);
	if (cx.kept == 0)
		errx(1, "no references read%s", cx.dropped ? " (none of their images is in the split)" : "");

	size_t nhyp = 0;
	int nin = argc - optind;
	for (int i = 0; i < (nin ? nin : 1); i++) {
		const char *path = nin ? argv[optind + i] : "-";
		int is_stream = 0;
		if (peek_stream(path, &is_stream) < 0) errx(1, "%s", cap_errmsg());
		if ((is_stream ? read_stream_texts(&cx, path, "generated", "caption", add_hyp, &nhyp) : read_generated_text(&cx, path, &nhyp)) < 0)
			errx(1, "%s", cap_errmsg());
	}

	cap_evalset_join j;
	cap_evalset_joined(cx.set, &j);
	if (j.hyp_without_ref)
		warnx("%zu generated captions have no reference (e.g. %s); not scored", j.hyp_without_ref,
		      j.first_hyp_without_ref);
	if (j.ref_without_hyp)
		warnx("%zu images with references have no generated caption (e.g. %s); not scored",
		      j.ref_without_hyp, j.first_ref_without_hyp);
	if (j.n == 0)
		errx(1, "nothing to score: %zu generated captions, none of an image with references", nhyp);
	size_t nref_scored = 0;
	for (size_t i = 0; i < j.n; i++) nref_scored += j.items[i].n_refs;

	cap_scores corpus, *pi = per ? cap_xcalloc(j.n, sizeof *pi) : NULL;
	if (cap_metrics(j.items, j.n, &corpus, pi) < 0) errx(1, "%s", cap_errmsg());

	cap_buf b = { 0 };
	if (json) {
		cap_buf_printf(&b, "{\"images\":%zu,\"references\":%zu,\"generated_without_reference\":%zu,"
		               "\"references_without_generated\":%zu,", j.n, nref_scored, j.hyp_without_ref,
		               j.ref_without_hyp);
		json_scores(&b, &corpus);
		cap_buf_adds(&b, ",\"scale\":\"BLEU and ROUGE-L 0-1; CIDEr-D as coco-caption (x10, 0-10)\"");
		if (per) {
			cap_buf_adds(&b, ",\"per_image\":[");
			for (size_t i = 0; i < j.n; i++) {
				cap_buf_adds(&b, i ? ",{\"image\":" : "{\"image\":");
				cap_buf_json_string(&b, j.images[i], strlen(j.images[i]));
				cap_buf_addc(&b, ',');
				json_scores(&b, &pi[i]);
				cap_buf_addc(&b, '}');
			}
			cap_buf_addc(&b, ']');
		}
		cap_buf_adds(&b, "}\n");
	} else {
		if (per) {
			cap_buf_adds(&b, "# image\tBLEU-1\tBLEU-2\tBLEU-3\tBLEU-4\tCIDEr-D\tROUGE-L\n");
			for (size_t i = 0; i < j.n; i++)
				cap_buf_printf(&b, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\n", j.images[i], pi[i].bleu[0],
				               pi[i].bleu[1], pi[i].bleu[2], pi[i].bleu[3], pi[i].cider, pi[i].rouge_l);
			cap_buf_addc(&b, '\n');
		}
		cap_buf_printf(&b, "# %zu images, %zu references; BLEU and ROUGE-L on a 0-1 scale, "
		               "CIDEr-D on coco-caption's (x10, 0-10)\n", j.n, nref_scored);
		for (int k = 0; k < 4; k++) cap_buf_printf(&b, "BLEU-%d\t%.4f\n", k + 1, corpus.bleu[k]);
		cap_buf_printf(&b, "CIDEr-D\t%.4f\nROUGE-L\t%.4f\n", corpus.cider, corpus.rouge_l);
	}
	if (cap_write_file_atomic(out_path, b.data, b.len) < 0) errx(1, "%s", cap_errmsg());
	cap_buf_free(&b);
	free(pi);
	cap_evalset_join_free(&j);
	cap_evalset_free(cx.set);
	cap_pretok_free(&cx.pt);
	cap_buf_free(&cx.words);
	free(cx.wp);
	if (cx.split) cap_wordmap_free(cx.split);
	cap_caption_source_free(&src);
	free(refs);
	if (fflush(stdout) != 0 || ferror(stdout)) err(1, "stdout");
	return 0;
}
