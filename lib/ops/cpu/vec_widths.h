/* Compiles the vector kernel body named by VEC_BODY (a *_vec.h file, see vec.h) at each width
 * the cpu backend has: 16 lanes (cap_avx512_*) and 8 (cap_avx2_*). A kernel file defines
 * VEC_BODY and includes this once; a new width is added here, for every kernel. */
#define VEC_WIDTH 16
#include "ops/cpu/vec.h"
#include VEC_BODY
#undef VEC_WIDTH
#define VEC_WIDTH 8
#include "ops/cpu/vec.h"
#include VEC_BODY
#undef VEC_WIDTH
#undef VEC_BODY
