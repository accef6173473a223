#include "core/outfile.h"
#include "core/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cap_outfile {
	FILE *f;
	char *path;   /* NULL for stdout */
	char *tmp;
};

cap_outfile *cap_outfile_open(const char *path)
{
	cap_outfile *o = cap_xcalloc(1, sizeof *o);
	if (!path || strcmp(path, "-") == 0) {
		o->f = stdout;
		return o;
	}
	size_t n = strlen(path);
	o->path = cap_xstrdup(path);
	o->tmp = cap_xmalloc(n + 12);
	memcpy(o->tmp, path, n);
	memcpy(o->tmp + n, ".tmp.XXXXXX", 12);
	int fd = mkstemp(o->tmp);
	/* mkstemp makes 0600; the file gets the mode open(2) would give it: 0666 less the umask */
	mode_t mask = umask(0);
	umask(mask);
	if (fd >= 0 && fchmod(fd, 0666 & ~mask) != 0) {
		cap_fail("%s: cannot set its mode: %s", path, strerror(errno));
		close(fd); unlink(o->tmp);
		free(o->path); free(o->tmp); free(o);
		return NULL;
	}
	if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
		cap_fail("%s: cannot create: %s", path, strerror(errno));
		if (fd >= 0) { close(fd); unlink(o->tmp); }
		free(o->path); free(o->tmp); free(o);
		return NULL;
	}
	return o;
}

FILE *cap_outfile_fp(const cap_outfile *o) { return o->f; }
const char *cap_outfile_name(const cap_outfile *o) { return o->path ? o->path : "<stdout>"; }

static void outfile_free(cap_outfile *o)
{
	free(o->path);
	free(o->tmp);
	free(o);
}

int cap_outfile_close(cap_outfile *o)
{
	int rc = 0;
	const char *name = cap_outfile_name(o);
	errno = 0;
	if (fflush(o->f) != 0 || ferror(o->f))
		rc = cap_fail("%s: write error: %s", name, strerror(errno ? errno : EIO));
	if (o->path) {
		if (!rc && fsync(fileno(o->f)) != 0 && errno != EINVAL)
			rc = cap_fail("%s: fsync: %s", name, strerror(errno));
		if (fclose(o->f) != 0 && !rc) rc = cap_fail("%s: close: %s", name, strerror(errno));
		if (!rc && rename(o->tmp, o->path) != 0) rc = cap_fail("%s: rename: %s", name, strerror(errno));
		if (rc) unlink(o->tmp);
	}
	outfile_free(o);
	return rc;
}

void cap_outfile_abort(cap_outfile *o)
{
	if (o->path) {
		fclose(o->f);
		unlink(o->tmp);
	} else {
		fflush(o->f);
	}
	outfile_free(o);
}

void cap_outfile_refuse_tty(const char *path, const char *hint)
{
	if ((path && strcmp(path, "-") != 0) || !isatty(STDOUT_FILENO)) return;
	fprintf(stderr, "%s: not writing a binary stream to a terminal; %s\n",
	        program_invocation_short_name, hint);
	exit(2);
}

int cap_write_file_atomic(const char *path, const void *data, size_t len)
{
	cap_outfile *o = cap_outfile_open(path);
	if (!o) return -1;
	if (len && fwrite(data, 1, len, o->f) != len) {
		cap_fail("%s: write error: %s", cap_outfile_name(o), strerror(errno ? errno : EIO));
		cap_outfile_abort(o);
		return -1;
	}
	return cap_outfile_close(o);
}
