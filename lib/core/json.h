/* A small JSON reader (RFC 8259) building a tree: for tokenizer.json, COCO and Karpathy caption
 * files and safetensors headers. Strict: rejects trailing commas, control characters in
 * strings, invalid UTF-8 and lone surrogates, duplicate object keys, and nesting deeper than
 * CAP_JSON_MAX_DEPTH. Errors say the line and column. Writing JSON goes through cap_buf. */
#ifndef CAP_JSON_H
#define CAP_JSON_H
#include <stddef.h>
#include <stdint.h>

#define CAP_JSON_MAX_DEPTH 128

typedef enum cap_json_type {
	CAP_JSON_NULL, CAP_JSON_BOOL, CAP_JSON_NUMBER, CAP_JSON_STRING, CAP_JSON_ARRAY, CAP_JSON_OBJECT
} cap_json_type;

typedef struct cap_json cap_json;
struct cap_json {
	cap_json_type type;
	int boolean;
	double number;
	/* Numbers written as a plain non-negative integer that fits: is_uint and the exact value
	 * (doubles lose precision above 2^53, and safetensors offsets are u64). */
	int is_uint;
	uint64_t uint;
	char *str;          /* STRING: NUL-terminated UTF-8 (len excludes the NUL) */
	size_t len;
	size_t n;           /* ARRAY/OBJECT: number of items */
	cap_json **items;   /* ARRAY/OBJECT: values, in document order */
	char **keys;        /* OBJECT: keys, in document order */
	size_t *key_lens;
};

/* Parses text[0..len). Returns NULL with cap_errmsg() "line L, column C: ..." on error. */
cap_json *cap_json_parse(const char *text, size_t len);
void cap_json_free(cap_json *j);
/* The value of key in an object, or NULL (also when j is not an object). */
const cap_json *cap_json_get(const cap_json *j, const char *key);
/* Convenience: the string value of key, or NULL when absent or not a string. */
const char *cap_json_get_str(const cap_json *j, const char *key);
#endif
