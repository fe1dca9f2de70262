#include "modulo/store/postgres/database.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include "modulo/core/clock.h"
#include "modulo/core/log.h"

namespace modulo::store::postgres {
namespace {

// Advisory lock keys (two-int form: namespace 0x4d4f = "MO", then the purpose).
constexpr const char* kMigrationLock = "SELECT pg_advisory_lock(19791, 1)";
constexpr const char* kMigrationUnlock = "SELECT pg_advisory_unlock(19791, 1)";

// Each entry upgrades the schema by one version. Never edit an entry once released: add one.
// Times are milliseconds since the epoch (bigint), as in the embedded schema, so both stores
// return identical records.
constexpr const char* kMigrations[] = {
    // 1: collections, files, chunks and the change feed's removals
    R"sql(
CREATE TABLE collections (
  id text PRIMARY KEY,
  name text NOT NULL,
  description text NOT NULL DEFAULT '',
  owner_id text NOT NULL DEFAULT '',
  owner_type text NOT NULL DEFAULT 'user' CHECK (owner_type IN ('user', 'team')),
  status text NOT NULL CHECK (status IN ('created', 'processing', 'completed', 'error')),
  is_private boolean NOT NULL DEFAULT true,
  settings text NOT NULL DEFAULT '{}',
  embedding_model text NOT NULL DEFAULT '',
  generation bigint NOT NULL DEFAULT 1,
  next_generation bigint NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 1,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  CONSTRAINT collections_owner_name UNIQUE (owner_id, name)
);
CREATE INDEX collections_by_owner ON collections (owner_type, owner_id);
CREATE INDEX collections_by_created ON collections (created_at DESC, id);
CREATE TABLE files (
  id text PRIMARY KEY,
  collection_id text NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  filename text NOT NULL,
  size_bytes bigint NOT NULL,
  content_hash text NOT NULL,
  mime_type text NOT NULL DEFAULT '',
  format text NOT NULL DEFAULT '',
  status text NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
  chunk_count bigint NOT NULL DEFAULT 0,
  page_count bigint NOT NULL DEFAULT 0,
  error text NOT NULL DEFAULT '',
  warnings text NOT NULL DEFAULT '[]',
  storage_key text NOT NULL,
  task_id text NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  CONSTRAINT files_collection_hash UNIQUE (collection_id, content_hash)
);
CREATE INDEX files_by_collection ON files (collection_id, created_at);
CREATE INDEX files_by_status ON files (status, created_at);
CREATE TABLE chunks (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  collection_id text NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  file_id text NOT NULL REFERENCES files (id) ON DELETE CASCADE,
  generation bigint NOT NULL,
  chunk_number integer NOT NULL,
  text text NOT NULL,
  page_number integer NOT NULL DEFAULT 0,
  section_path text NOT NULL DEFAULT '',
  char_start bigint NOT NULL DEFAULT 0,
  char_end bigint NOT NULL DEFAULT 0,
  token_count integer NOT NULL DEFAULT 0,
  parent_number integer,
  is_parent boolean NOT NULL DEFAULT false,
  embedding bytea,
  CONSTRAINT chunks_file_generation_number UNIQUE (file_id, generation, chunk_number)
);
CREATE INDEX chunks_by_collection ON chunks (collection_id, generation, id);
CREATE TABLE chunk_tombstones (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  collection_id text NOT NULL,
  generation bigint NOT NULL,
  chunk_id bigint NOT NULL
);
CREATE INDEX chunk_tombstones_by_collection ON chunk_tombstones (collection_id, generation, seq);
-- Every chunk that leaves, whatever removed it (a DELETE or a cascade), leaves a tombstone.
CREATE FUNCTION chunks_tombstone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO chunk_tombstones (collection_id, generation, chunk_id)
  SELECT collection_id, generation, id FROM gone ORDER BY id;
  RETURN NULL;
END
$$;
CREATE TRIGGER chunks_tombstone AFTER DELETE ON chunks REFERENCING OLD TABLE AS gone
  FOR EACH STATEMENT EXECUTE FUNCTION chunks_tombstone();
)sql",
    // 2: tenancy: users, teams, API keys, sharing, quotas, audit
    R"sql(
CREATE TABLE users (
  id text PRIMARY KEY,
  name text NOT NULL CONSTRAINT users_name UNIQUE,
  email text NOT NULL DEFAULT '',
  role text NOT NULL CHECK (role IN ('admin', 'user')),
  kind text NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'service')),
  external_subject text CONSTRAINT users_external_subject UNIQUE,
  disabled boolean NOT NULL DEFAULT false,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE TABLE teams (
  id text PRIMARY KEY,
  name text NOT NULL CONSTRAINT teams_name UNIQUE,
  description text NOT NULL DEFAULT '',
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE TABLE team_members (
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('member', 'admin')),
  PRIMARY KEY (team_id, user_id)
);
CREATE INDEX team_members_by_user ON team_members (user_id);
CREATE TABLE api_keys (
  key_id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name text NOT NULL DEFAULT '',
  prefix text NOT NULL,
  hash text NOT NULL,
  created_at bigint NOT NULL,
  expires_at bigint NOT NULL DEFAULT 0,
  last_used_at bigint NOT NULL DEFAULT 0,
  revoked_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);
CREATE TABLE collection_grants (
  collection_id text NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  grantee_type text NOT NULL CHECK (grantee_type IN ('user', 'team')),
  grantee_id text NOT NULL,
  level text NOT NULL CHECK (level IN ('read', 'write', 'admin')),
  PRIMARY KEY (collection_id, grantee_type, grantee_id)
);
CREATE INDEX collection_grants_by_grantee ON collection_grants (grantee_type, grantee_id);
CREATE TABLE quota_overrides (
  user_id text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  collections bigint,
  files_per_collection bigint,
  storage_bytes bigint,
  llm_tokens_per_day bigint
);
CREATE TABLE llm_token_usage (
  user_id text NOT NULL,
  day text NOT NULL,
  tokens bigint NOT NULL,
  PRIMARY KEY (user_id, day)
);
CREATE TABLE audit_log (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at bigint NOT NULL,
  principal_id text NOT NULL DEFAULT '',
  action text NOT NULL,
  resource text NOT NULL DEFAULT '',
  outcome text NOT NULL,
  detail text NOT NULL DEFAULT '{}',
  remote_address text NOT NULL DEFAULT ''
);
)sql",
    // 3: keyword search (index/postgres/pg_keyword_index.h): English stemming with accents folded
    R"sql(
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION modulo_english (COPY = english);
ALTER TEXT SEARCH CONFIGURATION modulo_english
  ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part WITH unaccent, english_stem;
CREATE TABLE keyword_chunks (
  collection_id text NOT NULL,
  generation bigint NOT NULL,
  chunk_id bigint NOT NULL,
  file_id text NOT NULL DEFAULT '',
  page_number integer NOT NULL DEFAULT 0,
  body text NOT NULL,
  tsv tsvector GENERATED ALWAYS AS (to_tsvector('modulo_english'::regconfig, body)) STORED,
  doc_len integer NOT NULL DEFAULT 0,
  PRIMARY KEY (collection_id, generation, chunk_id)
);
CREATE INDEX keyword_chunks_tsv ON keyword_chunks USING gin (tsv);
)sql",
    // 4: replay positions of the shared indexes (search/postgres/pg_sync_checkpoints.h), with a
    // lease so one process at a time replays a collection
    R"sql(
CREATE TABLE index_sync_positions (
  collection_id text PRIMARY KEY REFERENCES collections(id) ON DELETE CASCADE,
  generation bigint NOT NULL DEFAULT 0,
  version bigint NOT NULL DEFAULT 0,
  last_chunk_id bigint NOT NULL DEFAULT 0,
  last_removal_seq bigint NOT NULL DEFAULT 0,
  lease_owner text,
  lease_until timestamptz
);
)sql",
    // 5: keyword search without scans (index/postgres/pg_keyword_index.h): one statistics row
    // per (collection, generation) and a postings table, filled from the existing rows; the
    // tsvector column and its GIN index are no longer read
    R"sql(
CREATE TABLE keyword_indexes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  collection_id text NOT NULL,
  generation bigint NOT NULL,
  chunk_count bigint NOT NULL DEFAULT 0,
  total_len bigint NOT NULL DEFAULT 0,
  CONSTRAINT keyword_indexes_key UNIQUE (collection_id, generation)
);
CREATE TABLE keyword_postings (
  index_id bigint NOT NULL,
  chunk_id bigint NOT NULL,
  doc_len integer NOT NULL,
  tf smallint NOT NULL,
  lexeme text COLLATE "C" NOT NULL,
  CONSTRAINT keyword_postings_pkey PRIMARY KEY (index_id, lexeme, chunk_id) INCLUDE (tf, doc_len)
);
CREATE INDEX keyword_postings_by_chunk ON keyword_postings (index_id, chunk_id);
INSERT INTO keyword_indexes (collection_id, generation, chunk_count, total_len)
SELECT collection_id, generation, count(*), COALESCE(sum(doc_len), 0)
FROM keyword_chunks GROUP BY collection_id, generation;
INSERT INTO keyword_postings (index_id, chunk_id, doc_len, tf, lexeme)
SELECT i.id, k.chunk_id, k.doc_len, COALESCE(array_length(t.positions, 1), 1), t.lexeme
FROM keyword_chunks k
JOIN keyword_indexes i ON i.collection_id = k.collection_id AND i.generation = k.generation
CROSS JOIN LATERAL unnest(k.tsv) t;
ALTER TABLE keyword_chunks DROP COLUMN tsv;
ANALYZE keyword_indexes;
ANALYZE keyword_postings;
)sql",
    // 6: per-user answer configuration (user_config_store.h) and conversations
    // (conversation_store.h)
    R"sql(
CREATE TABLE user_configs (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  kind text NOT NULL
    CHECK (kind IN ('llm_provider', 'llm_model', 'llm_parameters', 'prompt_template', 'pipeline')),
  parent_id text REFERENCES user_configs (id) ON DELETE CASCADE,
  name text NOT NULL,
  scope text NOT NULL DEFAULT '',
  is_default boolean NOT NULL DEFAULT false,
  body text NOT NULL DEFAULT '{}',
  secret bytea,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
-- Names are unique per (user, kind, parent); a record without a parent has parent_id NULL.
CREATE UNIQUE INDEX user_configs_name ON user_configs (user_id, kind, COALESCE(parent_id, ''), name);
CREATE UNIQUE INDEX user_configs_default ON user_configs (user_id, kind, scope) WHERE is_default;
CREATE INDEX user_configs_by_user ON user_configs (user_id, kind, created_at, id);
CREATE INDEX user_configs_by_parent ON user_configs (parent_id);
CREATE TABLE conversation_sessions (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  collection_id text NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  name text NOT NULL,
  status text NOT NULL CHECK (status IN ('active', 'archived')),
  is_pinned boolean NOT NULL DEFAULT false,
  context_window_size integer NOT NULL,
  max_messages integer NOT NULL,
  metadata text NOT NULL DEFAULT '{}',
  message_count bigint NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL
);
CREATE INDEX conversation_sessions_by_user ON conversation_sessions (user_id, is_pinned DESC, updated_at DESC);
CREATE INDEX conversation_sessions_by_collection ON conversation_sessions (collection_id);
CREATE TABLE conversation_messages (
  id text PRIMARY KEY,
  session_id text NOT NULL REFERENCES conversation_sessions (id) ON DELETE CASCADE,
  seq bigint NOT NULL,
  role text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
  message_type text NOT NULL
    CHECK (message_type IN ('question', 'answer', 'follow_up', 'clarification', 'error', 'system')),
  content text NOT NULL,
  metadata text NOT NULL DEFAULT '{}',
  prompt_tokens bigint NOT NULL DEFAULT 0,
  completion_tokens bigint NOT NULL DEFAULT 0,
  token_count bigint NOT NULL DEFAULT 0,
  execution_time double precision NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  CONSTRAINT conversation_messages_session_seq UNIQUE (session_id, seq)
);
CREATE TABLE conversation_summaries (
  id text PRIMARY KEY,
  session_id text NOT NULL REFERENCES conversation_sessions (id) ON DELETE CASCADE,
  summary_text text NOT NULL,
  up_to_seq bigint NOT NULL,
  summarized_message_count bigint NOT NULL DEFAULT 0,
  tokens_saved bigint NOT NULL DEFAULT 0,
  strategy text NOT NULL,
  metadata text NOT NULL DEFAULT '{}',
  created_at bigint NOT NULL
);
CREATE INDEX conversation_summaries_by_session ON conversation_summaries (session_id, up_to_seq);
CREATE TABLE suggested_questions (
  id text PRIMARY KEY,
  collection_id text NOT NULL REFERENCES collections (id) ON DELETE CASCADE,
  position integer NOT NULL,
  question text NOT NULL,
  created_at bigint NOT NULL,
  CONSTRAINT suggested_questions_position UNIQUE (collection_id, position)
);
)sql",
};
static_assert(std::size(kMigrations) == Database::kLatestSchema);

Result<int> CurrentVersion(Connection& c) {
  auto r = c.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
  if (!r) return Fail(r.error());
  return static_cast<int>(r->Int(0, 0));
}

// "16/B374D848" -> a comparable number.
std::uint64_t ParseLsn(std::string_view s) {
  const auto slash = s.find('/');
  if (slash == std::string_view::npos) return 0;
  std::uint64_t hi = 0, lo = 0;
  std::from_chars(s.data(), s.data() + slash, hi, 16);
  std::from_chars(s.data() + slash + 1, s.data() + s.size(), lo, 16);
  return (hi << 32) | lo;
}

}  // namespace

std::vector<std::string> SplitUrls(std::string_view list) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(',', start);
    if (end == std::string_view::npos) end = list.size();
    auto part = list.substr(start, end - start);
    while (!part.empty() && (part.front() == ' ' || part.front() == '\t')) part.remove_prefix(1);
    while (!part.empty() && (part.back() == ' ' || part.back() == '\t')) part.remove_suffix(1);
    if (!part.empty()) out.emplace_back(part);
    start = end + 1;
  }
  return out;
}

Result<MigrationOutcome> Migrate(const std::string& url) {
  auto conn = Connection::Open(url);
  if (!conn) return Fail(std::move(conn.error()).Wrap("migrating"));
  Connection& c = **conn;
  // A session lock: held across the per-step transactions, released below or when the
  // connection closes (also when this process dies mid-way).
  if (auto st = c.ExecScript(kMigrationLock); !st) return Fail(std::move(st.error()).Wrap("taking the migration lock"));
  MigrationOutcome out;
  auto run = [&]() -> Status {
    if (auto st = c.ExecScript("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                               "applied_at bigint NOT NULL)");
        !st) {
      return st;
    }
    auto current = CurrentVersion(c);
    if (!current) return Fail(current.error());
    if (*current > Database::kLatestSchema) {
      return Fail(Error::Conflict("database schema version " + std::to_string(*current) +
                                  " is newer than this build knows (" + std::to_string(Database::kLatestSchema) +
                                  "); use a newer modulo"));
    }
    out.version = *current;
    while (out.version < Database::kLatestSchema) {
      auto tx = Transaction::Begin(c);
      if (!tx) return Fail(tx.error());
      if (auto st = c.ExecScript(kMigrations[out.version]); !st) {
        return Fail(std::move(st.error()).Wrap("schema step " + std::to_string(out.version + 1)));
      }
      auto ins = c.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                        Params().Add(out.version + 1).Add(NowMs()));
      if (!ins) return Fail(ins.error());
      if (auto st = tx->Commit(); !st) return st;
      ++out.version;
      ++out.applied;
      log::Info("database schema migrated", {{"version", out.version}});
    }
    return {};
  };
  auto st = run();
  (void)c.ExecScript(kMigrationUnlock);
  if (!st) return Fail(st.error());
  return out;
}

Result<std::unique_ptr<Database>> Database::Open(DatabaseOptions options, metrics::Registry* registry,
                                                 metrics::Gauge* active) {
  if (options.primary_url.empty()) return Fail(Error::InvalidArgument("DATABASE_URL is empty"));
  if (options.pool.size + options.pool.max_overflow == 0) {
    return Fail(Error::InvalidArgument("the database pool must allow at least one connection"));
  }
  auto db = std::unique_ptr<Database>(new Database(std::move(options)));
  const DatabaseOptions& o = db->options_;
  if (registry != nullptr) db->metrics_ = std::make_unique<PoolMetrics>(*registry, active);
  if (o.migrate) {
    auto m = Migrate(o.primary_url);
    if (!m) return Fail(m.error());
    db->schema_version_ = m->version;
  }
  db->primary_ = std::make_unique<Pool>("primary", o.primary_url, o.pool, db->metrics_.get());
  {
    auto lease = db->primary_->Acquire();
    if (!lease) return Fail(lease.error());
    if (!o.migrate) {
      auto v = (*lease)->Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations");
      if (!v) return Fail(std::move(v.error()).Wrap("reading the schema version (run `modulo migrate`)"));
      db->schema_version_ = static_cast<int>(v->Int(0, 0));
    }
  }
  if (db->schema_version_ != kLatestSchema) {
    return Fail(Error::Conflict("database schema version " + std::to_string(db->schema_version_) +
                                " does not match this build's (" + std::to_string(kLatestSchema) +
                                "); run `modulo migrate` with the matching build"));
  }
  for (std::size_t i = 0; i < o.replica_urls.size(); ++i) {
    auto r = std::make_unique<Replica>();
    PoolOptions po = o.pool;
    // A replica that is down must not hold a read up for long: fail fast, fall back.
    po.connection.connect_timeout = std::min(po.connection.connect_timeout, std::chrono::seconds(2));
    po.acquire_timeout = std::min(po.acquire_timeout, std::chrono::milliseconds(2000));
    r->pool = std::make_unique<Pool>("replica-" + std::to_string(i + 1), o.replica_urls[i], po, db->metrics_.get());
    db->replicas_.push_back(std::move(r));
  }
  if (!db->replicas_.empty()) {
    db->CheckReplicas();
    db->checker_ = std::jthread([d = db.get()](std::stop_token stop) { d->CheckerLoop(stop); });
  }
  return db;
}

Database::~Database() {
  if (checker_.joinable()) {
    checker_.request_stop();
    stop_cv_.notify_all();
    checker_.join();
  }
}

void Database::CheckerLoop(std::stop_token stop) {
  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(stop_mu_);
      stop_cv_.wait_for(lock, stop, options_.replica_check_interval, [] { return false; });
    }
    if (stop.stop_requested()) break;
    CheckReplicas();
  }
}

void Database::CheckReplicas() {
  std::lock_guard guard(check_mu_);
  // The epoch first, then the primary's position: every write counted in `epoch` committed
  // at or before `primary_lsn`.
  const std::int64_t epoch = write_epoch_.load(std::memory_order_acquire);
  std::uint64_t primary_lsn = 0;
  {
    auto lease = primary_->Acquire();
    if (lease) {
      auto r = (*lease)->Exec("SELECT pg_current_wal_insert_lsn()::text");
      if (r && !r->empty()) primary_lsn = ParseLsn(r->View(0, 0));
    }
  }
  for (auto& rep : replicas_) {
    auto lease = rep->pool->Acquire();
    if (!lease) {
      rep->up.store(false);
      continue;
    }
    auto r = (*lease)->Exec(
        "SELECT pg_is_in_recovery(), COALESCE(pg_last_wal_replay_lsn()::text, '0/0'), "
        "COALESCE((EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000)::bigint, -1)");
    if (!r || r->empty() || !r->Bool(0, 0)) {
      // Unreachable, or promoted (no longer a standby: its data may have forked).
      rep->up.store(false);
      continue;
    }
    const std::uint64_t replayed = ParseLsn(r->View(0, 1));
    const bool caught_up = primary_lsn != 0 && replayed >= primary_lsn;
    // Behind, with no replayed transaction to date it by: treat as too far behind.
    const std::int64_t measured = r->Int(0, 2);
    rep->lag_ms.store(caught_up ? 0 : measured < 0 ? std::numeric_limits<std::int64_t>::max() : measured);
    // Under a steady stream of writes the replica never reaches the newest position, but it
    // passes the previous round's: that covers the writes counted then.
    if (caught_up) {
      rep->covered_epoch.store(std::max(rep->covered_epoch.load(), epoch));
    } else if (previous_lsn_ != 0 && replayed >= previous_lsn_) {
      rep->covered_epoch.store(std::max(rep->covered_epoch.load(), previous_epoch_));
    }
    rep->up.store(true);
  }
  if (primary_lsn != 0) {
    previous_epoch_ = epoch;
    previous_lsn_ = primary_lsn;
  }
}

bool Database::Usable(const Replica& r) const noexcept {
  return r.up.load() && r.lag_ms.load() <= options_.max_replica_lag.count() &&
         r.covered_epoch.load() >= write_epoch_.load(std::memory_order_acquire);
}

Result<Pool::Lease> Database::Read() {
  const std::size_t n = replicas_.size();
  if (n > 0) {
    const std::size_t start = next_replica_.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
      Replica& r = *replicas_[(start + i) % n];
      if (!Usable(r)) continue;
      auto lease = r.pool->Acquire();
      if (lease) return lease;
      r.up.store(false);
      log::Warn("database replica unavailable, reading from the primary",
                {{"replica", r.pool->name()}, {"error", lease.error().message()}});
    }
  }
  return primary_->Acquire();
}

void Database::MarkDown(const Pool& pool) {
  for (auto& r : replicas_) {
    if (r->pool.get() == &pool) {
      r->up.store(false);
      log::Warn("database replica failed a read, reading from the primary", {{"replica", pool.name()}});
    }
  }
}

std::vector<Pool*> Database::replica_pools() const {
  std::vector<Pool*> out;
  for (const auto& r : replicas_) out.push_back(r->pool.get());
  return out;
}

std::vector<Database::ReplicaState> Database::replicas() const {
  std::vector<ReplicaState> out;
  for (const auto& r : replicas_) {
    out.push_back(ReplicaState{r->pool->name(), r->up.load(), Usable(*r), r->lag_ms.load()});
  }
  return out;
}

}  // namespace modulo::store::postgres
