/* Log-softmax and the fused softmax cross-entropy on AVX-512 and on AVX2 (see ops.h; the plain
 * versions are in lib/ops/ref/softmax.c): one body, softmax_vec.h, compiled at each width (see
 * vec.h). */
#include "ops/cpu/cpu.h"
#include <math.h>
#if defined(__x86_64__)
#define VEC_BODY "ops/cpu/softmax_vec.h"
#include "ops/cpu/vec_widths.h"
#endif
