/* SHA-256 against the FIPS 180-4 / NIST example vectors, and incremental updates of every
 * split of a message against the one-shot digest (block-boundary bugs show up there). */
#include "check.h"
#include "core/sha256.h"
#include "core/cpu.h"

#include <stdlib.h>
#include <string.h>

static void hex_of(const unsigned char d[32], char out[65])
{
	for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", d[i]);
}

static void run_all(const char *mode)
{
	char hex[65];
	printf("# %s\n", mode);
	cap_sha256_hex("abc", 3, hex);
	CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256(abc) (%s)", mode);
	cap_sha256_hex("", 0, hex);
	CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"), "sha256(empty) (%s)", mode);
	const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	cap_sha256_hex(m448, strlen(m448), hex);
	CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "sha256(448-bit message) (%s)", mode);
	const char *m896 = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	cap_sha256_hex(m896, strlen(m896), hex);
	CHECK(!strcmp(hex, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"), "sha256(896-bit message) (%s)", mode);

	/* A million 'a's, fed in uneven pieces. */
	cap_sha256 s;
	unsigned char d[32];
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	cap_sha256_init(&s);
	size_t done = 0, step = 1;
	while (done < 1000000) {
		size_t k = step < 1000000 - done ? step : 1000000 - done;
		cap_sha256_update(&s, a + done, k);
		done += k;
		step = step * 3 % 1000 + 1;
	}
	cap_sha256_final(&s, d);
	hex_of(d, hex);
	CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"), "sha256(a million a) (%s)", mode);
	free(a);

	/* Every split point of a 200-byte message gives the one-shot digest. */
	unsigned char msg[200];
	for (int i = 0; i < 200; i++) msg[i] = (unsigned char)(i * 7 + 3);
	int bad = 0;
	for (size_t n = 0; n <= 200; n++) {
		char want[65], got[65];
		cap_sha256_hex(msg, n, want);
		for (size_t cut = 0; cut <= n; cut++) {
			cap_sha256_init(&s);
			cap_sha256_update(&s, msg, cut);
			cap_sha256_update(&s, msg + cut, n - cut);
			cap_sha256_final(&s, d);
			hex_of(d, got);
			bad += strcmp(want, got) != 0;
		}
	}
	CHECK(bad == 0, "%s: incremental updates equal one-shot digests for every split of 0..200 bytes (%d bad)", mode, bad);
}

int main(void)
{
	/* The portable code, then the SHA extensions where the CPU has them; both must agree with
	 * the vectors, and with each other on 8 MB of varied data. */
	cap_cpu_set_portable(1);
	run_all("portable C");
	char h1[65], h2[65];
	size_t n = 8 << 20;
	unsigned char *buf = malloc(n);
	for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)(i * 2654435761u >> 13);
	cap_sha256_hex(buf, n, h1);
	cap_cpu_set_portable(0);
	int shani = cap_cpu_has(CAP_CPU_SHA);
	if (shani) {
		run_all("SHA-NI");
		cap_sha256_hex(buf, n, h2);
		CHECK(!strcmp(h1, h2), "SHA-NI and portable digests of 8 MB agree");
	} else {
		SKIP("this CPU has no SHA extensions; only the portable code was tested");
	}
	free(buf);
	return check_exit();
}
