// Analyzer: text -> index terms for the embedded BM25 index. The same analysis runs on indexed
// text and on queries, so whatever it folds away matches on both sides.
//
// Pipeline, in order:
//   1. Decoding: invalid UTF-8 bytes are treated as separators (never an error, never a crash).
//   2. Normalisation per code point: case folding and compatibility decomposition (NFKD, so
//      full-width letters, ligatures and superscripts fold to their plain forms; "ß" -> "ss");
//      combining marks after Latin, Greek and Cyrillic letters are dropped ("café" -> "cafe");
//      marks of other scripts (Devanagari vowel signs...) stay part of the word. Each token is
//      recomposed (NFC) afterwards, so Hangul syllables stay syllables.
//   3. Tokenisation: a token is a run of letters, digits and marks; everything else separates.
//      Exceptions, as in Lucene's StandardTokenizer: "." and "," between two digits join
//      ("3.14", "1,000"); an apostrophe between two letters joins, then a possessive "'s" is
//      dropped and remaining apostrophes removed ("John's" -> "john", "don't" -> "dont").
//      Han ideographs, Hiragana and Katakana form runs that are emitted as overlapping bigrams
//      ("東京都" -> "東京", "京都"); a run of one character is emitted as a unigram; with
//      `cjk_unigrams` every character is emitted as well. Hangul, Thai, Arabic... are words.
//   4. Length limit: tokens longer than `max_token_chars` code points are dropped.
//   5. Stop words: the Lucene/Anserini English stop set (33 words, EnglishStopWords()).
//   6. Stemming: Snowball ("english" = Porter2 by default, or "porter") on pure-ASCII tokens
//      that contain a letter; other tokens are left as they are.
//
// Thread-safety: Analyze is const and safe to call from any number of threads at once (the
// Snowball stemmers, which are not thread-safe, are kept one per thread).
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace modulo::index {

struct AnalyzerOptions {
  // Snowball algorithm name as libstemmer knows it ("english", "porter"), or "" for none.
  std::string stemmer = "english";
  bool remove_stop_words = true;
  // Tokens longer than this (in code points, after normalisation) are dropped: base64 blobs,
  // hashes and runaway strings are noise, not words.
  std::size_t max_token_chars = 64;
  // Emit each CJK character as a term in addition to the bigrams.
  bool cjk_unigrams = false;
};

class Analyzer {
 public:
  // An unknown stemmer name means no stemming (libstemmer has no such algorithm); check it
  // beforehand with IsKnownStemmer if it comes from configuration.
  explicit Analyzer(AnalyzerOptions options = {});

  // Appends the terms of `text` to `out`, in text order, duplicates kept. `out` is not cleared.
  void Analyze(std::string_view text, std::vector<std::string>& out) const;
  [[nodiscard]] std::vector<std::string> Analyze(std::string_view text) const;

  [[nodiscard]] const AnalyzerOptions& options() const noexcept { return options_; }

 private:
  AnalyzerOptions options_;
};

// Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET, as Anserini uses it ("a", "an", "and", ...).
[[nodiscard]] std::span<const std::string_view> EnglishStopWords() noexcept;
[[nodiscard]] bool IsEnglishStopWord(std::string_view folded_term) noexcept;

// Whether libstemmer knows the algorithm (with UTF-8 encoding); "" (no stemming) is known.
[[nodiscard]] bool IsKnownStemmer(std::string_view name);

}  // namespace modulo::index
