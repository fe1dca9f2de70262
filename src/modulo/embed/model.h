// Loading of a sentence-transformers BERT-family model directory.
//
// A model directory holds config.json (BERT hyper-parameters), model.safetensors (weights in
// F32, F16 or BF16), vocab.txt, and optionally tokenizer_config.json, sentence_bert_config.json
// (max_seq_length), 1_Pooling/config.json (mean or CLS pooling) and modules.json (whether a
// Normalize module follows). LoadBertModel() validates everything it reads: a missing
// directory, a corrupt or truncated file, or a shape that disagrees with config.json yields a
// modulo::Error whose message names the file; nothing is ever fetched from a network.
//
// Thread-safety: the returned BertModel is a plain value, immutable once loaded.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/embed/safetensors.h"

namespace modulo::embed {

// The checksum of model.safetensors of sentence-transformers/all-MiniLM-L6-v2 as installed by
// scripts/fetch-model.sh.
inline constexpr const char* kMiniLmSafetensorsSha256 =
    "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db";
inline constexpr const char* kDefaultModelName = "all-MiniLM-L6-v2";

enum class Pooling { kMean, kCls };

struct BertConfig {
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  int type_vocab_size = 0;
  float layer_norm_eps = 1e-12f;
  int head_dim() const { return hidden_size / num_heads; }
};

struct TokenizerConfig {
  bool lowercase = true;               // tokenizer_config.json do_lower_case
  bool strip_accents = true;           // tokenizer_config.json strip_accents (null: follows lowercase)
  bool tokenize_chinese_chars = true;  // CJK ideographs become single-character words
  int max_input_chars_per_word = 100;  // longer words become [UNK]
};

// An fp32 table that is either owned or a view into the mapped safetensors file.
struct FloatTable {
  std::vector<float> owned;
  std::span<const float> view;
  std::shared_ptr<const MappedFile> mapping;  // keeps `view` valid when it points into the file
  [[nodiscard]] const float* data() const { return view.data(); }
};

// PyTorch layout throughout: linear weights are [out_features, in_features].
struct LayerWeights {
  std::vector<float> qkv_w, qkv_b;  // query, key, value stacked: [3*hidden, hidden], [3*hidden]
  std::vector<float> out_w, out_b;  // attention output dense
  std::vector<float> ln1_g, ln1_b;  // attention output LayerNorm
  std::vector<float> ffn1_w, ffn1_b;  // intermediate dense [intermediate, hidden]
  std::vector<float> ffn2_w, ffn2_b;  // output dense [hidden, intermediate]
  std::vector<float> ln2_g, ln2_b;  // output LayerNorm
};

struct BertWeights {
  FloatTable word_embeddings;  // [vocab, hidden]
  std::vector<float> position_embeddings;  // [max_position, hidden]
  std::vector<float> token_type_embeddings;  // [type_vocab, hidden]
  std::vector<float> embeddings_ln_g, embeddings_ln_b;
  std::vector<LayerWeights> layers;
};

struct BertModel {
  std::string dir;
  BertConfig config;
  TokenizerConfig tokenizer;
  Pooling pooling = Pooling::kMean;
  bool normalize = true;     // L2-normalise the pooled vector
  int max_seq_length = 0;    // tokens per input including [CLS] and [SEP]
  BertWeights weights;
};

struct ModelLoadOptions {
  // Expected sha256 (hex) of model.safetensors; empty skips the check.
  std::string expected_sha256;
  // Overrides sentence_bert_config.json's max_seq_length when > 0 (capped by the positions).
  int max_seq_length = 0;
};

// Loads and validates a model directory. Errors: kNotFound when the directory or a required file
// is missing (the message says how to fetch the default model), kInvalidArgument when a file is
// corrupt or inconsistent, kUnavailable when a file cannot be read.
[[nodiscard]] Result<BertModel> LoadBertModel(const std::string& dir, const ModelLoadOptions& options);

// sha256 of a byte range as lower-case hex.
[[nodiscard]] std::string Sha256Hex(std::span<const std::byte> bytes);

// The message used whenever the model is missing.
[[nodiscard]] std::string MissingModelHint(const std::string& dir);

}  // namespace modulo::embed
