#include "modulo/store/sqlite/sqlite_identity_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "modulo/core/request_id.h"
#include "modulo/store/identity_store_contract.h"
#include "modulo/store/sqlite/sqlite_metadata_store.h"

namespace modulo::store::sqlite {
namespace {

namespace fs = std::filesystem;

fs::path TempDb() {
  auto dir = fs::temp_directory_path() / ("modulo_identity_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / (NewRequestId() + ".db");
}

IdentityStoreFixture MakeSqliteStores() {
  const fs::path path = TempDb();
  auto db = Database::Open(path.string(), 4);
  EXPECT_TRUE(db) << db.error().ToString();
  if (!db) return {};
  // The last store to go closes the database and removes its files.
  std::shared_ptr<Database> shared(db->release(), [path](Database* d) {
    delete d;
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path.string() + suffix, ec);
    fs::remove(path.parent_path(), ec);  // once empty
  });
  IdentityStoreFixture f;
  // Each store keeps the database alive.
  f.identity = std::shared_ptr<IdentityStore>(new SqliteIdentityStore(*shared),
                                              [shared](IdentityStore* s) { delete s; });
  f.metadata = std::shared_ptr<MetadataStore>(new SqliteMetadataStore(*shared),
                                              [shared](MetadataStore* s) { delete s; });
  f.set_owner_type = [shared](const std::string& collection_id, const std::string& owner_type) {
    auto c = shared->Acquire();
    auto s = c->Prepare("UPDATE collections SET owner_type = ? WHERE id = ?");
    ASSERT_TRUE(s) << s.error().ToString();
    auto st = s->Bind(1, owner_type).Bind(2, collection_id).Run();
    ASSERT_TRUE(st) << st.error().ToString();
  };
  return f;
}

INSTANTIATE_TEST_SUITE_P(Sqlite, IdentityStoreContract, ::testing::Values(&MakeSqliteStores));

}  // namespace
}  // namespace modulo::store::sqlite
