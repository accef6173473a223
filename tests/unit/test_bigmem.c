/* core/bigmem: zeroed memory, 2 MB aligned from 1 MB on, growth that keeps the contents; and
 * the huge-page advice takes where the kernel offers transparent huge pages on madvise. */
#include "check.h"
#include "core/bigmem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* AnonHugePages of this process in kB (smaps_rollup), or -1 where it cannot be read */
static long anon_huge_kb(void)
{
	FILE *f = fopen("/proc/self/smaps_rollup", "r");
	if (!f)
		return -1;
	char line[256];
	long kb = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int main(void)
{
	size_t small = 1000, big = (size_t)9 << 20;
	unsigned char *s = cap_big_alloc(small), *b = cap_big_alloc(big);
	CHECK(s && all_zero(s, small), "a small block is zeroed");
	CHECK(b && all_zero(b, big), "a 9 MB block is zeroed");
	CHECK(b && (uintptr_t)b % (2u << 20) == 0, "a 9 MB block starts on a 2 MB boundary");
	unsigned char *m = cap_big_alloc((size_t)3 << 19);
	CHECK(m && all_zero(m, (size_t)3 << 19) && (uintptr_t)m % (2u << 20) == 0,
	      "a 1.5 MB block is zeroed and starts on a 2 MB boundary");
	free(m);

	/* grow by doubling, as the feature loader does: the contents survive each step */
	size_t cap = 0, n = 0;
	float *v = NULL;
	int kept = 1;
	for (size_t i = 0; i < 3000000; i++) {
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 1024;
			v = cap_big_xgrow(v, sizeof(float) * cap, sizeof(float) * ncap);
			for (size_t j = cap; j < ncap; j++)
				kept &= v[j] == 0;   /* the new part zeroed */
			cap = ncap;
		}
		v[n++] = (float)i;
	}
	for (size_t i = 0; i < n; i++)
		kept &= v[i] == (float)i;
	CHECK(kept, "3,000,000 floats grown by doubling keep their values (capacity %zu)", cap);

	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char mode[128] = "";
	if (f) {
		if (!fgets(mode, sizeof mode, f))
			mode[0] = 0;
		fclose(f);
	}
	long kb = anon_huge_kb();
#ifdef __SANITIZE_ADDRESS__
	(void)kb;
	SKIP("AddressSanitizer's allocator places the blocks: the huge pages are not ours to check");
#else
	if (!strstr(mode, "[madvise]") && !strstr(mode, "[always]"))
		SKIP("transparent huge pages are off here (%s): only the advice was given", mode[0] ? "never" : "no sysfs entry");
	else if (kb < 0)
		SKIP("no /proc/self/smaps_rollup to read the huge pages from");
	else
		CHECK(kb >= 2048, "the big blocks sit on huge pages (AnonHugePages %ld kB)", kb);
#endif
	free(s);
	free(b);
	free(v);
	return check_exit();
}
