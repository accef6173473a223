#include "report/thumb.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "core/error.h"
#include "image/resize.h"

void cap_thumb_size(int w, int h, int max_side, int *tw, int *th)
{
	if (w <= max_side && h <= max_side) {
		*tw = w;
		*th = h;
	} else if (w >= h) {
		*tw = max_side;
		*th = (int)((long)h * max_side / w);
	} else {
		*th = max_side;
		*tw = (int)((long)w * max_side / h);
	}
	if (*tw < 1) *tw = 1;
	if (*th < 1) *th = 1;
}

typedef struct jerr {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char msg[JMSG_LENGTH_MAX];
} jerr;

static void on_error(j_common_ptr c)
{
	jerr *e = (jerr *)c->err;
	c->err->format_message(c, e->msg);
	longjmp(e->jb, 1);
}

int cap_jpeg_encode(const cap_image *img, int quality, unsigned char **out, size_t *n)
{
	struct jpeg_compress_struct c;
	jerr e;
	/* volatile: kept across the longjmp */
	unsigned char *volatile buf = NULL;
	unsigned long volatile len = 0;
	c.err = jpeg_std_error(&e.pub);
	e.pub.error_exit = on_error;
	if (setjmp(e.jb)) {
		jpeg_destroy_compress(&c);
		free(buf);
		return cap_fail("JPEG encoding: %s", e.msg);
	}
	jpeg_create_compress(&c);
	unsigned char *b = NULL;
	unsigned long l = 0;
	jpeg_mem_dest(&c, &b, &l);
	c.image_width = (JDIMENSION)img->width;
	c.image_height = (JDIMENSION)img->height;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = img->rgb + (size_t)c.next_scanline * (size_t)img->width * 3;
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	buf = b;
	len = l;
	jpeg_destroy_compress(&c);
	*out = buf;
	*n = len;
	return 0;
}

int cap_thumb_jpeg(const char *path, int max_side, int quality, unsigned char **out, size_t *n,
                   int *tw, int *th)
{
	cap_image img = { 0 }, small = { 0 };
	if (cap_image_load(path, &img) < 0)
		return -1;
	cap_thumb_size(img.width, img.height, max_side, tw, th);
	int rc = cap_image_resize(&img, *tw, *th, &small);
	cap_image_free(&img);
	if (rc < 0)
		return cap_fail_prefix("%s", path);
	rc = cap_jpeg_encode(&small, quality, out, n);
	cap_image_free(&small);
	return rc < 0 ? cap_fail_prefix("%s", path) : 0;
}
