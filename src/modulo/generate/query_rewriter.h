// QueryRewriter: turns a conversational follow-up ("and how much does it cost?") into one standalone
// search query, so retrieval finds what the conversation is about.
//
// Promises:
// - No history (no earlier turn and no summary): the question is returned unchanged, method
//   "none", and the model is not called.
// - With a model: one call asking for ONE standalone query that resolves pronouns and ellipsis
//   from the history. The reply is cleaned (code fences, "Query:"-style prefixes, surrounding
//   quotes, list markers and preambles ending in ':' removed; the first remaining non-empty line
//   taken); an empty reply, a refusal or one longer than `max_query_chars` is unusable. Method
//   "llm" when the reply is used.
// - Rules (no model; or the model failed or replied unusably, then `error` says why): a question
//   that looks like a follow-up (at most `follow_up_max_words` words, or a pronoun such as
//   it/they/this/that/those/he/she/its/their, or starting with "and", "what about", "how about")
//   gets the content words of the previous user question (stop words and words it already has
//   left out, at most `max_added_terms`) appended; any other question is kept. Method "rules".
// - `rewritten` is true exactly when `query` differs from the question.
// - Never throws for a model failure. A cancelled token gives the question unchanged with a
//   kCancelled error (the model is not called, or its call ends early).
// - `usage` is what the call cost: the provider's figures, else estimates (EstimateTokens).
//
// The second half of this header holds helpers the answer-pipeline components share (counted
// model calls, reading messy replies, content words, bounded concurrency).
//
// Thread-safety: Rewrite is const and may run on any number of threads at once (the provider is
// thread-safe). Blocking: call it on the blocking pool.
#pragma once

#include <cstddef>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/generate/llm_provider.h"

namespace modulo::generate {

struct RewriteOptions {
  GenerationParams params{.max_new_tokens = 96, .temperature = 0.0};
  std::size_t history_turns = 6;        // most recent turns shown to the model
  std::size_t max_turn_chars = 800;     // each turn is cut to this in the prompt
  std::size_t max_summary_chars = 2000;
  std::size_t max_query_chars = 400;    // a longer reply is unusable
  std::size_t follow_up_max_words = 3;  // rules: a question this short looks like a follow-up
  std::size_t max_added_terms = 6;      // rules: content words taken from the previous question
};

struct RewriteResult {
  std::string query;
  bool rewritten = false;
  std::string method;  // "llm" | "rules" | "none"
  TokenUsage usage;
  std::optional<Error> error;  // the model's failure, or why its reply was not used
};

class QueryRewriter {
 public:
  // `provider` may be null (rules only); it must outlive the rewriter.
  explicit QueryRewriter(LlmProvider* provider, RewriteOptions options = {});

  // `history`: the conversation before this question, oldest first ({role, content}); a trailing
  // user turn equal to `question` is ignored. `summary`: the summary of older turns, or empty.
  [[nodiscard]] RewriteResult Rewrite(std::string_view question, const std::vector<ChatMessage>& history,
                                      std::string_view summary = {}, const CancelToken* cancel = nullptr) const;

  // The prompt of the model call (system + user message).
  [[nodiscard]] std::vector<ChatMessage> Prompt(std::string_view question, const std::vector<ChatMessage>& history,
                                                std::string_view summary) const;

  // The query in a model's reply, or nullopt when the reply is unusable.
  [[nodiscard]] static std::optional<std::string> CleanReply(std::string_view reply, std::size_t max_chars);

  // The rule-based rewrite (see the header comment).
  [[nodiscard]] std::string RewriteByRules(std::string_view question, const std::vector<ChatMessage>& history) const;
  [[nodiscard]] bool LooksLikeFollowUp(std::string_view question) const;

  [[nodiscard]] const RewriteOptions& options() const noexcept { return options_; }

 private:
  LlmProvider* provider_;
  RewriteOptions options_;
};

// ---- Helpers shared by the answer-pipeline components ----------------------------------------

// total += more, field by field.
void AddUsage(TokenUsage& total, const TokenUsage& more) noexcept;
[[nodiscard]] int TotalTokens(const TokenUsage& usage) noexcept;

// One blocking model call whose cost is added to `spent`: the provider's figures, else estimates
// (EstimateTokens of the messages plus a per-message overhead, and of the reply). A failed call
// adds the usage its error's details report (kCancelled carries it when known). A token that is
// already cancelled gives kCancelled without calling the model.
[[nodiscard]] Result<Generation> GenerateCounted(LlmProvider& provider, const std::vector<ChatMessage>& messages,
                                                 const GenerationParams& params, const CancelToken* cancel,
                                                 TokenUsage& spent);

// `text` without leading and trailing whitespace.
[[nodiscard]] std::string_view TrimText(std::string_view text) noexcept;

// One line of a reply without its list marker ("1.", "2)", "-", "*", "•", "Q1:", "Step 2:"), markdown
// emphasis and surrounding quotes or backticks; trimmed.
[[nodiscard]] std::string CleanReplyLine(std::string_view line);

// The non-empty cleaned lines of a reply, code-fence lines dropped.
[[nodiscard]] std::vector<std::string> ReplyLines(std::string_view reply);

// The first JSON array or object in a reply (bare, inside a code fence or among prose); a
// discarded value (is_discarded()) when there is none.
[[nodiscard]] nlohmann::json JsonInReply(std::string_view reply);

// `text` cut to at most `max_chars` bytes on a UTF-8 boundary, preferably after a space, with
// " …" appended when it was cut.
[[nodiscard]] std::string CutText(std::string_view text, std::size_t max_chars);

// ASCII lower case (other bytes unchanged).
[[nodiscard]] std::string LowerAscii(std::string_view text);

// The words of `text` in order: runs of letters, digits and non-ASCII bytes, with inner
// apostrophes and hyphens ("don't", "state-of-the-art").
[[nodiscard]] std::vector<std::string_view> TextWords(std::string_view text);

// Whether a lower-cased word carries no topic: English stop words, question words, pronouns,
// auxiliaries and filler ("what", "does", "it", "tell", "about" …).
[[nodiscard]] bool IsFunctionWord(std::string_view lower_word) noexcept;

// The distinct content words of `text` (lower-cased, not function words, not bare numbers), in
// order of first appearance.
[[nodiscard]] std::vector<std::string> ContentWords(std::string_view text);

// Runs task(0) … task(count - 1) on at most `max_concurrency` threads (the caller's included;
// extra ones are std::jthread, not a shared pool) and returns when all have ended. Task i starts
// only after the tasks in after[i] (indices < i; others are ignored) have ended. Once `cancel` is
// cancelled, tasks not yet started are skipped; the number skipped is returned. An exception from
// a task is rethrown here after the others ended.
std::size_t RunTasks(std::size_t count, std::size_t max_concurrency, const std::function<void(std::size_t)>& task,
                     const std::vector<std::vector<std::size_t>>& after = {}, const CancelToken* cancel = nullptr);

}  // namespace modulo::generate
