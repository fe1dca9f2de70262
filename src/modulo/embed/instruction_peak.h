// The machine's arithmetic ceilings, measured: loops of independent AVX-512 FMA (fp32),
// VDPBF16PS (bf16) and VPDPBUSD (int8, VNNI) instructions on N threads, with no memory traffic.
// No GEMM and no encoder can beat these, so the benchmarks report them next to the engine's
// figures, measured in the same run (benchmark-only code; not linked into the server).
#pragma once

#include <optional>

namespace modulo::embed {

struct InstructionPeaks {
  std::optional<double> fp32_gflops;  // empty: the CPU has no AVX-512F
  std::optional<double> bf16_gflops;  // empty: no AVX512_BF16
  std::optional<double> int8_gops;    // empty: no AVX512_VNNI
};

// Runs each loop on `threads` threads at once, `rounds` times, and keeps the best round.
InstructionPeaks MeasureInstructionPeaks(int threads, int rounds = 3);

}  // namespace modulo::embed
