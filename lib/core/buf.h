/* A growable byte buffer, used to build JSON text (tokenizer.json, safetensors headers) and
 * other output in memory before it is written in one piece. */
#ifndef CAP_BUF_H
#define CAP_BUF_H
#include <stddef.h>

typedef struct cap_buf {
	char *data;   /* always NUL-terminated when len > 0 or after any add */
	size_t len;
	size_t cap;
} cap_buf;

void cap_buf_add(cap_buf *b, const void *data, size_t n);
void cap_buf_addc(cap_buf *b, char c);
void cap_buf_adds(cap_buf *b, const char *s);
void cap_buf_printf(cap_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s (n bytes, UTF-8) as a JSON string literal with quotes and escapes. */
void cap_buf_json_string(cap_buf *b, const char *s, size_t n);
/* Appends a float so that it reads back to the same float (shortest of %.9g round trip). */
void cap_buf_json_float(cap_buf *b, double v);
/* The same for a float32 value: the shortest text that reads back to the same float. */
void cap_buf_json_f32(cap_buf *b, float v);
void cap_buf_reset(cap_buf *b);
void cap_buf_free(cap_buf *b);
#endif
