#include "core/outfile.h"
#include "core/error.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct cap_outfile {
	FILE *f;
	char *path;   /* as given, for messages; NULL for stdout */
	char *target; /* the file renamed over: path with its symlinks resolved */
	char *tmp;    /* the temporary file; NULL when writing through (not a regular file) */
	cap_outfile *next_open;   /* the list of temporary files not yet closed */
};

/* Temporary files still open when the program exits (errx() on any error path) are removed by
 * an atexit handler, so that no error path of a tool can leave one behind. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static cap_outfile *open_list;

static void remove_open_tmps(void)
{
	pthread_mutex_lock(&open_lock);
	for (cap_outfile *o = open_list; o; o = o->next_open) unlink(o->tmp);
	open_list = NULL;
	pthread_mutex_unlock(&open_lock);
}

static void track(cap_outfile *o)
{
	static int registered;
	pthread_mutex_lock(&open_lock);
	if (!registered) registered = atexit(remove_open_tmps) == 0;
	o->next_open = open_list;
	open_list = o;
	pthread_mutex_unlock(&open_lock);
}

static void untrack(cap_outfile *o)
{
	pthread_mutex_lock(&open_lock);
	for (cap_outfile **p = &open_list; *p; p = &(*p)->next_open)
		if (*p == o) {
			*p = o->next_open;
			break;
		}
	pthread_mutex_unlock(&open_lock);
}

/* The umask: from /proc/self/status (Linux 4.7 and later) so that no other thread ever sees it
 * changed, else set and restored at once. */
static mode_t current_umask(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (f) {
		char line[256];
		unsigned m;
		while (fgets(line, sizeof line, f))
			if (sscanf(line, "Umask: %o", &m) == 1) {
				fclose(f);
				return (mode_t)m;
			}
		fclose(f);
	}
	mode_t m = umask(022);
	umask(m);
	return m;
}

/* path with every symlink in its last component followed, for a link whose target does not
 * exist yet (realpath() refuses those): the target is created, the link kept. malloc'd. */
static char *follow_links(const char *path)
{
	char *p = cap_xstrdup(path);
	for (int hops = 0;; hops++) {
		struct stat st;
		if (lstat(p, &st) != 0 || !S_ISLNK(st.st_mode)) return p;
		if (hops == 40) {
			free(p);
			errno = ELOOP;
			return NULL;
		}
		char buf[PATH_MAX];
		ssize_t n = readlink(p, buf, sizeof buf - 1);
		if (n < 0) { free(p); return NULL; }
		buf[n] = 0;
		char *next;
		const char *slash = strrchr(p, '/');
		if (buf[0] == '/' || !slash) {
			next = cap_xstrdup(buf);
		} else {
			size_t d = (size_t)(slash - p) + 1;
			next = cap_xmalloc(d + (size_t)n + 1);
			memcpy(next, p, d);
			memcpy(next + d, buf, (size_t)n + 1);
		}
		free(p);
		p = next;
	}
}

static void outfile_free(cap_outfile *o)
{
	if (o->tmp) untrack(o);
	free(o->path);
	free(o->target);
	free(o->tmp);
	free(o);
}

static cap_outfile *open_failed(cap_outfile *o, const char *path, int e)
{
	cap_fail("%s: cannot create: %s", path, strerror(e));
	outfile_free(o);
	return NULL;
}

cap_outfile *cap_outfile_open(const char *path)
{
	cap_outfile *o = cap_xcalloc(1, sizeof *o);
	if (!path || strcmp(path, "-") == 0) {
		o->f = stdout;
		return o;
	}
	o->path = cap_xstrdup(path);
	struct stat st;
	int exists = stat(path, &st) == 0;
	if (exists && S_ISDIR(st.st_mode)) return open_failed(o, path, EISDIR);
	if (exists && !S_ISREG(st.st_mode)) {
		/* A device, a FIFO, a terminal, a socket: write through, never replace it. */
		int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 || !(o->f = fdopen(fd, "wb"))) {
			int e = errno;
			if (fd >= 0) close(fd);
			return open_failed(o, path, e);
		}
		return o;
	}
	mode_t mode;
	if (exists) {
		/* An existing file keeps its permissions (as with the shell's >); a symlink to it
		 * stays a symlink: the file it names is replaced. */
		mode = st.st_mode & 07777;
		o->target = realpath(path, NULL);
		if (!o->target) return open_failed(o, path, errno);
	} else {
		if (errno != ENOENT) return open_failed(o, path, errno);
		mode = 0666 & ~current_umask();
		o->target = follow_links(path);   /* a dangling symlink: create what it names */
		if (!o->target) return open_failed(o, path, errno);
	}
	size_t n = strlen(o->target);
	o->tmp = cap_xmalloc(n + 12);
	memcpy(o->tmp, o->target, n);
	memcpy(o->tmp + n, ".tmp.XXXXXX", 12);
	int fd = mkstemp(o->tmp);
	if (fd < 0) return open_failed(o, path, errno);
	if (fchmod(fd, mode) != 0 || !(o->f = fdopen(fd, "wb"))) {
		int e = errno;
		close(fd);
		unlink(o->tmp);
		return open_failed(o, path, e);
	}
	track(o);
	return o;
}

FILE *cap_outfile_fp(const cap_outfile *o) { return o->f; }
const char *cap_outfile_name(const cap_outfile *o) { return o->path ? o->path : "<stdout>"; }
int cap_outfile_is_atomic(const cap_outfile *o) { return o->tmp != NULL; }

/* Makes a rename durable; best effort (some file systems refuse fsync on a directory, and the
 * file is complete either way). */
static void sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
	if (!dir) return;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
	free(dir);
}

int cap_outfile_close(cap_outfile *o)
{
	int rc = 0;
	const char *name = cap_outfile_name(o);
	errno = 0;
	if (fflush(o->f) != 0 || ferror(o->f))
		rc = cap_fail("%s: write error: %s", name, strerror(errno ? errno : EIO));
	if (o->path) {
		/* Pipes, terminals and character devices refuse fsync (EINVAL): nothing to sync. */
		if (!rc && fsync(fileno(o->f)) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EROFS)
			rc = cap_fail("%s: fsync: %s", name, strerror(errno));
		if (fclose(o->f) != 0 && !rc) rc = cap_fail("%s: close: %s", name, strerror(errno));
		if (o->tmp) {
			if (!rc && rename(o->tmp, o->target) != 0)
				rc = cap_fail("%s: rename: %s", name, strerror(errno));
			if (rc) unlink(o->tmp);
			else sync_dir(o->target);
		}
	}
	outfile_free(o);
	return rc;
}

void cap_outfile_abort(cap_outfile *o)
{
	if (o->path) {
		fclose(o->f);
		if (o->tmp) unlink(o->tmp);
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
