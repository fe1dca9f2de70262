#include "modulo/generate/conversation_service.h"

#include <chrono>

#include "modulo/core/clock.h"
#include "modulo/core/json.h"
#include "modulo/core/log.h"

namespace modulo::generate {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

json ParseObject(const std::string& text) {
  json j = modulo::ParseJsonOrDiscarded(text);
  return j.is_object() ? j : json::object();
}

// What a stored answer keeps of its sources: enough to show and cite them, not the whole chunks.
json CompactSources(const json& response) {
  json out = json::array();
  const json& results = response.contains("query_results") ? response["query_results"] : json::array();
  if (!results.is_array()) return out;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const json& r = results[i];
    const json chunk = r.value("chunk", json::object());
    const json meta = chunk.value("metadata", json::object());
    std::string text = chunk.value("text", "");
    if (text.size() > 600) {
      std::size_t cut = 600;
      while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
      text = text.substr(0, cut) + "…";
    }
    out.push_back({{"n", i + 1},
                   {"chunk_id", chunk.value("chunk_id", json(nullptr))},
                   {"document_id", chunk.value("document_id", json(nullptr))},
                   {"document_name", meta.value("source", json(nullptr))},
                   {"page_number", meta.value("page_number", json(nullptr))},
                   {"score", r.value("score", json(nullptr))},
                   {"content", std::move(text)}});
  }
  return out;
}

std::vector<HistoryMessage> ToHistory(const std::vector<store::ConversationMessage>& messages) {
  std::vector<HistoryMessage> out;
  for (const auto& m : messages) {
    if (m.message_type == "error" || m.role == "system") continue;  // failures are not carried
    out.push_back({m.seq, m.role, m.content, m.token_count});
  }
  return out;
}

}  // namespace

json MessageJson(const store::ConversationMessage& m) {
  json meta = ParseObject(m.metadata);
  json out = {{"id", m.id},
              {"session_id", m.session_id},
              {"seq", m.seq},
              {"content", m.content},
              {"role", m.role},
              {"message_type", m.message_type},
              {"created_at", FormatTimestamp(m.created_at_ms)},
              {"token_count", m.token_count},
              {"execution_time", m.execution_time},
              {"sources", meta.contains("sources") ? meta["sources"] : json(nullptr)},
              {"cot_output", meta.contains("cot_output") ? meta["cot_output"] : json(nullptr)},
              {"token_analysis", m.role == "assistant" ? json{{"prompt_tokens", m.prompt_tokens},
                                                              {"completion_tokens", m.completion_tokens},
                                                              {"total_tokens", m.prompt_tokens + m.completion_tokens}}
                                                       : json(nullptr)}};
  meta.erase("sources");
  meta.erase("cot_output");
  out["metadata"] = std::move(meta);
  return out;
}

json SessionJson(const store::ConversationSession& s) {
  return {{"id", s.id},
          {"user_id", s.user_id},
          {"collection_id", s.collection_id},
          {"session_name", s.name},
          {"status", s.status},
          {"context_window_size", s.context_window_size},
          {"max_messages", s.max_messages},
          {"is_archived", s.status == "archived"},
          {"is_pinned", s.is_pinned},
          {"created_at", FormatTimestamp(s.created_at_ms)},
          {"updated_at", FormatTimestamp(s.updated_at_ms)},
          {"metadata", ParseObject(s.metadata)},
          {"message_count", s.message_count}};
}

json SummaryJson(const store::ConversationSummary& s) {
  json meta = ParseObject(s.metadata);
  return {{"id", s.id},
          {"session_id", s.session_id},
          {"summary_text", s.summary_text},
          {"summarized_message_count", s.summarized_message_count},
          {"up_to_seq", s.up_to_seq},
          {"tokens_saved", s.tokens_saved},
          {"key_topics", meta.value("key_topics", json::array())},
          {"important_decisions", meta.value("important_decisions", json::array())},
          {"unresolved_questions", meta.value("unresolved_questions", json::array())},
          {"summary_strategy", s.strategy},
          {"created_at", FormatTimestamp(s.created_at_ms)},
          {"metadata", meta}};
}

ConversationService::ConversationService(ConversationDeps deps, ContextOptions options)
    : deps_(deps), context_(std::move(options)) {}

namespace {

// The messages no summary covers yet (oldest first) and the latest summary.
struct Uncovered {
  std::vector<HistoryMessage> messages;
  std::optional<store::ConversationSummary> summary;
};

Result<Uncovered> LoadUncovered(store::ConversationStore& store, const std::string& session_id,
                                std::int64_t before_seq) {
  Uncovered u;
  auto latest = store.LatestSummary(session_id);
  if (latest) {
    u.summary = std::move(*latest);
  } else if (latest.error().code() != ErrorCode::kNotFound) {
    return Fail(latest.error());
  }
  std::vector<store::ConversationMessage> stored;
  auto st = store::ForEachMessage(store, session_id, u.summary ? u.summary->up_to_seq : 0,
                                  [&](store::ConversationMessage&& m) {
                                    if (before_seq == 0 || m.seq < before_seq) stored.push_back(std::move(m));
                                  });
  if (!st) return Fail(st.error());
  u.messages = ToHistory(stored);
  return u;
}

}  // namespace

Result<CarriedHistory> ConversationService::History(const store::ConversationSession& session, std::int64_t before_seq,
                                                    LlmProvider* provider, const AnswerRequest* accounting,
                                                    const CancelToken* cancel) {
  auto u = LoadUncovered(deps_.store, session.id, before_seq);
  if (!u) return Fail(u.error());
  const auto budget = static_cast<std::size_t>(std::max(session.context_window_size, 0));
  auto as_summary = [](const std::optional<store::ConversationSummary>& s) -> std::optional<HistorySummary> {
    if (!s) return std::nullopt;
    return HistorySummary{s->summary_text, s->up_to_seq};
  };
  // At most max_messages are carried; older uncovered ones are folded.
  const std::size_t cap = static_cast<std::size_t>(std::max(session.max_messages, 1));
  std::vector<HistoryMessage> older, recent = std::move(u->messages);
  if (recent.size() > cap) {
    older.assign(recent.begin(), recent.end() - static_cast<std::ptrdiff_t>(cap));
    recent.erase(recent.begin(), recent.end() - static_cast<std::ptrdiff_t>(cap));
  }
  CarriedHistory carried = context_.Build(recent, as_summary(u->summary), budget);
  std::vector<HistoryMessage> fold = older;
  if (carried.needs_summary) {
    for (const auto& m : recent) {
      if (m.seq >= carried.fold_from_seq && m.seq <= carried.fold_to_seq) fold.push_back(m);
    }
  }
  if (fold.empty() || (older.empty() && !carried.needs_summary)) return carried;
  SummaryResult s = context_.Summarize(provider, u->summary ? u->summary->summary_text : "", fold, cancel);
  if (accounting != nullptr && provider != nullptr) deps_.answers.Record(*accounting, *provider, s.usage);
  if (s.method == "none" || s.text.empty()) return carried;
  store::ConversationSummary summary;
  summary.session_id = session.id;
  summary.summary_text = s.text;
  summary.up_to_seq = fold.back().seq;
  summary.summarized_message_count =
      static_cast<std::int64_t>(fold.size()) + (u->summary ? u->summary->summarized_message_count : 0);
  summary.tokens_saved = s.tokens_saved;
  summary.strategy = "recent_plus_summary";
  json meta = {{"method", s.method},
               {"usage", {{"prompt_tokens", s.usage.prompt_tokens}, {"completion_tokens", s.usage.completion_tokens}}}};
  if (s.error) meta["error"] = {{"code", ErrorCodeName(s.error->code())}, {"message", s.error->message()}};
  summary.metadata = meta.dump();
  auto stored = deps_.store.AddSummary(summary);
  if (!stored) return Fail(stored.error());
  std::vector<HistoryMessage> rest;
  for (const auto& m : recent) {
    if (m.seq > stored->up_to_seq) rest.push_back(m);
  }
  return context_.Build(rest, HistorySummary{stored->summary_text, stored->up_to_seq}, budget);
}

Result<std::optional<store::ConversationSummary>> ConversationService::Summarize(
    const store::ConversationSession& session, LlmProvider* provider, bool everything, const AnswerRequest* accounting,
    const CancelToken* cancel) {
  if (!everything) {
    // Everything before the newest message, as a turn would carry it.
    auto last = deps_.store.RecentMessages(session.id, 1);
    if (!last) return Fail(last.error());
    auto carried = History(session, last->empty() ? 0 : last->back().seq, provider, accounting, cancel);
    if (!carried) return Fail(carried.error());
  } else {
    auto u = LoadUncovered(deps_.store, session.id, 0);
    if (!u) return Fail(u.error());
    if (u->messages.size() >= 2) {
      SummaryResult s = context_.Summarize(provider, u->summary ? u->summary->summary_text : "", u->messages, cancel);
      if (accounting != nullptr && provider != nullptr) deps_.answers.Record(*accounting, *provider, s.usage);
      if (s.method != "none" && !s.text.empty()) {
        store::ConversationSummary summary;
        summary.session_id = session.id;
        summary.summary_text = s.text;
        summary.up_to_seq = u->messages.back().seq;
        summary.summarized_message_count =
            static_cast<std::int64_t>(u->messages.size()) + (u->summary ? u->summary->summarized_message_count : 0);
        summary.tokens_saved = s.tokens_saved;
        summary.strategy = "full_conversation";
        summary.metadata = json{{"method", s.method}}.dump();
        auto stored = deps_.store.AddSummary(summary);
        if (!stored) return Fail(stored.error());
      }
    }
  }
  auto latest = deps_.store.LatestSummary(session.id);
  if (latest) return std::optional<store::ConversationSummary>(std::move(*latest));
  if (latest.error().code() == ErrorCode::kNotFound) return std::optional<store::ConversationSummary>();
  return Fail(latest.error());
}

boost::asio::awaitable<Result<TurnResult>> ConversationService::Turn(store::ConversationSession session,
                                                                     AnswerRequest request,
                                                                     std::shared_ptr<const AnswerObserver> observer,
                                                                     std::shared_ptr<const CancelToken> cancel) {
  const auto started = Clock::now();
  const TokenCounter count =
      deps_.answers.options().count_tokens ? deps_.answers.options().count_tokens : TokenCounter(EstimateTokens);
  TurnResult out;
  store::ConversationMessage q;
  q.session_id = session.id;
  q.role = "user";
  q.message_type = "question";
  q.content = request.query.question;
  q.token_count = static_cast<std::int64_t>(count(q.content));
  LlmProvider* provider = deps_.answers.ProfileOf(request).provider.get();
  const bool use_model = provider != nullptr && request.mode != AnswerMode::kExtractive;
  auto prepared = co_await RunOn(deps_.blocking_pool, [&]() -> Result<CarriedHistory> {
    auto stored = deps_.store.AppendMessage(q);
    if (!stored) return Fail(stored.error());
    out.question = std::move(*stored);
    return History(session, out.question.seq, use_model ? provider : nullptr, &request, cancel.get());
  });
  if (!prepared) co_return Fail(prepared.error());
  request.history = prepared->messages;
  const std::size_t history_tokens = prepared->tokens;
  const bool summary_included = prepared->summary_included;

  auto response = co_await deps_.answers.Answer(request, observer, cancel);
  const double seconds = std::chrono::duration<double>(Clock::now() - started).count();

  store::ConversationMessage a;
  a.session_id = session.id;
  a.role = "assistant";
  a.execution_time = seconds;
  json meta = json::object();
  if (!response) {
    const Error& e = response.error();
    a.message_type = "error";
    a.content = e.message();
    meta = {{"error", {{"code", ErrorCodeName(e.code())}, {"message", e.message()}}}};
    if (e.code() == ErrorCode::kCancelled) meta["cancelled"] = true;
  } else {
    const json& r = *response;
    const json& rmeta = r.contains("metadata") && r["metadata"].is_object() ? r["metadata"] : json::object();
    a.message_type = "answer";
    a.content = r.contains("answer") && r["answer"].is_string() ? r["answer"].get<std::string>() : std::string();
    const json usage = rmeta.value("usage", json::object());
    a.prompt_tokens = usage.value("prompt_tokens", 0);
    a.completion_tokens = usage.value("completion_tokens", 0);
    meta = {{"sources", CompactSources(r)},
            {"citations", rmeta.value("citations", json::array())},
            {"answer_type", rmeta.value("answer_type", json(nullptr))},
            {"rewritten_query", r.value("rewritten_query", json(nullptr))},
            {"stages", rmeta.value("stages", json::array())},
            {"model_used", rmeta.contains("llm") ? rmeta["llm"].value("model", json(nullptr)) : json(nullptr)},
            {"conversation_aware", !request.history.empty()},
            {"history_tokens", history_tokens},
            {"summary_used", summary_included},
            {"cot_used", r.contains("cot_output") && !r["cot_output"].is_null()},
            {"source_documents", json::array()}};
    if (r.contains("cot_output") && !r["cot_output"].is_null()) meta["cot_output"] = r["cot_output"];
    if (rmeta.contains("generation_error")) meta["generation_error"] = rmeta["generation_error"];
    if (r.contains("documents") && r["documents"].is_array()) {
      for (const auto& d : r["documents"]) {
        if (d.is_object() && d.contains("document_name")) meta["source_documents"].push_back(d["document_name"]);
      }
    }
  }
  a.token_count = static_cast<std::int64_t>(count(a.content));
  a.metadata = meta.dump(-1, ' ', false, json::error_handler_t::replace);
  auto stored = co_await RunOn(deps_.blocking_pool, [&] { return deps_.store.AppendMessage(a); });
  if (!stored) {
    log::Warn("a conversation answer could not be stored",
              {{"session_id", session.id}, {"error", stored.error().message()}});
    co_return Fail(stored.error());
  }
  if (!response) co_return Fail(response.error());
  out.answer = std::move(*stored);
  out.response = std::move(*response);
  co_return out;
}

}  // namespace modulo::generate
