/* lib/report: base64 against RFC 4648's vectors, HTML escaping, URL paths, plot ticks and the
 * SVG of a plot, thumbnail sizes, JPEG encoding read back by lib/image. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/buf.h"
#include "image/image.h"
#include "report/base64.h"
#include "report/html.h"
#include "report/plot.h"
#include "report/thumb.h"

static const char *b64(const char *s)
{
	static cap_buf b;
	cap_buf_reset(&b);
	cap_base64_append(&b, (const unsigned char *)s, strlen(s));
	cap_buf_addc(&b, 0);
	return b.data;
}

int main(void)
{
	static const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
	static const char *out[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy" };
	int good = 1;
	for (int i = 0; i < 7; i++)
		good &= strcmp(b64(in[i]), out[i]) == 0;
	CHECK(good, "base64: RFC 4648 test vectors");
	unsigned char all[256];
	for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
	cap_buf b = { 0 };
	cap_base64_append(&b, all, 256);
	CHECK(b.len == 344 && strncmp(b.data, "AAECAwQF", 8) == 0 && strcmp(b.data + 336, "/P3+/w==") == 0,
	      "base64: all 256 byte values");
	cap_buf_reset(&b);
	const char *nasty = "<a href=\"x\">Tom & 'Jerry'</a>";
	cap_html_escape(&b, nasty, strlen(nasty));
	CHECK(strcmp(b.data, "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;") == 0, "HTML escaping: %s", b.data);
	cap_buf_reset(&b);
	cap_url_path(&b, "../images/a b#1%.jpg");
	CHECK(strcmp(b.data, "../images/a%20b%231%25.jpg") == 0, "URL path: %s", b.data);

	double t[32];
	int n = cap_plot_ticks(0.93, 3.1, 6, t, 32);
	CHECK(n == 5 && t[0] == 1 && t[4] == 3, "ticks of 0.93..3.1: 1, 1.5, ... 3 (%d ticks, %g..%g)", n, t[0], t[n - 1]);
	n = cap_plot_ticks(1, 30, 8, t, 32);
	CHECK(n == 6 && t[0] == 5 && t[5] == 30, "ticks of 1..30: 5, 10, ... 30 (%d)", n);
	n = cap_plot_ticks(-0.2, 0.2, 5, t, 32);
	CHECK(n == 5 && t[2] == 0, "ticks around 0 include an exact 0");

	double x[] = { 1, 2, 3 }, y[] = { 3, NAN, 1 };
	cap_plot_series s[2] = { { "train", "#00f", x, y, 3, 2, 1 }, { "none", "#f00", x, (double[]){ NAN, NAN, NAN }, 3, 2, 0 } };
	cap_buf_reset(&b);
	cap_plot_svg(&b, s, 2, "epoch", "loss", 400, 200);
	CHECK(strstr(b.data, "<svg") && strstr(b.data, "</svg>"), "plot: an svg element");
	const char *p = strstr(b.data, "<path class=\"series\"");
	CHECK(p && !strstr(p + 1, "<path class=\"series\""), "plot: one path (the series without points left out)");
	/* x from 1 to 3 over the plot area 60..380, y padded by 5%: the first point at the left edge */
	CHECK(p && strstr(p, "d=\"M60.0 ") && strstr(p, " L380.0 "), "plot: the path spans the plot area, NaN skipped");
	CHECK(!strstr(b.data, ">none<"), "plot: no legend for a series without points");
	cap_buf_reset(&b);
	cap_plot_svg(&b, s + 1, 1, "epoch", "loss", 400, 200);
	CHECK(strstr(b.data, "no data") != NULL, "plot without data says so");

	int tw, th;
	cap_thumb_size(500, 375, 160, &tw, &th);
	CHECK(tw == 160 && th == 120, "thumbnail of 500x375 in 160: 160x120");
	cap_thumb_size(100, 400, 160, &tw, &th);
	CHECK(tw == 40 && th == 160, "thumbnail of 100x400 in 160: 40x160");
	cap_thumb_size(64, 64, 160, &tw, &th);
	CHECK(tw == 64 && th == 64, "small images are not enlarged");

	cap_image img = { 40, 30, malloc(40 * 30 * 3) };
	for (int i = 0; i < 40 * 30; i++) {
		img.rgb[3 * i] = 200; img.rgb[3 * i + 1] = 30; img.rgb[3 * i + 2] = 40;
	}
	unsigned char *jpg;
	size_t len;
	CHECK(cap_jpeg_encode(&img, 90, &jpg, &len) == 0 && len > 100 && jpg[0] == 0xff && jpg[1] == 0xd8, "JPEG encoded");
	cap_image back = { 0 };
	CHECK(cap_image_decode(jpg, len, "thumb", &back) == 0 && back.width == 40 && back.height == 30 &&
	      abs(back.rgb[0] - 200) < 8 && abs(back.rgb[1] - 30) < 8 && abs(back.rgb[2] - 40) < 8,
	      "JPEG decodes back to the image (40x30, colour within 8)");
	free(jpg);
	cap_image_free(&back);
	cap_image_free(&img);
	cap_buf_free(&b);
	return check_exit();
}
