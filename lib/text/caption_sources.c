#include "text/caption_sources.h"
#include "core/buf.h"
#include "core/error.h"
#include "core/json.h"
#include "core/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const format_names[] = { "auto", "flickr8k", "csv", "coco", "karpathy", "tsv" };

int cap_caption_format_parse(const char *name, cap_caption_format *out)
{
	for (size_t i = 0; i < sizeof format_names / sizeof *format_names; i++)
		if (strcmp(name, format_names[i]) == 0) { *out = (cap_caption_format)i; return 0; }
	return -1;
}

const char *cap_caption_format_name(cap_caption_format f)
{
	return (size_t)f < sizeof format_names / sizeof *format_names ? format_names[f] : "?";
}

static size_t skip_bom(const char *d, size_t len)
{
	return len >= 3 && memcmp(d, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* The first line of d: [0, *end) without the newline and a final CR. */
static size_t first_line(const char *d, size_t len)
{
	const char *nl = memchr(d, '\n', len);
	size_t e = nl ? (size_t)(nl - d) : len;
	if (e > 0 && d[e - 1] == '\r') e--;
	return e;
}

/* "NAME#DIGITS" */
static int is_flickr_key(const char *s, size_t n)
{
	size_t i = n;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9') i--;
	return i < n && i >= 2 && s[i - 1] == '#';
}

cap_caption_format cap_caption_detect(const char *data, size_t len)
{
	size_t i = skip_bom(data, len);
	const char *d = data + i;
	len -= i;
	size_t k = 0;
	while (k < len && (d[k] == ' ' || d[k] == '\t' || d[k] == '\r' || d[k] == '\n')) k++;
	if (k < len && d[k] == '{') {
		if (memmem(d, len, "\"annotations\"", 13)) return CAP_CAPTIONS_COCO;
		if (memmem(d, len, "\"sentences\"", 11)) return CAP_CAPTIONS_KARPATHY;
		return CAP_CAPTIONS_AUTO;
	}
	size_t e = first_line(d, len);
	if (e == 13 && memcmp(d, "image,caption", 13) == 0) return CAP_CAPTIONS_CSV;
	const char *tab = memchr(d, '\t', e);
	if (!tab) return CAP_CAPTIONS_AUTO;
	return is_flickr_key(d, (size_t)(tab - d)) ? CAP_CAPTIONS_FLICKR8K : CAP_CAPTIONS_TSV;
}

void cap_caption_source_free(cap_caption_source *src)
{
	cap_wordmap_free(src->per_image);
	cap_wordmap_free(src->skipped_names);
	src->per_image = src->skipped_names = NULL;
}

/* ---------------------------------------------------------------- common checks */

struct ctx {
	cap_caption_source *src;
	const char *name;
	cap_caption_fn fn;
	void *user;
	cap_buf image;  /* NUL-terminated copy of the current image name */
};

/* Text fields: valid UTF-8 and no NUL (which C strings downstream could not carry). */
static int check_text(const char *s, size_t n, const char *what)
{
	size_t bad;
	if (memchr(s, 0, n)) return cap_fail("%s contains a NUL byte", what);
	if (cap_utf8_check(s, n, &bad) < 0) return cap_fail("invalid UTF-8 at byte %zu of the %s", bad + 1, what);
	return 0;
}

static int emit(struct ctx *c, const char *image, size_t ilen, long n, const char *text, size_t tlen,
                uint64_t line)
{
	cap_buf_reset(&c->image);
	cap_buf_add(&c->image, image, ilen);
	cap_caption cap = { c->image.data, ilen, 0, text, tlen, line };
	if (n >= 0) {
		cap.n = (uint32_t)n;
	} else {
		if (!c->src->per_image) c->src->per_image = cap_wordmap_new();
		uint32_t *seen = cap_wordmap_put(c->src->per_image, image, ilen, NULL);
		cap.n = (*seen)++;
	}
	return c->fn(c->user, &cap);
}

static int has_image_ext(const char *s, size_t n)
{
	static const char *const ext[] = { ".jpg", ".jpeg", ".png" };
	for (size_t i = 0; i < 3; i++) {
		size_t l = strlen(ext[i]);
		if (n > l && strncasecmp(s + n - l, ext[i], l) == 0) return 1;
	}
	return 0;
}

static void note_skipped(struct ctx *c, const char *image, size_t ilen, uint64_t line)
{
	cap_caption_source *s = c->src;
	if (s->skipped++ == 0) {
		snprintf(s->skipped_file, sizeof s->skipped_file, "%s", c->name);
		snprintf(s->skipped_image, sizeof s->skipped_image, "%.*s", (int)(ilen < 200 ? ilen : 200), image);
		s->skipped_line = line;
	}
	if (!s->skipped_names) s->skipped_names = cap_wordmap_new();
	int added;
	cap_wordmap_put(s->skipped_names, image, ilen, &added);
	s->skipped_images += (size_t)added;
}

/* ---------------------------------------------------------------- line formats */

static int read_lines(struct ctx *c, const char *d, size_t len, int flickr)
{
	uint64_t line = 0;
	for (size_t pos = skip_bom(d, len); pos < len;) {
		const char *s = d + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl ? 1 : 0);
		line++;
		if (n > 0 && s[n - 1] == '\r') n--;
		size_t k = 0;
		while (k < n && (s[k] == ' ' || s[k] == '\t')) k++;
		if (k == n) continue;  /* blank line */
		if (check_text(s, n, "line") < 0) return cap_fail_prefix("%s: line %llu", c->name, (unsigned long long)line);
		const char *tab = memchr(s, '\t', n);
		if (!tab)
			return cap_fail("%s: line %llu: expected %s, found no tab", c->name, (unsigned long long)line,
			                flickr ? "IMAGE#N<TAB>caption" : "image<TAB>caption");
		size_t klen = (size_t)(tab - s);
		const char *text = tab + 1;
		size_t tlen = n - klen - 1;
		long num = -1;
		size_t ilen = klen;
		if (flickr) {
			const char *hash = memrchr(s, '#', klen);
			if (!hash || !is_flickr_key(s, klen) || klen - (size_t)(hash - s) - 1 > 9)
				return cap_fail("%s: line %llu: expected IMAGE#N<TAB>caption, \"%.*s\" does not end in #N",
				                c->name, (unsigned long long)line, (int)(klen < 100 ? klen : 100), s);
			ilen = (size_t)(hash - s);
			num = strtol(hash + 1, NULL, 10);
		}
		if (ilen == 0) return cap_fail("%s: line %llu: empty image name", c->name, (unsigned long long)line);
		if (flickr && !has_image_ext(s, ilen)) { note_skipped(c, s, ilen, line); continue; }
		int rc = emit(c, s, ilen, num, text, tlen, line);
		if (rc) return rc;
	}
	return 0;
}

/* ---------------------------------------------------------------- CSV (RFC 4180) */

/* Reads one record from d[*pos..len) into fields (each field's bytes, NUL-separated in f, with
 * offsets in off). Returns the number of fields, 0 at the end, -1 on error. */
static int csv_record(struct ctx *c, const char *d, size_t len, size_t *pos, uint64_t *line,
                      cap_buf *f, size_t off[3], size_t flen[3], uint64_t *start_line)
{
	size_t p = *pos;
	if (p >= len) return 0;
	cap_buf_reset(f);
	int nf = 0;
	*start_line = *line;
	for (;;) {  /* one field per iteration */
		size_t fo = f->len;
		if (p < len && d[p] == '"') {
			uint64_t open_line = *line;
			p++;
			for (;;) {
				if (p >= len)
					return cap_fail("%s: line %llu: quoted field not closed before the end of the file",
					                c->name, (unsigned long long)open_line);
				if (d[p] == '"') {
					if (p + 1 < len && d[p + 1] == '"') { cap_buf_addc(f, '"'); p += 2; continue; }
					p++;
					break;
				}
				if (d[p] == '\n') (*line)++;
				cap_buf_addc(f, d[p++]);
			}
			if (p < len && d[p] == '\r' && p + 1 < len && d[p + 1] == '\n') p++;
			if (p < len && d[p] != ',' && d[p] != '\n')
				return cap_fail("%s: line %llu: unexpected character after a closing quote (a quote "
				                "inside a quoted field is written \"\")", c->name, (unsigned long long)*line);
		} else {
			size_t e = p;
			while (e < len && d[e] != ',' && d[e] != '\n') e++;
			size_t fe = e;
			if (fe > p && d[fe - 1] == '\r' && (e == len || d[e] == '\n')) fe--;
			cap_buf_add(f, d + p, fe - p);
			p = e;
		}
		if (nf < 3) { off[nf] = fo; flen[nf] = f->len - fo; }
		nf++;
		cap_buf_addc(f, 0);
		if (p >= len) break;
		if (d[p] == '\n') { p++; (*line)++; break; }
		p++;  /* ',' */
	}
	*pos = p;
	return nf;
}

static int read_csv(struct ctx *c, const char *d, size_t len)
{
	size_t pos = skip_bom(d, len);
	uint64_t line = 1, start;
	cap_buf f = { 0 };
	size_t off[3], flen[3];
	int first = 1, rc = 0, nf;
	while ((nf = csv_record(c, d, len, &pos, &line, &f, off, flen, &start)) > 0) {
		if (nf == 1 && flen[0] == 0) continue;  /* blank line */
		const char *img = f.data + off[0], *text = f.data + off[1];
		if (first && nf == 2 && strcmp(img, "image") == 0 && strcmp(text, "caption") == 0) {
			first = 0;
			continue;
		}
		first = 0;
		if (nf != 2) {
			rc = cap_fail("%s: line %llu: expected 2 fields (image,caption), found %d (a caption with "
			              "a comma must be quoted)", c->name, (unsigned long long)start, nf);
			break;
		}
		if ((rc = check_text(img, flen[0], "image name")) < 0 || (rc = check_text(text, flen[1], "caption")) < 0) {
			cap_fail_prefix("%s: line %llu", c->name, (unsigned long long)start);
			break;
		}
		if (flen[0] == 0) { rc = cap_fail("%s: line %llu: empty image name", c->name, (unsigned long long)start); break; }
		if ((rc = emit(c, img, flen[0], -1, text, flen[1], start)) != 0) break;
	}
	if (nf < 0) rc = -1;
	cap_buf_free(&f);
	return rc;
}

/* ---------------------------------------------------------------- JSON formats */

static int json_text(const cap_json *v, const char *what)
{
	if (!v || v->type != CAP_JSON_STRING) return cap_fail("%s: missing or not a string", what);
	if (memchr(v->str, 0, v->len)) return cap_fail("%s: contains a NUL character", what);
	return 0;
}

static int read_coco(struct ctx *c, const cap_json *root)
{
	const cap_json *images = cap_json_get(root, "images"), *ann = cap_json_get(root, "annotations");
	if (!images || images->type != CAP_JSON_ARRAY) return cap_fail("%s: COCO captions: no \"images\" array", c->name);
	if (!ann || ann->type != CAP_JSON_ARRAY) return cap_fail("%s: COCO captions: no \"annotations\" array", c->name);
	cap_wordmap *by_id = cap_wordmap_new();  /* decimal id -> index in images + 1 */
	int rc = 0;
	char key[32], what[64];
	for (size_t i = 0; i < images->n && rc == 0; i++) {
		const cap_json *im = images->items[i], *id = cap_json_get(im, "id");
		snprintf(what, sizeof what, "images[%zu].file_name", i);
		if (!id || !id->is_uint)
			rc = cap_fail("images[%zu]: \"id\" missing or not a non-negative integer", i);
		else if ((rc = json_text(cap_json_get(im, "file_name"), what)) == 0) {
			int added;
			snprintf(key, sizeof key, "%llu", (unsigned long long)id->uint);
			uint32_t *v = cap_wordmap_put(by_id, key, strlen(key), &added);
			if (!added) rc = cap_fail("images[%zu]: id %s appears twice", i, key);
			*v = (uint32_t)i + 1;
		}
	}
	for (size_t i = 0; i < ann->n && rc == 0; i++) {
		const cap_json *a = ann->items[i], *id = cap_json_get(a, "image_id");
		const cap_json *cap = cap_json_get(a, "caption");
		snprintf(what, sizeof what, "annotations[%zu].caption", i);
		if (!id || !id->is_uint) { rc = cap_fail("annotations[%zu]: \"image_id\" missing or not a non-negative integer", i); break; }
		if ((rc = json_text(cap, what)) < 0) break;
		snprintf(key, sizeof key, "%llu", (unsigned long long)id->uint);
		const uint32_t *v = cap_wordmap_get(by_id, key, strlen(key));
		if (!v) { rc = cap_fail("annotations[%zu]: image_id %s is not in \"images\"", i, key); break; }
		const cap_json *fn = cap_json_get(images->items[*v - 1], "file_name");
		if (fn->len == 0) { rc = cap_fail("images[%u]: empty file_name", *v - 1); break; }
		rc = emit(c, fn->str, fn->len, -1, cap->str, cap->len, 0);
	}
	cap_wordmap_free(by_id);
	if (rc < 0) cap_fail_prefix("%s", c->name);
	return rc;
}

static int read_karpathy(struct ctx *c, const cap_json *root)
{
	const cap_json *images = cap_json_get(root, "images");
	if (!images || images->type != CAP_JSON_ARRAY) return cap_fail("%s: Karpathy split file: no \"images\" array", c->name);
	int rc = 0;
	char what[80];
	for (size_t i = 0; i < images->n && rc == 0; i++) {
		const cap_json *im = images->items[i], *fn = cap_json_get(im, "filename");
		const cap_json *sents = cap_json_get(im, "sentences");
		snprintf(what, sizeof what, "images[%zu].filename", i);
		if ((rc = json_text(fn, what)) < 0) break;
		if (fn->len == 0) { rc = cap_fail("images[%zu]: empty filename", i); break; }
		if (!sents || sents->type != CAP_JSON_ARRAY) { rc = cap_fail("images[%zu]: no \"sentences\" array", i); break; }
		for (size_t k = 0; k < sents->n && rc == 0; k++) {
			snprintf(what, sizeof what, "images[%zu].sentences[%zu].raw", i, k);
			const cap_json *raw = cap_json_get(sents->items[k], "raw");
			if ((rc = json_text(raw, what)) == 0) rc = emit(c, fn->str, fn->len, -1, raw->str, raw->len, 0);
		}
	}
	if (rc < 0) cap_fail_prefix("%s", c->name);
	return rc;
}

static int read_json(struct ctx *c, const char *d, size_t len, cap_caption_format f)
{
	size_t b = skip_bom(d, len);
	cap_json *root = cap_json_parse(d + b, len - b);
	if (!root) return cap_fail_prefix("%s", c->name);
	int rc;
	if (root->type != CAP_JSON_OBJECT) rc = cap_fail("%s: the top level is not a JSON object", c->name);
	else rc = f == CAP_CAPTIONS_COCO ? read_coco(c, root) : read_karpathy(c, root);
	cap_json_free(root);
	return rc;
}

int cap_caption_read(cap_caption_source *src, const char *name, const char *data, size_t len,
                     cap_caption_fn fn, void *ctx)
{
	cap_caption_format f = src->format;
	if (f == CAP_CAPTIONS_AUTO) {
		size_t k = skip_bom(data, len);
		while (k < len && (data[k] == ' ' || data[k] == '\t' || data[k] == '\r' || data[k] == '\n')) k++;
		if (k == len) return cap_fail("%s: empty input (no captions)", name);
		f = cap_caption_detect(data, len);
		if (f == CAP_CAPTIONS_AUTO)
			return cap_fail("%s: line 1: unknown format (expected a Flickr8k token file, captions.txt "
			                "CSV, COCO or Karpathy JSON, or image<TAB>caption lines; see --format)", name);
	}
	struct ctx c = { src, name, fn, ctx, { 0 } };
	int rc;
	switch (f) {
	case CAP_CAPTIONS_FLICKR8K: rc = read_lines(&c, data, len, 1); break;
	case CAP_CAPTIONS_TSV: rc = read_lines(&c, data, len, 0); break;
	case CAP_CAPTIONS_CSV: rc = read_csv(&c, data, len); break;
	default: rc = read_json(&c, data, len, f); break;
	}
	cap_buf_free(&c.image);
	return rc;
}
