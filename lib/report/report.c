#include "report/report.h"

#include <string.h>

#include "report/html.h"

static void esc(cap_buf *b, const char *s)
{
	cap_html_escape(b, s ? s : "", s ? strlen(s) : 0);
}

static const char *style =
	"body{font-family:sans-serif;margin:1.5em;color:#222;background:#fafafa}"
	"h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}"
	"table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}"
	"th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}"
	".grid{display:flex;flex-wrap:wrap;gap:12px}"
	".card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px;width:330px}"
	".card img{display:block;margin:0 auto 6px;max-width:100%;image-rendering:auto}"
	".card .missing{height:80px;display:flex;align-items:center;justify-content:center;color:#a00;"
	"background:#f4f4f4;margin-bottom:6px}"
	".name{font-size:.8em;color:#666;word-break:break-all}"
	".caption{font-weight:bold;margin:4px 0}"
	".scores{font-size:.8em;color:#333}"
	".refs{font-size:.85em;color:#444;margin:4px 0 0;padding-left:1.2em}"
	".plot{background:#fff;border:1px solid #ddd}";

void cap_report_html(cap_buf *out, const cap_report *r)
{
	cap_buf_adds(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
	esc(out, r->title);
	cap_buf_printf(out, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", style);
	esc(out, r->title);
	cap_buf_adds(out, "</h1>\n");

	cap_buf_adds(out, "<h2>Scores</h2>\n");
	if (r->scored) {
		cap_buf_printf(out, "<p>%zu images, %zu references. BLEU and ROUGE-L on a 0-1 scale, "
		               "CIDEr-D on coco-caption's (x10, 0-10).</p>\n", r->scored_images, r->references);
		cap_buf_adds(out, "<table class=\"scores\"><tr><th>BLEU-1</th><th>BLEU-2</th><th>BLEU-3</th>"
		                  "<th>BLEU-4</th><th>CIDEr-D</th><th>ROUGE-L</th></tr>\n<tr>");
		for (int i = 0; i < 4; i++)
			cap_buf_printf(out, "<td class=\"num\">%.4f</td>", r->bleu[i]);
		cap_buf_printf(out, "<td class=\"num\">%.4f</td><td class=\"num\">%.4f</td></tr></table>\n",
		               r->cider_d, r->rouge_l);
	} else {
		cap_buf_adds(out, "<p>No scores (no --scores).</p>\n");
	}

	cap_buf_adds(out, "<h2>Training</h2>\n");
	if (r->ncurves) {
		cap_plot_svg(out, r->curves, r->ncurves, "epoch", "loss (cross-entropy per word)", 720, 320);
	} else {
		cap_buf_adds(out, "<p>No loss curves (no --log or model history).</p>\n");
	}

	cap_buf_printf(out, "<h2>Test images</h2>\n<p>%zu images", r->images_total);
	if (r->nimages < r->images_total)
		cap_buf_printf(out, ", the first %zu shown", r->nimages);
	cap_buf_adds(out, ": the generated caption in bold, its scores (BLEU-4, CIDEr-D, ROUGE-L), then the references.</p>\n"
	                  "<div class=\"grid\">\n");
	for (size_t i = 0; i < r->nimages; i++) {
		const cap_report_image *im = &r->images[i];
		cap_buf_adds(out, "<div class=\"card\">");
		if (im->src) {
			cap_buf_adds(out, "<img src=\"");
			esc(out, im->src);
			cap_buf_printf(out, "\" width=\"%d\" height=\"%d\" alt=\"", im->width, im->height);
			esc(out, im->name);
			cap_buf_adds(out, "\">");
		} else {
			cap_buf_adds(out, "<div class=\"missing\">image not found</div>");
		}
		cap_buf_adds(out, "<div class=\"name\">");
		esc(out, im->name);
		cap_buf_adds(out, "</div><div class=\"caption\">");
		esc(out, im->caption);
		cap_buf_adds(out, "</div>");
		if (im->scored)
			cap_buf_printf(out, "<div class=\"scores\">BLEU-4 %.3f &middot; CIDEr-D %.3f &middot; ROUGE-L %.3f</div>",
			               im->bleu[3], im->cider_d, im->rouge_l);
		if (im->nrefs) {
			cap_buf_adds(out, "<ol class=\"refs\">");
			for (size_t k = 0; k < im->nrefs; k++) {
				cap_buf_adds(out, "<li>");
				esc(out, im->refs[k]);
				cap_buf_adds(out, "</li>");
			}
			cap_buf_adds(out, "</ol>");
		}
		cap_buf_adds(out, "</div>\n");
	}
	cap_buf_adds(out, "</div>\n");

	if (r->nsettings) {
		cap_buf_adds(out, "<h2>Settings</h2>\n<table class=\"settings\">\n<tr><th></th><th>setting</th><th>value</th></tr>\n");
		for (size_t i = 0; i < r->nsettings; i++) {
			const cap_report_kv *kv = &r->settings[i];
			cap_buf_adds(out, "<tr><td>");
			if (i == 0 || strcmp(kv->group, r->settings[i - 1].group) != 0)
				esc(out, kv->group);
			cap_buf_adds(out, "</td><td>");
			esc(out, kv->key);
			cap_buf_adds(out, "</td><td><code>");
			esc(out, kv->value);
			cap_buf_adds(out, "</code></td></tr>\n");
		}
		cap_buf_adds(out, "</table>\n");
	}

	cap_buf_adds(out, "<p class=\"name\">Written by cap-report " CAP_VERSION ".</p>\n</body>\n</html>\n");
}
