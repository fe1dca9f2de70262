// BertEncoder: the BERT forward pass on the CPU, from token ids to pooled, L2-normalised vectors.
//
// Embeddings (word + position + token type) and LayerNorm; per layer self-attention over each
// sequence's own tokens (so padding never leaks into attention), output projection with the
// residual added inside the GEMM, LayerNorm, GELU (erf) feed-forward fused into its GEMM, the
// second residual, LayerNorm; then mean or CLS pooling and L2 normalisation.
//
// GEMMs and LayerNorm run as oneDNN primitives (AVX-512 JIT kernels chosen at run time for the
// CPU at hand), cached per shape; attention is a fused kernel of our own (attention.h). Inputs are sorted by length and cut into sub-batches
// of at most max_batch_tokens tokens, which bounds memory for any number of inputs. A
// sub-batch's tokens are packed without padding: the dense layers run on all of its rows at
// once (rounded up to a few bucket sizes, so a few dozen GEMM shapes serve every batch), and
// attention runs per sequence and head.
//
// Precision: kFp32 is exact to ~1e-6; kBf16 runs the dense layers with bf16 inputs and weights
// (fp32 accumulation) where the CPU has AVX512_BF16, and falls back to fp32 otherwise. The
// choice is made once at creation from oneDNN's detected ISA, so no unsupported instruction is
// ever executed.
//
// Threads: a large call (ingestion batches) has the whole encoder: its sub-batches run one per
// thread, or a single sub-batch uses all `threads` inside each oneDNN call. A small call (one
// sub-batch of at most 512 tokens, such as a micro-batch of queries) runs on one thread when
// other calls are in flight, so concurrent query batches proceed side by side, one per core.
// Alone, it uses all threads when it has more than 64 rows (below that one thread is faster
// than OpenMP's per-primitive barriers). With int8 on two threads there is a split mode instead:
// a small call that finds the encoder idle, and idle for at least 300 us (so not under load),
// runs each layer as two halves (output columns of the GEMMs, heads of attention) on the calling
// thread and a helper thread that meet at spin barriers, with no OpenMP regions at all.
//
// Thread-safety: Encode() may be called from any thread concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/embed/model.h"

namespace modulo::embed {

enum class Precision {
  kFp32,  // exact
  kBf16,  // bf16 dense layers when the CPU supports AVX512_BF16, else fp32
  kInt8,  // int8 dense layers: per-channel weight scales, per-token dynamic activation scales
  kAuto,  // the fastest reduced-precision path the CPU supports (currently bf16, else fp32)
};

[[nodiscard]] std::string_view PrecisionName(Precision p) noexcept;
// Parses "fp32", "bf16", "int8" or "auto".
[[nodiscard]] Result<Precision> ParsePrecision(std::string_view name);

struct EncoderOptions {
  Precision precision = Precision::kFp32;  // requested precision (see effective_precision())
  int threads = 0;                         // OpenMP threads per forward pass; 0 = all cores
  std::size_t max_batch_tokens = 1024;     // tokens per sub-batch and thread (bounds memory)
};

class BertEncoder {
 public:
  [[nodiscard]] static Result<std::unique_ptr<BertEncoder>> Create(BertModel model, const EncoderOptions& options);
  ~BertEncoder();
  BertEncoder(const BertEncoder&) = delete;
  BertEncoder& operator=(const BertEncoder&) = delete;

  // Embeds each sequence of ids (each [CLS] ... [SEP], at most max_seq_length() long) into
  // `out`, row i at out[i * dimension()]. `out` must hold sequences.size() * dimension() floats.
  [[nodiscard]] Status Encode(std::span<const std::vector<std::int32_t>> sequences, std::span<float> out);

  [[nodiscard]] int dimension() const noexcept;
  [[nodiscard]] int max_seq_length() const noexcept;
  [[nodiscard]] Precision effective_precision() const noexcept;
  [[nodiscard]] const BertModel& model() const noexcept;
  // Calls that ran in split mode so far (int8 on two threads; for tests and diagnostics).
  [[nodiscard]] std::uint64_t split_calls() const noexcept;

  // Floating-point operations of one forward pass over a sequence of `length` tokens.
  [[nodiscard]] static double ForwardFlops(const BertConfig& config, int length);

 private:
  struct Impl;
  struct Key {};

 public:
  BertEncoder(Key, std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace modulo::embed
