/* Line plots as inline SVG (the report's loss curves): axes with round tick values, one path
 * per series, a legend. No JavaScript, no external resources. */
#ifndef CAP_PLOT_H
#define CAP_PLOT_H
#include <stddef.h>
#include "core/buf.h"
typedef struct cap_plot_series {
	const char *name;      /* legend text */
	const char *color;     /* CSS colour, e.g. "#1f77b4" */
	const double *x, *y;   /* n points; non-finite y values are skipped */
	size_t n;
	double width;          /* stroke width in pixels */
	int markers;           /* a dot at each point */
} cap_plot_series;
/* Round tick values covering [lo, hi]: about target of them, steps of 1, 2 or 5 times a power
 * of ten. Writes at most max values to ticks; returns how many. */
int cap_plot_ticks(double lo, double hi, int target, double *ticks, int max);
/* Appends <svg class="plot" ...> of width x height pixels. Series without a finite point are
 * left out of the plot and the legend; with none at all the SVG says "no data". */
void cap_plot_svg(cap_buf *out, const cap_plot_series *s, size_t ns, const char *xlabel,
                  const char *ylabel, int width, int height);
#endif
