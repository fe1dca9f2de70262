#include "modulo/store/conversation_store.h"

#include <nlohmann/json.hpp>

#include "modulo/core/json.h"
#include "modulo/store/identity_store.h"
#include "modulo/store/postgres/pg.h"

namespace modulo::store {
namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = 1024 * kKiB;

// `text` is a JSON object of at most `max_bytes` (`limit` says it in words).
Status CheckJsonObject(const char* field, const std::string& text, std::size_t max_bytes, const char* limit) {
  if (text.size() > max_bytes) {
    return Fail(Error::InvalidArgument(std::string(field) + " must be at most " + limit + ", not " +
                                       std::to_string(text.size()) + " bytes"));
  }
  auto j = modulo::ParseJsonOrDiscarded(text);
  if (j.is_discarded() || !j.is_object()) {
    return Fail(Error::InvalidArgument(std::string(field) + " must be a JSON object"));
  }
  return {};
}

// Valid UTF-8 without NUL: what both databases store as text unchanged.
Status CheckText(const char* field, std::string_view text) {
  if (postgres::SanitizeUtf8(text) != text) {
    return Fail(Error::InvalidArgument(std::string(field) + " must be valid UTF-8 without NUL bytes"));
  }
  return {};
}

}  // namespace

Status ValidateSession(const ConversationSession& s) {
  if (s.user_id.empty()) return Fail(Error::InvalidArgument("user_id must not be empty"));
  if (s.collection_id.empty()) return Fail(Error::InvalidArgument("collection_id must not be empty"));
  if (s.name.empty() || s.name.size() > 255) {
    return Fail(Error::InvalidArgument("name must be 1 to 255 bytes, not " + std::to_string(s.name.size())));
  }
  if (auto st = CheckText("name", s.name); !st) return st;
  if (!IsOneOf(s.status, {"active", "archived"})) {
    return Fail(Error::InvalidArgument("status must be 'active' or 'archived', not '" + s.status + "'"));
  }
  if (s.context_window_size < 1000 || s.context_window_size > 32768) {
    return Fail(Error::InvalidArgument("context_window_size must be 1000..32768, not " +
                                       std::to_string(s.context_window_size)));
  }
  if (s.max_messages < 10 || s.max_messages > 200) {
    return Fail(Error::InvalidArgument("max_messages must be 10..200, not " + std::to_string(s.max_messages)));
  }
  return CheckJsonObject("metadata", s.metadata, 64 * kKiB, "64 KiB");
}

Status ValidateMessage(const ConversationMessage& m) {
  if (m.session_id.empty()) return Fail(Error::InvalidArgument("session_id must not be empty"));
  if (!IsOneOf(m.role, {"user", "assistant", "system"})) {
    return Fail(Error::InvalidArgument("role must be 'user', 'assistant' or 'system', not '" + m.role + "'"));
  }
  if (!IsOneOf(m.message_type, {"question", "answer", "follow_up", "clarification", "error", "system"})) {
    return Fail(Error::InvalidArgument(
        "message_type must be question, answer, follow_up, clarification, error or system, not '" + m.message_type +
        "'"));
  }
  if (m.content.size() > kMiB) {
    return Fail(
        Error::InvalidArgument("content must be at most 1 MiB, not " + std::to_string(m.content.size()) + " bytes"));
  }
  if (auto st = CheckText("content", m.content); !st) return st;
  for (const auto& [field, v] :
       {std::pair{"prompt_tokens", m.prompt_tokens}, std::pair{"completion_tokens", m.completion_tokens},
        std::pair{"token_count", m.token_count}}) {
    if (v < 0) return Fail(Error::InvalidArgument(std::string(field) + " must not be negative"));
  }
  if (!(m.execution_time >= 0)) return Fail(Error::InvalidArgument("execution_time must not be negative"));
  return CheckJsonObject("metadata", m.metadata, 4 * kMiB, "4 MiB");
}

Status ValidateSummary(const ConversationSummary& s) {
  if (s.summary_text.empty()) return Fail(Error::InvalidArgument("summary_text must not be empty"));
  if (s.strategy.empty()) return Fail(Error::InvalidArgument("strategy must not be empty"));
  if (s.up_to_seq < 0 || s.summarized_message_count < 0 || s.tokens_saved < 0) {
    return Fail(Error::InvalidArgument("up_to_seq, summarized_message_count and tokens_saved must not be negative"));
  }
  if (auto j = modulo::ParseJsonOrDiscarded(s.metadata); j.is_discarded() || !j.is_object()) {
    return Fail(Error::InvalidArgument("metadata must be a JSON object"));
  }
  return {};
}

Status ForEachMessage(ConversationStore& store, const std::string& session_id, std::int64_t after_seq,
                      const std::function<void(ConversationMessage&&)>& fn) {
  constexpr std::size_t kPage = 500;
  while (true) {
    auto page = store.ListMessages(session_id, after_seq, kPage);
    if (!page) return Fail(page.error());
    const bool last = page->size() < kPage;
    if (!page->empty()) after_seq = page->back().seq;
    for (auto& m : *page) fn(std::move(m));
    if (last) return {};
  }
}

}  // namespace modulo::store
