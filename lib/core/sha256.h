/* SHA-256 (FIPS 180-4), for the digests that name a tokenizer or a set of weights in stream
 * headers. */
#ifndef CAP_SHA256_H
#define CAP_SHA256_H
#include <stddef.h>
#include <stdint.h>

typedef struct cap_sha256 {
	uint32_t h[8];
	uint64_t len;
	unsigned char block[64];
	size_t used;
} cap_sha256;

void cap_sha256_init(cap_sha256 *s);
void cap_sha256_update(cap_sha256 *s, const void *data, size_t n);
void cap_sha256_final(cap_sha256 *s, unsigned char out[32]);
/* Hex digest of data: 64 lowercase hex digits and a NUL. */
void cap_sha256_hex(const void *data, size_t n, char out[65]);
/* SHA-NI is used where the processor has it (core/cpu.h); cap_cpu_set_portable(1) selects the
 * portable C code. */
#endif
