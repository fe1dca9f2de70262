// WordPieceTokenizer: BERT tokenization exactly as the reference (Hugging Face `tokenizers`
// BertNormalizer + BertPreTokenizer + WordPiece + BERT post-processing).
//
// Steps: clean text (drop NUL, U+FFFD and control/format characters; tabs and line breaks become
// spaces), put CJK ideographs in words of their own, strip accents (NFD, drop non-spacing marks)
// and lower-case for uncased models, split on whitespace and around punctuation, then greedy
// longest-match WordPiece with "##" continuations; a word that cannot be covered, or that is
// longer than max_input_chars_per_word characters, becomes [UNK]. Unicode properties come from
// utf8proc. Invalid UTF-8 is read as U+FFFD, which cleaning then drops: never a crash.
//
// Tokenization stops as soon as the requested number of tokens is reached, so truncating a
// megabyte of text costs about as much as the prefix that is kept.
//
// Thread-safety: immutable after construction; all const members may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/embed/model.h"

namespace modulo::embed {

// One word-piece token and the byte range [begin, end) of the original text it came from.
struct Token {
  std::int32_t id = 0;
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
};

class WordPieceTokenizer {
 public:
  static constexpr std::size_t kNoLimit = std::numeric_limits<std::size_t>::max();

  // Reads vocab.txt (one token per line; the line number is the id).
  [[nodiscard]] static Result<WordPieceTokenizer> FromVocabFile(const std::string& path, const TokenizerConfig& config);
  [[nodiscard]] static Result<WordPieceTokenizer> FromVocab(std::vector<std::string> vocab, const TokenizerConfig& config);

  // Model input ids: [CLS] tokens... [SEP], truncated so that the total is at most max_length (>= 2).
  [[nodiscard]] std::vector<std::int32_t> Encode(std::string_view text, std::size_t max_length) const;
  // Word-piece tokens without special tokens, at most `limit` of them, with byte offsets.
  [[nodiscard]] std::vector<Token> Tokenize(std::string_view text, std::size_t limit = kNoLimit) const;
  // The number of word-piece tokens in text (no special tokens), counting at most `limit`.
  [[nodiscard]] std::size_t CountTokens(std::string_view text, std::size_t limit = kNoLimit) const;

  [[nodiscard]] std::int32_t cls_id() const noexcept { return cls_; }
  [[nodiscard]] std::int32_t sep_id() const noexcept { return sep_; }
  [[nodiscard]] std::int32_t unk_id() const noexcept { return unk_; }
  [[nodiscard]] std::int32_t pad_id() const noexcept { return pad_; }
  [[nodiscard]] std::size_t vocab_size() const noexcept { return vocab_.size(); }
  // The vocabulary entry of an id ("" when out of range).
  [[nodiscard]] std::string_view IdToToken(std::int32_t id) const;

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using Map = std::unordered_map<std::string, std::int32_t, Hash, std::equal_to<>>;

  // Runs the pipeline, calling sink(Token) for each token; stops when sink returns false.
  template <typename Sink>
  void Run(std::string_view text, Sink&& sink) const;
  struct Word;
  // Splits one normalised word into word pieces, appended to `out`.
  void WordPiece(const Word& word, std::vector<Token>& out) const;

  TokenizerConfig config_;
  std::vector<std::string> vocab_;
  Map words_;          // tokens that may start a word
  Map continuations_;  // "##x" tokens, stored without the "##"
  std::int32_t cls_ = -1, sep_ = -1, unk_ = -1, pad_ = -1;
};

}  // namespace modulo::embed
