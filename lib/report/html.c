#include "report/html.h"

#include <string.h>

void cap_html_escape(cap_buf *b, const char *s, size_t n)
{
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		const char *e = NULL;
		switch (s[i]) {
		case '&': e = "&amp;"; break;
		case '<': e = "&lt;"; break;
		case '>': e = "&gt;"; break;
		case '"': e = "&quot;"; break;
		case '\'': e = "&#39;"; break;
		}
		if (!e) continue;
		cap_buf_add(b, s + start, i - start);
		cap_buf_adds(b, e);
		start = i + 1;
	}
	cap_buf_add(b, s + start, n - start);
}

void cap_url_path(cap_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("/._~-", c)) {
			cap_buf_addc(b, (char)c);
		} else {
			char e[3] = { '%', hex[c >> 4], hex[c & 15] };
			cap_buf_add(b, e, 3);
		}
	}
}
