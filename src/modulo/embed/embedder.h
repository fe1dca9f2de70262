// Embedder: the interface ingestion, search and the /v1/embeddings API use to turn texts into
// vectors. Implementations: LocalEmbedder (the built-in engine, local_embedder.h),
// CachingEmbedder (an LRU in front of another embedder, embedding_cache.h); remote embedders
// (OpenAI-compatible, watsonx.ai) implement the same interface.
//
// Promises: Embed() returns one unit-length vector of info().dimension floats per input text,
// in input order, or an Error (kInvalidArgument for bad input, kUnavailable/kDeadlineExceeded
// for a remote service, kInternal for a bug). Texts longer than info().max_tokens are truncated,
// never rejected. Queries and passages may be embedded differently (e5-style prefixes).
//
// Thread-safety: every implementation is safe to call from any number of threads at once.
// Embed() is CPU-heavy or blocking: call it on a CPU or blocking pool, never on an I/O thread
// (for single queries from request handlers use QueryBatcher, query_batcher.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::embed {

enum class InputKind { kQuery, kPassage };

struct ModelInfo {
  std::string name;            // e.g. "all-MiniLM-L6-v2"; what /v1/embeddings reports as "model"
  std::size_t dimension = 0;   // floats per vector
  std::size_t max_tokens = 0;  // model tokens per input including special tokens; longer input is truncated
  std::string precision;       // "fp32", "bf16", or "remote"
};

// A batch of vectors, row-major: vector i is values[i * dimension, (i + 1) * dimension).
struct Embeddings {
  std::size_t dimension = 0;
  std::vector<float> values;
  // Model tokens per input as embedded (after truncation, including special tokens); for usage
  // accounting ("prompt_tokens"). Remote embedders may report zeros when the service does not.
  std::vector<std::uint32_t> token_counts;

  [[nodiscard]] std::size_t size() const noexcept { return dimension == 0 ? 0 : values.size() / dimension; }
  [[nodiscard]] std::span<const float> Row(std::size_t i) const { return {values.data() + i * dimension, dimension}; }
};

class Embedder {
 public:
  virtual ~Embedder() = default;

  [[nodiscard]] virtual const ModelInfo& info() const noexcept = 0;

  // Embeds texts (any number; memory stays bounded by the output). An empty span gives an empty
  // result; an empty string is a valid text.
  [[nodiscard]] virtual Result<Embeddings> Embed(std::span<const std::string> texts, InputKind kind) = 0;

  // The number of model tokens in text (no special tokens, no prefix, no truncation); used to
  // size chunks. Remote embedders may estimate.
  [[nodiscard]] virtual Result<std::size_t> CountTokens(std::string_view text) const = 0;
};

}  // namespace modulo::embed
