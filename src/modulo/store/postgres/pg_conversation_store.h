// PostgresConversationStore: the scale-out ConversationStore over PostgreSQL (tables of schema
// step 6 in database.cpp: conversation_sessions, conversation_messages, conversation_summaries,
// suggested_questions). Same semantics as SqliteConversationStore, and the same contract
// (conversation_store_contract.h):
// - a session keeps its message count; AppendMessage raises it with
//   UPDATE ... RETURNING, which locks the session row until the message is committed, and takes
//   the new value as the message's seq: concurrent appends to one session queue on that row, so
//   seqs have no gaps and no repeats; a rolled-back append gives its seq back. The message's
//   time is the session's new updated_at, which never goes back;
// - CreateSession keeps a given id; messages, summaries and questions always get a new one;
//   UpdateSession moves updated_at; user_id and collection_id never change;
// - AddSummary needs a summary text and a strategy, 0 <= up_to_seq <= the message count,
//   non-negative counts and a JSON object as metadata; summaries are ordered by up_to_seq, then
//   creation;
// - ReplaceSuggestedQuestions locks the collection row (FOR NO KEY UPDATE) before it swaps the
//   list, so concurrent replacements of one collection run one after the other; questions must
//   not be empty.
//
// Reads and replicas (database.h): the history a turn is built from (ListMessages,
// RecentMessages, LatestSummary, ListSummaries) reads the primary, so a follow-up served by
// another server sees the previous turn; GetSession, ListSessions and ListSuggestedQuestions
// may read a replica (a NotFound there is asked again on the primary).
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include "modulo/store/conversation_store.h"
#include "modulo/store/postgres/database.h"

namespace modulo::store::postgres {

class PostgresConversationStore final : public ConversationStore {
 public:
  explicit PostgresConversationStore(Database& db) : db_(db) {}

  Result<ConversationSession> CreateSession(const ConversationSession& s) override;
  Result<ConversationSession> GetSession(const std::string& id) override;
  Result<std::vector<ConversationSession>> ListSessions(const SessionFilter& f) override;
  Result<ConversationSession> UpdateSession(const ConversationSession& s) override;
  Status DeleteSession(const std::string& id) override;

  Result<ConversationMessage> AppendMessage(const ConversationMessage& m) override;
  Result<std::vector<ConversationMessage>> ListMessages(const std::string& session_id, std::int64_t after_seq,
                                                        std::size_t limit) override;
  Result<std::vector<ConversationMessage>> RecentMessages(const std::string& session_id, std::size_t n) override;

  Result<ConversationSummary> AddSummary(const ConversationSummary& s) override;
  Result<ConversationSummary> LatestSummary(const std::string& session_id) override;
  Result<std::vector<ConversationSummary>> ListSummaries(const std::string& session_id) override;

  Status ReplaceSuggestedQuestions(const std::string& collection_id,
                                   const std::vector<std::string>& questions) override;
  Result<std::vector<SuggestedQuestion>> ListSuggestedQuestions(const std::string& collection_id) override;

 private:
  Database& db_;
};

}  // namespace modulo::store::postgres
