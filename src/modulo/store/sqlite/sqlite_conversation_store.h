// SqliteConversationStore: the embedded ConversationStore over the data directory's SQLite
// database (tables of migration 6: conversation_sessions, conversation_messages,
// conversation_summaries, suggested_questions).
//
// Choices this implementation makes where conversation_store.h leaves room:
// - A session keeps its message count; AppendMessage raises it and takes the new value as the
//   message's seq, in one BEGIN IMMEDIATE transaction with the insert, so seqs have no gaps and
//   no repeats. The message's time is the session's new updated_at, which never goes back:
//   messages' times follow their seqs.
// - CreateSession keeps a given id; messages, summaries and suggested questions always get a
//   new one. UpdateSession moves updated_at too; user_id and collection_id never change.
// - AddSummary needs a summary text and a strategy, 0 <= up_to_seq <= the session's message
//   count, non-negative counts and a JSON object as metadata (InvalidArgument otherwise).
// - Summaries are listed by up_to_seq, then creation; LatestSummary breaks ties the same way.
// - Suggested questions must not be empty; ListSuggestedQuestions and ReplaceSuggestedQuestions
//   need an existing collection (NotFound).
// - ListMessages and RecentMessages with a limit of 0 return nothing without looking the
//   session up.
//
// Thread-safety: all methods are thread-safe (connections come from the Database pool).
#pragma once

#include "modulo/store/conversation_store.h"
#include "modulo/store/sqlite/database.h"

namespace modulo::store::sqlite {

class SqliteConversationStore final : public ConversationStore {
 public:
  explicit SqliteConversationStore(Database& db) : db_(db) {}

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

}  // namespace modulo::store::sqlite
