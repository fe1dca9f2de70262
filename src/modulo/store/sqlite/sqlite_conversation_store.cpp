#include "modulo/store/sqlite/sqlite_conversation_store.h"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "modulo/core/clock.h"
#include "modulo/core/request_id.h"

namespace modulo::store::sqlite {
namespace {

constexpr const char* kSessionColumns =
    "id, user_id, collection_id, name, status, is_pinned, context_window_size, max_messages, metadata, "
    "created_at, updated_at, message_count";

ConversationSession ReadSession(const Statement& s) {
  ConversationSession x;
  x.id = s.Text(0);
  x.user_id = s.Text(1);
  x.collection_id = s.Text(2);
  x.name = s.Text(3);
  x.status = s.Text(4);
  x.is_pinned = s.Int(5) != 0;
  x.context_window_size = static_cast<int>(s.Int(6));
  x.max_messages = static_cast<int>(s.Int(7));
  x.metadata = s.Text(8);
  x.created_at_ms = s.Int(9);
  x.updated_at_ms = s.Int(10);
  x.message_count = s.Int(11);
  return x;
}

// Message columns as read through the alias m, from column `first` on.
constexpr const char* kMessageColumns =
    "m.id, m.session_id, m.seq, m.role, m.message_type, m.content, m.metadata, m.prompt_tokens, "
    "m.completion_tokens, m.token_count, m.execution_time, m.created_at";

ConversationMessage ReadMessage(const Statement& s, int first) {
  ConversationMessage m;
  m.id = s.Text(first);
  m.session_id = s.Text(first + 1);
  m.seq = s.Int(first + 2);
  m.role = s.Text(first + 3);
  m.message_type = s.Text(first + 4);
  m.content = s.Text(first + 5);
  m.metadata = s.Text(first + 6);
  m.prompt_tokens = s.Int(first + 7);
  m.completion_tokens = s.Int(first + 8);
  m.token_count = s.Int(first + 9);
  m.execution_time = s.Double(first + 10);
  m.created_at_ms = s.Int(first + 11);
  return m;
}

constexpr const char* kSummaryColumns =
    "x.id, x.session_id, x.summary_text, x.up_to_seq, x.summarized_message_count, x.tokens_saved, x.strategy, "
    "x.metadata, x.created_at";

ConversationSummary ReadSummary(const Statement& s, int first) {
  ConversationSummary x;
  x.id = s.Text(first);
  x.session_id = s.Text(first + 1);
  x.summary_text = s.Text(first + 2);
  x.up_to_seq = s.Int(first + 3);
  x.summarized_message_count = s.Int(first + 4);
  x.tokens_saved = s.Int(first + 5);
  x.strategy = s.Text(first + 6);
  x.metadata = s.Text(first + 7);
  x.created_at_ms = s.Int(first + 8);
  return x;
}

Error SessionNotFound(const std::string& id) { return Error::NotFound("conversation session " + id + " not found"); }
Error CollectionNotFound(const std::string& id) { return Error::NotFound("collection " + id + " not found"); }

Result<ConversationSession> LoadSession(Connection& c, const std::string& id) {
  auto s = c.Prepare(std::string("SELECT ") + kSessionColumns + " FROM conversation_sessions WHERE id = ?");
  if (!s) return Fail(s.error());
  s->Bind(1, id);
  return s->One(ReadSession, SessionNotFound(id));
}

std::int64_t ClampLimit(std::size_t limit) {
  return static_cast<std::int64_t>(
      std::min<std::size_t>(limit, static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max())));
}

// The session's messages with seq > `lower_bound` (an SQL expression over ?2 and the session s),
// oldest first, at most ?3; NotFound when the session does not exist.
Result<std::vector<ConversationMessage>> MessagesAbove(Connection& c, const std::string& lower_bound,
                                                       const std::string& session_id, std::int64_t bound,
                                                       std::size_t limit) {
  auto s = c.Prepare(std::string("SELECT s.id, ") + kMessageColumns +
                     " FROM conversation_sessions s LEFT JOIN conversation_messages m "
                     "ON m.session_id = s.id AND m.seq > " + lower_bound +
                     " WHERE s.id = ?1 ORDER BY m.seq LIMIT ?3");
  if (!s) return Fail(s.error());
  s->Bind(1, session_id).Bind(2, bound).Bind(3, ClampLimit(limit));
  bool found = false;
  std::vector<ConversationMessage> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        found = true;
        if (!row.IsNull(1)) out.push_back(ReadMessage(row, 1));
      });
      !st) {
    return Fail(st.error());
  }
  if (!found) return Fail(SessionNotFound(session_id));
  return out;
}


}  // namespace

// ---------------------------------------------------------------------------------------------
// Sessions

Result<ConversationSession> SqliteConversationStore::CreateSession(const ConversationSession& in) {
  if (auto st = ValidateSession(in); !st) return Fail(st.error());
  ConversationSession x = in;
  if (x.id.empty()) x.id = NewUuid();
  x.created_at_ms = x.updated_at_ms = NowMs();
  x.message_count = 0;
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto owners = c->Prepare("SELECT (SELECT 1 FROM users WHERE id = ?1), (SELECT 1 FROM collections WHERE id = ?2)");
  if (!owners) return Fail(owners.error());
  owners->Bind(1, x.user_id).Bind(2, x.collection_id);
  auto found = owners->One([](const Statement& s) { return std::pair{!s.IsNull(0), !s.IsNull(1)}; },
                           Error::Internal("the owner lookup returned no row"));
  if (!found) return Fail(found.error());
  if (!found->first) return Fail(Error::NotFound("user " + x.user_id + " not found"));
  if (!found->second) return Fail(CollectionNotFound(x.collection_id));
  auto s = c->Prepare(std::string("INSERT INTO conversation_sessions (") + kSessionColumns +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)");
  if (!s) return Fail(s.error());
  auto st = s->Bind(1, x.id)
                .Bind(2, x.user_id)
                .Bind(3, x.collection_id)
                .Bind(4, x.name)
                .Bind(5, x.status)
                .Bind(6, x.is_pinned ? 1 : 0)
                .Bind(7, x.context_window_size)
                .Bind(8, x.max_messages)
                .Bind(9, x.metadata)
                .Bind(10, x.created_at_ms)
                .Bind(11, x.updated_at_ms)
                .Run();
  if (!st) {
    if (st.error().code() == ErrorCode::kAlreadyExists) {
      return Fail(Error::AlreadyExists("conversation session " + x.id + " already exists"));
    }
    return Fail(st.error());
  }
  if (auto cst = tx->Commit(); !cst) return Fail(cst.error());
  return x;
}

Result<ConversationSession> SqliteConversationStore::GetSession(const std::string& id) {
  auto c = db_.Acquire();
  return LoadSession(*c, id);
}

Result<std::vector<ConversationSession>> SqliteConversationStore::ListSessions(const SessionFilter& f) {
  if (f.user_id.empty()) return Fail(Error::InvalidArgument("user_id must not be empty"));
  std::vector<ConversationSession> out;
  if (f.limit == 0) return out;
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kSessionColumns +
                      " FROM conversation_sessions WHERE user_id = ?1 AND (?2 IS NULL OR collection_id = ?2) "
                      "AND (?3 OR status = 'active') ORDER BY is_pinned DESC, updated_at DESC, id LIMIT ?4 OFFSET ?5");
  if (!s) return Fail(s.error());
  s->Bind(1, f.user_id)
      .Bind(2, f.collection_id)
      .Bind(3, f.include_archived ? 1 : 0)
      .Bind(4, ClampLimit(f.limit))
      .Bind(5, ClampLimit(f.offset));
  if (auto st = s->ForEachRow([&](const Statement& row) { out.push_back(ReadSession(row)); }); !st) {
    return Fail(st.error());
  }
  return out;
}

Result<ConversationSession> SqliteConversationStore::UpdateSession(const ConversationSession& in) {
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto x = LoadSession(*c, in.id);
  if (!x) return x;
  x->name = in.name;
  x->status = in.status;
  x->is_pinned = in.is_pinned;
  x->context_window_size = in.context_window_size;
  x->max_messages = in.max_messages;
  x->metadata = in.metadata;
  x->updated_at_ms = std::max(x->updated_at_ms, NowMs());
  if (auto st = ValidateSession(*x); !st) return Fail(st.error());
  auto s = c->Prepare(
      "UPDATE conversation_sessions SET name = ?, status = ?, is_pinned = ?, context_window_size = ?, "
      "max_messages = ?, metadata = ?, updated_at = ? WHERE id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, x->name)
                    .Bind(2, x->status)
                    .Bind(3, x->is_pinned ? 1 : 0)
                    .Bind(4, x->context_window_size)
                    .Bind(5, x->max_messages)
                    .Bind(6, x->metadata)
                    .Bind(7, x->updated_at_ms)
                    .Bind(8, x->id)
                    .Run();
      !st) {
    return Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return x;
}

Status SqliteConversationStore::DeleteSession(const std::string& id) {
  auto c = db_.Acquire();
  // Messages and summaries go with the session (ON DELETE CASCADE).
  auto s = c->Prepare("DELETE FROM conversation_sessions WHERE id = ?");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, id).Run(); !st) return st;
  if (c->Changes() == 0) return Fail(SessionNotFound(id));
  return {};
}

// ---------------------------------------------------------------------------------------------
// Messages

Result<ConversationMessage> SqliteConversationStore::AppendMessage(const ConversationMessage& in) {
  if (auto st = ValidateMessage(in); !st) return Fail(st.error());
  ConversationMessage m = in;
  m.id = NewUuid();
  auto c = db_.Acquire();
  // BEGIN IMMEDIATE: no other writer between taking the seq and inserting the message.
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto bump = c->Prepare(
      "UPDATE conversation_sessions SET message_count = message_count + 1, updated_at = MAX(updated_at, ?) "
      "WHERE id = ? RETURNING message_count, updated_at");
  if (!bump) return Fail(bump.error());
  bump->Bind(1, NowMs()).Bind(2, m.session_id);
  auto taken = bump->One([](const Statement& s) { return std::pair{s.Int(0), s.Int(1)}; },
                         SessionNotFound(m.session_id));
  if (!taken) return Fail(taken.error());
  m.seq = taken->first;
  m.created_at_ms = taken->second;
  auto s = c->Prepare(
      "INSERT INTO conversation_messages (id, session_id, seq, role, message_type, content, metadata, prompt_tokens, "
      "completion_tokens, token_count, execution_time, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, m.id)
                    .Bind(2, m.session_id)
                    .Bind(3, m.seq)
                    .Bind(4, m.role)
                    .Bind(5, m.message_type)
                    .Bind(6, m.content)
                    .Bind(7, m.metadata)
                    .Bind(8, m.prompt_tokens)
                    .Bind(9, m.completion_tokens)
                    .Bind(10, m.token_count)
                    .Bind(11, m.execution_time)
                    .Bind(12, m.created_at_ms)
                    .Run();
      !st) {
    return Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return m;
}

Result<std::vector<ConversationMessage>> SqliteConversationStore::ListMessages(const std::string& session_id,
                                                                               std::int64_t after_seq,
                                                                               std::size_t limit) {
  if (limit == 0) return std::vector<ConversationMessage>{};
  auto c = db_.Acquire();
  return MessagesAbove(*c, "?2", session_id, after_seq, limit);
}

Result<std::vector<ConversationMessage>> SqliteConversationStore::RecentMessages(const std::string& session_id,
                                                                                 std::size_t n) {
  if (n == 0) return std::vector<ConversationMessage>{};
  auto c = db_.Acquire();
  // Seqs are 1..message_count without gaps: the last n are those above message_count - n.
  return MessagesAbove(*c, "s.message_count - ?2", session_id, ClampLimit(n), n);
}

// ---------------------------------------------------------------------------------------------
// Summaries

Result<ConversationSummary> SqliteConversationStore::AddSummary(const ConversationSummary& in) {
  if (auto st = ValidateSummary(in); !st) return Fail(st.error());
  ConversationSummary x = in;
  x.id = NewUuid();
  x.created_at_ms = NowMs();
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto session = LoadSession(*c, x.session_id);
  if (!session) return Fail(session.error());
  if (x.up_to_seq > session->message_count) {
    return Fail(Error::InvalidArgument("up_to_seq " + std::to_string(x.up_to_seq) + " is past the session's " +
                                       std::to_string(session->message_count) + " messages"));
  }
  auto s = c->Prepare(
      "INSERT INTO conversation_summaries (id, session_id, summary_text, up_to_seq, summarized_message_count, "
      "tokens_saved, strategy, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  if (!s) return Fail(s.error());
  if (auto st = s->Bind(1, x.id)
                    .Bind(2, x.session_id)
                    .Bind(3, x.summary_text)
                    .Bind(4, x.up_to_seq)
                    .Bind(5, x.summarized_message_count)
                    .Bind(6, x.tokens_saved)
                    .Bind(7, x.strategy)
                    .Bind(8, x.metadata)
                    .Bind(9, x.created_at_ms)
                    .Run();
      !st) {
    return Fail(st.error());
  }
  if (auto st = tx->Commit(); !st) return Fail(st.error());
  return x;
}

Result<ConversationSummary> SqliteConversationStore::LatestSummary(const std::string& session_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT ") + kSummaryColumns +
                      " FROM conversation_summaries x WHERE x.session_id = ? "
                      "ORDER BY x.up_to_seq DESC, x.created_at DESC, x.id DESC LIMIT 1");
  if (!s) return Fail(s.error());
  s->Bind(1, session_id);
  return s->One([](const Statement& row) { return ReadSummary(row, 0); },
                Error::NotFound("conversation session " + session_id + " has no summary"));
}

Result<std::vector<ConversationSummary>> SqliteConversationStore::ListSummaries(const std::string& session_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(std::string("SELECT s.id, ") + kSummaryColumns +
                      " FROM conversation_sessions s LEFT JOIN conversation_summaries x ON x.session_id = s.id "
                      "WHERE s.id = ? ORDER BY x.up_to_seq, x.created_at, x.id");
  if (!s) return Fail(s.error());
  s->Bind(1, session_id);
  bool found = false;
  std::vector<ConversationSummary> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        found = true;
        if (!row.IsNull(1)) out.push_back(ReadSummary(row, 1));
      });
      !st) {
    return Fail(st.error());
  }
  if (!found) return Fail(SessionNotFound(session_id));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Suggested questions

Status SqliteConversationStore::ReplaceSuggestedQuestions(const std::string& collection_id,
                                                          const std::vector<std::string>& questions) {
  if (std::ranges::any_of(questions, [](const std::string& q) { return q.empty(); })) {
    return Fail(Error::InvalidArgument("questions must not be empty"));
  }
  auto c = db_.Acquire();
  auto tx = Transaction::Begin(*c);
  if (!tx) return Fail(tx.error());
  auto exists = c->Prepare("SELECT 1 FROM collections WHERE id = ?");
  if (!exists) return Fail(exists.error());
  exists->Bind(1, collection_id);
  if (auto row = exists->One([](const Statement&) { return true; }, CollectionNotFound(collection_id)); !row) {
    return Fail(row.error());
  }
  auto d = c->Prepare("DELETE FROM suggested_questions WHERE collection_id = ?");
  if (!d) return Fail(d.error());
  if (auto st = d->Bind(1, collection_id).Run(); !st) return st;
  const std::int64_t now = NowMs();
  for (std::size_t i = 0; i < questions.size(); ++i) {
    auto s = c->Prepare(
        "INSERT INTO suggested_questions (id, collection_id, position, question, created_at) VALUES (?, ?, ?, ?, ?)");
    if (!s) return Fail(s.error());
    if (auto st = s->Bind(1, NewUuid())
                      .Bind(2, collection_id)
                      .Bind(3, static_cast<std::int64_t>(i))
                      .Bind(4, questions[i])
                      .Bind(5, now)
                      .Run();
        !st) {
      return st;
    }
  }
  return tx->Commit();
}

Result<std::vector<SuggestedQuestion>> SqliteConversationStore::ListSuggestedQuestions(
    const std::string& collection_id) {
  auto c = db_.Acquire();
  auto s = c->Prepare(
      "SELECT c.id, q.id, q.question, q.created_at FROM collections c "
      "LEFT JOIN suggested_questions q ON q.collection_id = c.id WHERE c.id = ? ORDER BY q.position");
  if (!s) return Fail(s.error());
  s->Bind(1, collection_id);
  bool found = false;
  std::vector<SuggestedQuestion> out;
  if (auto st = s->ForEachRow([&](const Statement& row) {
        found = true;
        if (row.IsNull(1)) return;
        out.push_back(SuggestedQuestion{row.Text(1), row.Text(0), row.Text(2), row.Int(3)});
      });
      !st) {
    return Fail(st.error());
  }
  if (!found) return Fail(CollectionNotFound(collection_id));
  return out;
}

}  // namespace modulo::store::sqlite
