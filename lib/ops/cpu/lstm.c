/* LSTM cell and softmax cross-entropy kernels: plain C and AVX-512 (see lstm.h). */
#include "ops/lstm.h"
#include "ops/gemm.h"
#include <math.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

/* ---- plain C (reference) ---- */

static inline float sigm(float x) { return 1.0f / (1.0f + expf(-x)); }

static void cell_ref(float *pre, const float *c_prev, float *c, float *tc, float *h, int H)
{
	float *gi = pre, *gf = pre + H, *gg = pre + 2 * H, *go = pre + 3 * H;
	for (int j = 0; j < H; j++) {
		float i = sigm(gi[j]), f = sigm(gf[j]), g = tanhf(gg[j]), o = sigm(go[j]);
		float cn = i * g + (c_prev ? f * c_prev[j] : 0.0f);
		float t = tanhf(cn);
		gi[j] = i; gf[j] = f; gg[j] = g; go[j] = o;
		c[j] = cn;
		if (tc)
			tc[j] = t;
		h[j] = o * t;
	}
}

static double xent_ref(float *v, uint32_t tg, int V, float grad_scale)
{
	float mx = -INFINITY;
	for (int j = 0; j < V; j++)
		mx = v[j] > mx ? v[j] : mx;
	float xt = v[tg] - mx, s = 0;
	for (int j = 0; j < V; j++) {
		v[j] = expf(v[j] - mx);
		s += v[j];
	}
	if (grad_scale > 0) {
		float k = grad_scale / s;
		for (int j = 0; j < V; j++)
			v[j] *= k;
		v[tg] -= grad_scale;
	}
	return (double)logf(s) - (double)xt;
}

/* ---- AVX-512 ---- */
#ifdef HAVE_X86
#define AVX512 __attribute__((target("avx512f")))

/* exp(x) for float lanes: x = n ln2 + r, |r| <= ln2/2, exp(r) by the Cephes polynomial,
 * scaled by 2^n. Inputs are clamped to the float range (exp(-88) is 0 for our purposes). */
AVX512 static inline __m512 exp512(__m512 x)
{
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

AVX512 static inline __m512 sigm512(__m512 x)
{
	__m512 one = _mm512_set1_ps(1.0f);
	return _mm512_div_ps(one, _mm512_add_ps(one, exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/* tanh(x) = sign(x) (1 - e) / (1 + e), e = exp(-2|x|). */
AVX512 static inline __m512 tanh512(__m512 x)
{
	__m512 ax = _mm512_abs_ps(x), one = _mm512_set1_ps(1.0f);
	__m512 e = exp512(_mm512_mul_ps(ax, _mm512_set1_ps(-2.0f)));
	__m512 t = _mm512_div_ps(_mm512_sub_ps(one, e), _mm512_add_ps(one, e));
	/* copy the sign of x */
	__m512i sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u));
	return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign));
}

AVX512 static void cell_avx512(float *pre, const float *c_prev, float *c, float *tc, float *h, int H)
{
	float *gi = pre, *gf = pre + H, *gg = pre + 2 * H, *go = pre + 3 * H;
	int j = 0;
	for (; j + 16 <= H; j += 16) {
		__m512 i = sigm512(_mm512_loadu_ps(gi + j)), f = sigm512(_mm512_loadu_ps(gf + j));
		__m512 g = tanh512(_mm512_loadu_ps(gg + j)), o = sigm512(_mm512_loadu_ps(go + j));
		__m512 cn = _mm512_mul_ps(i, g);
		if (c_prev)
			cn = _mm512_add_ps(cn, _mm512_mul_ps(f, _mm512_loadu_ps(c_prev + j)));
		__m512 t = tanh512(cn);
		_mm512_storeu_ps(gi + j, i); _mm512_storeu_ps(gf + j, f);
		_mm512_storeu_ps(gg + j, g); _mm512_storeu_ps(go + j, o);
		_mm512_storeu_ps(c + j, cn);
		if (tc)
			_mm512_storeu_ps(tc + j, t);
		_mm512_storeu_ps(h + j, _mm512_mul_ps(o, t));
	}
	if (j < H) {  /* tail through the scalar code on the shifted views */
		float tmp[4 * 16];
		int k = H - j;
		for (int q = 0; q < 4; q++)
			memcpy(tmp + q * k, pre + q * H + j, sizeof(float) * k);
		cell_ref(tmp, c_prev ? c_prev + j : NULL, c + j, tc ? tc + j : NULL, h + j, k);
		for (int q = 0; q < 4; q++)
			memcpy(pre + q * H + j, tmp + q * k, sizeof(float) * k);
	}
}

AVX512 static double xent_avx512(float *v, uint32_t tg, int V, float grad_scale)
{
	int j = 0;
	__m512 m = _mm512_set1_ps(-INFINITY);
	for (; j + 16 <= V; j += 16)
		m = _mm512_max_ps(m, _mm512_loadu_ps(v + j));
	float mx = _mm512_reduce_max_ps(m);
	for (; j < V; j++)
		mx = v[j] > mx ? v[j] : mx;
	float xt = v[tg] - mx;
	__m512 vm = _mm512_set1_ps(mx), acc = _mm512_setzero_ps();
	for (j = 0; j + 16 <= V; j += 16) {
		__m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(v + j), vm));
		_mm512_storeu_ps(v + j, e);
		acc = _mm512_add_ps(acc, e);
	}
	float s = _mm512_reduce_add_ps(acc);
	for (; j < V; j++) {
		v[j] = expf(v[j] - mx);
		s += v[j];
	}
	if (grad_scale > 0) {
		float k = grad_scale / s;
		__m512 vk = _mm512_set1_ps(k);
		for (j = 0; j + 16 <= V; j += 16)
			_mm512_storeu_ps(v + j, _mm512_mul_ps(_mm512_loadu_ps(v + j), vk));
		for (; j < V; j++)
			v[j] *= k;
		v[tg] -= grad_scale;
	}
	return (double)logf(s) - (double)xt;
}

static int have_avx512(void)
{
	static int cached = -1;
	if (cached < 0)
		cached = __builtin_cpu_supports("avx512f") ? 1 : 0;
	return cached;
}
#else
static int have_avx512(void) { return 0; }
#endif

void cap_lstm_cell_rows(float *g, const float *c_prev, float *c, float *tc, float *h, int n, int H)
{
	int fast = have_avx512() && !cap_gemm_reference();
	for (int b = 0; b < n; b++) {
		size_t o = (size_t)b * H;
		float *gb = g + 4 * o;
		const float *cp = c_prev ? c_prev + o : NULL;
		float *tcb = tc ? tc + o : NULL;
#ifdef HAVE_X86
		if (fast) {
			cell_avx512(gb, cp, c + o, tcb, h + o, H);
			continue;
		}
#endif
		(void)fast;
		cell_ref(gb, cp, c + o, tcb, h + o, H);
	}
}

double cap_softmax_xent_rows(float *x, const uint32_t *target, int n, int V, float grad_scale)
{
	int fast = have_avx512() && !cap_gemm_reference();
	double loss = 0;
	for (int r = 0; r < n; r++) {
		float *v = x + (size_t)r * V;
#ifdef HAVE_X86
		if (fast) {
			loss += xent_avx512(v, target[r], V, grad_scale);
			continue;
		}
#endif
		(void)fast;
		loss += xent_ref(v, target[r], V, grad_scale);
	}
	return loss;
}
