// TokenSpans over the built-in embedder's WordPiece tokenizer, so chunks are sized in exactly
// the tokens the encoder will see.
#pragma once

#include "modulo/embed/remote/remote_embedders.h"
#include "modulo/embed/tokenizer.h"
#include "modulo/ingest/chunker.h"

namespace modulo::ingest {

class WordPieceSpans final : public TokenSpans {
 public:
  explicit WordPieceSpans(const embed::WordPieceTokenizer& tokenizer) : tokenizer_(tokenizer) {}
  std::vector<std::pair<std::uint32_t, std::uint32_t>> Spans(std::string_view text) const override {
    std::vector<std::pair<std::uint32_t, std::uint32_t>> out;
    for (const auto& t : tokenizer_.Tokenize(text)) out.emplace_back(t.begin, t.end);
    return out;
  }
  std::size_t Count(std::string_view text) const override { return tokenizer_.CountTokens(text); }

 private:
  const embed::WordPieceTokenizer& tokenizer_;
};

// Estimated spans for remote embedders, whose tokenizer is not available here.
class EstimatedSpans final : public TokenSpans {
 public:
  std::vector<std::pair<std::uint32_t, std::uint32_t>> Spans(std::string_view text) const override {
    return embed::remote::EstimateTokenSpans(text);
  }
};

}  // namespace modulo::ingest
