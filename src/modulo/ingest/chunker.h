// Chunking: turns a parsed document into chunks sized in the embedding model's tokens, so no
// chunk is silently truncated by the encoder. Strategies (the ones RAG Modulo offers):
//   sentence      sentences packed up to chunk_tokens, with overlap_tokens of trailing sentences
//                 repeated at the start of the next chunk (the default)
//   fixed         token windows of chunk_tokens with overlap_tokens
//   semantic      sentences grouped until adjacent-sentence similarity drops (needs embeddings)
//   hierarchical  parent sections of parent_tokens returned as context; child chunks of
//                 chunk_tokens inside each parent are what gets indexed
// Chunks never cross a section boundary (a change of heading path). Each chunk knows its page,
// section path and character range in the document text (blocks joined by "\n\n").
//
// Thread-safety: pure functions; safe from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "modulo/core/error.h"
#include "modulo/parse/parser.h"

namespace modulo::ingest {

struct ChunkingSettings {
  std::string strategy = "sentence";
  int chunk_tokens = 200;
  int overlap_tokens = 32;
  int parent_tokens = 1024;          // hierarchical
  double semantic_percentile = 0.2;  // semantic: break at the lowest 20% of adjacent similarities

  // Reads {"strategy", "chunk_tokens", "overlap_tokens", "parent_tokens", "semantic_percentile"}
  // (all optional), validating against the model's limit (chunk_tokens <= model_max_tokens - 2).
  [[nodiscard]] static Result<ChunkingSettings> FromJson(const nlohmann::json& j, int model_max_tokens);
  [[nodiscard]] nlohmann::json ToJson() const;
};

// Byte ranges of the model's tokens in a text.
class TokenSpans {
 public:
  virtual ~TokenSpans() = default;
  [[nodiscard]] virtual std::vector<std::pair<std::uint32_t, std::uint32_t>> Spans(std::string_view text) const = 0;
  [[nodiscard]] virtual std::size_t Count(std::string_view text) const { return Spans(text).size(); }
};

struct ChunkOut {
  int chunk_number = 0;
  std::string text;
  int page = 0;
  std::string section_path;  // "A > B"
  std::int64_t char_start = 0;
  std::int64_t char_end = 0;
  int token_count = 0;
  std::optional<int> parent_number;
  bool is_parent = false;
};

// Embeds sentences for the semantic strategy: unit vectors, one per text, row-major.
using SentenceEmbedder = std::function<Result<std::vector<std::vector<float>>>(std::span<const std::string>)>;

[[nodiscard]] Result<std::vector<ChunkOut>> ChunkDocument(const parse::ParsedDocument& doc,
                                                          const ChunkingSettings& settings, const TokenSpans& tokens,
                                                          const SentenceEmbedder& embed_sentences = {});

// Splits text into sentences (byte ranges), keeping abbreviations, decimals and initials intact.
[[nodiscard]] std::vector<std::pair<std::size_t, std::size_t>> SplitSentences(std::string_view text);

}  // namespace modulo::ingest
