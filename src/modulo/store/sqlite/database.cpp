#include "modulo/store/sqlite/database.h"

#include <chrono>

#include "modulo/core/clock.h"

namespace modulo::store::sqlite {
namespace {

// Each entry upgrades the schema by one version. Never edit an entry once released: add one.
constexpr const char* kMigrations[] = {
    // 1: collections, files, chunks
    R"sql(
CREATE TABLE collections (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  owner_id TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('created', 'processing', 'completed', 'error')),
  is_private INTEGER NOT NULL DEFAULT 1,
  settings TEXT NOT NULL DEFAULT '{}',
  embedding_model TEXT NOT NULL DEFAULT '',
  generation INTEGER NOT NULL DEFAULT 1,
  version INTEGER NOT NULL DEFAULT 1,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (owner_id, name)
);
CREATE TABLE files (
  id TEXT PRIMARY KEY,
  collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  filename TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  content_hash TEXT NOT NULL,
  mime_type TEXT NOT NULL DEFAULT '',
  format TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
  chunk_count INTEGER NOT NULL DEFAULT 0,
  page_count INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  warnings TEXT NOT NULL DEFAULT '[]',
  storage_key TEXT NOT NULL,
  task_id TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  UNIQUE (collection_id, content_hash)
);
CREATE INDEX files_by_collection ON files (collection_id, created_at);
CREATE TABLE chunks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  file_id TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
  generation INTEGER NOT NULL,
  chunk_number INTEGER NOT NULL,
  text TEXT NOT NULL,
  page_number INTEGER NOT NULL DEFAULT 0,
  section_path TEXT NOT NULL DEFAULT '',
  char_start INTEGER NOT NULL DEFAULT 0,
  char_end INTEGER NOT NULL DEFAULT 0,
  token_count INTEGER NOT NULL DEFAULT 0,
  parent_number INTEGER,
  is_parent INTEGER NOT NULL DEFAULT 0,
  embedding BLOB,
  UNIQUE (file_id, generation, chunk_number)
);
CREATE INDEX chunks_by_collection ON chunks (collection_id, generation, id);
)sql",
    // 2: durable jobs
    R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  collection_id TEXT,
  file_id TEXT,
  payload TEXT NOT NULL DEFAULT '{}',
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'dead')),
  stage TEXT NOT NULL DEFAULT '',
  progress REAL NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  run_after INTEGER NOT NULL,
  lease_owner TEXT NOT NULL DEFAULT '',
  lease_expires INTEGER NOT NULL DEFAULT 0,
  error TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_ready ON jobs (state, run_after);
CREATE INDEX jobs_by_collection ON jobs (collection_id);
)sql",
    // 3: reindexing into a new generation
    R"sql(
ALTER TABLE collections ADD COLUMN next_generation INTEGER NOT NULL DEFAULT 0;
)sql",
    // 4: the removal half of the change feed that in-memory indexes replay
    R"sql(
CREATE TABLE chunk_tombstones (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  collection_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  chunk_id INTEGER NOT NULL
);
CREATE INDEX chunk_tombstones_by_collection ON chunk_tombstones (collection_id, generation, seq);
CREATE TRIGGER chunks_tombstone AFTER DELETE ON chunks BEGIN
  INSERT INTO chunk_tombstones (collection_id, generation, chunk_id)
  VALUES (OLD.collection_id, OLD.generation, OLD.id);
END;
)sql",
    // 5: tenancy: users, teams, API keys, sharing, quotas, audit
    R"sql(
ALTER TABLE collections ADD COLUMN owner_type TEXT NOT NULL DEFAULT 'user' CHECK (owner_type IN ('user', 'team'));
CREATE INDEX collections_by_owner ON collections (owner_type, owner_id);
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  email TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL CHECK (role IN ('admin', 'user')),
  kind TEXT NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'service')),
  external_subject TEXT UNIQUE,
  disabled INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE teams (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE team_members (
  team_id TEXT NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role TEXT NOT NULL CHECK (role IN ('member', 'admin')),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_by_user ON team_members (user_id);
CREATE TABLE api_keys (
  key_id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name TEXT NOT NULL DEFAULT '',
  prefix TEXT NOT NULL,
  hash TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL DEFAULT 0,
  last_used_at INTEGER NOT NULL DEFAULT 0,
  revoked_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);
CREATE TABLE collection_grants (
  collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  grantee_type TEXT NOT NULL CHECK (grantee_type IN ('user', 'team')),
  grantee_id TEXT NOT NULL,
  level TEXT NOT NULL CHECK (level IN ('read', 'write', 'admin')),
  PRIMARY KEY (collection_id, grantee_type, grantee_id)
);
CREATE INDEX collection_grants_by_grantee ON collection_grants (grantee_type, grantee_id);
CREATE TABLE quota_overrides (
  user_id TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  collections INTEGER,
  files_per_collection INTEGER,
  storage_bytes INTEGER,
  llm_tokens_per_day INTEGER
);
CREATE TABLE llm_token_usage (
  user_id TEXT NOT NULL,
  day TEXT NOT NULL,
  tokens INTEGER NOT NULL,
  PRIMARY KEY (user_id, day)
);
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  principal_id TEXT NOT NULL DEFAULT '',
  action TEXT NOT NULL,
  resource TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '{}',
  remote_address TEXT NOT NULL DEFAULT ''
);
)sql",
    // 6: per-user answer configuration (user_config_store.h) and conversations
    // (conversation_store.h)
    R"sql(
CREATE TABLE user_configs (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind TEXT NOT NULL
    CHECK (kind IN ('llm_provider', 'llm_model', 'llm_parameters', 'prompt_template', 'pipeline')),
  parent_id TEXT REFERENCES user_configs (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  scope TEXT NOT NULL DEFAULT '',
  is_default INTEGER NOT NULL DEFAULT 0,
  body TEXT NOT NULL DEFAULT '{}',
  secret BLOB,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
-- Names are unique per (user, kind, parent); a record without a parent has parent_id NULL.
CREATE UNIQUE INDEX user_configs_name ON user_configs (user_id, kind, COALESCE(parent_id, ''), name);
CREATE UNIQUE INDEX user_configs_default ON user_configs (user_id, kind, scope) WHERE is_default;
CREATE INDEX user_configs_by_user ON user_configs (user_id, kind, created_at, id);
CREATE INDEX user_configs_by_parent ON user_configs (parent_id);
CREATE TABLE conversation_sessions (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('active', 'archived')),
  is_pinned INTEGER NOT NULL DEFAULT 0,
  context_window_size INTEGER NOT NULL,
  max_messages INTEGER NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  message_count INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX conversation_sessions_by_user ON conversation_sessions (user_id, is_pinned, updated_at);
CREATE INDEX conversation_sessions_by_collection ON conversation_sessions (collection_id);
CREATE TABLE conversation_messages (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES conversation_sessions (id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
  message_type TEXT NOT NULL
    CHECK (message_type IN ('question', 'answer', 'follow_up', 'clarification', 'error', 'system')),
  content TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  token_count INTEGER NOT NULL DEFAULT 0,
  execution_time REAL NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  UNIQUE (session_id, seq)
);
CREATE TABLE conversation_summaries (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES conversation_sessions (id) ON DELETE CASCADE,
  summary_text TEXT NOT NULL,
  up_to_seq INTEGER NOT NULL,
  summarized_message_count INTEGER NOT NULL DEFAULT 0,
  tokens_saved INTEGER NOT NULL DEFAULT 0,
  strategy TEXT NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  created_at INTEGER NOT NULL
);
CREATE INDEX conversation_summaries_by_session ON conversation_summaries (session_id, up_to_seq);
CREATE TABLE suggested_questions (
  id TEXT PRIMARY KEY,
  collection_id TEXT NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  question TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  UNIQUE (collection_id, position)
);
)sql",
};
static_assert(std::size(kMigrations) == Database::kLatestSchema);


}  // namespace

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, std::size_t pool_size,
                                                 metrics::Gauge* in_use) {
  auto db = std::unique_ptr<Database>(new Database(path, in_use));
  for (std::size_t i = 0; i < std::max<std::size_t>(pool_size, 1); ++i) {
    auto c = Connection::Open(path);
    if (!c) return Fail(c.error());
    if (i == 0) {
      if (auto st = db->Migrate(**c); !st) return Fail(std::move(st.error()).Wrap("migrating " + path));
    }
    db->idle_.push_back(std::move(*c));
  }
  return db;
}

Status Database::Migrate(Connection& c) {
  if (auto st = c.Exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                       "applied_at INTEGER NOT NULL)");
      !st) {
    return st;
  }
  auto q = c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!q) return Fail(q.error());
  if (auto r = q->Step(); !r) return Fail(r.error());
  int current = static_cast<int>(q->Int(0));
  q->Reset();
  if (current > kLatestSchema) {
    return Fail(Error::Conflict("database schema version " + std::to_string(current) +
                                " is newer than this build knows (" + std::to_string(kLatestSchema) +
                                "); use a newer modulo"));
  }
  while (current < kLatestSchema) {
    auto tx = Transaction::Begin(c);
    if (!tx) return Fail(tx.error());
    // Another process may have migrated meanwhile: re-check under the write lock.
    auto again = c.Prepare("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
    if (!again) return Fail(again.error());
    if (auto r = again->Step(); !r) return Fail(r.error());
    current = static_cast<int>(again->Int(0));
    again->Reset();
    if (current >= kLatestSchema) break;
    if (auto st = c.Exec(kMigrations[current]); !st) return st;
    auto ins = c.Prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)");
    if (!ins) return Fail(ins.error());
    if (auto st = ins->Bind(1, current + 1).Bind(2, NowMs()).Run(); !st) return st;
    if (auto st = tx->Commit(); !st) return st;
    ++current;
  }
  schema_version_ = current;
  return {};
}

Database::Lease Database::Acquire() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !idle_.empty(); });
  auto c = std::move(idle_.back());
  idle_.pop_back();
  if (in_use_ != nullptr) in_use_->Inc();
  return Lease(this, std::move(c));
}

void Database::Release(std::unique_ptr<Connection> c) {
  {
    std::lock_guard lock(mu_);
    idle_.push_back(std::move(c));
  }
  if (in_use_ != nullptr) in_use_->Dec();
  cv_.notify_one();
}

Database::Lease::~Lease() {
  if (conn_ != nullptr) db_->Release(std::move(conn_));
}

}  // namespace modulo::store::sqlite
