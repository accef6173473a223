/* JPEG and PNG decoding to RGB8, pixel-equal to Pillow 9.4's Image.open(p).convert("RGB").
 * See image.h for what "equal" covers. Both libraries report fatal errors through a callback
 * that must not return: we longjmp back to the decode function, which owns every allocation
 * through a context struct, so nothing leaks and nothing calls exit(). */
#include "image/image.h"
#include "core/error.h"
#include "core/file.h"

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

/* Whole files are read into memory; nothing legitimate is near this. */
#define MAX_FILE_BYTES ((size_t)1 << 30)
/* A progressive JPEG with thousands of tiny scans costs a full image pass per scan
 * (libjpeg-turbo's own tools cap it the same way with -maxscans). */
#define MAX_JPEG_SCANS 1000

void cap_image_free(cap_image *img)
{
	if (!img) return;
	free(img->rgb);
	memset(img, 0, sizeof *img);
}

/* The size check done on every header before any pixel memory is allocated. */
static int check_size(long w, long h)
{
	if (w < 1 || h < 1)
		return cap_fail("image has no pixels (%ldx%ld)", w, h);
	if (w > CAP_IMAGE_MAX_SIDE || h > CAP_IMAGE_MAX_SIDE || w * h > CAP_IMAGE_MAX_PIXELS)
		return cap_fail("image of %ldx%ld pixels is larger than the limit (%d pixels a side, "
		                "%ld in all)", w, h, CAP_IMAGE_MAX_SIDE, (long)CAP_IMAGE_MAX_PIXELS);
	return 0;
}

/* Pillow's MULDIV255: a * b / 255 rounded, with integer shifts. */
static inline int muldiv255(int a, int b)
{
	int t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

/* ---- JPEG ---- */

struct jpeg_ctx {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr jerr;
	struct jpeg_progress_mgr progress;
	jmp_buf jmp;
	char msg[JMSG_LENGTH_MAX];
	unsigned char *row;   /* one decoded scanline (1, 3 or 4 components) */
	unsigned char *rgb;   /* the result being filled */
};

static void jpeg_fatal(j_common_ptr c)
{
	struct jpeg_ctx *ctx = (struct jpeg_ctx *)c->client_data;
	(*c->err->format_message)(c, ctx->msg);
	longjmp(ctx->jmp, 1);
}

/* Warnings (level -1) that mean pixel data is missing or damaged become errors: libjpeg would
 * otherwise fill the rest with grey (or garbage) and succeed. Pillow reports truncation as an
 * error too; for damaged entropy data it returns the patched-up image, we refuse it. Harmless
 * warnings (extraneous bytes before a marker, unknown JFIF revision, bad ICC) are ignored as
 * Pillow ignores them. Trace messages (level >= 0) are ignored. */
static void jpeg_message(j_common_ptr c, int level)
{
	if (level != -1) return;
	switch (c->err->msg_code) {
	case JWRN_JPEG_EOF: case JWRN_HIT_MARKER: case JWRN_HUFF_BAD_CODE:
	case JWRN_ARITH_BAD_CODE: case JWRN_MUST_RESYNC:
		jpeg_fatal(c);
	default:
		break;
	}
}

static void jpeg_progress(j_common_ptr c)
{
	struct jpeg_ctx *ctx = (struct jpeg_ctx *)c->client_data;
	if (c->is_decompressor && ((j_decompress_ptr)c)->input_scan_number > MAX_JPEG_SCANS) {
		snprintf(ctx->msg, sizeof ctx->msg, "more than %d scans in a progressive JPEG", MAX_JPEG_SCANS);
		longjmp(ctx->jmp, 1);
	}
}

/* Pillow opens 4-component JPEGs as "CMYK;I" (inverted, the Adobe convention, whatever the
 * file says) and converts CMYK to RGB as r = (255-k) - (255-k)*c/255 with its MULDIV255
 * rounding. In terms of libjpeg's raw values C, M, Y, K that is K - K*(255-C)/255. */
static void cmyk_to_rgb(unsigned char *out, const unsigned char *in, int w)
{
	for (int x = 0; x < w; x++, in += 4, out += 3) {
		int nk = in[3];
		for (int c = 0; c < 3; c++) {
			int v = nk - muldiv255(255 - in[c], nk);
			out[c] = (unsigned char)(v < 0 ? 0 : v);
		}
	}
}

/* Runs libjpeg; returns 0 or -1 with ctx->msg or cap_fail set. Everything it allocates is
 * reachable from ctx so the caller can free it after a longjmp. */
static int jpeg_run(struct jpeg_ctx *ctx, const unsigned char *data, size_t n, cap_image *out)
{
	struct jpeg_decompress_struct *ci = &ctx->cinfo;
	if (setjmp(ctx->jmp)) return -1;
	ci->err = jpeg_std_error(&ctx->jerr);
	ctx->jerr.error_exit = jpeg_fatal;
	ctx->jerr.emit_message = jpeg_message;
	jpeg_create_decompress(ci);
	ci->client_data = ctx;
	ctx->progress.progress_monitor = jpeg_progress;
	ci->progress = &ctx->progress;
	jpeg_mem_src(ci, data, (unsigned long)n);
	jpeg_read_header(ci, TRUE);
	if (ci->data_precision != 8)
		return cap_fail("cannot handle %d-bit JPEG samples", ci->data_precision);
	if (check_size(ci->image_width, ci->image_height) < 0) return -1;
	/* The settings Pillow's JpegDecode.c leaves at libjpeg's defaults: integer slow DCT
	 * (JDCT_ISLOW), fancy upsampling, no block smoothing changes, no scaling. Only the output
	 * colour space is chosen from the number of components, as JpegImagePlugin does. */
	switch (ci->num_components) {
	case 1: ci->out_color_space = JCS_GRAYSCALE; break;
	case 3: ci->out_color_space = JCS_RGB; break;
	case 4: ci->out_color_space = JCS_CMYK; break;
	default: return cap_fail("cannot handle JPEG with %d components", ci->num_components);
	}
	jpeg_start_decompress(ci);
	int w = (int)ci->output_width, h = (int)ci->output_height, nc = ci->output_components;
	if ((long)w != (long)ci->image_width || (long)h != (long)ci->image_height ||
	    (nc != 1 && nc != 3 && nc != 4))
		return cap_fail("unexpected JPEG decoder output");
	ctx->rgb = malloc((size_t)w * h * 3);
	ctx->row = malloc((size_t)w * nc);
	if (!ctx->rgb || !ctx->row) return cap_fail("out of memory for %dx%d image", w, h);
	while (ci->output_scanline < ci->output_height) {
		unsigned char *dst = ctx->rgb + (size_t)ci->output_scanline * w * 3;
		JSAMPROW rows[1] = { nc == 3 ? dst : ctx->row };
		if (jpeg_read_scanlines(ci, rows, 1) != 1) return cap_fail("JPEG data ended early");
		if (nc == 1) {
			for (int x = 0; x < w; x++) dst[3 * x] = dst[3 * x + 1] = dst[3 * x + 2] = ctx->row[x];
		} else if (nc == 4) {
			cmyk_to_rgb(dst, ctx->row, w);
		}
	}
	/* No jpeg_finish_decompress(): what follows the last scanline (normally only EOI) does not
	 * change the pixels, and Pillow too accepts a file whose EOI is missing. */
	out->width = w;
	out->height = h;
	out->rgb = ctx->rgb;
	ctx->rgb = NULL;
	return 0;
}

static int decode_jpeg(const unsigned char *data, size_t n, cap_image *out)
{
	struct jpeg_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx) return cap_fail("out of memory");
	cap_fail("%s", "");
	int rc = jpeg_run(ctx, data, n, out);
	if (rc < 0 && ctx->msg[0]) cap_fail("bad JPEG: %s", ctx->msg);
	jpeg_destroy_decompress(&ctx->cinfo);
	free(ctx->rgb);
	free(ctx->row);
	free(ctx);
	return rc;
}

/* ---- PNG ---- */

struct png_ctx {
	png_structp png;
	png_infop info;
	const unsigned char *data;
	size_t n, pos;
	char msg[256];
	unsigned char *rows;  /* raw rows after libpng's transforms (one, or all if interlaced) */
	unsigned char *rgb;
	unsigned char palette[256 * 3];
};

static void png_fatal(png_structp png, png_const_charp msg)
{
	struct png_ctx *ctx = png_get_error_ptr(png);
	snprintf(ctx->msg, sizeof ctx->msg, "%s", msg);
	png_longjmp(png, 1);
}

/* libpng's default warning handler prints to stderr; its warnings (bad ancillary chunks,
 * which it skips) do not affect the pixels, so they are dropped. */
static void png_warn(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

static void png_read_mem(png_structp png, png_bytep buf, png_size_t len)
{
	struct png_ctx *ctx = png_get_io_ptr(png);
	if (len > ctx->n - ctx->pos) png_error(png, "truncated PNG file");
	memcpy(buf, ctx->data + ctx->pos, len);
	ctx->pos += len;
}

/* One row of libpng output (after png_set_strip_16 for all but 16-bit grey, and
 * png_set_packing) to RGB, following Pillow's mode mapping and convert("RGB"):
 *   grey 1/2/4 bit -> scaled to 0..255 (v*255, v*0x55, v*0x11); grey 8 -> replicated;
 *   grey 16 -> Pillow mode "I", clipped to 0..255 (not scaled!); grey+alpha -> grey;
 *   palette -> PLTE entry, indices past the PLTE give Pillow's default grey ramp (i,i,i);
 *   RGB -> itself; RGBA -> alpha dropped. 16-bit samples other than grey keep the high byte. */
static void png_row_to_rgb(const struct png_ctx *ctx, int ctype, int depth, const unsigned char *in,
                           unsigned char *out, int w)
{
	switch (ctype) {
	case PNG_COLOR_TYPE_GRAY:
		if (depth == 16) {
			for (int x = 0; x < w; x++) {
				int v = in[2 * x] << 8 | in[2 * x + 1];
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (unsigned char)(v > 255 ? 255 : v);
			}
		} else {
			int scale = depth == 1 ? 255 : depth == 2 ? 0x55 : depth == 4 ? 0x11 : 1;
			for (int x = 0; x < w; x++)
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = (unsigned char)(in[x] * scale);
		}
		break;
	case PNG_COLOR_TYPE_GRAY_ALPHA:
		for (int x = 0; x < w; x++)
			out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[2 * x];
		break;
	case PNG_COLOR_TYPE_PALETTE:
		for (int x = 0; x < w; x++)
			memcpy(out + 3 * x, ctx->palette + 3 * in[x], 3);
		break;
	case PNG_COLOR_TYPE_RGB:
		memcpy(out, in, (size_t)w * 3);
		break;
	case PNG_COLOR_TYPE_RGB_ALPHA:
		for (int x = 0; x < w; x++) memcpy(out + 3 * x, in + 4 * x, 3);
		break;
	}
}

static int png_run(struct png_ctx *ctx, cap_image *out)
{
	png_structp png = ctx->png;
	png_infop info = ctx->info;
	if (setjmp(png_jmpbuf(png))) return -1;
	png_set_read_fn(png, ctx, png_read_mem);
	/* libpng refuses IHDR sizes above these itself, before allocating anything. */
	png_set_user_limits(png, CAP_IMAGE_MAX_SIDE, CAP_IMAGE_MAX_SIDE);
	/* A bad CRC on a chunk before the image data is an error, as in Pillow (libpng would skip
	 * an ancillary chunk with a warning); on critical chunks, IDAT included, it always is. */
	png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
	png_read_info(png, info);
	png_uint_32 w32, h32;
	int depth, ctype, interlace;
	png_get_IHDR(png, info, &w32, &h32, &depth, &ctype, &interlace, NULL, NULL);
	if (check_size(w32, h32) < 0) return -1;
	int w = (int)w32, h = (int)h32;
	if (ctype == PNG_COLOR_TYPE_PALETTE) {
		/* Pillow's palette starts as a grey ramp; the PLTE overwrites its first entries. */
		for (int i = 0; i < 256; i++) memset(ctx->palette + 3 * i, i, 3);
		png_colorp pal;
		int npal = 0;
		if (png_get_PLTE(png, info, &pal, &npal) & PNG_INFO_PLTE)
			for (int i = 0; i < npal && i < 256; i++) {
				ctx->palette[3 * i] = pal[i].red;
				ctx->palette[3 * i + 1] = pal[i].green;
				ctx->palette[3 * i + 2] = pal[i].blue;
			}
	}
	if (depth == 16 && ctype != PNG_COLOR_TYPE_GRAY) png_set_strip_16(png);  /* high byte */
	if (depth < 8) png_set_packing(png);  /* one byte per sample, values unscaled */
	int passes = png_set_interlace_handling(png);
	png_read_update_info(png, info);
	size_t rowbytes = png_get_rowbytes(png, info);
	int spp = ctype == PNG_COLOR_TYPE_GRAY_ALPHA ? 2 : ctype == PNG_COLOR_TYPE_RGB ? 3 :
	          ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
	size_t want = (size_t)w * spp * (depth == 16 && ctype == PNG_COLOR_TYPE_GRAY ? 2 : 1);
	if (rowbytes != want) return cap_fail("unexpected PNG row size %zu (want %zu)", rowbytes, want);
	ctx->rgb = malloc((size_t)w * h * 3);
	/* Interlaced images need every row in memory until the last pass; others one row. */
	ctx->rows = malloc(passes > 1 ? rowbytes * h : rowbytes);
	if (!ctx->rgb || !ctx->rows) return cap_fail("out of memory for %dx%d image", w, h);
	if (passes > 1) {
		for (int p = 0; p < passes; p++)
			for (int y = 0; y < h; y++) png_read_row(png, ctx->rows + rowbytes * y, NULL);
		for (int y = 0; y < h; y++)
			png_row_to_rgb(ctx, ctype, depth, ctx->rows + rowbytes * y, ctx->rgb + (size_t)y * w * 3, w);
	} else {
		for (int y = 0; y < h; y++) {
			png_read_row(png, ctx->rows, NULL);
			png_row_to_rgb(ctx, ctype, depth, ctx->rows, ctx->rgb + (size_t)y * w * 3, w);
		}
	}
	/* Like Pillow, what follows the image data (IEND, trailing chunks) is not read. */
	out->width = w;
	out->height = h;
	out->rgb = ctx->rgb;
	ctx->rgb = NULL;
	return 0;
}

static int decode_png(const unsigned char *data, size_t n, cap_image *out)
{
	struct png_ctx *ctx = calloc(1, sizeof *ctx);
	if (!ctx) return cap_fail("out of memory");
	ctx->data = data;
	ctx->n = n;
	cap_fail("%s", "");
	/* Read the declared size ourselves first, for the same message as JPEG gets (libpng's
	 * own check below only says "Invalid IHDR data"). */
	if (n >= 24 && !memcmp(data + 12, "IHDR", 4)) {
		long w = (long)data[16] << 24 | data[17] << 16 | data[18] << 8 | data[19];
		long h = (long)data[20] << 24 | data[21] << 16 | data[22] << 8 | data[23];
		if (w > 0 && h > 0 && check_size(w, h) < 0) {
			free(ctx);
			return -1;
		}
	}
	/* libpng allocates a chunk before the image data at its declared length (up to 2 GB)
	 * before reading it, so a 57-byte file could make it reserve a gigabyte: every such chunk
	 * must lie within the file first (libpng would fail on it anyway, once out of data). */
	for (size_t pos = 8; pos + 8 <= n;) {
		uint32_t len = (uint32_t)data[pos] << 24 | (uint32_t)data[pos + 1] << 16 |
		               (uint32_t)data[pos + 2] << 8 | data[pos + 3];
		if (!memcmp(data + pos + 4, "IDAT", 4)) break;
		if (len > n - pos - 8 || n - pos - 8 - len < 4) {
			free(ctx);
			return cap_fail("bad PNG: truncated PNG file (chunk %.4s at byte %zu declares %u bytes)",
			                (const char *)data + pos + 4, pos, len);
		}
		pos += 12 + (size_t)len;
	}
	int rc = -1;
	ctx->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, ctx, png_fatal, png_warn);
	if (ctx->png) ctx->info = png_create_info_struct(ctx->png);
	if (!ctx->png || !ctx->info) cap_fail("out of memory");
	else rc = png_run(ctx, out);
	if (rc < 0 && ctx->msg[0]) cap_fail("bad PNG: %s", ctx->msg);
	png_destroy_read_struct(&ctx->png, ctx->info ? &ctx->info : NULL, NULL);
	free(ctx->rgb);
	free(ctx->rows);
	free(ctx);
	return rc;
}

int cap_image_decode(const unsigned char *data, size_t n, const char *name, cap_image *out)
{
	static const unsigned char png_magic[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	int rc;
	memset(out, 0, sizeof *out);
	if (n == 0)
		rc = cap_fail("empty file");
	else if (n >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
		rc = decode_jpeg(data, n, out);
	else if (n >= 8 && !memcmp(data, png_magic, 8))
		rc = decode_png(data, n, out);
	else
		rc = cap_fail("unsupported image format (expected JPEG or PNG)");
	if (rc < 0 && name) cap_fail_prefix("%s", name);
	return rc;
}

int cap_image_load(const char *path, cap_image *out)
{
	memset(out, 0, sizeof *out);
	char *data;
	size_t n;
	if (cap_read_file(path, MAX_FILE_BYTES, &data, &n) < 0)
		return -1;
	int rc = cap_image_decode((unsigned char *)data, n, path, out);
	free(data);
	return rc;
}
