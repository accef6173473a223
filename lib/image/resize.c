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
#include "image/resize.h"
#include "core/error.h"
#include "core/cpu.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE4_1__
#include <smmintrin.h>
#endif

const double cap_imagenet_mean[3] = { 0.485, 0.456, 0.406 };
const double cap_imagenet_std[3] = { 0.229, 0.224, 0.225 };

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
	memset(a, 0, sizeof *a);
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

/* One output row of the vertical pass: dst[x] = clip8(2^21 + sum_y src[y * n + x] * k[y]),
 * the taps' input rows being consecutive in tmp (row length n). With SSE4.1 (x86-64-v2, our
 * build's baseline) 16 bytes at a time with all taps summed in registers; the integer
 * arithmetic is the scalar one, so the bytes are the same. The saturating packs clamp to
 * 0..255 exactly as clip8 does. */
static void vertical_row(unsigned char *dst, const unsigned char *src, size_t n, const int32_t *k, int taps,
                         int simd)
{
	size_t x = 0;
#ifdef __SSE4_1__
	for (; simd && x + 16 <= n; x += 16) {
		__m128i a0 = _mm_set1_epi32(1 << (PREC - 1)), a1 = a0, a2 = a0, a3 = a0;
		for (int y = 0; y < taps; y++) {
			__m128i b = _mm_loadu_si128((const __m128i *)(src + (size_t)y * n + x));
			__m128i ky = _mm_set1_epi32(k[y]);
			a0 = _mm_add_epi32(a0, _mm_mullo_epi32(_mm_cvtepu8_epi32(b), ky));
			a1 = _mm_add_epi32(a1, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(b, 4)), ky));
			a2 = _mm_add_epi32(a2, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(b, 8)), ky));
			a3 = _mm_add_epi32(a3, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_srli_si128(b, 12)), ky));
		}
		__m128i lo = _mm_packs_epi32(_mm_srai_epi32(a0, PREC), _mm_srai_epi32(a1, PREC));
		__m128i hi = _mm_packs_epi32(_mm_srai_epi32(a2, PREC), _mm_srai_epi32(a3, PREC));
		_mm_storeu_si128((__m128i *)(dst + x), _mm_packus_epi16(lo, hi));
	}
#endif
	(void)simd;
	for (; x < n; x++) {
		int32_t s = 1 << (PREC - 1);
		for (int y = 0; y < taps; y++) s += src[(size_t)y * n + x] * k[y];
		dst[x] = clip8(s);
	}
}

/* One output pixel of the horizontal pass (3 channels). `spare` says whether the byte after
 * the last tap's pixel may be read (it is, then ignored), which lets SSE4.1 load a pixel as
 * 4 bytes; only the very last pixel of the image lacks it. */
static inline void horizontal_px(unsigned char *dst, const unsigned char *s, const int32_t *k, int taps, int spare)
{
#ifdef __SSE4_1__
	if (spare) {  /* spare is 0 when the SIMD path is off (see resample_region) */
		__m128i acc = _mm_set1_epi32(1 << (PREC - 1));
		for (int x = 0; x < taps; x++, s += 3) {
			int32_t px;
			memcpy(&px, s, 4);
			acc = _mm_add_epi32(acc, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(px)),
			                                         _mm_set1_epi32(k[x])));
		}
		__m128i v = _mm_srai_epi32(acc, PREC);
		v = _mm_packus_epi16(_mm_packs_epi32(v, v), v);
		int32_t out = _mm_cvtsi128_si32(v);
		memcpy(dst, &out, 3);
		return;
	}
#endif
	(void)spare;
	int32_t s0 = 1 << (PREC - 1), s1 = s0, s2 = s0;
	for (int x = 0; x < taps; x++, s += 3) {
		s0 += s[0] * k[x];
		s1 += s[1] * k[x];
		s2 += s[2] * k[x];
	}
	dst[0] = clip8(s0);
	dst[1] = clip8(s1);
	dst[2] = clip8(s2);
}

/* Output pixels [x0, x0+cw) x [y0, y0+ch) of `in` resized to ow x oh, into out (cw*ch*3). */
static int resample_region(const cap_image *in, int ow, int oh, int x0, int y0, int cw, int ch,
                           unsigned char *out)
{
	const int iw = in->width, ih = in->height;
	const int need_h = ow != iw, need_v = oh != ih;
	struct axis ax = {0}, ay = {0};
	unsigned char *tmp = NULL;
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
	const int simd = cap_cpu_has(CAP_CPU_SSE41);  /* same bytes either way: integer sums */

	/* Horizontal pass (or a plain copy of the kept columns) into tmp: nrows x cw. */
	tmp = malloc(rowlen * nrows);
	if (!tmp) { cap_fail("out of memory for resize"); goto done; }
	if (need_h) {
		if (axis_init(&ax, iw, ow, x0, cw) < 0) goto done;
		for (int r = 0; r < nrows; r++) {
			const unsigned char *src = in->rgb + (size_t)(r0 + r) * iw * 3;
			unsigned char *dst = tmp + rowlen * r;
			const int last_row = r0 + r == ih - 1;
			for (int j = 0; j < cw; j++) {
				int spare = simd && (!last_row || ax.lo[j] + ax.cnt[j] < iw);
				horizontal_px(dst + 3 * j, src + (size_t)ax.lo[j] * 3, ax.k + (size_t)j * ax.ksize,
				              ax.cnt[j], spare);
			}
		}
	} else {
		for (int r = 0; r < nrows; r++)
			memcpy(tmp + rowlen * r, in->rgb + ((size_t)(r0 + r) * iw + x0) * 3, rowlen);
	}

	/* Vertical pass over tmp. */
	if (need_v) {
		for (int i = 0; i < ch; i++) {
			const int32_t *k = ay.k + (size_t)i * ay.ksize;
			const unsigned char *base = tmp + rowlen * (ay.lo[i] - r0);
			vertical_row(out + rowlen * i, base, rowlen, k, ay.cnt[i], simd);
		}
	} else {
		memcpy(out, tmp, rowlen * ch);
	}
	rc = 0;
done:
	axis_free(&ax);
	axis_free(&ay);
	free(tmp);
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

/* The reference: Pillow's structure written out plainly, one scalar loop per pass over the
 * whole image (horizontal pass over every input row the vertical pass reads, vertical pass
 * into every output row), no crop, no SIMD. Slow and obvious; the tests hold the fast path
 * above to it. */
int cap_image_resize_ref(const cap_image *in, int ow, int oh, cap_image *out)
{
	const int iw = in->width, ih = in->height;
	struct axis ax = {0}, ay = {0};
	cap_image mid = {0};
	if (alloc_image(out, ow, oh) < 0) return -1;
	if (axis_init(&ax, iw, ow, 0, ow) < 0 || axis_init(&ay, ih, oh, 0, oh) < 0) goto fail;
	/* Horizontal: iw x ih -> ow x ih (skipped when the width stays). */
	if (ow != iw) {
		if (alloc_image(&mid, ow, ih) < 0) goto fail;
		for (int y = 0; y < ih; y++)
			for (int xx = 0; xx < ow; xx++)
				for (int c = 0; c < 3; c++) {
					int32_t acc = 1 << (PREC - 1);
					for (int t = 0; t < ax.cnt[xx]; t++)
						acc += in->rgb[((size_t)y * iw + ax.lo[xx] + t) * 3 + c] * ax.k[(size_t)xx * ax.ksize + t];
					mid.rgb[((size_t)y * ow + xx) * 3 + c] = clip8(acc);
				}
	}
	const unsigned char *src = ow != iw ? mid.rgb : in->rgb;
	/* Vertical: ow x ih -> ow x oh (skipped when the height stays). */
	for (int yy = 0; yy < oh; yy++)
		for (int x = 0; x < ow * 3; x++) {
			if (oh == ih) {
				out->rgb[(size_t)yy * ow * 3 + x] = src[(size_t)yy * ow * 3 + x];
				continue;
			}
			int32_t acc = 1 << (PREC - 1);
			for (int t = 0; t < ay.cnt[yy]; t++)
				acc += src[(size_t)(ay.lo[yy] + t) * ow * 3 + x] * ay.k[(size_t)yy * ay.ksize + t];
			out->rgb[(size_t)yy * ow * 3 + x] = clip8(acc);
		}
	axis_free(&ax);
	axis_free(&ay);
	cap_image_free(&mid);
	return 0;
fail:
	axis_free(&ax);
	axis_free(&ay);
	cap_image_free(&mid);
	cap_image_free(out);
	return -1;
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
	const float mean[3] = { (float)cap_imagenet_mean[0], (float)cap_imagenet_mean[1], (float)cap_imagenet_mean[2] };
	const float std[3] = { (float)cap_imagenet_std[0], (float)cap_imagenet_std[1], (float)cap_imagenet_std[2] };
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
