// PgSyncCheckpoints: SyncCheckpoints in the PostgreSQL store's `index_sync_positions` table (one
// row per collection, removed with it). The lease is a (lease_owner, lease_until) pair taken and
// renewed by single conditional statements, so two processes never both hold it; the database's
// clock decides expiry, so the processes' clocks need not agree.
//
// Thread-safety: all methods are thread-safe (each runs on a pooled connection).
#pragma once

#include "modulo/search/sync_checkpoints.h"
#include "modulo/store/postgres/database.h"

namespace modulo::search {

class PgSyncCheckpoints final : public SyncCheckpoints {
 public:
  // `db` must outlive this object; its schema has index_sync_positions (Database::Open migrates).
  explicit PgSyncCheckpoints(store::postgres::Database& db) : db_(db) {}

  Result<std::optional<SyncPosition>> Acquire(const std::string& collection_id, const std::string& owner,
                                              std::chrono::milliseconds ttl) override;
  Status Save(const std::string& collection_id, const std::string& owner, const SyncPosition& position,
              std::chrono::milliseconds ttl) override;
  Status Release(const std::string& collection_id, const std::string& owner) override;

 private:
  store::postgres::Database& db_;
};

}  // namespace modulo::search
