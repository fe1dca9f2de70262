// IndexSync against the real embedded pieces: a SQLite store as the source of truth, the HNSW
// vector store and the BM25 index as the replicas it keeps in step.
#include "modulo/search/index_sync.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "modulo/index/bm25/bm25_index.h"
#include "modulo/index/hnsw/hnsw_vector_store.h"
#include "modulo/store/sqlite/database.h"
#include "modulo/store/sqlite/sqlite_metadata_store.h"

namespace modulo::search {
namespace {

constexpr std::size_t kDim = 8;

class IndexSyncTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("modulo-sync-" + std::to_string(::getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto db = store::sqlite::Database::Open((dir_ / "m.db").string(), 2);
    ASSERT_TRUE(db) << db.error().ToString();
    db_ = std::move(*db);
    store_ = std::make_unique<store::sqlite::SqliteMetadataStore>(*db_);
    vectors_ = std::make_unique<index::HnswVectorStore>(kDim);
    keywords_ = std::make_unique<index::Bm25Index>();
    sync_ = std::make_unique<IndexSync>(*store_, vectors_.get(), keywords_.get(), IndexSyncOptions{.batch = 3});
    store::NewCollection nc;
    nc.name = "c";
    nc.owner_id = "u";
    collection_ = store_->CreateCollection(nc).value().id;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string AddFile(const std::string& hash, const std::vector<std::string>& texts, std::int64_t generation = 1) {
    store::FileRecord f;
    f.collection_id = collection_;
    f.filename = hash + ".txt";
    f.content_hash = hash;
    f.storage_key = hash;
    auto added = store_->AddFile(f);
    EXPECT_TRUE(added);
    Replace(added->first.id, texts, generation);
    return added->first.id;
  }

  void Replace(const std::string& file_id, const std::vector<std::string>& texts, std::int64_t generation = 1) {
    std::vector<store::Chunk> chunks;
    for (std::size_t i = 0; i < texts.size(); ++i) {
      store::Chunk k;
      k.chunk_number = static_cast<std::int32_t>(i);
      k.text = texts[i];
      k.embedding.assign(kDim, 0.0f);
      k.embedding[(texts[i].size() + i) % kDim] = 1.0f;  // unit vectors
      chunks.push_back(std::move(k));
    }
    ASSERT_TRUE(store_->ReplaceFileChunks(file_id, generation, std::move(chunks), store::FileOutcome{}));
  }

  store::Collection State() { return store_->GetCollectionState(collection_).value(); }

  // Ids of chunks a keyword search for `word` finds in the live generation.
  std::set<std::int64_t> Find(const std::string& word) {
    auto s = State();
    auto hits = keywords_->Search(IndexSync::KeyOf(s, s.generation), word, 100, {});
    std::set<std::int64_t> out;
    for (const auto& h : hits.value()) out.insert(h.chunk_id);
    return out;
  }

  std::set<std::int64_t> StoreIds() {
    auto s = State();
    std::set<std::int64_t> out;
    auto chunks = store_->ListChunks(collection_, s.generation, 0, 1000, false).value();
    for (const auto& k : chunks) out.insert(k.id);
    return out;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::sqlite::Database> db_;
  std::unique_ptr<store::sqlite::SqliteMetadataStore> store_;
  std::unique_ptr<index::HnswVectorStore> vectors_;
  std::unique_ptr<index::Bm25Index> keywords_;
  std::unique_ptr<IndexSync> sync_;
  std::string collection_;
};

TEST_F(IndexSyncTest, ReplaysAdditionsReplacementsAndDeletions) {
  const auto a = AddFile("a", {"alpha one", "alpha two", "alpha three", "alpha four"});
  const auto b = AddFile("b", {"beta one", "beta two"});
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  auto key = IndexSync::KeyOf(State(), 1);
  EXPECT_EQ(vectors_->Count(key).value(), 6u);
  EXPECT_EQ(keywords_->Count(key).value(), 6u);
  EXPECT_EQ(Find("alpha").size(), 4u);

  Replace(a, {"gamma only"});  // a retried job replaced the file's chunks
  ASSERT_TRUE(store_->DeleteFile(b));
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  EXPECT_TRUE(Find("alpha").empty());
  EXPECT_TRUE(Find("beta").empty());
  EXPECT_EQ(Find("gamma"), StoreIds());
  EXPECT_EQ(vectors_->Count(key).value(), 1u);
}

TEST_F(IndexSyncTest, NothingHappensWhenTheVersionIsUnchanged) {
  AddFile("a", {"alpha"});
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  // Remove behind the sync's back: an unchanged version means no replay, so the index keeps it.
  auto key = IndexSync::KeyOf(State(), 1);
  const auto id = *StoreIds().begin();
  ASSERT_TRUE(keywords_->Remove(key, std::vector<std::int64_t>{id}));
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  EXPECT_TRUE(Find("alpha").empty());
}

TEST_F(IndexSyncTest, AFreshSyncRebuildsTheSameIndexAsTheIncrementalOne) {
  const auto a = AddFile("a", {"red", "green"});
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  AddFile("b", {"blue", "red"});
  Replace(a, {"red again"});
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  const auto incremental = Find("red");
  // A restarted server: new indexes, rebuilt from the store.
  index::Bm25Index fresh_keywords;
  index::HnswVectorStore fresh_vectors(kDim);
  IndexSync fresh(*store_, &fresh_vectors, &fresh_keywords);
  ASSERT_TRUE(fresh.EnsureCurrent(State()));
  auto s = State();
  auto hits = fresh_keywords.Search(IndexSync::KeyOf(s, 1), "red", 100, {}).value();
  std::set<std::int64_t> rebuilt;
  for (const auto& h : hits) rebuilt.insert(h.chunk_id);
  EXPECT_EQ(rebuilt, incremental);
  EXPECT_EQ(rebuilt.size(), 2u);
}

TEST_F(IndexSyncTest, ASwitchedGenerationReplacesTheIndexWhole) {
  const auto a = AddFile("a", {"old words"});
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  auto next = store_->BeginReindex(collection_, "{}");
  ASSERT_TRUE(next);
  Replace(a, {"new words"}, *next);
  // During the reindex, searches read generation 1.
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  EXPECT_EQ(Find("old").size(), 1u);
  ASSERT_TRUE(store_->FinishReindex(collection_, *next));
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  EXPECT_TRUE(Find("old").empty());
  EXPECT_EQ(Find("new").size(), 1u);
  store::Collection old = State();
  EXPECT_EQ(keywords_->Count(IndexSync::KeyOf(old, 1)).value(), 0u) << "the old generation's index is dropped";
}

TEST_F(IndexSyncTest, TheBuildHookRunsOncePerGeneration) {
  std::vector<std::int64_t> built;
  IndexSyncOptions o;
  o.before_build = [&](const store::Collection& c) { built.push_back(c.generation); };
  IndexSync sync(*store_, vectors_.get(), keywords_.get(), o);
  const auto a = AddFile("a", {"one"});
  ASSERT_TRUE(sync.EnsureCurrent(State()));
  AddFile("b", {"two"});
  ASSERT_TRUE(sync.EnsureCurrent(State()));
  auto next = store_->BeginReindex(collection_, "{}");
  Replace(a, {"three"}, *next);
  ASSERT_TRUE(store_->FinishReindex(collection_, *next));
  ASSERT_TRUE(sync.EnsureCurrent(State()));
  EXPECT_EQ(built, (std::vector<std::int64_t>{1, 2}));
}

TEST_F(IndexSyncTest, DroppingACollectionFreesItsIndexes) {
  AddFile("a", {"alpha"});
  ASSERT_TRUE(sync_->EnsureCurrent(State()));
  auto key = IndexSync::KeyOf(State(), 1);
  const auto state = State();
  sync_->DropCollection(state);
  EXPECT_EQ(keywords_->Count(key).value(), 0u);
  EXPECT_EQ(vectors_->Count(key).value(), 0u);
  sync_->DropCollection(state);  // twice is fine
}

TEST_F(IndexSyncTest, ConcurrentSearchersCatchUpOnce) {
  for (int i = 0; i < 5; ++i) AddFile("f" + std::to_string(i), {"word " + std::to_string(i), "word"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { EXPECT_TRUE(sync_->EnsureCurrent(State())); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(Find("word"), StoreIds());
}

}  // namespace
}  // namespace modulo::search
