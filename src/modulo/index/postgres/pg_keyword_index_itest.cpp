// PostgresKeywordIndex against a real PostgreSQL server: the KeywordIndex contract.
#include "modulo/index/postgres/pg_keyword_index.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

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

// Schema step 5 fills the postings and statistics from the rows a step-4 database holds: the
// searches after the migration rank exactly as an index built by Upsert from the same texts.
TEST(PostgresKeywordIndexTest, MigrationBackfillsExistingRows) {
  auto url = SharedPgTestServer().CreateDatabase();
  ASSERT_TRUE(url) << url.error().ToString();
  struct Cleanup {
    std::string u;
    ~Cleanup() { SharedPgTestServer().DropDatabase(u); }
  } cleanup{*url};
  ASSERT_TRUE(store::postgres::Migrate(*url));
  auto conn = store::postgres::Connection::Open(*url);
  ASSERT_TRUE(conn);
  store::postgres::Connection& c = **conn;
  // Back to step 4's layout (the tables of step 3 as they were, the tables of later steps gone),
  // with rows written the way the step-3 index wrote them.
  ASSERT_TRUE(c.ExecScript(
      "DROP TABLE suggested_questions, conversation_summaries, conversation_messages, conversation_sessions, "
      "  user_configs; "
      "DROP TABLE keyword_postings; DROP TABLE keyword_indexes; "
      "ALTER TABLE keyword_chunks ADD COLUMN tsv tsvector "
      "  GENERATED ALWAYS AS (to_tsvector('modulo_english'::regconfig, body)) STORED; "
      "CREATE INDEX keyword_chunks_tsv ON keyword_chunks USING gin (tsv); "
      "DELETE FROM schema_migrations WHERE version >= 5;"));
  const std::vector<std::string> texts = {"zebra grazing near the river bank", "zebra zebra herds near the river",
                                          "lions resting near the river bank", "Café crème by the river",
                                          "the of and"};
  for (std::size_t i = 0; i < texts.size(); ++i) {
    for (const char* collection : {"old", "other"}) {
      ASSERT_TRUE(c.Exec("INSERT INTO keyword_chunks (collection_id, generation, chunk_id, file_id, page_number, "
                         "body, doc_len) SELECT $1, 1, $2, 'f', $3, $4, "
                         "(SELECT COALESCE(sum(COALESCE(array_length(t.positions, 1), 1)), 0) "
                         " FROM unnest(to_tsvector('modulo_english'::regconfig, $4::text)) t)",
                         store::postgres::Params()
                             .Add(collection)
                             .Add(static_cast<std::int64_t>(i + 1))
                             .Add(static_cast<std::int64_t>(i + 1))
                             .Add(texts[i])));
    }
  }
  auto m = store::postgres::Migrate(*url);
  ASSERT_TRUE(m) << m.error().ToString();
  EXPECT_EQ(m->applied, Database::kLatestSchema - 4) << "step 5 and every later one";
  EXPECT_EQ(m->version, Database::kLatestSchema);
  auto tsv = c.Exec("SELECT count(*) FROM information_schema.columns WHERE table_name = 'keyword_chunks' "
                    "AND column_name = 'tsv'");
  ASSERT_TRUE(tsv);
  EXPECT_EQ(tsv->Int(0, 0), 0) << "the tsvector column is no longer kept";

  DatabaseOptions o;
  o.primary_url = *url;
  o.pool.size = 2;
  auto db = Database::Open(o);
  ASSERT_TRUE(db) << db.error().ToString();
  PostgresKeywordIndex index(**db);
  const IndexKey old_key{"old", 1, "u"}, fresh_key{"fresh", 1, "u"};
  std::vector<IndexedChunk> batch;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    batch.push_back({static_cast<std::int64_t>(i + 1), "f", static_cast<std::int32_t>(i + 1), nullptr, texts[i]});
  }
  ASSERT_TRUE(index.Upsert(fresh_key, batch));
  EXPECT_EQ(*index.Count(old_key), texts.size());
  EXPECT_EQ(*index.Count(IndexKey{"other", 1, "u"}), texts.size());
  for (const char* q : {"zebra", "river", "zebra river bank", "cafe lions", "the"}) {
    auto a = index.Search(old_key, q, 10, {});
    auto b = index.Search(fresh_key, q, 10, {});
    ASSERT_TRUE(a && b);
    ASSERT_EQ(a->size(), b->size()) << q;
    for (std::size_t i = 0; i < a->size(); ++i) {
      EXPECT_EQ((*a)[i].chunk_id, (*b)[i].chunk_id) << q;
      EXPECT_EQ((*a)[i].score, (*b)[i].score) << q;
    }
  }
  EXPECT_EQ(index.Search(old_key, "zebra", 10, {})->size(), 2u);
  // The migrated index takes writes like any other.
  const std::vector<std::int64_t> gone = {2};
  ASSERT_TRUE(index.Remove(old_key, gone));
  EXPECT_EQ(*index.Count(old_key), texts.size() - 1);
  auto zebra = index.Search(old_key, "zebra", 10, {});
  ASSERT_TRUE(zebra);
  ASSERT_EQ(zebra->size(), 1u);
  EXPECT_EQ((*zebra)[0].chunk_id, 1);
  ASSERT_TRUE(index.Drop(old_key));
  EXPECT_EQ(*index.Count(old_key), 0u);
  EXPECT_EQ(*index.Count(IndexKey{"other", 1, "u"}), texts.size());
}

// The statistics row follows every write: N and the summed length equal what the rows hold.
TEST(PostgresKeywordIndexTest, StatisticsFollowEveryWrite) {
  auto db = FreshDatabase();
  PostgresKeywordIndex index(*db);
  const IndexKey key{"c", 1, "u"};
  auto check = [&](const char* when) {
    auto r = db->WithPrimary([](store::postgres::Connection& c) {
      return c.Exec(
          "SELECT i.chunk_count, i.total_len, (SELECT count(*) FROM keyword_chunks k WHERE k.collection_id = 'c'), "
          "(SELECT COALESCE(sum(doc_len), 0) FROM keyword_chunks k WHERE k.collection_id = 'c'), "
          "(SELECT count(DISTINCT chunk_id) FROM keyword_postings p WHERE p.index_id = i.id), "
          "(SELECT COALESCE(sum(tf), 0) FROM keyword_postings p WHERE p.index_id = i.id) "
          "FROM keyword_indexes i WHERE i.collection_id = 'c' AND i.generation = 1");
    });
    ASSERT_TRUE(r) << r.error().ToString();
    ASSERT_EQ(r->rows(), 1) << when;
    EXPECT_EQ(r->Int(0, 0), r->Int(0, 2)) << when;
    EXPECT_EQ(r->Int(0, 1), r->Int(0, 3)) << when;
    EXPECT_EQ(r->Int(0, 1), r->Int(0, 5)) << when;
  };
  const std::vector<IndexedChunk> a = {{1, "f", 1, nullptr, "alpha beta beta"},
                                       {2, "f", 1, nullptr, "gamma"},
                                       {2, "f", 1, nullptr, "gamma delta delta delta"},
                                       {3, "f", 1, nullptr, "the of and"}};
  ASSERT_TRUE(index.Upsert(key, a));
  check("after the first upsert");
  const std::vector<IndexedChunk> b = {{1, "f", 1, nullptr, "epsilon"}, {4, "f", 2, nullptr, "zeta zeta"}};
  ASSERT_TRUE(index.Upsert(key, b));
  check("after replacing a chunk");
  const std::vector<std::int64_t> gone = {2, 99};
  ASSERT_TRUE(index.Remove(key, gone));
  check("after a removal");
  EXPECT_EQ(*index.Count(key), 3u);
  // Concurrent writers of one index: the counts stay exact.
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 10; ++i) {
        const std::int64_t id = 100 + (w * 10 + i) % 15;  // overlapping ids
        const std::string text = "shared words " + std::to_string(i);
        const std::vector<IndexedChunk> one = {{id, "f", 1, nullptr, text}};
        EXPECT_TRUE(index.Upsert(key, one));
        if (i % 3 == 0) {
          const std::vector<std::int64_t> rm = {id};
          EXPECT_TRUE(index.Remove(key, rm));
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  check("after concurrent writers");
}

}  // namespace
}  // namespace modulo::index
