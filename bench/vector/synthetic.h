// Synthetic "embedding-like" vectors for the vector benchmarks: a mixture of Gaussian clusters
// with anisotropic noise (every cluster has its own per-dimension spread), L2-normalised.
// Queries are drawn from the same mixture, never from the base set. Deterministic for a seed,
// generated in parallel blocks (each block has its own seed, so the thread count does not matter).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

namespace bench {

class ClusteredMixture {
 public:
  ClusteredMixture(std::size_t dim, std::size_t clusters, std::uint64_t seed, float noise = 0.9f)
      : dim_(dim), clusters_(clusters), centres_(clusters * dim), scales_(clusters * dim) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> n01(0.f, 1.f);
    for (std::size_t c = 0; c < clusters; ++c) {
      float* ctr = &centres_[c * dim];
      double norm = 0;
      for (std::size_t j = 0; j < dim; ++j) {
        ctr[j] = n01(rng);
        norm += double(ctr[j]) * ctr[j];
      }
      const float inv = float(1.0 / std::sqrt(norm));
      for (std::size_t j = 0; j < dim; ++j) ctr[j] *= inv;
      // Anisotropic: per-dimension log-normal spread, overall noise norm ~ `noise` x centre norm.
      for (std::size_t j = 0; j < dim; ++j)
        scales_[c * dim + j] = noise / std::sqrt(float(dim)) * std::exp(0.5f * n01(rng));
    }
  }

  // n vectors into out (n * dim floats), rows [first, first + n) of the stream `stream`.
  void Generate(std::size_t n, std::uint64_t stream, float* out, unsigned threads = 2) const {
    constexpr std::size_t kBlock = 4096;
    const std::size_t blocks = (n + kBlock - 1) / kBlock;
    auto work = [&](unsigned t) {
      for (std::size_t b = t; b < blocks; b += threads) {
        std::mt19937_64 rng(stream * 1000003ULL + b * 7919ULL + 17);
        std::normal_distribution<float> n01(0.f, 1.f);
        // Zipf-ish cluster popularity: some topics are much bigger than others.
        std::uniform_real_distribution<double> u(0.0, 1.0);
        const std::size_t end = std::min(n, (b + 1) * kBlock);
        for (std::size_t i = b * kBlock; i < end; ++i) {
          const auto c = static_cast<std::size_t>(std::pow(u(rng), 1.5) * double(clusters_)) % clusters_;
          float* v = out + i * dim_;
          double norm = 0;
          for (std::size_t j = 0; j < dim_; ++j) {
            v[j] = centres_[c * dim_ + j] + scales_[c * dim_ + j] * n01(rng);
            norm += double(v[j]) * v[j];
          }
          const float inv = float(1.0 / std::sqrt(norm));
          for (std::size_t j = 0; j < dim_; ++j) v[j] *= inv;
        }
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
  }

 private:
  std::size_t dim_, clusters_;
  std::vector<float> centres_, scales_;
};

}  // namespace bench
