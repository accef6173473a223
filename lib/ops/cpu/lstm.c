/* The LSTM cell forward and backward on AVX-512 and on AVX2 (see ops.h; the plain versions are in
 * lib/ops/ref/lstm.c): one body, lstm_vec.h, compiled at each width (see vec.h). */
#include "ops/cpu/cpu.h"
#include <string.h>
#if defined(__x86_64__)
#define VEC_WIDTH 16
#include "ops/cpu/vec.h"
#include "ops/cpu/lstm_vec.h"
#undef VEC_WIDTH
#define VEC_WIDTH 8
#include "ops/cpu/vec.h"
#include "ops/cpu/lstm_vec.h"
#endif
