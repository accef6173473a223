/* cap_read_file (see file.h). */
#include "core/file.h"
#include "core/error.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int too_large(const char *path, size_t max)
{
	if (max % ((size_t)1 << 30) == 0)
		return cap_fail("%s: file larger than %zu GiB", path, max >> 30);
	return cap_fail("%s: file larger than %zu bytes", path, max);
}

int cap_read_file(const char *path, size_t max, char **data, size_t *len)
{
	if (!max)
		max = CAP_FILE_MAX_BYTES;
	int is_stdin = strcmp(path, "-") == 0;
	const char *name = is_stdin ? "<stdin>" : path;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (!f)
		return cap_fail("%s: %s", path, strerror(errno));
	struct stat st;
	size_t cap = 1 << 16;
	if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
		if ((unsigned long long)st.st_size > max) {
			if (!is_stdin)
				fclose(f);
			return too_large(name, max);
		}
		cap = (size_t)st.st_size + 1;   /* one read, and one more to see EOF */
	}
	char *buf = cap_xmalloc(cap + 1);
	size_t n = 0;
	int rc = 0;
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				rc = too_large(name, max);
				break;
			}
			cap *= 2;
			buf = cap_xrealloc(buf, cap + 1);
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (rc == 0 && ferror(f))
		rc = cap_fail("%s: read error: %s", name, strerror(errno));
	if (rc == 0 && n > max)
		rc = too_large(name, max);
	if (!is_stdin)
		fclose(f);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[n] = 0;
	*data = buf;
	*len = n;
	return 0;
}
