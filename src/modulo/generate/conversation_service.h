// ConversationService: one turn of a chat session over a collection.
//
//   the user's message is stored → the history that fits the session's context window is built
//   (ConversationContext: a rolling summary of older turns plus the most recent whole turns; when
//   turns fall out of the window they are summarised now, by the model or extractively, and the
//   summary is stored) → the answer pipeline runs with that history (a follow-up is rewritten
//   into a standalone question for retrieval; the history is in the prompt) → the answer is
//   stored with its sources, citations, rewritten query, chain of thought, stages and token usage.
//
// Promises:
// - The user's message is stored before anything can fail, so a turn that fails is still in the
//   record: the failure is stored as an assistant message of type "error" (never carried into
//   later prompts) and returned as the error. A client that goes away mid-stream still gets the
//   turn stored (as far as it went, with "cancelled": true in its metadata).
// - Messages of one session are ordered by seq (the store assigns them atomically), so two turns
//   racing on one session are both recorded, in some order.
// - Sessions are the caller's business to authorize (the routes check ownership).
//
// Thread-safety: all members may be called from any thread. Turn() must be awaited on an I/O
// thread's executor; store calls and the summary run on the blocking pool.
#pragma once

#include <utility>  // must precede Asio's coroutine headers on Boost 1.74

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "modulo/core/error.h"
#include "modulo/core/thread_pool.h"
#include "modulo/generate/answer_service.h"
#include "modulo/generate/conversation_context.h"
#include "modulo/store/conversation_store.h"

namespace modulo::generate {

struct ConversationDeps {
  store::ConversationStore& store;
  AnswerService& answers;
  ThreadPool& blocking_pool;
};

struct TurnResult {
  store::ConversationMessage question;  // as stored
  store::ConversationMessage answer;    // as stored
  nlohmann::json response;              // the answer pipeline's response (search shape)
};

// The API's JSON of a stored message (RAG Modulo's ConversationMessageOutput: id, session_id,
// content, role, message_type, created_at, metadata, token_count, execution_time, sources,
// cot_output, token_analysis; plus seq).
[[nodiscard]] nlohmann::json MessageJson(const store::ConversationMessage& m);
// The API's JSON of a session (ConversationSessionOutput: id, user_id, collection_id,
// session_name, status, context_window_size, max_messages, is_archived, is_pinned, created_at,
// updated_at, metadata, message_count).
[[nodiscard]] nlohmann::json SessionJson(const store::ConversationSession& s);
[[nodiscard]] nlohmann::json SummaryJson(const store::ConversationSummary& s);

class ConversationService {
 public:
  ConversationService(ConversationDeps deps, ContextOptions options = {});

  // `request` is prepared for the session's collection (its query.question is the user's
  // message, its principal, scoped store and profile set); its history is filled here.
  [[nodiscard]] boost::asio::awaitable<Result<TurnResult>> Turn(
      store::ConversationSession session, AnswerRequest request,
      std::shared_ptr<const AnswerObserver> observer = nullptr, std::shared_ptr<const CancelToken> cancel = nullptr);

  // Folds what no longer fits the window (`everything`: every message no summary covers yet) into
  // a new summary now (POST …/summaries). Nothing to summarise is not an error: the latest summary
  // (or none) is returned. `accounting`: whose tokens the model's calls are (null: not accounted).
  [[nodiscard]] Result<std::optional<store::ConversationSummary>> Summarize(const store::ConversationSession& session,
                                                                            LlmProvider* provider, bool everything,
                                                                            const AnswerRequest* accounting = nullptr,
                                                                            const CancelToken* cancel = nullptr);

  // The history carried into a turn whose question is message `before_seq` (the messages before
  // it; 0: all), blocking, with a summary made first when turns fell out of the window
  // (`provider` may be null: extractive).
  [[nodiscard]] Result<CarriedHistory> History(const store::ConversationSession& session, std::int64_t before_seq,
                                               LlmProvider* provider, const AnswerRequest* accounting,
                                               const CancelToken* cancel);

  [[nodiscard]] const ConversationContext& context() const noexcept { return context_; }

 private:
  ConversationDeps deps_;
  ConversationContext context_;
};

}  // namespace modulo::generate
