/* torchvision's evaluation transform on RGB8 images, bit-exact with Pillow's BILINEAR resize.
 *
 * Pillow's resample (libImaging/Resample.c, read not copied) is separable: a horizontal pass
 * into a uint8 image, then a vertical pass over it. Each pass uses, per output index, a window
 * [min, min + count) of input indices and weights from the triangle filter stretched by the
 * scale factor when reducing (that is the antialiasing), normalised to sum 1 in double, then
 * turned into fixed point with 22 fraction bits; a pixel is (2^21 + sum(in * k)) >> 22,
 * clamped to 0..255. An axis whose size does not change is not resampled at all.
 *
 * Every output pixel depends only on its own window and weights, and integer sums do not
 * depend on their order, so we compute just the output rows and columns the crop keeps and
 * only the input rows they need, and accumulate the vertical pass row-wise (which vectorises);
 * the result is the same bytes as resizing everything and cropping afterwards. */
#include "resize.h"
#include "error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PREC 22   /* fraction bits of the fixed-point weights (Pillow: 32 - 8 - 2) */

void cap_preprocess_opts_default(cap_preprocess_opts *o)
{
	o->mode = CAP_PREPROCESS_RESIZE_CROP;
	o->resize = 256;
	o->crop = 224;
}

int cap_preprocess_opts_check(const cap_preprocess_opts *o)
{
	if (o->mode != CAP_PREPROCESS_RESIZE_CROP && o->mode != CAP_PREPROCESS_SQUASH)
		return cap_fail("unknown preprocessing mode %d", (int)o->mode);
	if (o->crop < 1 || o->crop > CAP_IMAGE_MAX_SIDE)
		return cap_fail("crop size %d out of range 1..%d", o->crop, CAP_IMAGE_MAX_SIDE);
	if (o->mode == CAP_PREPROCESS_RESIZE_CROP) {
		if (o->resize < 1 || o->resize > CAP_IMAGE_MAX_SIDE)
			return cap_fail("resize size %d out of range 1..%d", o->resize, CAP_IMAGE_MAX_SIDE);
		if (o->crop > o->resize)
			return cap_fail("crop size %d larger than resize size %d", o->crop, o->resize);
	}
	return 0;
}

int cap_preprocess_resized_size(const cap_preprocess_opts *o, int w, int h, int *rw, int *rh)
{
	if (w < 1 || h < 1) return cap_fail("empty image");
	if (o->mode == CAP_PREPROCESS_SQUASH) {
		*rw = *rh = o->crop;
		return 0;
	}
	/* torchvision: short side -> n, long side -> int(n * long / short) (Python true division
	 * of exact integers, then truncation; the same double operations here). */
	int shortside = w <= h ? w : h, longside = w <= h ? h : w;
	double l = (double)((long)o->resize * longside) / (double)shortside;
	if (l >= (double)INT32_MAX) return cap_fail("resized image too large");
	int nl = (int)l;
	if (nl < 1) return cap_fail("resized image empty");
	if (w <= h) { *rw = o->resize; *rh = nl; }
	else        { *rw = nl; *rh = o->resize; }
	return 0;
}

/* Weights for output indices [o0, o0 + n) of an axis resized from insize to outsize. */
struct axis {
	int n, ksize;
	int *lo, *cnt;     /* input window of each output index */
	int32_t *k;        /* n x ksize fixed-point weights */
};

static double triangle(double x)
{
	if (x < 0.0) x = -x;
	return x < 1.0 ? 1.0 - x : 0.0;
}

static void axis_free(struct axis *a)
{
	free(a->lo);
	free(a->cnt);
	free(a->k);
}

static int axis_init(struct axis *a, int insize, int outsize, int o0, int n)
{
	/* Pillow passes the box edges as floats: in1 - in0 = (float)insize - 0. */
	double scale = (double)((float)insize - 0.0f) / outsize;
	double filterscale = scale < 1.0 ? 1.0 : scale;
	double support = 1.0 * filterscale;   /* the bilinear filter's support is 1 */
	double ss = 1.0 / filterscale;
	int ksize = (int)ceil(support) * 2 + 1;
	a->n = n;
	a->ksize = ksize;
	a->lo = malloc(sizeof(int) * (size_t)n);
	a->cnt = malloc(sizeof(int) * (size_t)n);
	a->k = malloc(sizeof(int32_t) * (size_t)n * ksize);
	double *w = malloc(sizeof(double) * (size_t)ksize);
	if (!a->lo || !a->cnt || !a->k || !w) {
		free(w);
		axis_free(a);
		return cap_fail("out of memory for resize weights");
	}
	for (int i = 0; i < n; i++) {
		int xx = o0 + i;
		double center = 0.0 + (xx + 0.5) * scale;
		int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
		if (xmin < 0) xmin = 0;
		if (xmax > insize) xmax = insize;
		xmax -= xmin;
		double ww = 0.0;
		for (int x = 0; x < xmax; x++) {
			w[x] = triangle((x + xmin - center + 0.5) * ss);
			ww += w[x];
		}
		int32_t *k = a->k + (size_t)i * ksize;
		for (int x = 0; x < ksize; x++) {
			double v = x < xmax ? (ww != 0.0 ? w[x] / ww : w[x]) : 0.0;
			k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PREC)) : (int32_t)(0.5 + v * (1 << PREC));
		}
		a->lo[i] = xmin;
		a->cnt[i] = xmax;
	}
	free(w);
	return 0;
}

static inline unsigned char clip8(int32_t v)
{
	v >>= PREC;
	return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Output pixels [x0, x0+cw) x [y0, y0+ch) of `in` resized to ow x oh, into out (cw*ch*3). */
static int resample_region(const cap_image *in, int ow, int oh, int x0, int y0, int cw, int ch,
                           unsigned char *out)
{
	const int iw = in->width, ih = in->height;
	const int need_h = ow != iw, need_v = oh != ih;
	struct axis ax = {0}, ay = {0};
	unsigned char *tmp = NULL;
	int32_t *acc = NULL;
	int rc = -1;
	if (x0 < 0 || y0 < 0 || cw < 1 || ch < 1 || x0 + cw > ow || y0 + ch > oh)
		return cap_fail("crop %dx%d+%d+%d outside %dx%d", cw, ch, x0, y0, ow, oh);

	/* Input rows the vertical pass reads. */
	int r0 = y0, r1 = y0 + ch;
	if (need_v) {
		if (axis_init(&ay, ih, oh, y0, ch) < 0) return -1;
		r0 = ay.lo[0];
		r1 = ay.lo[ch - 1] + ay.cnt[ch - 1];
		for (int i = 0; i < ch; i++) {   /* windows are monotonic, but do not rely on it */
			if (ay.lo[i] < r0) r0 = ay.lo[i];
			if (ay.lo[i] + ay.cnt[i] > r1) r1 = ay.lo[i] + ay.cnt[i];
		}
	}
	const int nrows = r1 - r0;
	const size_t rowlen = (size_t)cw * 3;

	/* Horizontal pass (or a plain copy of the kept columns) into tmp: nrows x cw. */
	tmp = malloc(rowlen * nrows);
	if (!tmp) { cap_fail("out of memory for resize"); goto done; }
	if (need_h) {
		if (axis_init(&ax, iw, ow, x0, cw) < 0) goto done;
		for (int r = 0; r < nrows; r++) {
			const unsigned char *src = in->rgb + (size_t)(r0 + r) * iw * 3;
			unsigned char *dst = tmp + rowlen * r;
			for (int j = 0; j < cw; j++) {
				const int32_t *k = ax.k + (size_t)j * ax.ksize;
				const unsigned char *s = src + (size_t)ax.lo[j] * 3;
				int32_t s0 = 1 << (PREC - 1), s1 = s0, s2 = s0;
				for (int x = 0, n = ax.cnt[j]; x < n; x++, s += 3) {
					s0 += s[0] * k[x];
					s1 += s[1] * k[x];
					s2 += s[2] * k[x];
				}
				dst[3 * j] = clip8(s0);
				dst[3 * j + 1] = clip8(s1);
				dst[3 * j + 2] = clip8(s2);
			}
		}
	} else {
		for (int r = 0; r < nrows; r++)
			memcpy(tmp + rowlen * r, in->rgb + ((size_t)(r0 + r) * iw + x0) * 3, rowlen);
	}

	/* Vertical pass over tmp. */
	if (need_v) {
		acc = malloc(sizeof(int32_t) * rowlen);
		if (!acc) { cap_fail("out of memory for resize"); goto done; }
		for (int i = 0; i < ch; i++) {
			const int32_t *k = ay.k + (size_t)i * ay.ksize;
			for (size_t x = 0; x < rowlen; x++) acc[x] = 1 << (PREC - 1);
			for (int y = 0; y < ay.cnt[i]; y++) {
				const unsigned char *s = tmp + rowlen * (ay.lo[i] + y - r0);
				const int32_t ky = k[y];
				for (size_t x = 0; x < rowlen; x++) acc[x] += s[x] * ky;
			}
			unsigned char *dst = out + rowlen * i;
			for (size_t x = 0; x < rowlen; x++) dst[x] = clip8(acc[x]);
		}
	} else {
		memcpy(out, tmp, rowlen * ch);
	}
	rc = 0;
done:
	axis_free(&ax);
	axis_free(&ay);
	free(tmp);
	free(acc);
	return rc;
}

static int alloc_image(cap_image *out, int w, int h)
{
	memset(out, 0, sizeof *out);
	if (w < 1 || h < 1 || w > CAP_IMAGE_MAX_SIDE || h > CAP_IMAGE_MAX_SIDE ||
	    (long)w * h > CAP_IMAGE_MAX_PIXELS)
		return cap_fail("output image of %dx%d pixels is out of range", w, h);
	out->rgb = malloc((size_t)w * h * 3);
	if (!out->rgb) return cap_fail("out of memory for %dx%d image", w, h);
	out->width = w;
	out->height = h;
	return 0;
}

int cap_image_resize(const cap_image *in, int ow, int oh, cap_image *out)
{
	if (alloc_image(out, ow, oh) < 0) return -1;
	if (resample_region(in, ow, oh, 0, 0, ow, oh, out->rgb) < 0) {
		cap_image_free(out);
		return -1;
	}
	return 0;
}

/* Python's round(d / 2.0) for an integer d >= 0: halves go to the even neighbour. */
static int half_round_even(int d)
{
	int q = d / 2;
	return (d % 2 == 1 && q % 2 == 1) ? q + 1 : q;
}

int cap_preprocess_u8(const cap_image *img, const cap_preprocess_opts *o, cap_image *out)
{
	int rw, rh;
	memset(out, 0, sizeof *out);
	if (cap_preprocess_opts_check(o) < 0) return -1;
	if (cap_preprocess_resized_size(o, img->width, img->height, &rw, &rh) < 0) return -1;
	int c = o->crop, left = 0, top = 0;
	if (o->mode == CAP_PREPROCESS_RESIZE_CROP) {
		/* crop <= resize <= both resized sides, so torchvision never pads here. */
		left = half_round_even(rw - c);
		top = half_round_even(rh - c);
	}
	if (alloc_image(out, c, c) < 0) return -1;
	if (resample_region(img, rw, rh, left, top, c, c, out->rgb) < 0) {
		cap_image_free(out);
		return -1;
	}
	return 0;
}

void cap_normalize(const cap_image *img, float *out)
{
	/* ToTensor then Normalize in float32, exactly as torch evaluates them:
	 * (float(v) / 255 - mean) / std, each step rounded to float. 256 values per channel,
	 * so a table gives the same floats for free. */
	static const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };
	float lut[3][256];
	for (int c = 0; c < 3; c++)
		for (int v = 0; v < 256; v++) {
			volatile float t = (float)v / 255.0f;   /* keep each rounding step */
			t = t - mean[c];
			lut[c][v] = t / std[c];
		}
	const size_t plane = (size_t)img->width * img->height;
	const unsigned char *p = img->rgb;
	for (size_t i = 0; i < plane; i++, p += 3) {
		out[i] = lut[0][p[0]];
		out[plane + i] = lut[1][p[1]];
		out[2 * plane + i] = lut[2][p[2]];
	}
}

int cap_preprocess(const cap_image *img, const cap_preprocess_opts *o, float *out)
{
	cap_image u8;
	if (cap_preprocess_u8(img, o, &u8) < 0) return -1;
	cap_normalize(&u8, out);
	cap_image_free(&u8);
	return 0;
}
