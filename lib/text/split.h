/* Split lists (Flickr_8k.trainImages.txt and the like): one image name a line. They restrict
 * which captions a tool counts, encodes or evaluates. */
#ifndef CAP_SPLIT_H
#define CAP_SPLIT_H
#include "text/tokenizer.h"

/* Reads the names into a new map (values 0). Leading/trailing blanks and CR are trimmed, blank
 * lines skipped. Fails, naming the file and line, on a NUL byte, and when no name is listed. */
int cap_split_read(const char *path, cap_wordmap **out);
#endif
