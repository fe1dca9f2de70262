// PostgresUserConfigStore: the scale-out UserConfigStore over PostgreSQL (table user_configs of
// schema step 6 in database.cpp). Same semantics as SqliteUserConfigStore, and the same contract
// (user_config_store_contract.h):
// - a model's parent must be an llm_provider of the same user; Create keeps a given id;
// - Update validates the stored record with the replaced fields applied (r.parent_id may be
//   empty); Update and SetDefault move updated_at, clearing another record's flag does not;
// - List of an unknown user, or of a parent that is not the user's, is empty.
//
// Defaults: Create, Update and SetDefault first take pg_advisory_xact_lock(19794,
// hashtext(user_id)), before any row lock, so two transactions making different records the
// default of one scope run one after the other and the partial unique index (one default per
// scope) never refuses either.
//
// Reads and replicas (database.h): Get, List and GetDefault may read a replica; a NotFound or
// an empty List there is asked again on the primary (another server may have just written the
// rows: a user adds a provider and a model on one server and searches on the next one).
// Everything inside writes reads the primary.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include "modulo/store/postgres/database.h"
#include "modulo/store/user_config_store.h"

namespace modulo::store::postgres {

class PostgresUserConfigStore final : public UserConfigStore {
 public:
  explicit PostgresUserConfigStore(Database& db) : db_(db) {}

  Result<ConfigRecord> Create(const ConfigRecord& r) override;
  Result<ConfigRecord> Get(const std::string& user_id, ConfigKind kind, const std::string& id) override;
  Result<std::vector<ConfigRecord>> List(const std::string& user_id, ConfigKind kind,
                                         const std::optional<std::string>& parent_id = std::nullopt) override;
  Result<ConfigRecord> Update(const ConfigRecord& r, bool replace_secret) override;
  Status Delete(const std::string& user_id, ConfigKind kind, const std::string& id) override;
  Result<ConfigRecord> SetDefault(const std::string& user_id, ConfigKind kind, const std::string& id) override;
  Result<ConfigRecord> GetDefault(const std::string& user_id, ConfigKind kind, const std::string& scope) override;

 private:
  Database& db_;
};

}  // namespace modulo::store::postgres
