// Extractive answers: with no LLM configured, an answer composed from the retrieved passages'
// most relevant sentences, each followed by an [n] citation of the query_results entry (1-based)
// it came from. Offline, fast (well under a millisecond for ten passages), and honest: it never
// writes a word that is not in a cited passage, and says so when no sentence matches the
// question.
//
// Sentences are scored by the question's analysed terms they contain (stemmed, stop words
// dropped; each term weighted by how rare it is among the candidate sentences), with a small
// preference for higher-ranked passages; near-duplicate sentences are skipped; the chosen ones
// are put back in passage order and position so the answer reads naturally.
//
// Thread-safety: stateless apart from the analyzer (which is thread-safe); call from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "modulo/index/bm25/analyzer.h"

namespace modulo::search {

struct ExtractiveOptions {
  std::size_t passages = 5;          // top results considered
  std::size_t max_sentences = 3;
  std::size_t max_chars = 700;       // of the answer, citations excluded
};

struct ExtractiveAnswer {
  std::string text;                  // sentences with " [n]" after each; empty when no passages
  std::vector<std::size_t> cited;    // the n of every citation (1-based, ascending, unique)
  bool matched = false;              // false: no sentence shares a term with the question
};

[[nodiscard]] ExtractiveAnswer ComposeExtractiveAnswer(const index::Analyzer& analyzer, std::string_view question,
                                                       const std::vector<std::string_view>& passages,
                                                       const ExtractiveOptions& options = {});

// Sentences of a passage (rule-based: ., ! or ? followed by a space and a capital letter, digit
// or quote; line breaks; common abbreviations such as "e.g." and "Dr." do not end a sentence).
[[nodiscard]] std::vector<std::string_view> SplitSentences(std::string_view text);

}  // namespace modulo::search
