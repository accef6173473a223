/* cap-mkjpeg: writes test JPEGs of kinds Pillow cannot write, for the image parity test.
 *
 *   cap-mkjpeg MODE W H OUT < PIXELS
 *
 *   ycck          4 components in (CMYK), Adobe YCCK JPEG (transform 2), as Photoshop writes
 *   cmyk-noadobe  4 components in, plain CMYK without an Adobe marker
 *   rgb           3 components in, stored as RGB (Adobe transform 0, no YCbCr conversion)
 *   arith         3 components in, arithmetic coding
 *   restart       3 components in, a restart marker every MCU row
 *   h1v2          3 components in, chroma halved vertically only (4:4:0)
 *
 * The decoder's output for the file is compared with Pillow's, so the pixels given here only
 * need to be some image. */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

#define USAGE "usage: cap-mkjpeg ycck|cmyk-noadobe|rgb|arith|restart|h1v2 W H OUT < PIXELS"

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "--help")) {
		printf("%s\n", USAGE);
		return 0;
	}
	if (argc != 5) errx(2, USAGE);
	const char *mode = argv[1];
	int four = !strcmp(mode, "ycck") || !strcmp(mode, "cmyk-noadobe");
	if (!four && strcmp(mode, "rgb") && strcmp(mode, "arith") && strcmp(mode, "restart") &&
	    strcmp(mode, "h1v2"))
		errx(2, USAGE);
	int w = atoi(argv[2]), h = atoi(argv[3]), nc = four ? 4 : 3;
	if (w < 1 || h < 1 || w > 4096 || h > 4096) errx(2, "bad size");
	size_t n = (size_t)w * h * nc;
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
	ci.input_components = nc;
	ci.in_color_space = four ? JCS_CMYK : JCS_RGB;
	jpeg_set_defaults(&ci);
	jpeg_set_quality(&ci, 90, TRUE);
	if (!strcmp(mode, "ycck")) {
		jpeg_set_colorspace(&ci, JCS_YCCK);   /* also writes the Adobe marker */
	} else if (!strcmp(mode, "cmyk-noadobe")) {
		jpeg_set_colorspace(&ci, JCS_CMYK);
		ci.write_Adobe_marker = FALSE;
	} else if (!strcmp(mode, "rgb")) {
		jpeg_set_colorspace(&ci, JCS_RGB);
	} else if (!strcmp(mode, "arith")) {
		ci.arith_code = TRUE;
	} else if (!strcmp(mode, "restart")) {
		ci.restart_in_rows = 1;
	} else {
		ci.comp_info[0].h_samp_factor = 1;
		ci.comp_info[0].v_samp_factor = 2;
	}
	jpeg_start_compress(&ci, TRUE);
	while (ci.next_scanline < ci.image_height) {
		JSAMPROW row = px + (size_t)ci.next_scanline * w * nc;
		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	if (fclose(f) != 0) err(1, "%s", argv[4]);
	free(px);
	return 0;
}
