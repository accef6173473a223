/* HTML text helpers for the report. */
#ifndef CAP_HTML_H
#define CAP_HTML_H
#include <stddef.h>
#include "core/buf.h"
/* Appends s[0..n) with & < > " ' escaped (safe in text and in quoted attribute values). */
void cap_html_escape(cap_buf *b, const char *s, size_t n);
/* Appends a path as a relative URL: each byte outside [A-Za-z0-9/._~-] percent-encoded. */
void cap_url_path(cap_buf *b, const char *s);
#endif
