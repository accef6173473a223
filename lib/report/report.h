/* The report of a pipeline run as one self-contained HTML page (tools/cap-report.c fills
 * the struct from the run's files): the corpus scores, the loss curves (inline SVG,
 * report/plot.h), the settings, and a card per test image with its thumbnail (a data: URI or
 * a relative link), the generated caption, the per-image scores and the references. The page
 * has no script and loads nothing from elsewhere. */
#ifndef CAP_REPORT_H
#define CAP_REPORT_H
#include <stddef.h>
#include "core/buf.h"
#include "report/plot.h"

typedef struct cap_report_kv {
	const char *group;   /* e.g. "run", "model", "decoding"; rows are grouped in table order */
	const char *key, *value;
} cap_report_kv;

typedef struct cap_report_image {
	const char *name;
	const char *caption;
	const char **refs;   /* nrefs reference captions */
	size_t nrefs;
	int scored;          /* bleu/cider_d/rouge_l valid */
	double bleu[4], cider_d, rouge_l;
	const char *src;     /* the <img> src (data URI or relative URL); NULL when not found */
	int width, height;   /* of the thumbnail as shown */
} cap_report_image;

typedef struct cap_report {
	const char *title;
	int scored;          /* the corpus scores below are valid */
	size_t scored_images, references;
	double bleu[4], cider_d, rouge_l;
	const cap_report_kv *settings;
	size_t nsettings;
	const cap_plot_series *curves;  /* loss curves; x is the epoch */
	size_t ncurves;
	const cap_report_image *images;
	size_t nimages;
	size_t images_total;            /* images generated (nimages may show fewer) */
} cap_report;

/* Appends the whole page to out. */
void cap_report_html(cap_buf *out, const cap_report *r);
#endif
