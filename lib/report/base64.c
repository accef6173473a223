#include "report/base64.h"

void cap_base64_append(cap_buf *b, const unsigned char *d, size_t n)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char q[4];
	size_t i = 0;
	for (; i + 3 <= n; i += 3) {
		unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
		q[0] = abc[v >> 18]; q[1] = abc[v >> 12 & 63]; q[2] = abc[v >> 6 & 63]; q[3] = abc[v & 63];
		cap_buf_add(b, q, 4);
	}
	if (i < n) {
		unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0);
		q[0] = abc[v >> 18]; q[1] = abc[v >> 12 & 63];
		q[2] = i + 1 < n ? abc[v >> 6 & 63] : '=';
		q[3] = '=';
		cap_buf_add(b, q, 4);
	}
}
