// LlmReranker: orders retrieved passages by a language model's judgement of their relevance to the
// question.
//
// Promises:
// - Passages are scored in batches of `batch_size` (each cut to `max_passage_chars`), numbered
//   [1]..[k] within the batch; the model is asked for one line per passage, "<n>: <score 0-10>".
// - Replies are read robustly (ParseScores): "n: s", "n. s", "[n] s", "Passage n: s/10",
//   a JSON array of scores or of {"n"|"id"|"index"|"passage", "score"} objects, a JSON object
//   {"n": s} (also under "scores"), or bare numbers one per line in passage order. Scores outside
//   0..10 are clamped; numbers outside the batch are ignored; the first score of a passage wins.
// - A passage without a score (the model skipped it, its batch failed or was cancelled) keeps
//   `neutral_score`. The order is by score, best first, ties in input order; so with no model,
//   or when every batch failed, the order is the input order.
// - Batches run concurrently, at most `max_concurrency` at once, on threads of their own (never
//   the shared pools). Once `cancel` is cancelled no further batch starts.
// - A model failure never throws: each failed batch (model error, or a reply with no score in it)
//   adds an error naming the batch; the other batches still count.
// - `usage` sums all calls: the provider's figures, else estimates (EstimateTokens).
//
// Thread-safety: Rerank is const and may run on any number of threads at once. Blocking: call it
// on the blocking pool.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/generate/llm_provider.h"

namespace modulo::generate {

struct RerankOptions {
  GenerationParams params{.max_new_tokens = 200, .temperature = 0.0};
  std::size_t batch_size = 8;
  std::size_t max_passage_chars = 1200;
  std::size_t max_concurrency = 2;  // batches in flight
  double neutral_score = 5.0;       // of a passage the model did not score
};

struct RerankResult {
  std::vector<std::size_t> order;  // indices into the input, best first (a permutation of 0..n-1)
  std::vector<double> scores;      // by input index: the model's score (0..10), else neutral_score
  std::vector<bool> scored;        // by input index: whether the model gave that score
  bool reranked = false;           // the model scored at least one passage
  TokenUsage usage;
  std::vector<Error> errors;       // one per failed batch
};

class LlmReranker {
 public:
  // `provider` may be null (the input order is kept); it must outlive the reranker.
  explicit LlmReranker(LlmProvider* provider, RerankOptions options = {});

  [[nodiscard]] RerankResult Rerank(std::string_view question, const std::vector<std::string_view>& passages,
                                    const CancelToken* cancel = nullptr) const;

  // The prompt for one batch (system + user message).
  [[nodiscard]] std::vector<ChatMessage> Prompt(std::string_view question,
                                                std::span<const std::string_view> batch) const;

  // The scores of passages 1..count in a reply (index 0 = passage 1), clamped to 0..10.
  [[nodiscard]] static std::vector<std::optional<double>> ParseScores(std::string_view reply, std::size_t count);

  [[nodiscard]] const RerankOptions& options() const noexcept { return options_; }

 private:
  LlmProvider* provider_;
  RerankOptions options_;
};

}  // namespace modulo::generate
