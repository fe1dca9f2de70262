#include "modulo/search/postgres/pg_sync_checkpoints.h"

namespace modulo::search {

using store::postgres::Connection;
using store::postgres::Params;

Result<std::optional<SyncPosition>> PgSyncCheckpoints::Acquire(const std::string& collection_id,
                                                               const std::string& owner,
                                                               std::chrono::milliseconds ttl) {
  return db_.WithWrite([&](Connection& c) -> Result<std::optional<SyncPosition>> {
    // Taken when free, expired or already ours; the row is created on first use.
    auto rows = c.Exec(
        "INSERT INTO index_sync_positions (collection_id, lease_owner, lease_until) "
        "VALUES ($1, $2, now() + $3::bigint * interval '1 millisecond') "
        "ON CONFLICT (collection_id) DO UPDATE SET lease_owner = EXCLUDED.lease_owner, "
        "lease_until = EXCLUDED.lease_until "
        "WHERE index_sync_positions.lease_owner IS NULL OR index_sync_positions.lease_until < now() "
        "OR index_sync_positions.lease_owner = EXCLUDED.lease_owner "
        "RETURNING generation, version, last_chunk_id, last_removal_seq",
        Params().Add(collection_id).Add(owner).Add(static_cast<std::int64_t>(ttl.count())));
    if (!rows) return Fail(std::move(rows.error()).Wrap("taking the index replay lease"));
    if (rows->empty()) return std::optional<SyncPosition>();
    SyncPosition p;
    p.generation = rows->Int(0, 0);
    p.version = rows->Int(0, 1);
    p.last_chunk_id = rows->Int(0, 2);
    p.last_removal_seq = rows->Int(0, 3);
    return std::optional<SyncPosition>(p);
  });
}

Status PgSyncCheckpoints::Save(const std::string& collection_id, const std::string& owner,
                               const SyncPosition& position, std::chrono::milliseconds ttl) {
  return db_.WithWrite([&](Connection& c) -> Status {
    auto rows = c.Exec(
        "UPDATE index_sync_positions SET generation = $3::bigint, version = $4::bigint, "
        "last_chunk_id = $5::bigint, last_removal_seq = $6::bigint, "
        "lease_until = now() + $7::bigint * interval '1 millisecond' "
        "WHERE collection_id = $1 AND lease_owner = $2",
        Params()
            .Add(collection_id)
            .Add(owner)
            .Add(position.generation)
            .Add(position.version)
            .Add(position.last_chunk_id)
            .Add(position.last_removal_seq)
            .Add(static_cast<std::int64_t>(ttl.count())));
    if (!rows) return Fail(std::move(rows.error()).Wrap("saving the index replay position"));
    if (rows->affected() == 0) {
      return Fail(Error::Conflict("the index replay lease of collection " + collection_id + " was lost"));
    }
    return {};
  });
}

Status PgSyncCheckpoints::Release(const std::string& collection_id, const std::string& owner) {
  return db_.WithWrite([&](Connection& c) -> Status {
    auto rows = c.Exec(
        "UPDATE index_sync_positions SET lease_owner = NULL, lease_until = NULL "
        "WHERE collection_id = $1 AND lease_owner = $2",
        Params().Add(collection_id).Add(owner));
    if (!rows) return Fail(std::move(rows.error()).Wrap("releasing the index replay lease"));
    return {};
  });
}

}  // namespace modulo::search
