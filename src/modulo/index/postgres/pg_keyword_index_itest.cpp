// PostgresKeywordIndex against a real PostgreSQL server: the KeywordIndex contract.
#include "modulo/index/postgres/pg_keyword_index.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "modulo/index/keyword_index_contract.h"
#include "modulo/store/postgres/pg.h"
#include "modulo/store/postgres/pg_test_server.h"

namespace modulo::index {

// This binary exercises the keyword index only; the vector contract is linked in with it.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(VectorStoreContract);

namespace {

using store::postgres::Database;
using store::postgres::DatabaseOptions;
using store::postgres::SharedPgTestServer;

std::shared_ptr<Database> FreshDatabase() {
  auto url = SharedPgTestServer().CreateDatabase();
  if (!url) throw std::runtime_error(url.error().ToString());
  DatabaseOptions o;
  o.primary_url = *url;
  o.pool.size = 4;
  o.pool.max_overflow = 2;
  auto db = Database::Open(o);
  if (!db) throw std::runtime_error(db.error().ToString());
  return std::shared_ptr<Database>(db->release(), [u = *url](Database* d) {
    delete d;
    SharedPgTestServer().DropDatabase(u);
  });
}

std::shared_ptr<KeywordIndex> MakePostgresIndex() {
  auto db = FreshDatabase();
  return std::shared_ptr<KeywordIndex>(new PostgresKeywordIndex(*db), [db](KeywordIndex* i) { delete i; });
}

INSTANTIATE_TEST_SUITE_P(Postgres, KeywordIndexContract, ::testing::Values(&MakePostgresIndex));

TEST(PostgresKeywordIndexTest, ASearchIsOneQueryAndOrsItsTerms) {
  auto db = FreshDatabase();
  PostgresKeywordIndex index(*db);
  IndexKey key{"c", 1, "u"};
  const std::vector<IndexedChunk> batch = {{1, "f", 1, nullptr, "tigers hunt at night"},
                                           {2, "f", 1, nullptr, "owls hunt at night"},
                                           {3, "f", 1, nullptr, "nothing relevant"}};
  ASSERT_TRUE(index.Upsert(key, batch));
  store::postgres::QueryCounter q;
  auto hits = index.Search(key, "tiger's night-time hunting", 10, {});
  ASSERT_TRUE(hits) << hits.error().ToString();
  EXPECT_EQ(q.count(), 1);
  ASSERT_EQ(hits->size(), 2u);
  EXPECT_EQ((*hits)[0].chunk_id, 1) << "more query terms matched";
  EXPECT_EQ(index.backend(), "postgres-fts");
}

}  // namespace
}  // namespace modulo::index
