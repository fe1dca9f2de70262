// ConversationContext: the history a conversation carries into its next turn, within a token
// budget, and the rolling summary of what no longer fits.
//
// Build — promises:
// - The result is the summary (when there is one) as a system message, "Summary of the earlier
//   conversation: …", then the most recent turns that fit, oldest first. A turn is a user message
//   with the messages after it up to the next user message; only whole turns are carried, and
//   they are contiguous: the first turn (from the newest) that does not fit ends the history.
// - Messages the summary covers (seq <= up_to_seq) are never carried verbatim.
// - The cost of a message is its token_count (counted with `count_tokens` when 0) plus
//   `per_message_overhead`; the summary takes at most `max_summary_share` of the budget (it is
//   cut to fit). `tokens` of the result never exceeds the budget.
// - needs_summary: at least `min_fold_messages` of the given messages fell out of the budget and
//   are not covered by the summary; fold_from_seq..fold_to_seq (inclusive) names them, oldest
//   first. Fold them with Summarize and store the result with up_to_seq = fold_to_seq.
//
// Summarize — promises:
// - With a model: one call merging the previous summary and the folded messages into one summary
//   of at most about `summary_words` words that keeps names, numbers, decisions and open
//   questions; the reply is trimmed, a "Summary:" label removed, and cut to `max_summary_chars`.
//   Method "llm".
// - No model, a failed call (error set) or an empty reply: the extractive summary — the previous
//   summary, then "User: " / "Assistant: " and the first sentence of each folded message (each cut
//   to 200 characters), newest kept first when over `max_summary_chars`. Method "extractive".
// - tokens_saved = the tokens of the folded messages and the previous summary minus those of the
//   new summary (never negative). `usage`: the provider's figures, else estimates.
// - Never throws for a model failure.
//
// Thread-safety: const members, callable from any thread at once. Summarize blocks: call it on the
// blocking pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/generate/answer_service.h"
#include "modulo/generate/llm_provider.h"

namespace modulo::generate {

struct HistoryMessage {
  std::int64_t seq = 0;
  std::string role;  // "user" | "assistant" | "system"
  std::string content;
  std::int64_t token_count = 0;  // tokens of content; 0: counted with count_tokens
};

struct HistorySummary {
  std::string text;
  std::int64_t up_to_seq = 0;  // covers the messages with seq <= up_to_seq
};

struct ContextOptions {
  TokenCounter count_tokens;             // null: EstimateTokens
  std::size_t per_message_overhead = 4;  // chat-format tokens of a message
  double max_summary_share = 0.5;        // of the budget
  std::size_t min_fold_messages = 2;
  GenerationParams summary_params{.max_new_tokens = 400, .temperature = 0.2};
  std::size_t summary_words = 200;
  std::size_t max_summary_chars = 1600;
  std::size_t max_message_chars = 4000;  // each folded message in the summary prompt
};

struct CarriedHistory {
  std::vector<ChatMessage> messages;  // the summary (system) when there is one, then whole turns, oldest first
  std::size_t tokens = 0;
  bool summary_included = false;
  std::size_t turns = 0;  // turns carried
  bool needs_summary = false;
  std::int64_t fold_from_seq = 0;  // when needs_summary: the messages to fold, inclusive
  std::int64_t fold_to_seq = 0;
  std::size_t fold_count = 0;      // messages that fell out and are not covered (also below min_fold_messages)
};

struct SummaryResult {
  std::string text;
  std::int64_t tokens_saved = 0;
  std::string method;  // "llm" | "extractive" | "none" (nothing to summarise)
  TokenUsage usage;
  std::optional<Error> error;
};

class ConversationContext {
 public:
  explicit ConversationContext(ContextOptions options = {});

  // `recent`: the session's latest messages, oldest first. `token_budget`: the session's
  // context_window_size.
  [[nodiscard]] CarriedHistory Build(const std::vector<HistoryMessage>& recent,
                                     const std::optional<HistorySummary>& summary, std::size_t token_budget) const;

  // `provider` may be null (extractive).
  [[nodiscard]] SummaryResult Summarize(LlmProvider* provider, std::string_view previous_summary,
                                        const std::vector<HistoryMessage>& messages,
                                        const CancelToken* cancel = nullptr) const;

  [[nodiscard]] std::vector<ChatMessage> SummaryPrompt(std::string_view previous_summary,
                                                       const std::vector<HistoryMessage>& messages) const;
  [[nodiscard]] std::string ExtractiveSummary(std::string_view previous_summary,
                                              const std::vector<HistoryMessage>& messages) const;

  [[nodiscard]] const ContextOptions& options() const noexcept { return options_; }

 private:
  [[nodiscard]] std::size_t Cost(const HistoryMessage& m) const;

  ContextOptions options_;
};

}  // namespace modulo::generate
