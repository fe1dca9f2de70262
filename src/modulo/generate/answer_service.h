// AnswerService: generated answers with citations on top of the retrieval pipeline.
//
//   [rewrite] → retrieval (SearchService, retrieval only; its result cache applies) → [rerank] →
//   context assembly within the model's token budget → prompt (system, the conversation's history,
//   user message) → generation (whole, or streamed to an observer) → citations → the search
//   response with the generated answer. Or, for a chain of thought, AnswerInSteps.
//
// The profile. A request carries the AnswerProfile it is answered with (the user's provider,
// parameters and prompts, resolved by llm_config.h's ProfileResolver); without one, the server's.
//
// Rewriting. With history (a conversation), the question is made standalone for retrieval by
// QueryRewriter (the model when generating, else rules); the prompt keeps the question as asked
// after the history. metadata.rewrite says how; rewritten_query is what was searched.
//
// Reranking. config_metadata "rerank": true, or "top_k_rerank": n (unless "disable_rerank":
// true): the model scores the retrieved passages in batches (LlmReranker); query_results are
// reordered (each with rerank_score) and cut to top_k_rerank before the context is assembled.
//
// Chain of thought. config_metadata "cot_enabled": true, or — with a model and without
// "cot_disabled" — a question that ShouldUseCot() detects as multi-part: ChainOfThought
// decomposes it, searches each sub-question through the caller's scoped store, answers the steps
// (independent ones concurrently) and synthesises; the response has cot_output (RAG Modulo's
// shape; "show_cot_steps": false drops its reasoning_steps) and the steps' merged query_results,
// which its [n] citations name. Without a model it runs on rules and extractive step answers.
//
// Context assembly. The budget is context_tokens − max_new_tokens − the prompt's own tokens (the
// system message, the template and the question) − a safety margin of 5 %. Passages are taken in
// rank order; a passage whose text repeats one already taken (whitespace and case ignored) is
// skipped, at most max_chunks_per_document passages of one document are taken, each passage is cut
// to max_passage_tokens, and the first passage that does not fit is cut to the room left (when
// at least 32 tokens remain) and ends the context. Each passage is labelled with its 1-based
// position in query_results, "[n]", so an [n] marker in the answer names query_results[n-1] — the
// same numbering as the extractive answer. Tokens are counted with `AnswerOptions::count_tokens`
// (an LLM's tokenizer is not reachable from here; the default EstimateTokens is ceil(bytes / 4),
// which over-counts English prose, so the budget errs on the safe side).
//
// Citations. Every [n] (also "[1, 3]" and "[1][3]") in the answer is read; numbers that were in the
// prompt become metadata.citations entries ({n, chunk_id, document_id, source, page_number}, the
// extractive shape), in order of first mention; the others are removed from the answer text and
// listed in metadata.invalid_citations. So every cited source was really in the prompt.
//
// Faults. answer_mode "auto" (the default when a provider is configured): any provider failure
// (down, 429 after retries, timeout, refusal, malformed or truncated stream) gives the extractive
// answer with metadata.generation_error {code, message}; never an error status. answer_mode
// "generated": the failure is the response: RateLimited (429), DeadlineExceeded (504), anything
// else Unavailable (503) — a provider's 400/401 is never passed through as the client's fault. A
// provider refusing the prompt as too long is retried once with half the context. While
// streaming, a failure after text was sent cannot be taken back: the caller gets the error
// (and sends an error event); before any text, "auto" still falls back to the extractive answer.
//
// Token accounting. Before the provider is called, a user's tokens today plus the prompt's
// estimate must stay within their llm_tokens_per_day (the IdentityStore's override, else
// AnswerOptions::llm_tokens_per_day; 0 = none; system admins are not limited): otherwise
// QuotaExceeded (429) and the provider is not called. After every call — successful, failed after
// usage was known, or cancelled by a client that went away — the prompt and completion tokens are
// added to the user's count (the provider's figures, else estimates: metadata.usage.estimated) and
// to llm_tokens_used_total{provider,model,user_id}.
//
// Thread-safety: all members may be called from any thread at once. Answer() must be awaited on
// an I/O thread's executor; the provider runs on the blocking pool. Observer callbacks run on the
// blocking pool's threads.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/awaitable.hpp>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "modulo/core/error.h"
#include "modulo/core/thread_pool.h"
#include "modulo/generate/llm_provider.h"
#include "modulo/index/bm25/analyzer.h"
#include "modulo/metrics/registry.h"
#include "modulo/search/search_service.h"
#include "modulo/store/identity_store.h"

namespace modulo::generate {

using TokenCounter = std::function<std::size_t(std::string_view)>;

// ceil(bytes / 4): the documented estimate when no tokenizer of the model is at hand.
[[nodiscard]] std::size_t EstimateTokens(std::string_view text) noexcept;

inline constexpr std::string_view kDefaultSystemPrompt =
    "You are a helpful assistant that answers questions using only the numbered passages provided. "
    "Cite the passages you use with their numbers in square brackets, e.g. [1] or [2][3], right after "
    "the statement they support. Cite only the numbers given. If the passages do not contain the answer, "
    "say that you do not know. Answer in the language of the question.";
// {context} and {question} are replaced (once each). The question comes last.
inline constexpr std::string_view kDefaultUserTemplate = "Passages:\n{context}\n\nQuestion: {question}";

struct AnswerOptions {
  int context_tokens = 8192;  // the model's context window (MODULO_LLM_CONTEXT_TOKENS)
  GenerationParams params{.max_new_tokens = 512, .temperature = 0.2};  // MODULO_LLM_MAX_NEW_TOKENS
  std::size_t max_chunks_per_document = 3;
  std::size_t max_passage_tokens = 1024;
  std::string system_prompt{kDefaultSystemPrompt};
  std::string user_template{kDefaultUserTemplate};
  std::int64_t llm_tokens_per_day = 0;  // the default daily quota (QUOTA_LLM_TOKENS_PER_DAY); 0 = none
  TokenCounter count_tokens;             // null: EstimateTokens
};

// The configuration one answer is generated with: the server's (AnswerDeps::provider and
// AnswerOptions), or one resolved from a user's providers, parameters, templates and pipelines
// (llm_config.h).
struct AnswerProfile {
  std::shared_ptr<LlmProvider> provider;  // null: extractive answers only
  GenerationParams params{.max_new_tokens = 512, .temperature = 0.2};
  int context_tokens = 8192;
  std::string system_prompt{kDefaultSystemPrompt};
  std::string user_template{kDefaultUserTemplate};
  // What the profile was resolved from, reported as metadata.profile: {"source": "server"} or
  // {"source": "user", "pipeline_id", "provider_id", "model", "parameters_id", "template_id"}.
  nlohmann::json source = nlohmann::json{{"source", "server"}};
};

struct AnswerDeps {
  search::SearchService& search;
  std::shared_ptr<LlmProvider> provider;  // null: extractive answers only
  store::IdentityStore* identity = nullptr;  // null: no quota and no per-user accounting
  ThreadPool& blocking_pool;
  metrics::Registry* registry = nullptr;
};

enum class AnswerMode {
  kAuto,        // generated when a provider is configured, extractive on its failure
  kGenerated,   // generated, or an error
  kExtractive,  // never call the provider
};

struct AnswerRequest {
  search::SearchQuery query;
  AnswerMode mode = AnswerMode::kAuto;
  bool stream = false;        // the client asked for Server-Sent Events
  std::string user_id;        // for quota and accounting; empty: anonymous (not counted per user)
  bool unlimited = false;     // system admins: no quota
  // The user's configuration; null: the server's (AnswerService::server_profile()).
  std::shared_ptr<const AnswerProfile> profile;
  // Earlier turns of a conversation (oldest first, already within their budget), placed between
  // the system message and the question; their tokens count against the context window.
  std::vector<ChatMessage> history;
};

// Progress of one answer. Callbacks run on blocking-pool threads, one at a time per answer.
struct AnswerObserver {
  std::function<void(std::string_view stage, double duration_ms)> on_stage;
  // Each piece of answer text; return false to stop (the client went away): the provider call is
  // cancelled and its tokens are still counted.
  std::function<bool(std::string_view text)> on_token;
};

// One passage of the prompt.
struct ContextPassage {
  std::size_t n = 0;  // 1-based position in query_results (the [n] label)
  std::string text;
  std::size_t tokens = 0;  // of the labelled passage
};

struct AssembledContext {
  std::vector<ContextPassage> passages;
  std::string text;  // the passages, labelled, separated by blank lines
  std::size_t tokens = 0;
  std::size_t skipped_duplicates = 0;
  std::size_t skipped_per_document = 0;
  std::size_t left_out = 0;  // passages that did not fit the budget
  bool cut = false;          // a passage was cut to fit
};

// Picks and labels passages of a search response's query_results within `budget` tokens (see the
// header comment).
[[nodiscard]] AssembledContext AssembleContext(const nlohmann::json& query_results, std::size_t budget,
                                               const AnswerOptions& options);

// The numbers of the [n] markers in `text`, in order of first mention, without repeats. Reads
// "[3]", "[1, 2]" and "[1][2]"; ignores "[[x]]", "[a]", "[0]" and numbers above 9999.
[[nodiscard]] std::vector<std::size_t> CitedNumbers(std::string_view text);

// `text` without the markers of numbers outside `allowed` ("[1, 9]" → "[1]"; "[9]" → "").
[[nodiscard]] std::string StripCitations(std::string_view text, const std::vector<std::size_t>& allowed);

// The parsing behind AnswerService::Parse, for servers without an AnswerService too
// (`has_provider` false: "generated" is Unimplemented).
[[nodiscard]] Result<AnswerRequest> ParseAnswerRequest(nlohmann::json body, const search::SearchService& search,
                                                       bool has_provider);

class AnswerService {
 public:
  AnswerService(AnswerDeps deps, AnswerOptions options);

  // Validates a POST /api/search body: the search fields (SearchService::Parse) plus "stream"
  // (boolean) and "answer_mode" ("auto" | "generated" | "extractive"), accepted at the top level
  // or in config_metadata. InvalidArgument names the field; "generated" without a provider is
  // InvalidArgument too.
  [[nodiscard]] Result<AnswerRequest> Parse(nlohmann::json body) const;

  // True when the request will call the provider (a provider is configured, the mode allows it
  // and the request is not retrieval only). When false, the caller serves a plain search.
  [[nodiscard]] bool WillGenerate(const AnswerRequest& request) const noexcept;

  // Retrieval, then Compose() on the blocking pool. NotFound/InvalidArgument from retrieval as is.
  [[nodiscard]] boost::asio::awaitable<Result<nlohmann::json>> Answer(
      AnswerRequest request, std::shared_ptr<const AnswerObserver> observer = nullptr,
      std::shared_ptr<const CancelToken> cancel = nullptr);

  // The chain of thought (chain_of_thought.h): sub-questions retrieved and answered, then
  // synthesised; the response carries cot_output and the merged query_results.
  [[nodiscard]] boost::asio::awaitable<Result<nlohmann::json>> AnswerInSteps(
      AnswerRequest request, search::SearchQuery query, LlmProvider* model,
      std::shared_ptr<const AnswerObserver> observer, std::shared_ptr<const CancelToken> cancel);

  // The generation half, blocking: `retrieval` is a retrieval-only search response (its
  // metadata.stages included). Streams when `observer` has on_token.
  [[nodiscard]] Result<nlohmann::json> Compose(nlohmann::json retrieval, const AnswerRequest& request,
                                               const AnswerObserver* observer, const CancelToken* cancel);

  [[nodiscard]] const AnswerOptions& options() const noexcept { return options_; }
  // The server's language model (null: none configured).
  [[nodiscard]] const LlmProvider* provider() const noexcept { return deps_.provider.get(); }
  [[nodiscard]] const std::shared_ptr<const AnswerProfile>& server_profile() const noexcept { return server_; }
  // The profile a request is answered with.
  [[nodiscard]] const AnswerProfile& ProfileOf(const AnswerRequest& r) const noexcept {
    return r.profile ? *r.profile : *server_;
  }

  // Accounting for an LLM call made on behalf of `request` (by this service or by another step
  // of the pipeline: rewriting, reranking, chain of thought): the user's daily count and
  // llm_tokens_used_total{provider,model,user_id}.
  void Record(const AnswerRequest& request, const LlmProvider& provider, const TokenUsage& usage);
  // QuotaExceeded when the user's tokens today plus `estimate` pass their daily limit.
  [[nodiscard]] Status CheckQuota(const AnswerRequest& request, std::int64_t estimate) const;

 private:
  [[nodiscard]] std::size_t Count(std::string_view text) const;
  [[nodiscard]] std::vector<ChatMessage> Messages(const AnswerProfile& profile, const AnswerRequest& request,
                                                  const std::string& context) const;
  // The user's daily limit (0: none).
  [[nodiscard]] Result<std::int64_t> LimitFor(const AnswerRequest& request) const;
  [[nodiscard]] nlohmann::json Extractive(const nlohmann::json& retrieval, const std::string& question) const;

  AnswerDeps deps_;
  AnswerOptions options_;
  std::shared_ptr<const AnswerProfile> server_;
  index::Analyzer analyzer_;  // for the extractive fallback
  std::atomic<int> steps_running_{0};  // chains of thought holding a blocking-pool thread
  metrics::CounterFamily* tokens_used_ = nullptr;
  metrics::CounterFamily* llm_requests_ = nullptr;
};

// "auto" | "generated" | "extractive".
[[nodiscard]] std::string_view AnswerModeName(AnswerMode mode) noexcept;

}  // namespace modulo::generate
