// IndexSync over shared indexes with PgSyncCheckpoints, against a real PostgreSQL: the store, the
// positions and the replay lease are in PostgreSQL; two IndexSync objects stand for two processes
// (servers or workers) that write the same shared indexes. The shared indexes here are one HNSW
// store and one BM25 index both objects write to (the engines themselves have their own contract
// tests): what is tested is who replays what, and that nothing is replayed twice or missed.
#include "modulo/search/postgres/pg_sync_checkpoints.h"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <thread>

#include "modulo/index/bm25/bm25_index.h"
#include "modulo/index/hnsw/hnsw_vector_store.h"
#include "modulo/search/index_sync.h"
#include "modulo/store/postgres/pg_metadata_store.h"
#include "modulo/store/postgres/pg_test_server.h"

namespace modulo::search {
namespace {

using namespace std::chrono_literals;
constexpr std::size_t kDim = 8;

// A KeywordIndex that counts the chunks written through it (to see who replayed what).
class CountingKeywords final : public index::KeywordIndex {
 public:
  explicit CountingKeywords(index::KeywordIndex& inner) : inner_(inner) {}
  std::string_view backend() const noexcept override { return inner_.backend(); }
  Status Upsert(const index::IndexKey& k, std::span<const index::IndexedChunk> c) override {
    upserted += c.size();
    return inner_.Upsert(k, c);
  }
  Status Remove(const index::IndexKey& k, std::span<const std::int64_t> ids) override {
    removed += ids.size();
    return inner_.Remove(k, ids);
  }
  Status Drop(const index::IndexKey& k) override { return inner_.Drop(k); }
  Result<std::size_t> Count(const index::IndexKey& k) const override { return inner_.Count(k); }
  Result<std::vector<index::Hit>> Search(const index::IndexKey& k, std::string_view q, std::size_t n,
                                         const index::SearchFilter& f) const override {
    return inner_.Search(k, q, n, f);
  }
  std::atomic<std::size_t> upserted{0}, removed{0};

 private:
  index::KeywordIndex& inner_;
};

class SharedIndexSyncTest : public testing::Test {
 protected:
  void SetUp() override {
    auto url = store::postgres::SharedPgTestServer().CreateDatabase();
    ASSERT_TRUE(url) << url.error().ToString();
    url_ = *url;
    store::postgres::DatabaseOptions o;
    o.primary_url = url_;
    o.pool.size = 6;
    auto db = store::postgres::Database::Open(o);
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    store_ = std::make_unique<store::postgres::PostgresMetadataStore>(*db_);
    checkpoints_ = std::make_unique<PgSyncCheckpoints>(*db_);
    vectors_ = std::make_unique<index::HnswVectorStore>(kDim);
    auto bm25 = index::Bm25Index::Create({});
    ASSERT_TRUE(bm25);
    bm25_ = std::move(*bm25);
    for (int i = 0; i < 2; ++i) {
      counters_.push_back(std::make_unique<CountingKeywords>(*bm25_));
      IndexSyncOptions so;
      so.batch = 3;
      so.checkpoints = checkpoints_.get();
      so.owner = "process-" + std::to_string(i);
      so.lease = 2s;
      syncs_.push_back(std::make_unique<IndexSync>(*store_, vectors_.get(), counters_.back().get(), so));
    }
    store::NewCollection nc;
    nc.name = "c";
    nc.owner_id = "u";
    collection_ = store_->CreateCollection(nc).value().id;
  }
  void TearDown() override {
    syncs_.clear();
    store_.reset();
    checkpoints_.reset();
    db_.reset();
    store::postgres::SharedPgTestServer().DropDatabase(url_);
  }

  std::string AddFile(const std::string& hash, const std::vector<std::string>& texts) {
    store::FileRecord f;
    f.collection_id = collection_;
    f.filename = hash + ".txt";
    f.content_hash = hash;
    f.storage_key = hash;
    auto added = store_->AddFile(f);
    EXPECT_TRUE(added) << added.error().ToString();
    std::vector<store::Chunk> chunks;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      store::Chunk k;
      k.chunk_number = static_cast<std::int32_t>(i);
      k.text = texts[i];
      k.embedding.assign(kDim, 0.0f);
      k.embedding[(texts[i].size() + i) % kDim] = 1.0f;
      chunks.push_back(std::move(k));
    }
    EXPECT_TRUE(store_->ReplaceFileChunks(added->first.id, 1, std::move(chunks), store::FileOutcome{}));
    return added->first.id;
  }
  store::Collection State() { return store_->GetCollectionState(collection_).value(); }
  std::size_t Indexed() { return bm25_->Count(IndexSync::KeyOf(State(), 1)).value(); }

  std::string url_;
  std::unique_ptr<store::postgres::Database> db_;
  std::unique_ptr<store::postgres::PostgresMetadataStore> store_;
  std::unique_ptr<PgSyncCheckpoints> checkpoints_;
  std::unique_ptr<index::HnswVectorStore> vectors_;
  std::unique_ptr<index::Bm25Index> bm25_;
  std::vector<std::unique_ptr<CountingKeywords>> counters_;
  std::vector<std::unique_ptr<IndexSync>> syncs_;
  std::string collection_;
};

TEST_F(SharedIndexSyncTest, AReplayedPositionIsNotReplayedByAnotherProcess) {
  AddFile("a", {"alpha one", "alpha two", "alpha three", "alpha four"});
  ASSERT_TRUE(syncs_[0]->EnsureCurrent(State()));
  EXPECT_EQ(counters_[0]->upserted.load(), 4u);
  EXPECT_EQ(Indexed(), 4u);
  // The second process reads the stored position: nothing to replay.
  ASSERT_TRUE(syncs_[1]->EnsureCurrent(State()));
  EXPECT_EQ(counters_[1]->upserted.load(), 0u);
  // New chunks and a removal: whoever comes next replays exactly those.
  const std::string b = AddFile("b", {"beta"});
  ASSERT_TRUE(syncs_[1]->EnsureCurrent(State()));
  EXPECT_EQ(counters_[1]->upserted.load(), 1u);
  ASSERT_TRUE(store_->DeleteFile(b));
  ASSERT_TRUE(syncs_[0]->EnsureCurrent(State()));
  EXPECT_EQ(counters_[0]->upserted.load(), 4u);
  EXPECT_EQ(counters_[0]->removed.load(), 1u);
  EXPECT_EQ(Indexed(), 4u);
}

TEST_F(SharedIndexSyncTest, ALeaseHolderExcludesOthersAndADeadHoldersLeaseExpires) {
  AddFile("a", {"alpha", "beta", "gamma"});
  // A process took the lease and died without releasing it.
  auto held = checkpoints_->Acquire(collection_, "dead-process", 1500ms);
  ASSERT_TRUE(held && *held);
  bool current = true;
  ASSERT_TRUE(syncs_[0]->EnsureCurrent(State(), &current));  // does not wait: reads the index as it is
  EXPECT_FALSE(current) << "a search reading behind another process's replay must know (not cache it)";
  EXPECT_EQ(counters_[0]->upserted.load(), 0u);
  std::this_thread::sleep_for(1700ms);
  ASSERT_TRUE(syncs_[0]->EnsureCurrent(State(), &current));  // the lease expired: it replays
  EXPECT_TRUE(current);
  EXPECT_EQ(counters_[0]->upserted.load(), 3u);
  // The dead holder cannot save over the new one's position.
  auto lost = checkpoints_->Save(collection_, "dead-process", SyncPosition{1, 1, 0, 0}, 1s);
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code(), ErrorCode::kConflict);
}

TEST_F(SharedIndexSyncTest, AReplayCutShortResumesFromTheLastSavedBatch) {
  AddFile("a", {"one", "two", "three", "four", "five", "six", "seven"});
  // Replay as far as the first saved batch (3 chunks), then "crash": the position says 3 done.
  auto state = State();
  auto pos = checkpoints_->Acquire(collection_, "crashed", 500ms);
  ASSERT_TRUE(pos && *pos);
  auto chunks = store_->ListChunks(collection_, 1, 0, 3, true).value();
  std::vector<index::IndexedChunk> items;
  for (const auto& k : chunks) items.push_back({k.id, k.file_id, k.page_number, k.embedding.data(), k.text});
  const auto key = IndexSync::KeyOf(state, 1);
  ASSERT_TRUE(vectors_->Upsert(key, items));
  ASSERT_TRUE(bm25_->Upsert(key, items));
  ASSERT_TRUE(checkpoints_->Save(collection_, "crashed", SyncPosition{1, 0, chunks.back().id, 0}, 500ms));
  std::this_thread::sleep_for(700ms);
  ASSERT_TRUE(syncs_[1]->EnsureCurrent(State()));
  EXPECT_EQ(counters_[1]->upserted.load(), 4u) << "only the chunks after the saved position";
  EXPECT_EQ(Indexed(), 7u);
  EXPECT_EQ(vectors_->Count(key).value(), 7u);
}

TEST_F(SharedIndexSyncTest, ConcurrentProcessesTogetherIndexEveryChunkOnce) {
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int f = 0; f < 12; ++f) AddFile("f" + std::to_string(f), {"w" + std::to_string(f), "x", "y"});
    done = true;
  });
  std::vector<std::thread> readers;
  for (int p = 0; p < 2; ++p) {
    readers.emplace_back([&, p] {
      while (!done) {
        (void)syncs_[static_cast<std::size_t>(p)]->EnsureCurrent(State());
        std::this_thread::sleep_for(5ms);
      }
    });
  }
  writer.join();
  for (auto& t : readers) t.join();
  // Whoever holds the lease last catches up the rest.
  for (int attempt = 0; attempt < 50 && Indexed() < 36; ++attempt) {
    ASSERT_TRUE(syncs_[attempt % 2]->EnsureCurrent(State()));
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(Indexed(), 36u);
  EXPECT_EQ(counters_[0]->upserted.load() + counters_[1]->upserted.load(), 36u) << "no chunk replayed twice";
}

TEST_F(SharedIndexSyncTest, DeletingACollectionDropsItsSharedIndexesAndPosition) {
  AddFile("a", {"alpha"});
  ASSERT_TRUE(syncs_[0]->EnsureCurrent(State()));
  const auto state = State();
  ASSERT_TRUE(store_->DeleteCollection(collection_));
  syncs_[1]->DropCollection(state);  // another process than the one that built it
  EXPECT_EQ(bm25_->Count(IndexSync::KeyOf(state, 1)).value(), 0u);
  EXPECT_EQ(vectors_->Count(IndexSync::KeyOf(state, 1)).value(), 0u);
  auto row = db_->WithPrimary([&](store::postgres::Connection& c) {
    return c.Exec("SELECT count(*) FROM index_sync_positions WHERE collection_id = $1",
                  store::postgres::Params().Add(collection_));
  });
  ASSERT_TRUE(row);
  EXPECT_EQ(row->Int(0, 0), 0);
}

}  // namespace
}  // namespace modulo::search
