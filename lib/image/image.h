/* Image decoding: JPEG (libjpeg-turbo) and PNG (libpng) to 8-bit RGB, with pixels equal to
 * what Pillow 9.4 gives for PIL.Image.open(path).convert("RGB"), the decode torchvision's
 * ImageFolder-style pipelines use:
 *   - JPEG: libjpeg's defaults as Pillow sets them (integer slow DCT, fancy upsampling, no
 *     scaling); greyscale JPEGs replicated to R=G=B; CMYK/YCCK JPEGs converted with Pillow's
 *     CMYK->RGB formula (Adobe files store inverted CMYK; we undo that as Pillow does).
 *   - PNG: every colour type and bit depth. 16-bit samples keep their high byte, except
 *     16-bit greyscale, which Pillow opens as 32-bit integers and clips to 0..255 on
 *     conversion (so most of such an image turns white: we match that). Alpha is dropped,
 *     never composited; tRNS is ignored; gamma and colour profiles are not applied.
 *   - EXIF orientation is not applied (PIL.Image.open does not apply it either).
 * The format is told by magic bytes, not the file name.
 *
 * Hostile input: the declared size is checked against the limits below before any pixel
 * memory is allocated; truncated or corrupt data is an error (never grey fill, never exit());
 * errors go through cap_fail() as "NAME: why". Where we are stricter than Pillow: a JPEG whose
 * entropy data libjpeg reports as corrupt (bad Huffman code, marker inside the data, lost
 * restart sync) is refused, where Pillow returns libjpeg's patched-up pixels; a PNG whose
 * image-data CRC is wrong is refused (Pillow does not check IDAT CRCs). Like Pillow we accept
 * a file cut just before its end marker (JPEG EOI, PNG IEND): the pixels are all there.
 * A progressive JPEG with more than 1000 scans is refused (a known CPU-exhaustion trick).
 * The functions are thread-safe: they keep no global state (libjpeg/libpng errors are caught
 * per call with setjmp/longjmp; the message is per thread, see error.h). */
#ifndef CAP_IMAGE_H
#define CAP_IMAGE_H
#include <stddef.h>

/* Refused before allocating: a side above CAP_IMAGE_MAX_SIDE pixels, or more than
 * CAP_IMAGE_MAX_PIXELS pixels in all (2^26 = 67 Mpx, 192 MiB as RGB; e.g. 8192x8192). */
#define CAP_IMAGE_MAX_SIDE   16384
#define CAP_IMAGE_MAX_PIXELS (1L << 26)

/* 8-bit RGB, interleaved, row-major, no padding: pixel (x, y) channel c is
 * rgb[(y * width + x) * 3 + c]. */
typedef struct cap_image {
	int width, height;
	unsigned char *rgb;
} cap_image;

/* Reads and decodes a file. 0 on success; -1 with cap_errmsg() = "PATH: why" on error. */
int cap_image_load(const char *path, cap_image *out);
/* Decodes n bytes in memory; name is used in error messages only (may be NULL). */
int cap_image_decode(const unsigned char *data, size_t n, const char *name, cap_image *out);
/* Frees the pixels and zeroes the struct (safe on a zeroed struct). */
void cap_image_free(cap_image *img);
#endif
