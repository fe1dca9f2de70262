#include "modulo/store/postgres/pg_conversation_store.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::postgres {
namespace {

constexpr const char* kSessionColumns =
    "id, user_id, collection_id, name, status, is_pinned, context_window_size, max_messages, metadata, "
    "created_at, updated_at, message_count";

ConversationSession ReadSession(const PgResult& r, int i) {
  ConversationSession x;
  x.id = r.Text(i, 0);
  x.user_id = r.Text(i, 1);
  x.collection_id = r.Text(i, 2);
  x.name = r.Text(i, 3);
  x.status = r.Text(i, 4);
  x.is_pinned = r.Bool(i, 5);
  x.context_window_size = static_cast<int>(r.Int(i, 6));
  x.max_messages = static_cast<int>(r.Int(i, 7));
  x.metadata = r.Text(i, 8);
  x.created_at_ms = r.Int(i, 9);
  x.updated_at_ms = r.Int(i, 10);
  x.message_count = r.Int(i, 11);
  return x;
}

// Message columns as read through the alias m.
constexpr const char* kMessageColumns =
    "m.id, m.session_id, m.seq, m.role, m.message_type, m.content, m.metadata, m.prompt_tokens, "
    "m.completion_tokens, m.token_count, m.execution_time, m.created_at";

ConversationMessage ReadMessage(const PgResult& r, int i, int first) {
  ConversationMessage m;
  m.id = r.Text(i, first);
  m.session_id = r.Text(i, first + 1);
  m.seq = r.Int(i, first + 2);
  m.role = r.Text(i, first + 3);
  m.message_type = r.Text(i, first + 4);
  m.content = r.Text(i, first + 5);
  m.metadata = r.Text(i, first + 6);
  m.prompt_tokens = r.Int(i, first + 7);
  m.completion_tokens = r.Int(i, first + 8);
  m.token_count = r.Int(i, first + 9);
  m.execution_time = r.Double(i, first + 10);
  m.created_at_ms = r.Int(i, first + 11);
  return m;
}

// Summary columns as read through the alias x.
constexpr const char* kSummaryColumns =
    "x.id, x.session_id, x.summary_text, x.up_to_seq, x.summarized_message_count, x.tokens_saved, x.strategy, "
    "x.metadata, x.created_at";

ConversationSummary ReadSummary(const PgResult& r, int i, int first) {
  ConversationSummary x;
  x.id = r.Text(i, first);
  x.session_id = r.Text(i, first + 1);
  x.summary_text = r.Text(i, first + 2);
  x.up_to_seq = r.Int(i, first + 3);
  x.summarized_message_count = r.Int(i, first + 4);
  x.tokens_saved = r.Int(i, first + 5);
  x.strategy = r.Text(i, first + 6);
  x.metadata = r.Text(i, first + 7);
  x.created_at_ms = r.Int(i, first + 8);
  return x;
}

Error SessionNotFound(const std::string& id) { return Error::NotFound("conversation session " + id + " not found"); }
Error CollectionNotFound(const std::string& id) { return Error::NotFound("collection " + id + " not found"); }

// The session; FOR UPDATE inside writes.
Result<ConversationSession> LoadSession(Connection& c, const std::string& id, bool for_update) {
  auto r = c.Exec(std::string("SELECT ") + kSessionColumns + " FROM conversation_sessions WHERE id = $1" +
                      (for_update ? " FOR UPDATE" : ""),
                  Params().Add(id));
  if (!r) return Fail(r.error());
  if (r->empty()) return Fail(SessionNotFound(id));
  return ReadSession(*r, 0);
}

std::int64_t ClampLimit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
}

// The session's messages with seq > `lower_bound` (an SQL expression over $2 and the session s),
// oldest first, at most $3; NotFound when the session does not exist. One query.
Result<std::vector<ConversationMessage>> MessagesAbove(Connection& c, const std::string& lower_bound,
                                                       const std::string& session_id, std::int64_t bound,
                                                       std::size_t limit) {
  auto r = c.Exec(std::string("SELECT s.id, ") + kMessageColumns +
                      " FROM conversation_sessions s LEFT JOIN conversation_messages m "
                      "ON m.session_id = s.id AND m.seq > " + lower_bound +
                      " WHERE s.id = $1 ORDER BY m.seq LIMIT $3",
                  Params().Add(session_id).Add(bound).Add(ClampLimit(limit)));
  if (!r) return Fail(r.error());
  if (r->empty()) return Fail(SessionNotFound(session_id));
  std::vector<ConversationMessage> out;
  for (int i = 0; i < r->rows(); ++i) {
    if (!r->IsNull(i, 1)) out.push_back(ReadMessage(*r, i, 1));
  }
  return out;
}


}  // namespace

// ---------------------------------------------------------------------------------------------
// Sessions

Result<ConversationSession> PostgresConversationStore::CreateSession(const ConversationSession& in) {
  if (auto st = ValidateSession(in); !st) return Fail(st.error());
  ConversationSession x = in;
  if (x.id.empty()) x.id = NewUuid();
  x.created_at_ms = x.updated_at_ms = NowMs();
  x.message_count = 0;
  auto st = db_.WithTransaction([&](Connection& c) -> Status {
    auto owners = c.Exec(
        "SELECT EXISTS (SELECT 1 FROM users WHERE id = $1), EXISTS (SELECT 1 FROM collections WHERE id = $2)",
        Params().Add(x.user_id).Add(x.collection_id));
    if (!owners) return Fail(owners.error());
    if (!owners->Bool(0, 0)) return Fail(Error::NotFound("user " + x.user_id + " not found"));
    if (!owners->Bool(0, 1)) return Fail(CollectionNotFound(x.collection_id));
    auto r = c.Exec(std::string("INSERT INTO conversation_sessions (") + kSessionColumns +
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, 0)",
                    Params()
                        .Add(x.id)
                        .Add(x.user_id)
                        .Add(x.collection_id)
                        .Add(x.name)
                        .Add(x.status)
                        .Add(x.is_pinned)
                        .Add(x.context_window_size)
                        .Add(x.max_messages)
                        .Add(x.metadata)
                        .Add(x.created_at_ms));
    if (!r) {
      if (r.error().code() == ErrorCode::kAlreadyExists) {
        return Fail(Error::AlreadyExists("conversation session " + x.id + " already exists"));
      }
      // The user or the collection went between the lookup and the insert.
      if (r.error().code() == ErrorCode::kNotFound) return Fail(Error::NotFound("user or collection not found"));
      return Fail(r.error());
    }
    return {};
  });
  if (!st) return Fail(st.error());
  return x;
}

Result<ConversationSession> PostgresConversationStore::GetSession(const std::string& id) {
  return db_.WithRead([&](Connection& c) { return LoadSession(c, id, false); });
}

Result<std::vector<ConversationSession>> PostgresConversationStore::ListSessions(const SessionFilter& f) {
  if (f.user_id.empty()) return Fail(Error::InvalidArgument("user_id must not be empty"));
  if (f.limit == 0) return std::vector<ConversationSession>{};
  return db_.WithRead([&](Connection& c) -> Result<std::vector<ConversationSession>> {
    auto r = c.Exec(std::string("SELECT ") + kSessionColumns +
                        " FROM conversation_sessions WHERE user_id = $1 AND ($2::text IS NULL OR collection_id = $2) "
                        "AND ($3 OR status = 'active') ORDER BY is_pinned DESC, updated_at DESC, id LIMIT $4 OFFSET $5",
                    Params()
                        .Add(f.user_id)
                        .Add(f.collection_id)
                        .Add(f.include_archived)
                        .Add(ClampLimit(f.limit))
                        .Add(ClampLimit(f.offset)));
    if (!r) return Fail(r.error());
    std::vector<ConversationSession> out;
    for (int i = 0; i < r->rows(); ++i) out.push_back(ReadSession(*r, i));
    return out;
  });
}

Result<ConversationSession> PostgresConversationStore::UpdateSession(const ConversationSession& in) {
  return db_.WithTransaction([&](Connection& c) -> Result<ConversationSession> {
    auto x = LoadSession(c, in.id, true);
    if (!x) return x;
    x->name = in.name;
    x->status = in.status;
    x->is_pinned = in.is_pinned;
    x->context_window_size = in.context_window_size;
    x->max_messages = in.max_messages;
    x->metadata = in.metadata;
    x->updated_at_ms = std::max(x->updated_at_ms, NowMs());
    if (auto st = ValidateSession(*x); !st) return Fail(st.error());
    auto r = c.Exec(
        "UPDATE conversation_sessions SET name = $1, status = $2, is_pinned = $3, context_window_size = $4, "
        "max_messages = $5, metadata = $6, updated_at = $7 WHERE id = $8",
        Params()
            .Add(x->name)
            .Add(x->status)
            .Add(x->is_pinned)
            .Add(x->context_window_size)
            .Add(x->max_messages)
            .Add(x->metadata)
            .Add(x->updated_at_ms)
            .Add(x->id));
    if (!r) return Fail(r.error());
    return x;
  });
}

Status PostgresConversationStore::DeleteSession(const std::string& id) {
  return db_.WithWrite([&](Connection& c) -> Status {
    // Messages and summaries go with the session (ON DELETE CASCADE).
    auto r = c.Exec("DELETE FROM conversation_sessions WHERE id = $1", Params().Add(id));
    if (!r) return Fail(r.error());
    if (r->affected() == 0) return Fail(SessionNotFound(id));
    return {};
  });
}

// ---------------------------------------------------------------------------------------------
// Messages

Result<ConversationMessage> PostgresConversationStore::AppendMessage(const ConversationMessage& in) {
  if (auto st = ValidateMessage(in); !st) return Fail(st.error());
  return db_.WithTransaction([&](Connection& c) -> Result<ConversationMessage> {
    ConversationMessage m = in;
    m.id = NewUuid();
    // Locks the session row until commit: the next append to this session waits here.
    auto bump = c.Exec(
        "UPDATE conversation_sessions SET message_count = message_count + 1, updated_at = GREATEST(updated_at, $2) "
        "WHERE id = $1 RETURNING message_count, updated_at",
        Params().Add(m.session_id).Add(NowMs()));
    if (!bump) return Fail(bump.error());
    if (bump->empty()) return Fail(SessionNotFound(m.session_id));
    m.seq = bump->Int(0, 0);
    m.created_at_ms = bump->Int(0, 1);
    auto r = c.Exec(
        "INSERT INTO conversation_messages (id, session_id, seq, role, message_type, content, metadata, prompt_tokens, "
        "completion_tokens, token_count, execution_time, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        Params()
            .Add(m.id)
            .Add(m.session_id)
            .Add(m.seq)
            .Add(m.role)
            .Add(m.message_type)
            .Add(m.content)
            .Add(m.metadata)
            .Add(m.prompt_tokens)
            .Add(m.completion_tokens)
            .Add(m.token_count)
            .Add(m.execution_time)
            .Add(m.created_at_ms));
    if (!r) return Fail(r.error());
    return m;
  });
}

Result<std::vector<ConversationMessage>> PostgresConversationStore::ListMessages(const std::string& session_id,
                                                                                 std::int64_t after_seq,
                                                                                 std::size_t limit) {
  if (limit == 0) return std::vector<ConversationMessage>{};
  return db_.WithPrimary([&](Connection& c) { return MessagesAbove(c, "$2", session_id, after_seq, limit); });
}

Result<std::vector<ConversationMessage>> PostgresConversationStore::RecentMessages(const std::string& session_id,
                                                                                   std::size_t n) {
  if (n == 0) return std::vector<ConversationMessage>{};
  // Seqs are 1..message_count without gaps: the last n are those above message_count - n.
  return db_.WithPrimary(
      [&](Connection& c) { return MessagesAbove(c, "s.message_count - $2", session_id, ClampLimit(n), n); });
}

// ---------------------------------------------------------------------------------------------
// Summaries

Result<ConversationSummary> PostgresConversationStore::AddSummary(const ConversationSummary& in) {
  if (auto st = ValidateSummary(in); !st) return Fail(st.error());
  return db_.WithTransaction([&](Connection& c) -> Result<ConversationSummary> {
    ConversationSummary x = in;
    x.id = NewUuid();
    x.created_at_ms = NowMs();
    // FOR SHARE: the session cannot go (or gain messages) before the summary lands.
    auto session = c.Exec("SELECT message_count FROM conversation_sessions WHERE id = $1 FOR SHARE",
                          Params().Add(x.session_id));
    if (!session) return Fail(session.error());
    if (session->empty()) return Fail(SessionNotFound(x.session_id));
    const std::int64_t count = session->Int(0, 0);
    if (x.up_to_seq > count) {
      return Fail(Error::InvalidArgument("up_to_seq " + std::to_string(x.up_to_seq) + " is past the session's " +
                                         std::to_string(count) + " messages"));
    }
    auto r = c.Exec(
        "INSERT INTO conversation_summaries (id, session_id, summary_text, up_to_seq, summarized_message_count, "
        "tokens_saved, strategy, metadata, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        Params()
            .Add(x.id)
            .Add(x.session_id)
            .Add(x.summary_text)
            .Add(x.up_to_seq)
            .Add(x.summarized_message_count)
            .Add(x.tokens_saved)
            .Add(x.strategy)
            .Add(x.metadata)
            .Add(x.created_at_ms));
    if (!r) return Fail(r.error());
    return x;
  });
}

Result<ConversationSummary> PostgresConversationStore::LatestSummary(const std::string& session_id) {
  return db_.WithPrimary([&](Connection& c) -> Result<ConversationSummary> {
    auto r = c.Exec(std::string("SELECT ") + kSummaryColumns +
                        " FROM conversation_summaries x WHERE x.session_id = $1 "
                        "ORDER BY x.up_to_seq DESC, x.created_at DESC, x.id DESC LIMIT 1",
                    Params().Add(session_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(Error::NotFound("conversation session " + session_id + " has no summary"));
    return ReadSummary(*r, 0, 0);
  });
}

Result<std::vector<ConversationSummary>> PostgresConversationStore::ListSummaries(const std::string& session_id) {
  return db_.WithPrimary([&](Connection& c) -> Result<std::vector<ConversationSummary>> {
    auto r = c.Exec(std::string("SELECT s.id, ") + kSummaryColumns +
                        " FROM conversation_sessions s LEFT JOIN conversation_summaries x ON x.session_id = s.id "
                        "WHERE s.id = $1 ORDER BY x.up_to_seq, x.created_at, x.id",
                    Params().Add(session_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(SessionNotFound(session_id));
    std::vector<ConversationSummary> out;
    for (int i = 0; i < r->rows(); ++i) {
      if (!r->IsNull(i, 1)) out.push_back(ReadSummary(*r, i, 1));
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// Suggested questions

Status PostgresConversationStore::ReplaceSuggestedQuestions(const std::string& collection_id,
                                                            const std::vector<std::string>& questions) {
  if (std::ranges::any_of(questions, [](const std::string& q) { return q.empty(); })) {
    return Fail(Error::InvalidArgument("questions must not be empty"));
  }
  std::vector<std::string> ids;
  ids.reserve(questions.size());
  for (std::size_t i = 0; i < questions.size(); ++i) ids.push_back(NewUuid());
  return db_.WithTransaction([&](Connection& c) -> Status {
    // The collection row lock serializes replacements of one collection's list; it does not
    // block foreign-key checks (FOR KEY SHARE) of other writers.
    auto lock = c.Exec("SELECT 1 FROM collections WHERE id = $1 FOR NO KEY UPDATE", Params().Add(collection_id));
    if (!lock) return Fail(lock.error());
    if (lock->empty()) return Fail(CollectionNotFound(collection_id));
    if (auto d = c.Exec("DELETE FROM suggested_questions WHERE collection_id = $1", Params().Add(collection_id)); !d) {
      return Fail(d.error());
    }
    auto r = c.Exec(
        "INSERT INTO suggested_questions (id, collection_id, position, question, created_at) "
        "SELECT t.id, $1, t.ord - 1, t.question, $4 "
        "FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t (id, question, ord)",
        Params().Add(collection_id).AddTextArray(ids).AddTextArray(questions).Add(NowMs()));
    if (!r) return Fail(r.error());
    return {};
  });
}

Result<std::vector<SuggestedQuestion>> PostgresConversationStore::ListSuggestedQuestions(
    const std::string& collection_id) {
  return db_.WithRead([&](Connection& c) -> Result<std::vector<SuggestedQuestion>> {
    auto r = c.Exec(
        "SELECT c.id, q.id, q.question, q.created_at FROM collections c "
        "LEFT JOIN suggested_questions q ON q.collection_id = c.id WHERE c.id = $1 ORDER BY q.position",
        Params().Add(collection_id));
    if (!r) return Fail(r.error());
    if (r->empty()) return Fail(CollectionNotFound(collection_id));
    std::vector<SuggestedQuestion> out;
    for (int i = 0; i < r->rows(); ++i) {
      if (!r->IsNull(i, 1)) out.push_back(SuggestedQuestion{r->Text(i, 1), r->Text(i, 0), r->Text(i, 2), r->Int(i, 3)});
    }
    return out;
  });
}

}  // namespace modulo::store::postgres
