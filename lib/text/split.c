#include "text/split.h"
#include "text/caption_sources.h"
#include "core/error.h"
#include "core/file.h"

#include <stdlib.h>
#include <string.h>

int cap_split_read(const char *path, cap_wordmap **out)
{
	char *d;
	size_t len;
	if (cap_read_file(path, 0, &d, &len) < 0) return -1;
	cap_wordmap *m = cap_wordmap_new();
	unsigned long long line = 0;
	for (size_t pos = 0; pos < len;) {
		const char *s = d + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl ? 1 : 0);
		line++;
		while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
		while (n > 0 && (*s == ' ' || *s == '\t')) { s++; n--; }
		if (n == 0) continue;
		if (memchr(s, 0, n)) {
			free(d);
			cap_wordmap_free(m);
			return cap_fail("%s: line %llu: NUL byte in an image name", path, line);
		}
		cap_wordmap_put(m, s, n, NULL);
	}
	free(d);
	if (cap_wordmap_size(m) == 0) {
		cap_wordmap_free(m);
		return cap_fail("%s: split file names no image", path);
	}
	*out = m;
	return 0;
}
