/* A hash map from byte strings to uint32 values, keys kept in insertion order: vocabularies,
 * word counts, image names. */
#ifndef CAP_WORDMAP_H
#define CAP_WORDMAP_H
#include <stddef.h>
#include <stdint.h>

typedef struct cap_wordmap cap_wordmap;
cap_wordmap *cap_wordmap_new(void);
void cap_wordmap_free(cap_wordmap *m);
/* The value slot of key, inserted with value 0 when absent (then *added = 1 if added != NULL).
 * The pointer is valid until the next insertion. */
uint32_t *cap_wordmap_put(cap_wordmap *m, const char *key, size_t len, int *added);
/* The value slot of key, or NULL. */
uint32_t *cap_wordmap_get(const cap_wordmap *m, const char *key, size_t len);
/* Number of keys; key i (0-based, in insertion order; NUL-terminated) and its value. */
size_t cap_wordmap_size(const cap_wordmap *m);
const char *cap_wordmap_key(const cap_wordmap *m, size_t i, size_t *len);
uint32_t cap_wordmap_value(const cap_wordmap *m, size_t i);

#endif
