/* What the processor can do, checked once, and the one switch that turns every fast path off.
 * Every piece of cap that has a vectorised version beside its plain C one (the cpu backend's
 * ops, SHA-256, the image resizer) asks here, so that --device ref (cap_cpu_set_portable(1))
 * makes the whole process run its portable code, and tests can compare the two. */
#ifndef CAP_CPU_H
#define CAP_CPU_H

enum {
	CAP_CPU_SSE41      = 1 << 0,
	CAP_CPU_SHA        = 1 << 1,   /* SHA-NI (with SSSE3 and SSE4.1) */
	CAP_CPU_AVX512F    = 1 << 2,
	CAP_CPU_AVX512BF16 = 1 << 3,
	CAP_CPU_AVX2       = 1 << 4,   /* AVX2 with FMA (the cpu backend's 8-lane kernels) */
};

/* The features of this processor (detected on the first call), less those turned off: by
 * cap_cpu_set_portable, or named in $CAP_CPU_OFF (e.g. "avx512bf16" or "avx512f,sha"). */
unsigned cap_cpu_features(void);
static inline int cap_cpu_has(unsigned f) { return (cap_cpu_features() & f) == f; }
/* on = 1: report no features from now on (every caller takes its portable path); on = 0: the
 * processor's own. Returns the previous setting. Call it before the work starts: code that has
 * already chosen (a built cpu ops table) keeps its choice. */
int cap_cpu_set_portable(int on);
/* A short list of the detected features, e.g. "sse4.1 sha avx512f", for logs. */
const char *cap_cpu_describe(void);
#endif
