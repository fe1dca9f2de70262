// ConversationStore: chat sessions over a collection, their messages and summaries, and the
// suggested questions of each collection (RAG Modulo's /api/conversations and
// /api/collections/{id}/questions). Implementations: SqliteConversationStore (store/sqlite/) and
// PostgresConversationStore (store/postgres/); both pass conversation_store_contract.h.
//
// Promises:
// - A session belongs to one user and one collection; deleting either deletes the session, its
//   messages and summaries (foreign keys, same database as the metadata and identity stores).
// - AppendMessage assigns seq: 1, 2, 3 … per session with no gaps and no repeats under
//   concurrent appends, and moves the session's updated_at_ms to the message's time, atomically.
// - Messages and summaries are never changed after they are written (DeleteSession aside).
// - ReplaceSuggestedQuestions swaps a collection's list in one transaction.
// - NotFound for unknown ids.
//
// Authorization is the caller's: the store does not check that a user may read the collection.
//
// Thread-safety: all methods are thread-safe and block (call them on the blocking pool).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "modulo/core/error.h"

namespace modulo::store {

struct ConversationSession {
  std::string id;  // assigned (UUID) when empty
  std::string user_id;
  std::string collection_id;
  std::string name;               // 1..255 bytes
  std::string status = "active";  // "active" | "archived"
  bool is_pinned = false;
  int context_window_size = 4000;  // tokens of history carried into a turn (1000..32768)
  int max_messages = 50;           // messages carried at most (10..200)
  std::string metadata = "{}";     // a JSON object's text, at most 64 KiB
  std::int64_t created_at_ms = 0;  // assigned
  std::int64_t updated_at_ms = 0;  // assigned; moved by AppendMessage
  std::int64_t message_count = 0;  // filled by Get/List
};

struct ConversationMessage {
  std::string id;  // assigned
  std::string session_id;
  std::int64_t seq = 0;         // assigned: 1, 2, 3 … per session
  std::string role;             // "user" | "assistant" | "system"
  std::string message_type;     // "question" | "answer" | "follow_up" | "clarification" | "error" | "system"
  std::string content;          // at most 1 MiB
  std::string metadata = "{}";  // a JSON object's text (sources, cot_output, stages …), at most 4 MiB
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t token_count = 0;    // tokens of `content` itself (what it costs as history)
  double execution_time = 0;       // seconds
  std::int64_t created_at_ms = 0;  // assigned
};

struct ConversationSummary {
  std::string id;  // assigned
  std::string session_id;
  std::string summary_text;    // not empty
  std::int64_t up_to_seq = 0;  // covers the messages with seq <= up_to_seq
  std::int64_t summarized_message_count = 0;
  std::int64_t tokens_saved = 0;
  std::string strategy = "recent_plus_summary";
  std::string metadata = "{}";     // a JSON object's text (key_topics …)
  std::int64_t created_at_ms = 0;  // assigned
};

struct SuggestedQuestion {
  std::string id;  // assigned
  std::string collection_id;
  std::string question;
  std::int64_t created_at_ms = 0;  // assigned
};

struct SessionFilter {
  std::string user_id;                       // required
  std::optional<std::string> collection_id;  // only this collection's sessions
  bool include_archived = false;
  std::size_t limit = 100;
  std::size_t offset = 0;
};

class ConversationStore {
 public:
  virtual ~ConversationStore() = default;

  // NotFound when the user or the collection does not exist; InvalidArgument for bad fields.
  [[nodiscard]] virtual Result<ConversationSession> CreateSession(const ConversationSession& s) = 0;
  [[nodiscard]] virtual Result<ConversationSession> GetSession(const std::string& id) = 0;
  // Pinned first, then most recently updated first.
  [[nodiscard]] virtual Result<std::vector<ConversationSession>> ListSessions(const SessionFilter& f) = 0;
  // Replaces name, status, is_pinned, context_window_size, max_messages and metadata of s.id.
  [[nodiscard]] virtual Result<ConversationSession> UpdateSession(const ConversationSession& s) = 0;
  [[nodiscard]] virtual Status DeleteSession(const std::string& id) = 0;

  // NotFound for an unknown session. Returns the message as stored (id, seq, created_at_ms).
  [[nodiscard]] virtual Result<ConversationMessage> AppendMessage(const ConversationMessage& m) = 0;
  // Messages with seq > after_seq, oldest first, at most `limit`.
  [[nodiscard]] virtual Result<std::vector<ConversationMessage>> ListMessages(const std::string& session_id,
                                                                              std::int64_t after_seq,
                                                                              std::size_t limit) = 0;
  // The last `n` messages, oldest first.
  [[nodiscard]] virtual Result<std::vector<ConversationMessage>> RecentMessages(const std::string& session_id,
                                                                                std::size_t n) = 0;

  [[nodiscard]] virtual Result<ConversationSummary> AddSummary(const ConversationSummary& s) = 0;
  // The summary with the highest up_to_seq; NotFound when none.
  [[nodiscard]] virtual Result<ConversationSummary> LatestSummary(const std::string& session_id) = 0;
  [[nodiscard]] virtual Result<std::vector<ConversationSummary>> ListSummaries(const std::string& session_id) = 0;

  // NotFound for an unknown collection. Questions are kept in the given order.
  [[nodiscard]] virtual Status ReplaceSuggestedQuestions(const std::string& collection_id,
                                                         const std::vector<std::string>& questions) = 0;
  [[nodiscard]] virtual Result<std::vector<SuggestedQuestion>> ListSuggestedQuestions(
      const std::string& collection_id) = 0;
};

// Calls `fn` with every message of the session with seq > after_seq, oldest first, reading them
// in pages (so a long conversation is never one result set).
[[nodiscard]] Status ForEachMessage(ConversationStore& store, const std::string& session_id, std::int64_t after_seq,
                                    const std::function<void(ConversationMessage&&)>& fn);

// Checks every implementation applies before it writes (InvalidArgument naming the field).
[[nodiscard]] Status ValidateSession(const ConversationSession& s);
[[nodiscard]] Status ValidateMessage(const ConversationMessage& m);
[[nodiscard]] Status ValidateSummary(const ConversationSummary& s);

}  // namespace modulo::store
