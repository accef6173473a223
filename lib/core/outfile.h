/* Output files that never look complete before they are. A regular file (or a name that does
 * not exist yet) is written as TARGET.tmp.XXXXXX in the same directory and renamed over TARGET
 * only when closed without error (after fsync), removed otherwise. TARGET is the path with its
 * symlinks resolved, so a symlink stays a symlink and the file it names is replaced. A new file
 * gets mode 0666 & ~umask, an existing one keeps its mode (as with the shell's >).
 * Anything else that exists (a device such as /dev/null, a FIFO, a terminal) is written through,
 * never replaced: there nothing can be taken back on error. A directory is refused.
 * NULL or "-" is standard output, which is flushed but left open.
 * A temporary file still open when the program exits (exit(), errx()) is removed then. */
#ifndef CAP_OUTFILE_H
#define CAP_OUTFILE_H
#include <stddef.h>
#include <stdio.h>

typedef struct cap_outfile cap_outfile;

/* NULL with cap_errmsg() ("PATH: cannot create: ...") on error. */
cap_outfile *cap_outfile_open(const char *path);
FILE *cap_outfile_fp(const cap_outfile *o);
/* "<stdout>" or the path as given, for messages. */
const char *cap_outfile_name(const cap_outfile *o);
/* 1 when the output goes to a temporary file renamed into place, 0 when written through. */
int cap_outfile_is_atomic(const cap_outfile *o);
/* Flushes and renames into place; -1 with cap_errmsg() on any write error, in which case nothing
 * is left at the path (for a regular file). Frees o either way. */
int cap_outfile_close(cap_outfile *o);
/* Discards the output (removes the temporary file). Frees o. */
void cap_outfile_abort(cap_outfile *o);
/* Binary output is not written to a terminal (as gzip refuses): when path is NULL or "-" and
 * standard output is a terminal, prints "PROG: not writing a binary stream to a terminal; " +
 * hint (e.g. "use -o FILE, or pipe it into cap-dump") and exits 2. Returns otherwise. Tools
 * call it right after their options, before any slow work. */
void cap_outfile_refuse_tty(const char *path, const char *hint);
/* Writes data[0..len) to path atomically in one go. */
int cap_write_file_atomic(const char *path, const void *data, size_t len);
#endif
