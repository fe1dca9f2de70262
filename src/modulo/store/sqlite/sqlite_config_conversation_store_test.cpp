// SqliteUserConfigStore and SqliteConversationStore: their contracts, each over a fresh database
// shared with the identity and metadata stores (users and collections they refer to).
#include <gtest/gtest.h>

#include <filesystem>
#include <stdexcept>

#include "modulo/core/request_id.h"
#include "modulo/store/conversation_store_contract.h"
#include "modulo/store/sqlite/sqlite_conversation_store.h"
#include "modulo/store/sqlite/sqlite_identity_store.h"
#include "modulo/store/sqlite/sqlite_metadata_store.h"
#include "modulo/store/sqlite/sqlite_user_config_store.h"
#include "modulo/store/user_config_store_contract.h"

namespace modulo::store::sqlite {
namespace {

namespace fs = std::filesystem;

// Every store of one temporary database; the files go with the last store handed out.
struct Stores {
  explicit Stores(std::unique_ptr<Database> d) : db(std::move(d)) {}
  ~Stores() {
    const std::string path = db->path();
    configs.reset();
    conversations.reset();
    identity.reset();
    metadata.reset();
    db.reset();
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix, ec);
  }
  std::unique_ptr<Database> db;
  std::unique_ptr<SqliteUserConfigStore> configs = std::make_unique<SqliteUserConfigStore>(*db);
  std::unique_ptr<SqliteConversationStore> conversations = std::make_unique<SqliteConversationStore>(*db);
  std::unique_ptr<SqliteIdentityStore> identity = std::make_unique<SqliteIdentityStore>(*db);
  std::unique_ptr<SqliteMetadataStore> metadata = std::make_unique<SqliteMetadataStore>(*db);
};

std::shared_ptr<Stores> OpenStores() {
  const fs::path path = fs::temp_directory_path() / ("modulo_config_conversation_test_" + NewRequestId() + ".db");
  auto db = Database::Open(path.string(), 4);
  if (!db) throw std::runtime_error(db.error().ToString());
  return std::make_shared<Stores>(std::move(*db));
}

UserConfigStoreFixture MakeSqliteConfigStores() {
  auto s = OpenStores();
  return {std::shared_ptr<UserConfigStore>(s, s->configs.get()), std::shared_ptr<IdentityStore>(s, s->identity.get())};
}

ConversationStoreFixture MakeSqliteConversationStores() {
  auto s = OpenStores();
  return {std::shared_ptr<ConversationStore>(s, s->conversations.get()),
          std::shared_ptr<IdentityStore>(s, s->identity.get()), std::shared_ptr<MetadataStore>(s, s->metadata.get())};
}

INSTANTIATE_TEST_SUITE_P(Sqlite, UserConfigStoreContract, ::testing::Values(&MakeSqliteConfigStores));
INSTANTIATE_TEST_SUITE_P(Sqlite, ConversationStoreContract, ::testing::Values(&MakeSqliteConversationStores));

// The schema itself keeps one default per scope, whatever writes to it.
TEST(SqliteConfigConversationSchemaTest, OneDefaultPerScopeIsEnforcedByTheDatabase) {
  auto s = OpenStores();
  User u;
  u.name = "alice";
  auto alice = s->identity->CreateUser(u);
  ASSERT_TRUE(alice) << alice.error().ToString();
  auto c = s->db->Acquire();
  const std::string insert_config =
      "INSERT INTO user_configs (id, user_id, kind, name, scope, is_default, created_at, updated_at) "
      "VALUES (?, ?, 'pipeline', ?, '', 1, 0, 0)";
  auto first = c->Prepare(insert_config);
  ASSERT_TRUE(first);
  ASSERT_TRUE(first->Bind(1, "a").Bind(2, alice->id).Bind(3, "a").Run());
  auto second = c->Prepare(insert_config);
  ASSERT_TRUE(second);
  EXPECT_FALSE(second->Bind(1, "b").Bind(2, alice->id).Bind(3, "b").Run()) << "a second default of the scope";
}

}  // namespace
}  // namespace modulo::store::sqlite
