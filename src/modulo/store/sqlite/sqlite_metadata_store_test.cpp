#include "modulo/store/sqlite/sqlite_metadata_store.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "modulo/core/request_id.h"
#include "modulo/store/metadata_store_contract.h"

namespace modulo::store::sqlite {
namespace {

namespace fs = std::filesystem;

fs::path TempDb() {
  auto dir = fs::temp_directory_path() / ("modulo_store_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / (NewRequestId() + ".db");
}

std::shared_ptr<MetadataStore> MakeSqliteStore() {
  auto db = Database::Open(TempDb().string(), 4);
  EXPECT_TRUE(db) << db.error().ToString();
  std::shared_ptr<Database> shared(std::move(*db));
  auto* store = new SqliteMetadataStore(*shared);
  // The store keeps its database alive.
  return std::shared_ptr<MetadataStore>(store, [shared](MetadataStore* s) { delete s; });
}

INSTANTIATE_TEST_SUITE_P(Sqlite, MetadataStoreContract, ::testing::Values(&MakeSqliteStore));

TEST(SqliteDatabaseTest, MigratesOnceAndRefusesNewerSchemas) {
  const auto path = TempDb().string();
  {
    auto db = Database::Open(path, 2);
    ASSERT_TRUE(db);
    EXPECT_EQ((*db)->schema_version(), Database::kLatestSchema);
  }
  {
    auto db = Database::Open(path, 1);  // reopening applies nothing twice
    ASSERT_TRUE(db) << db.error().ToString();
    auto lease = (*db)->Acquire();
    ASSERT_TRUE(lease->Exec("INSERT INTO schema_migrations VALUES (999, 0)"));
  }
  auto newer = Database::Open(path, 1);
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message().find("newer"), std::string::npos);
}

TEST(SqliteDatabaseTest, UnwritableLocationIsAClearError) {
  auto db = Database::Open("/proc/definitely/not/here.db", 1);
  ASSERT_FALSE(db);
  EXPECT_NE(db.error().message().find("/proc/definitely/not/here.db"), std::string::npos);
}

}  // namespace
}  // namespace modulo::store::sqlite
