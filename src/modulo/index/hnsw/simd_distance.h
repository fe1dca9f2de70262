// Inner product of float vectors with runtime CPU dispatch: an AVX-512F, an AVX2+FMA and a
// scalar variant are compiled with per-function target attributes (no -march / -mavx512f
// anywhere), and the best one the CPU supports is chosen once, on first use, with
// __builtin_cpu_supports. The binary therefore runs on any x86-64 CPU.
//
// IpDistanceFunction() gives the same dot as hnswlib's distance 1 - <a, b> (its DISTFUNC
// signature); hnsw_vector_store.cpp plugs it into hnswlib through a SpaceInterface (hnswlib's
// own AVX-512 path exists only when the whole file is compiled with -mavx512f). This header does
// not include hnswlib: hnswlib 0.6.2's headers define non-inline globals, and even 0.8.0's are
// best kept to one translation unit.
//
// Thread-safety: the functions are pure; the dispatch is resolved once (thread-safe static).
#pragma once

#include <cstddef>
#include <string_view>

namespace modulo::index::hnsw {

using DotFn = float (*)(const float* a, const float* b, std::size_t n) noexcept;

// The variant chosen for this CPU.
[[nodiscard]] DotFn ResolveDot() noexcept;
// "avx512f", "avx2+fma" or "scalar".
[[nodiscard]] std::string_view DotVariantName() noexcept;

// <a, b> over n floats, with the variant chosen for this CPU.
[[nodiscard]] inline float Dot(const float* a, const float* b, std::size_t n) noexcept {
  static const DotFn fn = ResolveDot();
  return fn(a, b, n);
}

// The individual variants (for tests and benchmarks; calling an unsupported one is SIGILL).
float DotScalar(const float* a, const float* b, std::size_t n) noexcept;
float DotAvx2(const float* a, const float* b, std::size_t n) noexcept;
float DotAvx512(const float* a, const float* b, std::size_t n) noexcept;
[[nodiscard]] bool CpuHasAvx2Fma() noexcept;
[[nodiscard]] bool CpuHasAvx512() noexcept;

// hnswlib's DISTFUNC<float>: 1 - <a, b> on *static_cast<const std::size_t*>(param) floats.
using IpDistanceFn = float (*)(const void* a, const void* b, const void* param);
[[nodiscard]] IpDistanceFn IpDistanceFunction() noexcept;

}  // namespace modulo::index::hnsw
