#include "modulo/embed/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__x86_64__)
#include <immintrin.h>
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which its -Wuninitialized reports
// at every use (a false positive of the headers, not of this file).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace modulo::embed {
namespace {

std::size_t Padded(int len) { return (static_cast<std::size_t>(len) + 15) & ~std::size_t{15}; }

}  // namespace

std::size_t AttendScratchFloats(int len, int head_dim) {
  // K transposed (head_dim × padded len), then one block of score rows.
  return Padded(len) * static_cast<std::size_t>(head_dim + kAttendRows);
}

__attribute__((target_clones("avx2", "default"))) void AttendHeadPortable(const float* q, const float* k,
                                                                           const float* v, std::size_t ld_in,
                                                                           float* out, std::size_t ld_out, int len,
                                                                           int head_dim, float* scratch) {
  const auto L = static_cast<std::size_t>(len), D = static_cast<std::size_t>(head_dim);
  float* p = scratch;  // one row of scores
  for (std::size_t i = 0; i < L; ++i) {
    const float* qi = q + i * ld_in;
    float mx = -std::numeric_limits<float>::infinity();
    for (std::size_t j = 0; j < L; ++j) {
      const float* kj = k + j * ld_in;
      float s = 0.f;
      for (std::size_t d = 0; d < D; ++d) s += qi[d] * kj[d];
      p[j] = s;
      mx = std::max(mx, s);
    }
    float sum = 0.f;
    for (std::size_t j = 0; j < L; ++j) {
      p[j] = std::exp(p[j] - mx);
      sum += p[j];
    }
    float* oi = out + i * ld_out;
    std::fill(oi, oi + D, 0.f);
    for (std::size_t j = 0; j < L; ++j) {
      const float* vj = v + j * ld_in;
      const float pj = p[j];
      for (std::size_t d = 0; d < D; ++d) oi[d] += pj * vj[d];
    }
    const float inv = 1.f / sum;
    for (std::size_t d = 0; d < D; ++d) oi[d] *= inv;
  }
}

#if defined(__x86_64__)
namespace {

// e^x for x <= 0 (differences from a row's maximum): x = n ln2 + r with |r| <= ln2/2, e^r by the
// Cephes expf polynomial, times 2^n by VSCALEFPS. Below -87 the result is clamped to about 1e-38
// (the caller zeroes padding itself).
__attribute__((target("avx512f"))) inline __m512 Exp(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
  return _mm512_scalef_ps(p, n);
}

// Scores of R query rows against all keys: s[r * lp + j] = q_r · k_j, from kt (K transposed,
// head_dim rows of lp floats, zero past len).
template <int R>
__attribute__((target("avx512f"))) inline void Scores(const float* q, std::size_t ld_in, const float* kt,
                                                       std::size_t lp, int head_dim, float* s) {
  for (std::size_t j = 0; j < lp; j += 16) {
    __m512 acc[R];
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    for (int d = 0; d < head_dim; ++d) {
      const __m512 kv = _mm512_loadu_ps(kt + static_cast<std::size_t>(d) * lp + j);
      #pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[r * ld_in + d]), kv, acc[r]);
    }
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(s + r * lp + j, acc[r]);
  }
}

// Softmax numerators in place over the first len of lp scores (the rest become 0); returns
// 1 / (their sum).
__attribute__((target("avx512f"))) inline float SoftmaxRow(float* s, int len, std::size_t lp) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __mmask16 tail = static_cast<__mmask16>((1u << (len & 15)) - 1u);
  const std::size_t full = static_cast<std::size_t>(len) & ~std::size_t{15};
  __m512 mx = neg_inf;
  for (std::size_t j = 0; j < full; j += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(s + j));
  if (tail) mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(neg_inf, tail, s + full));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (std::size_t j = 0; j < full; j += 16) {
    const __m512 e = Exp(_mm512_sub_ps(_mm512_loadu_ps(s + j), m));
    _mm512_storeu_ps(s + j, e);
    sum = _mm512_add_ps(sum, e);
  }
  if (full < lp) {
    const __m512 e = _mm512_maskz_mov_ps(tail, Exp(_mm512_sub_ps(_mm512_loadu_ps(s + full), m)));
    _mm512_storeu_ps(s + full, e);
    sum = _mm512_add_ps(sum, e);
  }
  return 1.f / _mm512_reduce_add_ps(sum);
}

// out_r = inv[r] * sum_j p[r * lp + j] v_j for R rows, C × 16 columns starting at column c0.
template <int R, int C>
__attribute__((target("avx512f"))) inline void Context(const float* p, std::size_t lp, const float* v,
                                                        std::size_t ld_in, int len, int c0, const float* inv,
                                                        float* out, std::size_t ld_out) {
  __m512 acc[R][C];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  }
  for (int j = 0; j < len; ++j) {
    const float* vj = v + static_cast<std::size_t>(j) * ld_in + c0;
    __m512 vv[C];
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) vv[c] = _mm512_loadu_ps(vj + 16 * c);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 pr = _mm512_set1_ps(p[r * lp + static_cast<std::size_t>(j)]);
      #pragma GCC unroll 16
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_fmadd_ps(pr, vv[c], acc[r][c]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m512 s = _mm512_set1_ps(inv[r]);
    #pragma GCC unroll 16
    for (int c = 0; c < C; ++c) _mm512_storeu_ps(out + r * ld_out + c0 + 16 * c, _mm512_mul_ps(acc[r][c], s));
  }
}

template <int R>
__attribute__((target("avx512f"))) void Block(const float* q, const float* v, std::size_t ld_in, float* out,
                                               std::size_t ld_out, int len, int head_dim, const float* kt,
                                               std::size_t lp, float* s) {
  Scores<R>(q, ld_in, kt, lp, head_dim, s);
  float inv[R];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) inv[r] = SoftmaxRow(s + r * lp, len, lp);
  int c0 = 0;
  for (; c0 + 32 <= head_dim; c0 += 32) Context<R, 2>(s, lp, v, ld_in, len, c0, inv, out, ld_out);
  if (c0 < head_dim) Context<R, 1>(s, lp, v, ld_in, len, c0, inv, out, ld_out);
}

__attribute__((target("avx512f"))) void AttendHeadAvx512(const float* q, const float* k, const float* v,
                                                          std::size_t ld_in, float* out, std::size_t ld_out, int len,
                                                          int head_dim, float* scratch) {
  const std::size_t lp = Padded(len);
  const auto L = static_cast<std::size_t>(len);
  float* kt = scratch;
  float* s = scratch + lp * static_cast<std::size_t>(head_dim);
  for (int d = 0; d < head_dim; ++d) {
    float* row = kt + static_cast<std::size_t>(d) * lp;
    for (std::size_t j = 0; j < L; ++j) row[j] = k[j * ld_in + static_cast<std::size_t>(d)];
    std::fill(row + L, row + lp, 0.f);
  }
  int i = 0;
  for (; i + kAttendRows <= len; i += kAttendRows) {
    Block<kAttendRows>(q + i * ld_in, v, ld_in, out + i * ld_out, ld_out, len, head_dim, kt, lp, s);
  }
  for (; i + 4 <= len; i += 4) Block<4>(q + i * ld_in, v, ld_in, out + i * ld_out, ld_out, len, head_dim, kt, lp, s);
  for (; i < len; ++i) Block<1>(q + i * ld_in, v, ld_in, out + i * ld_out, ld_out, len, head_dim, kt, lp, s);
}

bool HasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}

}  // namespace
#endif

void AttendHead(const float* q, const float* k, const float* v, std::size_t ld_in, float* out, std::size_t ld_out,
                int len, int head_dim, float* scratch) {
#if defined(__x86_64__)
  if (head_dim % 16 == 0 && HasAvx512()) {
    AttendHeadAvx512(q, k, v, ld_in, out, ld_out, len, head_dim, scratch);
    return;
  }
#endif
  AttendHeadPortable(q, k, v, ld_in, out, ld_out, len, head_dim, scratch);
}

}  // namespace modulo::embed
