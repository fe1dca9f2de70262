// LocalEmbedder: the built-in embedding engine behind the Embedder interface: a BERT-family
// sentence-transformers model loaded from a directory, tokenized by WordPieceTokenizer and run
// by BertEncoder on this process's CPUs.
//
// Create() loads and validates the model (and, for the default model, verifies the checksum of
// its weights); a missing model fails with kNotFound and a message that says to run
// scripts/fetch-model.sh. Nothing is ever downloaded at run time.
//
// Thread-safety: all members are thread-safe. Embed() calls are serialised inside the encoder
// (one forward pass at a time, each using `threads` cores); use QueryBatcher to coalesce
// concurrent single queries.
#pragma once

#include <memory>
#include <string>

#include "modulo/embed/embedder.h"
#include "modulo/embed/encoder.h"
#include "modulo/embed/tokenizer.h"

namespace modulo::embed {

struct LocalEmbedderOptions {
  std::string model_dir = "models/all-MiniLM-L6-v2";  // sentence-transformers model directory
  std::string model_name;            // reported name; empty: the directory's base name
  Precision precision = Precision::kFp32;  // fp32 (exact), bf16, or auto (fastest the CPU has)
  int threads = 0;                   // cores per forward pass; 0: all
  std::size_t max_batch_tokens = 1024;  // tokens per sub-batch and thread
  int max_seq_length = 0;            // > 0 overrides the model's max_seq_length (capped by positions)
  std::string query_prefix;          // prepended to queries, e.g. "query: " for e5 models
  std::string passage_prefix;        // prepended to passages, e.g. "passage: " for e5 models
  // Expected sha256 of model.safetensors. Empty: the known checksum when the model is the
  // default all-MiniLM-L6-v2 (by directory name), otherwise no check.
  std::string expected_sha256;
  bool verify_checksum = true;
};

class LocalEmbedder final : public Embedder {
 public:
  [[nodiscard]] static Result<std::unique_ptr<LocalEmbedder>> Create(const LocalEmbedderOptions& options);

  [[nodiscard]] const ModelInfo& info() const noexcept override { return info_; }
  [[nodiscard]] Result<Embeddings> Embed(std::span<const std::string> texts, InputKind kind) override;
  [[nodiscard]] Result<std::size_t> CountTokens(std::string_view text) const override;

  // The tokenizer, for callers that need token offsets (e.g. a chunker sizing chunks in tokens).
  [[nodiscard]] const WordPieceTokenizer& tokenizer() const noexcept { return tokenizer_; }
  [[nodiscard]] Precision effective_precision() const noexcept { return encoder_->effective_precision(); }

  LocalEmbedder(WordPieceTokenizer tokenizer, std::unique_ptr<BertEncoder> encoder, ModelInfo info,
                LocalEmbedderOptions options);

 private:
  WordPieceTokenizer tokenizer_;
  std::unique_ptr<BertEncoder> encoder_;
  ModelInfo info_;
  LocalEmbedderOptions options_;
};

}  // namespace modulo::embed
