/* cap-report: one self-contained HTML page for a run: the test images with the generated
 * captions, references and per-image scores, the corpus scores, the loss curves and the
 * settings (lib/report/report.h renders it; this file reads the run's files). */
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/cli.h"
#include "core/error.h"
#include "core/file.h"
#include "core/json.h"
#include "core/outfile.h"
#include "io/mpjson.h"
#include "io/stream.h"
#include "io/tensors.h"
#include "report/base64.h"
#include "report/html.h"
#include "report/report.h"
#include "report/thumb.h"
#include "text/caption_sources.h"
#include "text/tokenizer.h"

static void usage(FILE *f)
{
	fprintf(f,
	  "usage: cap-report --generated GEN [--references REFS] [--scores SCORES] [--log METRICS]\n"
	  "                  [--model MODEL] [--settings FILE] [--images DIR]... [--link]\n"
	  "                  [--thumb N] [--max-images N] [--title TEXT] [-o OUT]\n"
	  "Writes one self-contained HTML page for a run (default: stdout).\n"
	  "  --generated GEN    the 'generated' stream of cap-generate (required)\n"
	  "  --references REFS  reference captions: a captions stream or a caption file\n"
	  "  --scores SCORES    the output of cap-eval --json --per-image\n"
	  "  --log METRICS      cap-train's --log stream: the loss curves\n"
	  "  --model MODEL      the model: its settings, and its history when there is no --log\n"
	  "  --settings FILE    KEY=VALUE lines (a pipeline's settings.txt)\n"
	  "  --images DIR       where the images are looked for by name (repeatable)\n"
	  "  --link             link the image files (relative to OUT) instead of embedding thumbnails\n"
	  "  --thumb N          thumbnails fit in N x N pixels (default 160)\n"
	  "  --max-images N     show at most the first N images (default 1000)\n"
	  "  --title TEXT       the page's title\n"
	  "  -o OUT             output file, written atomically\n");
}

/* ---- images and their references ---- */
typedef struct image {
	char *name, *caption;
	char **refs;
	size_t nrefs, cap;
	int scored;
	double bleu[4], cider_d, rouge_l;
} image;

typedef struct run {
	cap_wordmap *index;   /* image name -> 1 + index in images */
	image *images;
	size_t n, cap;
	size_t refs_total, refs_unmatched;
} run;

static image *find(run *r, const char *name, size_t len)
{
	uint32_t *v = cap_wordmap_get(r->index, name, len);
	return v && *v ? &r->images[*v - 1] : NULL;
}

/* also tried without a directory, as cap-eval does */
static image *find_loose(run *r, const char *name, size_t len)
{
	image *im = find(r, name, len);
	if (im) return im;
	const char *slash = memrchr(name, '/', len);
	return slash ? find(r, slash + 1, len - (size_t)(slash + 1 - name)) : NULL;
}

static void add_ref(run *r, const char *name, size_t nlen, const char *text, size_t tlen)
{
	image *im = find_loose(r, name, nlen);
	if (!im) {
		r->refs_unmatched++;
		return;
	}
	if (im->nrefs == im->cap) {
		im->cap = im->cap ? 2 * im->cap : 5;
		im->refs = cap_xrealloc(im->refs, im->cap * sizeof *im->refs);
	}
	char *t = cap_xmalloc(tlen + 1);
	memcpy(t, text, tlen);
	t[tlen] = 0;
	im->refs[im->nrefs++] = t;
	r->refs_total++;
}

static void add_kv(cap_report_kv **kv, size_t *n, const char *group, const char *key, const char *value);

static void read_generated(run *r, const char *path, cap_report_kv **kv, size_t *nkv)
{
	const char *paths[1] = { path };
	cap_reader *rd = cap_reader_open(paths, 1, "generated");
	if (!rd) errx(1, "%s", cap_errmsg());
	const msgpack_object *dec = cap_map_get(cap_reader_header(rd), "decoding");
	if (dec && dec->type == MSGPACK_OBJECT_MAP) {
		for (uint32_t i = 0; i < dec->via.map.size; i++) {
			const msgpack_object_kv *p = &dec->via.map.ptr[i];
			char *key = cap_obj_strdup(&p->key);
			if (!key) continue;
			cap_buf v = { 0 };
			if (p->val.type == MSGPACK_OBJECT_STR) cap_buf_add(&v, p->val.via.str.ptr, p->val.via.str.size);
			else cap_mpjson_append(&v, &p->val, &(cap_mpjson_opts){ 0, 200 });
			cap_buf_addc(&v, 0);
			add_kv(kv, nkv, "decoding", key, v.data);
			free(key);
			cap_buf_free(&v);
		}
	}
	const msgpack_object *rec;
	int k;
	while ((k = cap_reader_next(rd, &rec)) > 0) {
		const char *img, *cap;
		size_t il, cl;
		if (cap_rec_str(rd, rec, "image", &img, &il) < 0 || cap_rec_str(rd, rec, "caption", &cap, &cl) < 0)
			errx(1, "%s", cap_errmsg());
		int added;
		uint32_t *slot = cap_wordmap_put(r->index, img, il, &added);
		if (!added) {
			cap_reader_fail(rd, "image '%.*s' a second time", (int)il, img);
			errx(1, "%s", cap_errmsg());
		}
		if (r->n == r->cap) {
			r->cap = r->cap ? 2 * r->cap : 64;
			r->images = cap_xrealloc(r->images, r->cap * sizeof *r->images);
		}
		image *im = &r->images[r->n++];
		memset(im, 0, sizeof *im);
		im->name = strndup(img, il);
		im->caption = strndup(cap, cl);
		*slot = (uint32_t)r->n;
	}
	if (k < 0) errx(1, "%s", cap_errmsg());
	cap_reader_close(rd);
	if (!r->n) errx(1, "%s: no generated caption", path);
}

static int ref_fn(void *ctx, const cap_caption *c)
{
	add_ref(ctx, c->image, c->image_len, c->text, c->text_len);
	return 0;
}

static void read_references(run *r, const char *path)
{
	char *data;
	size_t len;
	if (cap_read_file(path, 0, &data, &len) < 0) errx(1, "%s", cap_errmsg());
	/* a cap stream starts with a msgpack map: 0x80..0x8f, 0xde or 0xdf */
	int stream = len > 0 && ((unsigned char)data[0] >> 4 == 8 || (unsigned char)data[0] == 0xde ||
	                         (unsigned char)data[0] == 0xdf);
	if (stream) {
		free(data);
		const char *paths[1] = { path };
		cap_reader *rd = cap_reader_open(paths, 1, "captions");
		if (!rd) errx(1, "%s", cap_errmsg());
		const msgpack_object *rec;
		int k;
		while ((k = cap_reader_next(rd, &rec)) > 0) {
			const char *img, *text;
			size_t il, tl;
			if (cap_rec_str(rd, rec, "image", &img, &il) < 0 || cap_rec_str(rd, rec, "text", &text, &tl) < 0)
				errx(1, "%s", cap_errmsg());
			add_ref(r, img, il, text, tl);
		}
		if (k < 0) errx(1, "%s", cap_errmsg());
		cap_reader_close(rd);
		return;
	}
	cap_caption_source src = { 0 };
	if (cap_caption_read(&src, path, data, len, ref_fn, r) != 0) errx(1, "%s", cap_errmsg());
	cap_caption_source_free(&src);
	free(data);
}

static int json_num(const cap_json *j, const char *key, double *out)
{
	const cap_json *v = cap_json_get(j, key);
	if (!v || v->type != CAP_JSON_NUMBER) return -1;
	*out = v->number;
	return 0;
}

static int json_bleu(const cap_json *j, double *b)
{
	const cap_json *v = cap_json_get(j, "bleu");
	if (!v || v->type != CAP_JSON_ARRAY || v->n != 4) return -1;
	for (int i = 0; i < 4; i++) {
		if (v->items[i]->type != CAP_JSON_NUMBER) return -1;
		b[i] = v->items[i]->number;
	}
	return 0;
}

static void read_scores(run *r, const char *path, cap_report *rep)
{
	char *data;
	size_t len;
	if (cap_read_file(path, 0, &data, &len) < 0) errx(1, "%s", cap_errmsg());
	cap_json *j = cap_json_parse(data, len);
	if (!j) errx(1, "%s: expected the output of cap-eval --json: %s", path, cap_errmsg());
	double imgs, refs;
	if (json_bleu(j, rep->bleu) < 0 || json_num(j, "cider_d", &rep->cider_d) < 0 ||
	    json_num(j, "rouge_l", &rep->rouge_l) < 0 || json_num(j, "images", &imgs) < 0 ||
	    json_num(j, "references", &refs) < 0)
		errx(1, "%s: expected the output of cap-eval --json (bleu, cider_d, rouge_l, images, references)", path);
	rep->scored = 1;
	rep->scored_images = (size_t)imgs;
	rep->references = (size_t)refs;
	const cap_json *per = cap_json_get(j, "per_image");
	if (per && per->type == CAP_JSON_ARRAY) {
		for (size_t i = 0; i < per->n; i++) {
			const cap_json *p = per->items[i];
			const char *name = cap_json_get_str(p, "image");
			image *im = name ? find_loose(r, name, strlen(name)) : NULL;
			if (!im) continue;
			if (json_bleu(p, im->bleu) < 0 || json_num(p, "cider_d", &im->cider_d) < 0 ||
			    json_num(p, "rouge_l", &im->rouge_l) < 0)
				errx(1, "%s: per_image item %zu: expected image, bleu, cider_d, rouge_l", path, i + 1);
			im->scored = 1;
		}
	}
	cap_json_free(j);
	free(data);
}

/* ---- loss curves ---- */
typedef struct curve {
	double *x, *y;
	size_t n, cap;
} curve;

static void curve_add(curve *c, double x, double y)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? 2 * c->cap : 64;
		c->x = cap_xrealloc(c->x, c->cap * sizeof *c->x);
		c->y = cap_xrealloc(c->y, c->cap * sizeof *c->y);
	}
	c->x[c->n] = x;
	c->y[c->n++] = y;
}

/* Epoch records give the train and validation curves; step records the per-step loss, placed
 * at epoch - 1 + k / (steps in that epoch). */
static void read_log(const char *path, curve *train, curve *val, curve *steps)
{
	const char *paths[1] = { path };
	cap_reader *rd = cap_reader_open(paths, 1, "metrics");
	if (!rd) errx(1, "%s", cap_errmsg());
	const msgpack_object *rec;
	int k;
	curve ep = { 0 };   /* step records: x = epoch, y = loss, placed after each epoch */
	while ((k = cap_reader_next(rd, &rec)) > 0) {
		const msgpack_object *type = cap_map_get(rec, "type");
		uint64_t e;
		double v;
		if (cap_obj_is_str(type, "step")) {
			if (cap_rec_uint(rd, rec, "epoch", &e) < 0 || cap_obj_double(cap_map_get(rec, "loss"), &v) < 0)
				errx(1, "%s: a step record needs 'epoch' and 'loss'", cap_reader_name(rd));
			curve_add(&ep, (double)e, v);
		} else if (cap_obj_is_str(type, "epoch")) {
			if (cap_rec_uint(rd, rec, "epoch", &e) < 0 || cap_obj_double(cap_map_get(rec, "train_loss"), &v) < 0)
				errx(1, "%s: an epoch record needs 'epoch' and 'train_loss'", cap_reader_name(rd));
			curve_add(train, (double)e, v);
			if (cap_obj_double(cap_map_get(rec, "val_loss"), &v) == 0)
				curve_add(val, (double)e, v);
		}
	}
	if (k < 0) errx(1, "%s", cap_errmsg());
	cap_reader_close(rd);
	/* spread each epoch's steps over (epoch - 1, epoch] */
	for (size_t i = 0; i < ep.n;) {
		size_t j = i;
		while (j < ep.n && ep.x[j] == ep.x[i]) j++;
		for (size_t s = i; s < j; s++)
			curve_add(steps, ep.x[i] - 1 + (double)(s - i + 1) / (double)(j - i), ep.y[s]);
		i = j;
	}
	free(ep.x);
	free(ep.y);
}

static void read_history(const char *path, const char *hist, curve *train, curve *val)
{
	cap_json *j = cap_json_parse(hist, strlen(hist));
	const cap_json *eps = j ? cap_json_get(j, "epochs") : NULL;
	if (!eps || eps->type != CAP_JSON_ARRAY) errx(1, "%s: metadata 'history' has no 'epochs' list", path);
	for (size_t i = 0; i < eps->n; i++) {
		double e, v;
		if (json_num(eps->items[i], "epoch", &e) < 0) continue;
		if (json_num(eps->items[i], "train_loss", &v) == 0) curve_add(train, e, v);
		if (json_num(eps->items[i], "val_loss", &v) == 0) curve_add(val, e, v);
	}
	cap_json_free(j);
}

/* ---- settings ---- */
static void add_kv(cap_report_kv **kv, size_t *n, const char *group, const char *key, const char *value)
{
	*kv = cap_xrealloc(*kv, (*n + 1) * sizeof **kv);
	(*kv)[(*n)++] = (cap_report_kv){ cap_xstrdup(group), cap_xstrdup(key), cap_xstrdup(value) };
}

static void read_settings(const char *path, cap_report_kv **kv, size_t *n)
{
	FILE *f = fopen(path, "r");
	if (!f) err(1, "%s", path);
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long ln = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		ln++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
		if (!len || line[0] == '#') continue;
		char *eq = strchr(line, '=');
		if (!eq) errx(1, "%s: line %ld: expected KEY=VALUE", path, ln);
		*eq = 0;
		char *dot = strchr(line, '.');
		if (dot) {
			*dot = 0;
			add_kv(kv, n, line, dot + 1, eq + 1);
		} else {
			add_kv(kv, n, "run", line, eq + 1);
		}
	}
	if (ferror(f)) err(1, "%s", path);
	free(line);
	fclose(f);
}

/* ---- image files ---- */
static char *locate(const char *name, char **dirs, int ndirs)
{
	struct stat st;
	for (int i = 0; i < ndirs; i++) {
		char *p;
		if (asprintf(&p, "%s/%s", dirs[i], name) < 0) abort();
		if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) return p;
		free(p);
		const char *slash = strrchr(name, '/');
		if (slash) {
			if (asprintf(&p, "%s/%s", dirs[i], slash + 1) < 0) abort();
			if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) return p;
			free(p);
		}
	}
	if (stat(name, &st) == 0 && S_ISREG(st.st_mode)) return cap_xstrdup(name);
	return NULL;
}

/* The path of file relative to the folder dir (both made absolute). */
static char *relative(const char *dir, const char *file)
{
	char *d = realpath(dir, NULL), *f = realpath(file, NULL);
	if (!d || !f) { free(d); free(f); return cap_xstrdup(file); }
	size_t i = 0, common = 0;
	while (d[i] && f[i] && d[i] == f[i]) {
		if (d[i] == '/') common = i;
		i++;
	}
	if (!d[i] && f[i] == '/') common = i;   /* dir is a prefix of file */
	cap_buf b = { 0 };
	for (const char *p = d + common; *p; p++)
		if (*p == '/') cap_buf_adds(&b, "../");
	cap_buf_adds(&b, f + common + 1);
	free(d);
	free(f);
	return b.data;
}

int main(int argc, char **argv)
{
	enum { O_GEN = 256, O_REFS, O_SCORES, O_LOG, O_MODEL, O_SETTINGS, O_IMAGES, O_LINK, O_THUMB,
	       O_MAX, O_TITLE, O_HELP, O_VERSION };
	static const struct option longopts[] = {
		{ "generated", required_argument, NULL, O_GEN },
		{ "references", required_argument, NULL, O_REFS },
		{ "scores", required_argument, NULL, O_SCORES },
		{ "log", required_argument, NULL, O_LOG },
		{ "model", required_argument, NULL, O_MODEL },
		{ "settings", required_argument, NULL, O_SETTINGS },
		{ "images", required_argument, NULL, O_IMAGES },
		{ "link", no_argument, NULL, O_LINK },
		{ "thumb", required_argument, NULL, O_THUMB },
		{ "max-images", required_argument, NULL, O_MAX },
		{ "title", required_argument, NULL, O_TITLE },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *gen = NULL, *refs = NULL, *scores = NULL, *logp = NULL, *model = NULL, *settings = NULL;
	const char *title = NULL, *out_path = NULL;
	char **dirs = cap_xcalloc((size_t)argc, sizeof *dirs);
	int ndirs = 0, link = 0, thumb = 160, c;
	long max_images = 1000;
	while ((c = getopt_long(argc, argv, "ho:", longopts, NULL)) != -1) {
		switch (c) {
		case O_GEN: gen = optarg; break;
		case O_REFS: refs = optarg; break;
		case O_SCORES: scores = optarg; break;
		case O_LOG: logp = optarg; break;
		case O_MODEL: model = optarg; break;
		case O_SETTINGS: settings = optarg; break;
		case O_IMAGES: dirs[ndirs++] = optarg; break;
		case O_LINK: link = 1; break;
		case O_THUMB: thumb = (int)cap_opt_int("thumb", optarg, 16, 4096); break;
		case O_MAX: max_images = (long)cap_opt_int("max-images", optarg, 0, LONG_MAX); break;
		case O_TITLE: title = optarg; break;
		case 'o': out_path = optarg; break;
		case 'h': case O_HELP: usage(stdout); free(dirs); return 0;
		case O_VERSION: printf("cap-report cap %s\n", CAP_VERSION); free(dirs); return 0;
		default: usage(stderr); free(dirs); return 2;
		}
	}
	if (optind < argc || !gen) {
		if (optind < argc) warnx("unexpected argument '%s'", argv[optind]);
		else warnx("--generated is required");
		usage(stderr);
		free(dirs);
		return 2;
	}

	run r = { .index = cap_wordmap_new() };
	cap_report rep = { .title = title ? title : "cap run report" };
	cap_report_kv *kv = NULL;
	size_t nkv = 0;
	if (settings) read_settings(settings, &kv, &nkv);
	read_generated(&r, gen, &kv, &nkv);
	if (refs) read_references(&r, refs);
	if (scores) read_scores(&r, scores, &rep);

	curve train = { 0 }, val = { 0 }, steps = { 0 };
	if (logp) read_log(logp, &train, &val, &steps);
	if (model) {
		cap_tensors *ts = cap_tensors_load(model);
		if (!ts) errx(1, "%s", cap_errmsg());
		static const char *keys[] = { "feature_dim", "embed", "hidden", "layers", "vocab_size", "dropout",
		                              "seed", "encoder", "tool", NULL };
		for (int i = 0; keys[i]; i++) {
			const char *v = cap_tensors_meta(ts, keys[i]);
			if (v) add_kv(&kv, &nkv, "model", keys[i], v);
		}
		const char *hist = cap_tensors_meta(ts, "history");
		if (!logp && hist) read_history(model, hist, &train, &val);
		cap_tensors_free(ts);
	}
	cap_plot_series curves[3];
	size_t nc = 0;
	if (steps.n) curves[nc++] = (cap_plot_series){ "loss per step", "#9ecae1", steps.x, steps.y, steps.n, 1, 0 };
	if (train.n) curves[nc++] = (cap_plot_series){ "training loss", "#1f77b4", train.x, train.y, train.n, 2.5, train.n <= 40 };
	if (val.n) curves[nc++] = (cap_plot_series){ "validation loss", "#d62728", val.x, val.y, val.n, 2.5, val.n <= 40 };
	rep.curves = curves;
	rep.ncurves = nc;
	rep.settings = kv;
	rep.nsettings = nkv;

	/* the thumbnails */
	char *out_dir = NULL;
	if (link) {
		const char *slash = out_path ? strrchr(out_path, '/') : NULL;
		out_dir = slash ? strndup(out_path, (size_t)(slash - out_path)) : cap_xstrdup(".");
		if (!*out_dir) { free(out_dir); out_dir = cap_xstrdup("/"); }
	}
	size_t shown = r.n < (size_t)max_images ? r.n : (size_t)max_images, missing = 0, bad = 0;
	cap_report_image *ri = cap_xcalloc(shown ? shown : 1, sizeof *ri);
	const char *first_missing = NULL;
	for (size_t i = 0; i < shown; i++) {
		image *im = &r.images[i];
		cap_report_image *o = &ri[i];
		*o = (cap_report_image){ im->name, im->caption, (const char **)im->refs, im->nrefs, im->scored,
		                         { im->bleu[0], im->bleu[1], im->bleu[2], im->bleu[3] }, im->cider_d,
		                         im->rouge_l, NULL, 0, 0 };
		char *file = locate(im->name, dirs, ndirs);
		if (!file) {
			if (!missing++) first_missing = im->name;
			continue;
		}
		if (link) {
			cap_image img = { 0 };
			if (cap_image_load(file, &img) < 0) {
				warnx("%s (shown as missing)", cap_errmsg());
				bad++;
			} else {
				cap_thumb_size(img.width, img.height, thumb, &o->width, &o->height);
				char *rel = relative(out_dir, file);
				cap_buf u = { 0 };
				cap_url_path(&u, rel);
				o->src = u.data;
				free(rel);
			}
			cap_image_free(&img);
		} else {
			unsigned char *jpg;
			size_t n;
			if (cap_thumb_jpeg(file, thumb, 85, &jpg, &n, &o->width, &o->height) < 0) {
				warnx("%s (shown as missing)", cap_errmsg());
				bad++;
			} else {
				cap_buf u = { 0 };
				cap_buf_adds(&u, "data:image/jpeg;base64,");
				cap_base64_append(&u, jpg, n);
				o->src = u.data;
				free(jpg);
			}
		}
		/* a small image is shown enlarged to the thumbnail's size */
		if (o->src && o->width < thumb && o->height < thumb) {
			int w = o->width, h = o->height;
			o->width = w >= h ? thumb : (int)((long)w * thumb / h);
			o->height = w >= h ? (int)((long)h * thumb / w) : thumb;
		}
		free(file);
	}
	if (missing)
		warnx("%zu of %zu images not found (the first: %s; give their folder with --images)", missing, shown,
		      first_missing);
	rep.images = ri;
	rep.nimages = shown;
	rep.images_total = r.n;

	cap_buf page = { 0 };
	cap_report_html(&page, &rep);
	cap_outfile *of = cap_outfile_open(out_path);
	if (!of) errx(1, "%s", cap_errmsg());
	if (fwrite(page.data, 1, page.len, cap_outfile_fp(of)) != page.len) {
		cap_outfile_abort(of);
		errx(1, "%s: write error", out_path ? out_path : "<stdout>");
	}
	if (cap_outfile_close(of) < 0) errx(1, "%s", cap_errmsg());

	cap_buf_free(&page);
	for (size_t i = 0; i < shown; i++) free((char *)ri[i].src);
	free(ri);
	for (size_t i = 0; i < r.n; i++) {
		for (size_t k = 0; k < r.images[i].nrefs; k++) free(r.images[i].refs[k]);
		free(r.images[i].refs);
		free(r.images[i].name);
		free(r.images[i].caption);
	}
	free(r.images);
	cap_wordmap_free(r.index);
	for (size_t i = 0; i < nkv; i++) {
		free((char *)kv[i].group);
		free((char *)kv[i].key);
		free((char *)kv[i].value);
	}
	free(kv);
	free(train.x); free(train.y); free(val.x); free(val.y); free(steps.x); free(steps.y);
	free(out_dir);
	free(dirs);
	return bad ? 1 : 0;
}
