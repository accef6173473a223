/* Thumbnails for the report: an image file (JPEG or PNG, lib/image) scaled to fit in a square
 * (Pillow-exact bilinear, lib/image/resize; never enlarged) and encoded as a baseline JPEG in
 * memory (libjpeg-turbo). */
#ifndef CAP_THUMB_H
#define CAP_THUMB_H
#include <stddef.h>
#include "image/image.h"
/* The size an image of w x h gets to fit in max_side x max_side (aspect kept, at least 1). */
void cap_thumb_size(int w, int h, int max_side, int *tw, int *th);
/* Encodes RGB pixels as JPEG (quality 1..100) into *out (malloc'd, *n bytes). 0, or -1 with
 * cap_errmsg(). */
int cap_jpeg_encode(const cap_image *img, int quality, unsigned char **out, size_t *n);
/* Loads path, scales it to fit max_side, encodes it: 0 with *out, *n, *tw, *th; -1 with
 * cap_errmsg() "PATH: why". */
int cap_thumb_jpeg(const char *path, int max_side, int quality, unsigned char **out, size_t *n,
                   int *tw, int *th);
#endif
