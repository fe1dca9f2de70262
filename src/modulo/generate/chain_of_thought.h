// ChainOfThought: answers a complex question in steps — decomposition into sub-questions,
// retrieval and an intermediate answer per sub-question, then one synthesised final answer.
//
// Promises:
// - ShouldUseCot: an explicit flag (cot_enabled true/false, or cot_disabled) wins; otherwise a
//   question qualifies when it asks more than one thing ('?' more than once), has a comparison,
//   causal or multi-part cue ("compare", "difference between", "versus"/"vs", "how does …
//   affect/impact/influence", "and how", "pros and cons", "step by step", "relationship between")
//   or is long (more
//   than `long_question_words` words).
// - Decomposition: with a model, one call asking for 2..max_steps sub-questions as a JSON array of
//   {"question", "depends_on": [earlier step numbers]} (ParseSubQuestions also reads plain strings,
//   {"sub_questions": […]}, and numbered or bulleted lines). Fewer than two usable sub-questions, no
//   model, or a failed call: the rules (SplitQuestion: "compare A and B" / "difference between A and
//   B" / "A vs B" → "What is A?", "What is B?" and the question itself; else splitting at '?', ';'
//   and " and " before a question word; a question that does not split is one step).
// - Retrieval: every step's sub-question is searched through the caller's blocking callback
//   (concurrently). All steps' query_results are merged — one entry per chunk_id, its best score,
//   best first — and passages are numbered [n] by their position in that merged list, in the step
//   prompts as in the answers, so an [n] anywhere in cot_output names query_results[n-1] of the
//   response. A failed retrieval gives the step no passages (and an error entry).
// - Step answers: from the step's best `passages_per_step` passages (labelled as AnswerService
//   does, "[n] source, page p", repeats dropped, at most `max_chunks_per_document` per document,
//   each cut to `max_passage_tokens`) plus the answers of the steps it depends on, which run first;
//   independent steps run concurrently, at most `max_concurrency` at once, on threads of their own.
//   Citations outside the step's passages are removed. Without a model, or when the call fails,
//   the step's answer is extractive (search::ComposeExtractiveAnswer). A step without passages gets
//   no model call.
// - Synthesis: with a model, one call writing the final answer from the step answers (citations
//   outside the steps' passages removed); reasoning_strategy "decomposition". No step with a
//   passage: no call. Without a model, or when it fails, the final answer is the step answers one
//   after another under their questions, and reasoning_strategy is "rules".
// - confidence_score (0..1) is a heuristic: 0 without passages; a model's answer 0.5, + 0.3 when it
//   cites a passage, + 0.1 for two or more, 0.2 when it says the passages do not answer; an
//   extractive answer 0.4 when a sentence matched, else 0.1. total_confidence is their mean.
// - Model failures never throw and never fail the run: each is an `errors` entry {stage
//   ("decompose" | "retrieve" | "answer" | "synthesize"), step (when one), code, message} beside its
//   fallback. Cancellation is observed before every call and between steps: Run then returns
//   kCancelled with details {"usage": {"prompt_tokens", "completion_tokens"}} (what was spent).
// - `usage` sums every model call (the provider's figures, else estimates); cot_output's
//   token_usage fields are prompt + completion totals (per step, and for the whole run).
//
// cot_output:
//   {original_question, final_answer,
//    reasoning_steps: [{step_number, question, depends_on, intermediate_answer, confidence_score,
//                       source_attributions: [{n, chunk_id, document_id, source, page_number, score}],
//                       token_usage, execution_time}],
//    source_summary: {all_sources: [attribution …, best first], primary_sources: [those cited in the
//                     final answer], source_usage_by_step: {"1": [chunk_id …], …}},
//    total_confidence, token_usage, total_execution_time, reasoning_strategy,
//    decomposition_method ("llm" | "rules"), synthesis_method ("llm" | "concatenation")}
// Times are in seconds.
//
// Thread-safety: Run is const and may run on any number of threads at once; `retrieve` is called
// from several threads at once (an exception it throws leaves Run once the running steps ended).
// Blocking: call it on the blocking pool.
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
#include "modulo/index/bm25/analyzer.h"

namespace modulo::generate {

// A blocking search of one question: a search response with "query_results" (an array of
// {chunk: {chunk_id, text, document_id, metadata: {source, page_number}}, score}).
using RetrieveFn = std::function<Result<nlohmann::json>(const std::string& question)>;

struct CotOptions {
  GenerationParams decompose_params{.max_new_tokens = 400, .temperature = 0.0};
  GenerationParams step_params{.max_new_tokens = 300, .temperature = 0.2};
  GenerationParams synthesis_params{.max_new_tokens = 700, .temperature = 0.2};
  std::size_t max_steps = 5;
  std::size_t max_concurrency = 3;     // steps (retrievals, step answers) in flight
  std::size_t passages_per_step = 5;   // a step's best results given to its answer
  std::size_t max_passage_tokens = 400;  // each passage is cut to this in a step's prompt
  std::size_t max_chunks_per_document = 3;  // of a step's passages
  std::size_t long_question_words = 25;
};

struct SubQuestion {
  std::string question;
  std::vector<std::size_t> depends_on;  // 1-based numbers of earlier sub-questions
};

struct CotResult {
  nlohmann::json cot_output;     // see the header comment
  nlohmann::json query_results;  // every step's results merged: one per chunk_id, best score first
  std::string final_answer;
  TokenUsage usage;
  nlohmann::json errors = nlohmann::json::array();
};

// Whether a question should go through the chain of thought (see the header comment).
[[nodiscard]] bool ShouldUseCot(std::string_view question, std::optional<bool> explicit_flag = std::nullopt,
                                std::size_t long_question_words = 25);

// The sub-questions in a decomposition reply (at most max_steps; duplicates dropped; dependencies
// kept only on earlier sub-questions). Empty when nothing usable is in it.
[[nodiscard]] std::vector<SubQuestion> ParseSubQuestions(std::string_view reply, std::size_t max_steps);

// The rule-based decomposition; at least the question itself.
[[nodiscard]] std::vector<SubQuestion> SplitQuestion(std::string_view question, std::size_t max_steps);

class ChainOfThought {
 public:
  // `provider` may be null (rules and extractive answers); it must outlive this object.
  explicit ChainOfThought(LlmProvider* provider, CotOptions options = {});

  [[nodiscard]] Result<CotResult> Run(std::string_view question, const RetrieveFn& retrieve,
                                      const CancelToken* cancel = nullptr) const;

  [[nodiscard]] std::vector<ChatMessage> DecompositionPrompt(std::string_view question) const;

  [[nodiscard]] const CotOptions& options() const noexcept { return options_; }

 private:
  LlmProvider* provider_;
  CotOptions options_;
  index::Analyzer analyzer_;  // for the extractive answers
};

}  // namespace modulo::generate
