/* Base64 (RFC 4648, with padding), for data: URIs in the report. */
#ifndef CAP_BASE64_H
#define CAP_BASE64_H
#include <stddef.h>
#include "core/buf.h"
/* Appends the base64 text of data[0..n) to b. */
void cap_base64_append(cap_buf *b, const unsigned char *data, size_t n);
#endif
