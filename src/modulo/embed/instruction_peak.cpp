#include "modulo/embed/instruction_peak.h"

#include <algorithm>
#include <barrier>
#include <chrono>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace modulo::embed {
namespace {

// Per loop iteration every kernel issues kChains independent instructions, each accumulating
// into its own register, so neither latency nor memory limits the rate: only issue throughput.
constexpr int kChains = 16;  // zmm16..zmm31
constexpr long kIterations = 100'000'000;  // about half a second per thread at this machine's rates

#if defined(__x86_64__)
// The loop body in assembly, so that the compiler neither keeps accumulators in memory nor folds
// the chains: accumulators zmm16..zmm31 are zeroed, then each iteration issues one instruction per
// accumulator with the same two sources.
#define MODULO_PEAK_ACC(insn) \
  insn " %[b], %[a], %%zmm16\n\t" insn " %[b], %[a], %%zmm17\n\t" insn " %[b], %[a], %%zmm18\n\t" \
  insn " %[b], %[a], %%zmm19\n\t" insn " %[b], %[a], %%zmm20\n\t" insn " %[b], %[a], %%zmm21\n\t" \
  insn " %[b], %[a], %%zmm22\n\t" insn " %[b], %[a], %%zmm23\n\t" insn " %[b], %[a], %%zmm24\n\t" \
  insn " %[b], %[a], %%zmm25\n\t" insn " %[b], %[a], %%zmm26\n\t" insn " %[b], %[a], %%zmm27\n\t" \
  insn " %[b], %[a], %%zmm28\n\t" insn " %[b], %[a], %%zmm29\n\t" insn " %[b], %[a], %%zmm30\n\t" \
  insn " %[b], %[a], %%zmm31\n\t"
#define MODULO_PEAK_ZERO \
  "vpxord %%zmm16, %%zmm16, %%zmm16\n\tvmovdqa64 %%zmm16, %%zmm17\n\tvmovdqa64 %%zmm16, %%zmm18\n\t" \
  "vmovdqa64 %%zmm16, %%zmm19\n\tvmovdqa64 %%zmm16, %%zmm20\n\tvmovdqa64 %%zmm16, %%zmm21\n\t"          \
  "vmovdqa64 %%zmm16, %%zmm22\n\tvmovdqa64 %%zmm16, %%zmm23\n\tvmovdqa64 %%zmm16, %%zmm24\n\t"          \
  "vmovdqa64 %%zmm16, %%zmm25\n\tvmovdqa64 %%zmm16, %%zmm26\n\tvmovdqa64 %%zmm16, %%zmm27\n\t"          \
  "vmovdqa64 %%zmm16, %%zmm28\n\tvmovdqa64 %%zmm16, %%zmm29\n\tvmovdqa64 %%zmm16, %%zmm30\n\t"          \
  "vmovdqa64 %%zmm16, %%zmm31\n\t"
#define MODULO_PEAK_CLOBBERS                                                                              \
  "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", \
      "xmm28", "xmm29", "xmm30", "xmm31", "cc"

// 32 flops per instruction (16 lanes, multiply and add); accumulators stay normal numbers.
__attribute__((target("avx512f"))) void Fp32Loop(long iterations) {
  const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-6f);
  asm volatile(MODULO_PEAK_ZERO "1:\n\t" MODULO_PEAK_ACC("vfmadd231ps") "dec %[n]\n\tjnz 1b"
               : [n] "+r"(iterations)
               : [a] "v"(a), [b] "v"(b)
               : MODULO_PEAK_CLOBBERS);
}

// 64 flops per instruction (16 lanes, each two bf16 products and their sum added).
__attribute__((target("avx512f,avx512bf16"))) void Bf16Loop(long iterations) {
  const __m512i a = _mm512_set1_epi16(0x3f80), b = _mm512_set1_epi16(0x3380);  // 1.0 and about 6e-8
  asm volatile(MODULO_PEAK_ZERO "1:\n\t" MODULO_PEAK_ACC("vdpbf16ps") "dec %[n]\n\tjnz 1b"
               : [n] "+r"(iterations)
               : [a] "v"(a), [b] "v"(b)
               : MODULO_PEAK_CLOBBERS);
}

// 128 operations per instruction (16 lanes, each four u8×s8 products and their sum added).
__attribute__((target("avx512f,avx512vnni"))) void Int8Loop(long iterations) {
  const __m512i a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(-1);
  asm volatile(MODULO_PEAK_ZERO "1:\n\t" MODULO_PEAK_ACC("vpdpbusd") "dec %[n]\n\tjnz 1b"
               : [n] "+r"(iterations)
               : [a] "v"(a), [b] "v"(b)
               : MODULO_PEAK_CLOBBERS);
}
#endif

// The best rate of `rounds` runs of loop on `threads` threads started together.
template <typename Loop>
double Rate(Loop loop, double ops_per_iteration, int threads, int rounds) {
  double best = 0;
  for (int r = 0; r < rounds; ++r) {
    std::barrier start(threads + 1);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        start.arrive_and_wait();
        loop(kIterations);
      });
    }
    start.arrive_and_wait();
    const auto t0 = std::chrono::steady_clock::now();
    for (auto& w : workers) w.join();
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, ops_per_iteration * kIterations * threads / sec / 1e9);
  }
  return best;
}

}  // namespace

InstructionPeaks MeasureInstructionPeaks(int threads, int rounds) {
  InstructionPeaks out;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) {
    out.fp32_gflops = Rate(Fp32Loop, 32.0 * kChains, threads, rounds);
    if (__builtin_cpu_supports("avx512bf16")) out.bf16_gflops = Rate(Bf16Loop, 64.0 * kChains, threads, rounds);
    if (__builtin_cpu_supports("avx512vnni")) out.int8_gops = Rate(Int8Loop, 128.0 * kChains, threads, rounds);
  }
#endif
  return out;
}

}  // namespace modulo::embed
