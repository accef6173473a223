/* The one whole-file reader: caption files, split lists, tokenizer.json, images. */
#ifndef CAP_FILE_H
#define CAP_FILE_H
#include <stddef.h>

/* The most any reader takes unless it says otherwise (1 GiB). */
#define CAP_FILE_MAX_BYTES ((size_t)1 << 30)

/* Reads the whole of path ("-": standard input; pipes and devices until EOF) into *data, with a
 * NUL byte after the *len bytes read (free with free()). More than max_bytes (0: the default
 * CAP_FILE_MAX_BYTES) is an error, found before reading it all where the size is known. Errors
 * name the file. */
int cap_read_file(const char *path, size_t max_bytes, char **data, size_t *len);
#endif
