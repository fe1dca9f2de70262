// SqliteUserConfigStore: the embedded UserConfigStore over the data directory's SQLite database
// (table user_configs of migration 6).
//
// Choices this implementation makes where user_config_store.h leaves room:
// - A model's parent must be an llm_provider of the same user (NotFound otherwise).
// - Create keeps a given id; an id already taken, by any user's record, is AlreadyExists.
// - Update reads the stored record, applies the replaced fields and validates the result, so
//   r.parent_id may be left empty; SetDefault and Update move updated_at, clearing another
//   record's flag does not.
// - List of an unknown user, or of a parent that is not the user's, is empty; a record has no
//   parent when parent_id is NULL in the table (an empty parent_id in the record).
// - Every write is one BEGIN IMMEDIATE transaction, so clearing the other defaults and setting
//   the new one never interleave with another writer.
//
// Thread-safety: all methods are thread-safe (connections come from the Database pool).
#pragma once

#include "modulo/store/sqlite/database.h"
#include "modulo/store/user_config_store.h"

namespace modulo::store::sqlite {

class SqliteUserConfigStore final : public UserConfigStore {
 public:
  explicit SqliteUserConfigStore(Database& db) : db_(db) {}

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

}  // namespace modulo::store::sqlite
