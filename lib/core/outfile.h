/* Output files that never look complete before they are: written as PATH.tmp.XXXXXX in the
 * same directory and renamed over PATH only when closed without error (after fsync), removed
 * otherwise; its mode is 0666 less the umask, as a plain open(2) would make it. NULL or "-" is
 * standard output, which is flushed but left open. */
#ifndef CAP_OUTFILE_H
#define CAP_OUTFILE_H
#include <stddef.h>
#include <stdio.h>

typedef struct cap_outfile cap_outfile;

/* NULL with cap_errmsg() ("PATH: cannot create: ...") on error. */
cap_outfile *cap_outfile_open(const char *path);
FILE *cap_outfile_fp(const cap_outfile *o);
/* "<stdout>" or the final path, for messages. */
const char *cap_outfile_name(const cap_outfile *o);
/* Flushes and renames into place; -1 with cap_errmsg() on any write error, in which case nothing
 * is left at the path. Frees o either way. */
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
