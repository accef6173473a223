/* The LSTM cell forward and backward on AVX-512 and on AVX2 (see ops.h; the plain versions are in
 * lib/ops/ref/lstm.c): one body, lstm_vec.h, compiled at each width (see vec.h). */
#include "ops/cpu/cpu.h"
#include <string.h>
#if defined(__x86_64__)
#define VEC_BODY "ops/cpu/lstm_vec.h"
#include "ops/cpu/vec_widths.h"
#endif
