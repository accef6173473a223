/* cap-mkjpeg: writes test JPEGs that Pillow cannot write, for the image parity test.
 *
 *   cap-mkjpeg ycck W H OUT < CMYK   (W*H*4 bytes: an Adobe YCCK JPEG, as Photoshop writes)
 *
 * The decoder's output for the file is then compared with Pillow's, so the bytes given here
 * only need to be some image. */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("usage: cap-mkjpeg ycck W H OUT < CMYK\n");
		return 0;
	}
	if (argc != 5 || strcmp(argv[1], "ycck")) errx(2, "usage: cap-mkjpeg ycck W H OUT < CMYK");
	int w = atoi(argv[2]), h = atoi(argv[3]);
	if (w < 1 || h < 1 || w > 4096 || h > 4096) errx(2, "bad size");
	size_t n = (size_t)w * h * 4;
	unsigned char *px = malloc(n);
	if (!px || fread(px, 1, n, stdin) != n) errx(1, "short input");
	FILE *f = fopen(argv[4], "wb");
	if (!f) err(1, "%s", argv[4]);
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_stdio_dest(&ci, f);
	ci.image_width = w;
	ci.image_height = h;
	ci.input_components = 4;
	ci.in_color_space = JCS_CMYK;
	jpeg_set_defaults(&ci);
	jpeg_set_colorspace(&ci, JCS_YCCK);   /* also writes the Adobe marker (transform 2) */
	jpeg_set_quality(&ci, 90, TRUE);
	jpeg_start_compress(&ci, TRUE);
	while (ci.next_scanline < ci.image_height) {
		JSAMPROW row = px + (size_t)ci.next_scanline * w * 4;
		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	if (fclose(f) != 0) err(1, "%s", argv[4]);
	free(px);
	return 0;
}
