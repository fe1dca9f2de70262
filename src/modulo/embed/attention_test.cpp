// The fused attention kernel (AVX-512 where available, and the portable version) against a
// double-precision reference, over lengths around every block and padding boundary.
#include "modulo/embed/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace modulo::embed {
namespace {

// The packed layout the encoder uses: per token, Q | K | V of all heads (3 * hidden floats),
// this head at column h0 of each; the context is [tokens, hidden].
struct Case {
  int len, head_dim, heads = 3;
  std::vector<float> qkv, ctx;
  std::size_t ld_in() const { return static_cast<std::size_t>(3 * head_dim * heads); }
  std::size_t ld_out() const { return static_cast<std::size_t>(head_dim * heads); }
};

Case Make(int len, int head_dim, unsigned seed, float spread) {
  Case c{len, head_dim};
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.f, spread);
  c.qkv.resize(c.ld_in() * static_cast<std::size_t>(len));
  for (auto& x : c.qkv) x = n(rng);
  c.ctx.assign(c.ld_out() * static_cast<std::size_t>(len), -7.f);
  return c;
}

// Head 1 of the case, in double precision.
std::vector<double> Reference(const Case& c) {
  const int h0 = c.head_dim, L = c.len, D = c.head_dim, H = c.head_dim * c.heads;
  auto at = [&](int t, int part, int d) { return static_cast<double>(c.qkv[c.ld_in() * t + part * H + h0 + d]); };
  std::vector<double> out(static_cast<std::size_t>(L * D), 0.0), s(static_cast<std::size_t>(L));
  for (int i = 0; i < L; ++i) {
    double mx = -1e300;
    for (int j = 0; j < L; ++j) {
      double dot = 0;
      for (int d = 0; d < D; ++d) dot += at(i, 0, d) * at(j, 1, d);
      s[j] = dot;
      mx = std::max(mx, dot);
    }
    double sum = 0;
    for (int j = 0; j < L; ++j) sum += s[j] = std::exp(s[j] - mx);
    for (int j = 0; j < L; ++j) {
      for (int d = 0; d < D; ++d) out[i * D + d] += s[j] / sum * at(j, 2, d);
    }
  }
  return out;
}

using Kernel = void (*)(const float*, const float*, const float*, std::size_t, float*, std::size_t, int, int, float*);

void Check(Kernel kernel, int len, int head_dim, float spread, double tolerance = 2e-5) {
  Case c = Make(len, head_dim, static_cast<unsigned>(len * 131 + head_dim), spread);
  const int H = head_dim * c.heads, h0 = head_dim;
  std::vector<float> scratch(AttendScratchFloats(len, head_dim), 123.f);  // dirty on purpose
  const float* base = c.qkv.data() + h0;
  kernel(base, base + H, base + 2 * H, c.ld_in(), c.ctx.data() + h0, c.ld_out(), len, head_dim, scratch.data());
  const std::vector<double> want = Reference(c);
  double worst = 0;
  for (int i = 0; i < len; ++i) {
    for (int d = 0; d < head_dim; ++d) {
      const double got = c.ctx[c.ld_out() * i + h0 + d];
      worst = std::max(worst, std::fabs(got - want[i * head_dim + d]));
    }
    // Other heads' columns are untouched.
    EXPECT_EQ(c.ctx[c.ld_out() * i], -7.f);
    EXPECT_EQ(c.ctx[c.ld_out() * i + 2 * head_dim], -7.f);
  }
  EXPECT_LT(worst, tolerance * spread) << "len " << len << ", head_dim " << head_dim << ", spread " << spread;
}

TEST(AttentionTest, DispatchedKernelMatchesTheReference) {
  for (int head_dim : {16, 32, 48, 64, 24}) {
    for (int len : {1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 128, 200, 256}) {
      Check(&AttendHead, len, head_dim, 1.f);
    }
  }
}

TEST(AttentionTest, PortableKernelMatchesTheReference) {
  for (int head_dim : {16, 32, 24}) {
    for (int len : {1, 5, 16, 17, 128}) Check(&AttendHeadPortable, len, head_dim, 1.f);
  }
}

TEST(AttentionTest, PeakedScoresStayFinite) {
  // Large activations make scores of hundreds: softmax must subtract the row maximum, and keys
  // far below it must underflow to zero weight, never to NaN (a NaN fails every comparison).
  // fp32 scores of that size carry absolute rounding errors of ~1e-4, hence the looser bound.
  for (int len : {1, 17, 128}) {
    Check(&AttendHead, len, 32, 6.f, 2e-4);
    Check(&AttendHeadPortable, len, 32, 6.f, 2e-4);
  }
}

}  // namespace
}  // namespace modulo::embed
