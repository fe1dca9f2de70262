// PostgresMetadataStore against a real PostgreSQL server: the MetadataStore contract, the change
// feed's commit-order promise under concurrent writers, and what the hot paths cost in queries.
#include "modulo/store/postgres/pg_metadata_store.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>

#include "modulo/store/metadata_store_contract.h"
#include "modulo/store/postgres/pg_test_server.h"

namespace modulo::store::postgres {
namespace {

// A fresh database with the schema, dropped when the returned object goes.
std::shared_ptr<Database> FreshDatabase(std::size_t pool_size = 8) {
  auto& server = SharedPgTestServer();
  auto url = server.CreateDatabase();
  if (!url) throw std::runtime_error(url.error().ToString());
  DatabaseOptions o;
  o.primary_url = *url;
  o.pool.size = pool_size;
  o.pool.max_overflow = 4;
  o.pool.acquire_timeout = std::chrono::seconds(30);
  auto db = Database::Open(o);
  if (!db) throw std::runtime_error(db.error().ToString());
  return std::shared_ptr<Database>(db->release(), [u = *url](Database* d) {
    delete d;
    SharedPgTestServer().DropDatabase(u);
  });
}

std::shared_ptr<MetadataStore> MakePostgresStore() {
  auto db = FreshDatabase();
  return std::shared_ptr<MetadataStore>(new PostgresMetadataStore(*db), [db](MetadataStore* s) { delete s; });
}

INSTANTIATE_TEST_SUITE_P(Postgres, MetadataStoreContract, ::testing::Values(&MakePostgresStore));

FileRecord FileIn(const std::string& collection, const std::string& hash) {
  FileRecord f;
  f.collection_id = collection;
  f.filename = hash + ".txt";
  f.size_bytes = 10;
  f.content_hash = hash;
  f.storage_key = "blobs/" + hash;
  return f;
}

std::vector<Chunk> Chunks(int n, int dim = 8) {
  std::vector<Chunk> out;
  for (int i = 0; i < n; ++i) {
    Chunk k;
    k.chunk_number = i;
    k.text = "chunk " + std::to_string(i);
    k.embedding.assign(static_cast<std::size_t>(dim), 0.5f + static_cast<float>(i));
    out.push_back(std::move(k));
  }
  return out;
}

class PostgresMetadataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = FreshDatabase();
    store_ = std::make_unique<PostgresMetadataStore>(*db_);
    NewCollection nc;
    nc.name = "c";
    nc.owner_id = "u1";
    auto c = store_->CreateCollection(nc);
    ASSERT_TRUE(c) << c.error().ToString();
    collection_ = c->id;
  }
  std::shared_ptr<Database> db_;
  std::unique_ptr<PostgresMetadataStore> store_;
  std::string collection_;
};

// Without the feed lock, identity values are handed out in the order transactions ask and
// become visible in the order they commit: a reader that remembers "the last id seen" skips the
// slower transaction's chunks. This is the hazard the store's lock exists for.
TEST_F(PostgresMetadataStoreTest, PlainSequencesBreakCommitOrderWhichIsWhyTheStoreLocks) {
  auto f = store_->AddFile(FileIn(collection_, "h"));
  ASSERT_TRUE(f);
  auto a = db_->Primary();
  auto b = db_->Primary();
  ASSERT_TRUE(a && b);
  const std::string insert =
      "INSERT INTO chunks (collection_id, file_id, generation, chunk_number, text) VALUES ($1, $2, 1, $3, 'x') "
      "RETURNING id";
  ASSERT_TRUE((*a)->ExecScript("BEGIN"));
  auto first = (*a)->Exec(insert, Params().Add(collection_).Add(f->first.id).Add(1));
  ASSERT_TRUE(first) << first.error().ToString();
  ASSERT_TRUE((*b)->ExecScript("BEGIN"));
  auto second = (*b)->Exec(insert, Params().Add(collection_).Add(f->first.id).Add(2));
  ASSERT_TRUE(second);
  ASSERT_LT(first->Int(0, 0), second->Int(0, 0));
  ASSERT_TRUE((*b)->ExecScript("COMMIT"));  // the later id commits first
  auto seen = store_->ListChunks(collection_, 1, 0, 100, false);
  ASSERT_TRUE(seen);
  ASSERT_EQ(seen->size(), 1u);
  const auto last = seen->back().id;
  ASSERT_TRUE((*a)->ExecScript("COMMIT"));
  EXPECT_TRUE(store_->ListChunks(collection_, 1, last, 100, false)->empty())
      << "the earlier id is behind the reader's position: missed";
}

TEST_F(PostgresMetadataStoreTest, ConcurrentWritersKeepTheChangeFeedInCommitOrder) {
  constexpr int kWriters = 4, kRounds = 15;
  std::vector<std::string> files;
  for (int w = 0; w < kWriters; ++w) {
    for (int j = 0; j < 3; ++j) {
      auto f = store_->AddFile(FileIn(collection_, "h" + std::to_string(w) + "-" + std::to_string(j)));
      ASSERT_TRUE(f);
      files.push_back(f->first.id);
    }
  }
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::set<std::int64_t> replica;
  std::int64_t last_id = 0, last_seq = 0;
  auto replay = [&] {
    // Removals first, then additions: a chunk added and removed between two polls would
    // otherwise linger (its tombstone is read before the chunk itself is seen).
    auto removed = store_->ListRemovedChunks(collection_, 1, last_seq, 100000);
    auto added = store_->ListChunks(collection_, 1, last_id, 100000, false);
    if (!removed || !added) {
      ++failures;
      return;
    }
    for (const auto& k : *added) {
      if (k.id <= last_id) ++failures;  // ids come in order
      replica.insert(k.id);
      last_id = k.id;
    }
    for (const auto& r : *removed) {
      replica.erase(r.chunk_id);
      last_seq = r.seq;
    }
  };
  std::thread reader([&] {
    while (!done.load()) replay();
  });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kRounds; ++i) {
        const auto& file = files[static_cast<std::size_t>(w * 3 + i % 3)];
        if (!store_->ReplaceFileChunks(file, 1, Chunks(3 + i % 4), FileOutcome{})) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  done.store(true);
  reader.join();
  replay();
  EXPECT_EQ(failures.load(), 0);
  std::set<std::int64_t> truth;
  auto all = store_->ListChunks(collection_, 1, 0, 100000, false);
  ASSERT_TRUE(all);
  for (const auto& k : *all) truth.insert(k.id);
  EXPECT_FALSE(truth.empty());
  EXPECT_EQ(replica, truth) << "a reader that polled during the writes missed additions or removals";
}

TEST_F(PostgresMetadataStoreTest, HotPathsCostFewQueries) {
  auto f = store_->AddFile(FileIn(collection_, "h"));
  ASSERT_TRUE(f);
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, Chunks(5), FileOutcome{}));
  auto all = store_->ListChunks(collection_, 1, 0, 100, false);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 5u);
  {
    QueryCounter q;
    ASSERT_TRUE(store_->GetCollection(collection_));
    ASSERT_TRUE(store_->ListFiles(collection_));
    EXPECT_LE(q.count(), 2) << "a collection with its files";
  }
  {
    // The search path: the collection's state, the hits hydrated, their parents.
    QueryCounter q;
    ASSERT_TRUE(store_->GetCollectionState(collection_));
    auto hits = store_->GetChunks({(*all)[3].id, (*all)[1].id});
    ASSERT_TRUE(hits);
    ASSERT_EQ(hits->size(), 2u);
    ASSERT_TRUE(store_->GetChunksByNumber(f->first.id, 1, {0}));
    EXPECT_LE(q.count(), 3) << "a search's metadata reads";
  }
  {
    QueryCounter q;
    ASSERT_TRUE(store_->ListCollections(""));
    EXPECT_EQ(q.count(), 1) << "collections with their counts in one query";
  }
  {
    QueryCounter q;
    ASSERT_TRUE(store_->ListChunks(collection_, 1, 0, 100, true));
    EXPECT_EQ(q.count(), 1);
  }
}

TEST_F(PostgresMetadataStoreTest, EmbeddingsAndOddTextRoundTrip) {
  auto f = store_->AddFile(FileIn(collection_, "h"));
  ASSERT_TRUE(f);
  std::vector<Chunk> chunks(2);
  chunks[0].chunk_number = 0;
  chunks[0].text = std::string("quotes \" ' \\ {braces} , NULL \xe2\x80\x8b and a NUL") + '\0' + "here";
  chunks[0].section_path = "A > \"B\"";
  chunks[0].embedding = {-0.0f, 1e-38f, 3.4e38f, -1.5f};
  chunks[0].parent_number = 7;
  chunks[1].chunk_number = 1;
  chunks[1].text = "invalid \xff utf-8";
  chunks[1].is_parent = true;
  ASSERT_TRUE(store_->ReplaceFileChunks(f->first.id, 1, chunks, FileOutcome{}));
  auto back = store_->ListChunks(collection_, 1, 0, 10, true);
  ASSERT_TRUE(back) << back.error().ToString();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].text, std::string("quotes \" ' \\ {braces} , NULL \xe2\x80\x8b and a NUL here"));
  EXPECT_EQ((*back)[0].section_path, "A > \"B\"");
  EXPECT_EQ((*back)[0].embedding, chunks[0].embedding);
  EXPECT_EQ((*back)[0].parent_number, 7);
  EXPECT_TRUE((*back)[1].embedding.empty());
  EXPECT_TRUE((*back)[1].is_parent);
  EXPECT_EQ((*back)[1].text, "invalid \xef\xbf\xbd utf-8");
  EXPECT_EQ(store_->GetFile(f->first.id)->chunk_count, 1) << "parents are not indexed";
  std::vector<Chunk> twice = Chunks(2);
  twice[1].chunk_number = 0;
  EXPECT_EQ(store_->ReplaceFileChunks(f->first.id, 1, twice, FileOutcome{}).error().code(),
            ErrorCode::kInvalidArgument);
}

}  // namespace
}  // namespace modulo::store::postgres
