#include "report/plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/html.h"

int cap_plot_ticks(double lo, double hi, int target, double *ticks, int max)
{
	if (!(hi > lo)) {
		if (max > 0) ticks[0] = lo;
		return max > 0;
	}
	double raw = (hi - lo) / (target > 1 ? target - 1 : 1);
	double p = pow(10, floor(log10(raw))), step = p;
	if (raw / p > 5) step = 10 * p;
	else if (raw / p > 2) step = 5 * p;
	else if (raw / p > 1) step = 2 * p;
	int n = 0;
	for (double t = ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9 && n < max; t += step)
		ticks[n++] = fabs(t) < step * 1e-9 ? 0 : t;
	return n;
}

static void num(cap_buf *b, double v)
{
	char s[32];
	snprintf(s, sizeof s, "%.4g", v);
	cap_buf_adds(b, s);
}

void cap_plot_svg(cap_buf *out, const cap_plot_series *s, size_t ns, const char *xlabel,
                  const char *ylabel, int width, int height)
{
	double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
	for (size_t k = 0; k < ns; k++)
		for (size_t i = 0; i < s[k].n; i++) {
			if (!isfinite(s[k].y[i]) || !isfinite(s[k].x[i])) continue;
			if (s[k].x[i] < x0) x0 = s[k].x[i];
			if (s[k].x[i] > x1) x1 = s[k].x[i];
			if (s[k].y[i] < y0) y0 = s[k].y[i];
			if (s[k].y[i] > y1) y1 = s[k].y[i];
		}
	cap_buf_printf(out, "<svg class=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
	               "viewBox=\"0 0 %d %d\" role=\"img\">\n", width, height, width, height);
	cap_buf_printf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", width, height);
	if (!isfinite(x0)) {
		cap_buf_printf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n</svg>\n",
		               width / 2, height / 2);
		return;
	}
	/* a little room above and below the curves; x from the first to the last point */
	double pad = (y1 - y0) * 0.05;
	if (pad == 0) pad = fabs(y0) > 0 ? fabs(y0) * 0.1 : 1;
	y0 -= pad; y1 += pad;
	if (x1 == x0) { x0 -= 0.5; x1 += 0.5; }
	const double L = 60, R = 20, T = 30, B = 45;
	double pw = width - L - R, ph = height - T - B;
#define PX(v) (L + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (T + (y1 - (v)) / (y1 - y0) * ph)
	double tk[32];
	int nt = cap_plot_ticks(y0, y1, 6, tk, 32);
	cap_buf_adds(out, "<g class=\"axes\" font-family=\"sans-serif\" font-size=\"12\" fill=\"#333\">\n");
	for (int i = 0; i < nt; i++) {
		cap_buf_printf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>"
		               "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L, L + pw, PY(tk[i]), PY(tk[i]),
		               L - 6, PY(tk[i]) + 4);
		num(out, tk[i]);
		cap_buf_adds(out, "</text>\n");
	}
	nt = cap_plot_ticks(x0, x1, 8, tk, 32);
	for (int i = 0; i < nt; i++) {
		cap_buf_printf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>"
		               "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", PX(tk[i]), PX(tk[i]), T + ph,
		               T + ph + 5, PX(tk[i]), T + ph + 18);
		num(out, tk[i]);
		cap_buf_adds(out, "</text>\n");
	}
	cap_buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
	               L, T, pw, ph);
	cap_buf_printf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", L + pw / 2, height - 8);
	cap_html_escape(out, xlabel, strlen(xlabel));
	cap_buf_printf(out, "</text>\n<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">",
	               T + ph / 2);
	cap_html_escape(out, ylabel, strlen(ylabel));
	cap_buf_adds(out, "</text>\n</g>\n");
	double lx = L + 10;
	for (size_t k = 0; k < ns; k++) {
		size_t pts = 0;
		for (size_t i = 0; i < s[k].n; i++)
			pts += isfinite(s[k].y[i]) && isfinite(s[k].x[i]);
		if (!pts) continue;
		cap_buf_printf(out, "<path class=\"series\" fill=\"none\" stroke=\"%s\" stroke-width=\"%g\" "
		               "stroke-linejoin=\"round\" d=\"", s[k].color, s[k].width > 0 ? s[k].width : 2);
		int first = 1;
		for (size_t i = 0; i < s[k].n; i++) {
			if (!isfinite(s[k].y[i]) || !isfinite(s[k].x[i])) continue;
			cap_buf_printf(out, "%s%.1f %.1f", first ? "M" : " L", PX(s[k].x[i]), PY(s[k].y[i]));
			first = 0;
		}
		if (pts == 1)   /* a single point: a dot the path can show */
			cap_buf_adds(out, " h0.1");
		cap_buf_adds(out, "\"/>\n");
		if (s[k].markers)
			for (size_t i = 0; i < s[k].n; i++)
				if (isfinite(s[k].y[i]) && isfinite(s[k].x[i]))
					cap_buf_printf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
					               PX(s[k].x[i]), PY(s[k].y[i]), s[k].color);
		/* legend entry */
		cap_buf_printf(out, "<g font-family=\"sans-serif\" font-size=\"12\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"16\" "
		               "y2=\"16\" stroke=\"%s\" stroke-width=\"3\"/><text x=\"%.1f\" y=\"20\" fill=\"#333\">",
		               lx, lx + 20, s[k].color, lx + 25);
		cap_html_escape(out, s[k].name, strlen(s[k].name));
		cap_buf_adds(out, "</text></g>\n");
		lx += 40 + 7.0 * (double)strlen(s[k].name);
	}
#undef PX
#undef PY
	cap_buf_adds(out, "</svg>\n");
}
