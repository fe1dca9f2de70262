// QuestionSuggester: questions a collection can answer, suggested to its users after ingestion.
//
// Promises:
// - Input: a sample of passages (e.g. the first chunk of each of up to `max_passages` documents,
//   each cut to `max_passage_chars` in the prompt) and how many questions are wanted (n).
// - With a model: one call asking for n questions answerable from the passages, one per line. The
//   reply is cleaned (CleanQuestions): numbering, bullets, labels and quotes removed; only lines
//   ending in '?' and of `min_question_chars`..`max_question_chars` bytes kept; case-insensitive
//   duplicates dropped. Fewer than n: topped up by the rules (method "llm+rules").
// - Rules (no model, a failed call — error set — or no usable line): salient terms of the
//   passages — capitalised multiword terms ("Vector Store", "Bank of England") by frequency, then
//   the most frequent content words across the passages (stop words, question words and numbers
//   excluded) — become "What is <term>?" (multiword terms) or "What does the collection say about
//   <term>?". Method "rules".
// - At most n questions, no two equal ignoring case. No passages (or n = 0): no questions, no call,
//   method "none".
// - `usage`: the provider's figures, else estimates. Never throws for a model failure.
//
// Thread-safety: Suggest is const and may run on any number of threads at once. Blocking: call it
// on the blocking pool.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/generate/llm_provider.h"

namespace modulo::generate {

struct SuggestOptions {
  GenerationParams params{.max_new_tokens = 400, .temperature = 0.3};
  std::size_t max_passages = 10;
  std::size_t max_passage_chars = 1200;
  std::size_t min_question_chars = 10;
  std::size_t max_question_chars = 300;
};

struct SuggestResult {
  std::vector<std::string> questions;
  std::string method;  // "llm" | "llm+rules" | "rules" | "none"
  TokenUsage usage;
  std::optional<Error> error;
};

class QuestionSuggester {
 public:
  // `provider` may be null (rules only); it must outlive the suggester.
  explicit QuestionSuggester(LlmProvider* provider, SuggestOptions options = {});

  [[nodiscard]] SuggestResult Suggest(const std::vector<std::string_view>& passages, std::size_t n = 5,
                                      const CancelToken* cancel = nullptr) const;

  [[nodiscard]] std::vector<ChatMessage> Prompt(const std::vector<std::string_view>& passages, std::size_t n) const;

  // The questions in a reply (see the header comment), at most n.
  [[nodiscard]] std::vector<std::string> CleanQuestions(std::string_view reply, std::size_t n) const;

  // The salient terms of the passages, best first, at most n: multiword capitalised terms as
  // written, then single words (lower case unless always capitalised, e.g. "Milvus").
  [[nodiscard]] static std::vector<std::string> SalientTerms(const std::vector<std::string_view>& passages,
                                                             std::size_t n);

  // The rule-based questions, at most n.
  [[nodiscard]] static std::vector<std::string> QuestionsByRules(const std::vector<std::string_view>& passages,
                                                                 std::size_t n);

  [[nodiscard]] const SuggestOptions& options() const noexcept { return options_; }

 private:
  LlmProvider* provider_;
  SuggestOptions options_;
};

}  // namespace modulo::generate
