// PostgresUserConfigStore and PostgresConversationStore against a real PostgreSQL server: their
// contracts, each over a fresh database shared with the identity and metadata stores.
#include <gtest/gtest.h>

#include <stdexcept>

#include "modulo/store/conversation_store_contract.h"
#include "modulo/store/postgres/pg_conversation_store.h"
#include "modulo/store/postgres/pg_identity_store.h"
#include "modulo/store/postgres/pg_metadata_store.h"
#include "modulo/store/postgres/pg_test_server.h"
#include "modulo/store/postgres/pg_user_config_store.h"
#include "modulo/store/user_config_store_contract.h"

namespace modulo::store::postgres {
namespace {

// Every store of one new database; the database is dropped with the last store handed out.
struct Stores {
  Stores(std::unique_ptr<Database> d, std::string u) : db(std::move(d)), url(std::move(u)) {}
  ~Stores() {
    configs.reset();
    conversations.reset();
    identity.reset();
    metadata.reset();
    db.reset();
    SharedPgTestServer().DropDatabase(url);
  }
  std::unique_ptr<Database> db;
  std::string url;
  std::unique_ptr<PostgresUserConfigStore> configs = std::make_unique<PostgresUserConfigStore>(*db);
  std::unique_ptr<PostgresConversationStore> conversations = std::make_unique<PostgresConversationStore>(*db);
  std::unique_ptr<PostgresIdentityStore> identity = std::make_unique<PostgresIdentityStore>(*db);
  std::unique_ptr<PostgresMetadataStore> metadata = std::make_unique<PostgresMetadataStore>(*db);
};

std::shared_ptr<Stores> OpenStores() {
  auto url = SharedPgTestServer().CreateDatabase();
  if (!url) throw std::runtime_error(url.error().ToString());
  DatabaseOptions o;
  o.primary_url = *url;
  o.pool.size = 10;
  o.pool.max_overflow = 4;
  auto db = Database::Open(o);
  if (!db) throw std::runtime_error(db.error().ToString());
  return std::make_shared<Stores>(std::move(*db), *url);
}

UserConfigStoreFixture MakePostgresConfigStores() {
  auto s = OpenStores();
  return {std::shared_ptr<UserConfigStore>(s, s->configs.get()), std::shared_ptr<IdentityStore>(s, s->identity.get())};
}

ConversationStoreFixture MakePostgresConversationStores() {
  auto s = OpenStores();
  return {std::shared_ptr<ConversationStore>(s, s->conversations.get()),
          std::shared_ptr<IdentityStore>(s, s->identity.get()), std::shared_ptr<MetadataStore>(s, s->metadata.get())};
}

INSTANTIATE_TEST_SUITE_P(Postgres, UserConfigStoreContract, ::testing::Values(&MakePostgresConfigStores));
INSTANTIATE_TEST_SUITE_P(Postgres, ConversationStoreContract, ::testing::Values(&MakePostgresConversationStores));

}  // namespace
}  // namespace modulo::store::postgres
