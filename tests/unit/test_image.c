/* Hostile and broken input for lib/image: truncation at every offset (small files made here
 * with libjpeg/libpng) and at sampled offsets (real photos from $CAP_DATA), random corruption,
 * wrong magic bytes, empty files, headers declaring huge sizes, and concurrent decoding from
 * two threads. Run under ASan/UBSan too (make check SANITIZE=1): no crash, no leak, no
 * out-of-bounds read may pass. Pixel values are checked against Pillow elsewhere
 * (tests/py/test_image_parity.py); here the reference is the intact file's own decode. */
#include "check.h"
#include "image/image.h"
#include "image/resize.h"
#include "core/error.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jpeglib.h>
#include <png.h>

typedef struct { unsigned char *p; size_t n; } blob;

static void pattern(unsigned char *px, int w, int h, int nc, unsigned seed)
{
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int c = 0; c < nc; c++) {
				seed = seed * 1103515245u + 12345u;
				px[((size_t)y * w + x) * nc + c] = (unsigned char)((x * 5 + y * 3 + c * 70) + (seed >> 27));
			}
}

/* A JPEG in memory: nc = 1, 3 or 4 components, optionally progressive. */
static blob make_jpeg(int w, int h, int nc, int progressive)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	unsigned char *px = malloc((size_t)w * h * nc), *mem = NULL;
	unsigned long size = 0;
	pattern(px, w, h, nc, 7);
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_mem_dest(&ci, &mem, &size);
	ci.image_width = w;
	ci.image_height = h;
	ci.input_components = nc;
	ci.in_color_space = nc == 1 ? JCS_GRAYSCALE : nc == 3 ? JCS_RGB : JCS_CMYK;
	jpeg_set_defaults(&ci);
	if (progressive) jpeg_simple_progression(&ci);
	jpeg_start_compress(&ci, TRUE);
	while (ci.next_scanline < ci.image_height) {
		JSAMPROW row = px + (size_t)ci.next_scanline * w * nc;
		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	free(px);
	blob b = { malloc(size), size };
	memcpy(b.p, mem, size);
	free(mem);
	return b;
}

struct membuf { unsigned char *p; size_t n, cap; };

static void png_write_mem(png_structp png, png_bytep data, png_size_t len)
{
	struct membuf *m = png_get_io_ptr(png);
	if (m->n + len > m->cap) {
		m->cap = (m->n + len) * 2;
		m->p = realloc(m->p, m->cap);
	}
	memcpy(m->p + m->n, data, len);
	m->n += len;
}

static void png_flush_mem(png_structp png) { (void)png; }

/* An 8-bit PNG in memory of the given colour type (RGB or palette), optionally interlaced. */
static blob make_png(int w, int h, int ctype, int interlace)
{
	struct membuf m = { 0 };
	int nc = ctype == PNG_COLOR_TYPE_RGB ? 3 : 1;
	unsigned char *px = malloc((size_t)w * h * nc);
	pattern(px, w, h, nc, 11);
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	png_set_write_fn(png, &m, png_write_mem, png_flush_mem);
	png_set_IHDR(png, info, w, h, 8, ctype, interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
	             PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	if (ctype == PNG_COLOR_TYPE_PALETTE) {
		png_color pal[256];
		for (int i = 0; i < 256; i++) pal[i] = (png_color){ (png_byte)i, (png_byte)(255 - i), (png_byte)(i * 7) };
		png_set_PLTE(png, info, pal, 256);
	}
	png_write_info(png, info);
	png_bytep *rows = malloc(sizeof(png_bytep) * h);
	for (int y = 0; y < h; y++) rows[y] = px + (size_t)y * w * nc;
	png_write_image(png, rows);
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	free(rows);
	free(px);
	return (blob){ m.p, m.n };
}

static blob read_file(const char *path)
{
	blob b = { 0 };
	FILE *f = fopen(path, "rb");
	if (!f) return b;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	b.p = malloc(n > 0 ? n : 1);
	b.n = fread(b.p, 1, n, f);
	fclose(f);
	return b;
}

/* Offset of the PNG IEND chunk (the decoder, like Pillow, never reads it). */
static size_t png_iend(const blob *b)
{
	for (size_t i = 8; i + 8 <= b->n; i++)
		if (!memcmp(b->p + i + 4, "IEND", 4)) return i;
	return b->n;
}

/* Truncation at every step-th offset below `must_fail_below` must fail with a message naming
 * the file; offsets from there to the end may succeed (only trailing markers are missing). */
static void truncations(const char *label, const blob *b, size_t must_fail_below, size_t step)
{
	int bad = 0, tried = 0, named = 1;
	for (size_t n = 0; n < b->n; n += step) {
		cap_image img;
		unsigned char *copy = malloc(n ? n : 1);   /* exact size: ASan sees overreads */
		memcpy(copy, b->p, n);
		int rc = cap_image_decode(copy, n, "trunc.img", &img);
		if (rc == 0) {
			if (n < must_fail_below) bad++;
			cap_image_free(&img);
		} else if (strncmp(cap_errmsg(), "trunc.img: ", 11)) {
			named = 0;
		}
		free(copy);
		tried++;
	}
	CHECK(bad == 0, "%s: %d truncations (of %zu bytes) all refused", label, tried, b->n);
	CHECK(named, "%s: truncation errors name the file", label);
}

static uint32_t crc32_png(const unsigned char *p, size_t n);
static void put32(unsigned char *p, uint32_t v);

/* Recomputes every chunk CRC of a PNG, so corrupted bytes reach zlib and the row filters
 * instead of being caught by the checksum. */
static void png_fix_crcs(unsigned char *p, size_t n)
{
	size_t i = 8;
	while (i + 12 <= n) {
		size_t len = (size_t)p[i] << 24 | p[i + 1] << 16 | p[i + 2] << 8 | p[i + 3];
		if (len > n - i - 12) break;
		put32(p + i + 8 + len, crc32_png(p + i + 4, len + 4));
		i += 12 + len;
	}
}

/* Random byte corruption: decoding must return 0 or -1, never crash (the sanitizers judge). */
static void corruptions(const char *label, const blob *b, int rounds)
{
	int is_png = b->n > 8 && b->p[0] == 0x89;
	unsigned seed = 12345;
	int failed = 0;
	unsigned char *copy = malloc(b->n);
	for (int r = 0; r < rounds; r++) {
		memcpy(copy, b->p, b->n);
		for (int k = 0; k < 1 + r % 4; k++) {
			seed = seed * 1103515245u + 12345u;
			size_t at = 2 + (seed >> 8) % (b->n - 2);   /* keep the magic bytes */
			copy[at] ^= (unsigned char)(1 + (seed >> 3) % 255);
		}
		if (is_png && r % 2 == 0) png_fix_crcs(copy, b->n);
		cap_image img;
		if (cap_image_decode(copy, b->n, "corrupt", &img) < 0) failed++;
		else cap_image_free(&img);
	}
	free(copy);
	CHECK(1, "%s: %d random corruptions decoded or refused without crashing (%d refused)", label, rounds, failed);
}

static void expect_fail(const char *label, const unsigned char *p, size_t n, const char *want)
{
	cap_image img;
	int rc = cap_image_decode(p, n, "x.img", &img);
	CHECK(rc < 0 && strstr(cap_errmsg(), want) && !strncmp(cap_errmsg(), "x.img: ", 7),
	      "%s refused (%s)", label, rc < 0 ? cap_errmsg() : "decoded!");
	if (rc == 0) cap_image_free(&img);
}

static uint32_t crc32_png(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return c ^ 0xffffffffu;
}

static void put32(unsigned char *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static void huge_sizes(const blob *jpg, const blob *png)
{
	/* JPEG: patch the SOF0 frame header (FF C0 len(2) precision(1) height(2) width(2)). */
	unsigned char *j = malloc(jpg->n);
	memcpy(j, jpg->p, jpg->n);
	size_t sof = 0;
	for (size_t i = 2; i + 9 < jpg->n; i++)
		if (j[i] == 0xff && j[i + 1] == 0xc0) { sof = i; break; }
	CHECK(sof > 0, "test JPEG has a SOF0 marker");
	if (sof) {
		int dims[][2] = { { 60000, 60000 }, { 16000, 16000 }, { 20000, 10 } };
		for (int k = 0; k < 3; k++) {
			j[sof + 5] = dims[k][1] >> 8; j[sof + 6] = dims[k][1] & 255;
			j[sof + 7] = dims[k][0] >> 8; j[sof + 8] = dims[k][0] & 255;
			char label[64];
			snprintf(label, sizeof label, "JPEG declaring %dx%d", dims[k][0], dims[k][1]);
			expect_fail(label, j, jpg->n, "larger than the limit");
		}
	}
	free(j);
	/* PNG: patch IHDR (at byte 8: length, "IHDR", width, height, ...) and fix its CRC. */
	unsigned char *p = malloc(png->n);
	memcpy(p, png->p, png->n);
	int dims[][2] = { { 60000, 60000 }, { 16000, 16000 }, { 16384, 4097 } };
	const char *want[] = { "larger than the limit", "larger than the limit", "larger than the limit" };
	for (int k = 0; k < 3; k++) {
		put32(p + 16, dims[k][0]);
		put32(p + 20, dims[k][1]);
		put32(p + 29, crc32_png(p + 12, 17));
		char label[64];
		snprintf(label, sizeof label, "PNG declaring %dx%d", dims[k][0], dims[k][1]);
		expect_fail(label, p, png->n, want[k]);
	}
	free(p);
}

/* Two threads decode and preprocess the same images (and a broken one) at once; every result
 * must equal the single-threaded one and each thread must see its own error message. */
struct job { const blob *imgs; int nimg; uint32_t *sums; int ok; };

static uint32_t checksum(const cap_image *im)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < (size_t)im->width * im->height * 3; i++) h = (h ^ im->rgb[i]) * 16777619u;
	return h;
}

static void *worker(void *arg)
{
	struct job *jb = arg;
	cap_preprocess_opts po;
	cap_preprocess_opts_default(&po);
	float *t = malloc(sizeof(float) * 3 * 224 * 224);
	jb->ok = 1;
	for (int round = 0; round < 8; round++)
		for (int i = 0; i < jb->nimg; i++) {
			cap_image img, crop;
			if (cap_image_decode(jb->imgs[i].p, jb->imgs[i].n, "img", &img) < 0) { jb->ok = 0; continue; }
			if (cap_preprocess_u8(&img, &po, &crop) < 0 || cap_preprocess(&img, &po, t) < 0) jb->ok = 0;
			else if (checksum(&img) != jb->sums[2 * i] || checksum(&crop) != jb->sums[2 * i + 1]) jb->ok = 0;
			cap_image_free(&img);
			cap_image_free(&crop);
			if (cap_image_decode(jb->imgs[i].p, jb->imgs[i].n / 2, "half", &img) == 0) {
				jb->ok = 0;
				cap_image_free(&img);
			} else if (strncmp(cap_errmsg(), "half: ", 6)) {
				jb->ok = 0;
			}
		}
	free(t);
	return NULL;
}

static void threads(const blob *imgs, int n)
{
	uint32_t *sums = calloc(2 * n, sizeof *sums);
	cap_preprocess_opts po;
	cap_preprocess_opts_default(&po);
	for (int i = 0; i < n; i++) {
		cap_image img, crop;
		if (cap_image_decode(imgs[i].p, imgs[i].n, "img", &img) == 0) {
			sums[2 * i] = checksum(&img);
			if (cap_preprocess_u8(&img, &po, &crop) == 0) {
				sums[2 * i + 1] = checksum(&crop);
				cap_image_free(&crop);
			}
			cap_image_free(&img);
		}
	}
	struct job jobs[2] = { { imgs, n, sums, 0 }, { imgs, n, sums, 0 } };
	pthread_t th[2];
	for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, worker, &jobs[k]);
	for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
	CHECK(jobs[0].ok && jobs[1].ok, "2 threads decoding %d images concurrently match the serial results", n);
	free(sums);
}

/* The fast resize (crop-only, SIMD) against the plain reference (whole image, scalar) on
 * random sizes: same bytes, in both modes and for the whole resized image. */
static void fast_vs_reference(void)
{
	unsigned seed = 99;
	int bad = 0, tried = 0;
	for (int it = 0; it < 60; it++) {
		seed = seed * 1103515245u + 12345u;
		int w = 1 + (seed >> 8) % 700;
		seed = seed * 1103515245u + 12345u;
		int h = 1 + (seed >> 8) % 700;
		seed = seed * 1103515245u + 12345u;
		cap_preprocess_opts po;
		cap_preprocess_opts_default(&po);
		if (it % 3 == 1) {
			po.resize = 1 + (seed >> 8) % 300;
			po.crop = 1 + (seed >> 4) % po.resize;
		} else if (it % 3 == 2) {
			po.mode = CAP_PREPROCESS_SQUASH;
			po.crop = 1 + (seed >> 8) % 300;
		}
		cap_image img = { w, h, malloc((size_t)w * h * 3) }, fast, ref, full;
		pattern(img.rgb, w, h, 3, seed);
		int rw, rh;
		if (cap_preprocess_resized_size(&po, w, h, &rw, &rh) < 0 || (long)rw * rh > 4000000) {
			free(img.rgb);
			continue;
		}
		tried++;
		if (cap_preprocess_u8(&img, &po, &fast) < 0 || cap_image_resize_ref(&img, rw, rh, &ref) < 0 ||
		    cap_image_resize(&img, rw, rh, &full) < 0) {
			bad++;
			free(img.rgb);
			continue;
		}
		int left = 0, top = 0;
		if (po.mode == CAP_PREPROCESS_RESIZE_CROP) {
			/* Python's round((n - crop) / 2.0) spelled differently from the library */
			double l = (rw - po.crop) / 2.0, t = (rh - po.crop) / 2.0;
			left = (int)nearbyint(l);   /* default rounding mode: half to even */
			top = (int)nearbyint(t);
		}
		int same = fast.width == po.crop && fast.height == po.crop &&
		           !memcmp(full.rgb, ref.rgb, (size_t)rw * rh * 3);
		for (int y = 0; same && y < po.crop; y++)
			same = !memcmp(fast.rgb + (size_t)y * po.crop * 3, ref.rgb + ((size_t)(top + y) * rw + left) * 3,
			               (size_t)po.crop * 3);
		if (!same) {
			bad++;
			printf("# differs: %dx%d -> %dx%d crop %d\n", w, h, rw, rh, po.crop);
		}
		cap_image_free(&fast);
		cap_image_free(&ref);
		cap_image_free(&full);
		free(img.rgb);
	}
	CHECK(bad == 0 && tried > 30, "fast resize+crop equals the plain reference on %d random sizes", tried);
}

int main(void)
{
	fast_vs_reference();

	/* Small files made here: every truncation offset. */
	struct { const char *label; blob b; int png; } small[] = {
		{ "baseline RGB JPEG 40x30", make_jpeg(40, 30, 3, 0), 0 },
		{ "progressive RGB JPEG 40x30", make_jpeg(40, 30, 3, 1), 0 },
		{ "grey JPEG 33x17", make_jpeg(33, 17, 1, 0), 0 },
		{ "CMYK JPEG 24x20", make_jpeg(24, 20, 4, 0), 0 },
		{ "RGB PNG 30x20", make_png(30, 20, PNG_COLOR_TYPE_RGB, 0), 1 },
		{ "interlaced palette PNG 30x20", make_png(30, 20, PNG_COLOR_TYPE_PALETTE, 1), 1 },
	};
	const int nsmall = sizeof small / sizeof small[0];
	for (int i = 0; i < nsmall; i++) {
		cap_image img;
		int rc = cap_image_decode(small[i].b.p, small[i].b.n, "small", &img);
		CHECK(rc == 0 && img.width > 0, "%s decodes (%s)", small[i].label, rc ? cap_errmsg() : "ok");
		if (rc == 0) cap_image_free(&img);
		/* JPEG: all but the final EOI marker must be present; PNG: everything before IEND. */
		size_t must = small[i].png ? png_iend(&small[i].b) : small[i].b.n - 2;
		truncations(small[i].label, &small[i].b, must, 1);
		corruptions(small[i].label, &small[i].b, 300);
	}

	/* Real photos, when the data is there: sampled truncation offsets. */
	const char *data = getenv("CAP_DATA");
	blob real[2] = { { 0 }, { 0 } };
	if (data && *data) {
		char path[4096];
		snprintf(path, sizeof path, "%s/flickr8k/images/1001773457_577c3a7d70.jpg", data);
		real[0] = read_file(path);
		snprintf(path, sizeof path, "%s/samples/chelsea.png", data);
		real[1] = read_file(path);
	}
	if (real[0].n && real[1].n) {
		truncations("Flickr8k JPEG", &real[0], real[0].n - 2, real[0].n / 300 + 1);
		truncations("samples/chelsea.png", &real[1], png_iend(&real[1]), real[1].n / 300 + 1);
		corruptions("Flickr8k JPEG", &real[0], 40);
	} else {
		SKIP("no $CAP_DATA images: truncation of real photos not checked");
	}

	/* Not images, or not ours. */
	static const unsigned char gif[] = "GIF89a\x01\x00\x01\x00\x80\x00\x00";
	static const unsigned char soi[] = { 0xff, 0xd8 };
	static const unsigned char pngsig7[] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a };
	static const unsigned char bmp[] = "BM\x3a\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00";
	expect_fail("empty input", gif, 0, "empty file");
	expect_fail("GIF", gif, sizeof gif - 1, "unsupported image format (expected JPEG or PNG)");
	expect_fail("BMP", bmp, sizeof bmp - 1, "unsupported image format (expected JPEG or PNG)");
	expect_fail("bare JPEG SOI", soi, sizeof soi, "unsupported image format");
	expect_fail("7 bytes of PNG signature", pngsig7, sizeof pngsig7, "unsupported image format");
	expect_fail("JPEG magic then nothing", (const unsigned char *)"\xff\xd8\xff", 3, "JPEG");
	{
		blob png = make_png(8, 8, PNG_COLOR_TYPE_RGB, 0);
		png.p[0] = 0x88;
		expect_fail("PNG with one wrong magic byte", png.p, png.n, "unsupported image format");
		free(png.p);
	}
	huge_sizes(&small[0].b, &small[4].b);

	/* Files: missing, empty, directory. */
	cap_image img;
	CHECK(cap_image_load("/nonexistent/x.jpg", &img) < 0 && strstr(cap_errmsg(), "/nonexistent/x.jpg: "),
	      "missing file: %s", cap_errmsg());
	char tmpl[] = "/tmp/cap-test-image.XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd >= 0) {
		close(fd);
		CHECK(cap_image_load(tmpl, &img) < 0 && strstr(cap_errmsg(), "empty file") && strstr(cap_errmsg(), tmpl),
		      "empty file: %s", cap_errmsg());
		FILE *f = fopen(tmpl, "wb");
		fwrite(small[1].b.p, 1, small[1].b.n, f);
		fclose(f);
		int rc = cap_image_load(tmpl, &img);
		CHECK(rc == 0 && img.width == 40 && img.height == 30, "load from a file");
		if (rc == 0) cap_image_free(&img);
		unlink(tmpl);
	}
	cap_image_free(&img);  /* a zeroed struct is fine to free */

	blob set[4] = { small[0].b, small[1].b, small[4].b, small[5].b };
	threads(set, 4);
	if (real[0].n && real[1].n) threads(real, 2);

	/* Preprocessing options are checked. */
	cap_preprocess_opts po;
	cap_preprocess_opts_default(&po);
	CHECK(cap_preprocess_opts_check(&po) == 0 && po.resize == 256 && po.crop == 224, "default options are 256/224");
	po.crop = 300;
	CHECK(cap_preprocess_opts_check(&po) < 0, "crop larger than resize refused: %s", cap_errmsg());
	po.mode = CAP_PREPROCESS_SQUASH;
	CHECK(cap_preprocess_opts_check(&po) == 0, "squash ignores resize");
	po.crop = 0;
	CHECK(cap_preprocess_opts_check(&po) < 0, "crop 0 refused");

	for (int i = 0; i < nsmall; i++) free(small[i].b.p);
	free(real[0].p);
	free(real[1].p);
	return check_exit();
}
