#include "modulo/index/vector_store_contract.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace modulo::index {
namespace {

constexpr float kEps = 1e-4f;

IndexKey Key(const std::string& collection, std::int64_t generation = 1) {
  IndexKey k;
  k.collection_id = collection;
  k.generation = generation;
  k.owner_id = "owner-1";
  return k;
}

// Owns the vectors the IndexedChunks point to.
class Batch {
 public:
  explicit Batch(std::size_t dim) : dim_(dim) {}
  Batch& Add(std::int64_t id, std::vector<float> v, std::string file = "f1", std::int32_t page = 1) {
    Normalise(v);
    vectors_.push_back(std::move(v));
    IndexedChunk c;
    c.chunk_id = id;
    c.file_id = std::move(file);
    c.page_number = page;
    chunks_.push_back(std::move(c));
    return *this;
  }
  std::span<const IndexedChunk> chunks() {
    for (std::size_t i = 0; i < chunks_.size(); ++i) chunks_[i].embedding = vectors_[i].data();
    return chunks_;
  }
  const std::vector<float>& vec(std::size_t i) const { return vectors_[i]; }
  const IndexedChunk& chunk(std::size_t i) const { return chunks_[i]; }
  std::size_t size() const { return chunks_.size(); }

  static void Normalise(std::vector<float>& v) {
    double n = 0;
    for (float x : v) n += double(x) * x;
    if (n > 0)
      for (float& x : v) x = float(x / std::sqrt(n));
  }

 private:
  std::size_t dim_;
  std::vector<std::vector<float>> vectors_;
  std::vector<IndexedChunk> chunks_;
};

std::vector<float> Axis(std::size_t dim, std::size_t i, float w = 1.f) {
  std::vector<float> v(dim, 0.f);
  v[i] = w;
  return v;
}

std::vector<float> Mix(std::size_t dim, std::initializer_list<std::pair<std::size_t, float>> parts) {
  std::vector<float> v(dim, 0.f);
  for (auto [i, w] : parts) v[i] = w;
  Batch::Normalise(v);
  return v;
}

std::vector<float> Random(std::size_t dim, std::mt19937& rng) {
  std::normal_distribution<float> n01;
  std::vector<float> v(dim);
  for (float& x : v) x = n01(rng);
  Batch::Normalise(v);
  return v;
}

float DotOf(const std::vector<float>& a, const float* b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += double(a[i]) * b[i];
  return float(s);
}

std::vector<std::int64_t> Ids(const std::vector<Hit>& hits) {
  std::vector<std::int64_t> ids;
  for (const auto& h : hits) ids.push_back(h.chunk_id);
  return ids;
}

void ExpectSorted(const std::vector<Hit>& hits) {
  for (std::size_t i = 1; i < hits.size(); ++i) {
    EXPECT_TRUE(hits[i - 1].score > hits[i].score ||
                (hits[i - 1].score == hits[i].score && hits[i - 1].chunk_id < hits[i].chunk_id))
        << "hits " << i - 1 << " and " << i << " out of order";
  }
}

// Brute-force top-k ids of batch entries accepted by `ok`, best first, ties by id.
template <class Ok>
std::vector<std::int64_t> BruteForce(const Batch& b, const std::vector<float>& q, std::size_t k, Ok ok) {
  std::vector<Hit> all;
  for (std::size_t i = 0; i < b.size(); ++i)
    if (ok(b.chunk(i))) all.push_back({b.chunk(i).chunk_id, DotOf(q, b.vec(i).data())});
  std::sort(all.begin(), all.end(), [](const Hit& x, const Hit& y) {
    return x.score != y.score ? x.score > y.score : x.chunk_id < y.chunk_id;
  });
  if (all.size() > k) all.resize(k);
  return Ids(all);
}

TEST_P(VectorStoreContract, SearchReturnsNearestFirstWithInnerProductScores) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  EXPECT_EQ(store->dimension(), d);
  EXPECT_FALSE(store->backend().empty());
  Batch b(d);
  b.Add(1, Axis(d, 0)).Add(2, Mix(d, {{0, 0.8f}, {1, 0.6f}})).Add(3, Axis(d, 1)).Add(4, Mix(d, {{0, -1.f}}));
  ASSERT_TRUE(store->Upsert(Key("c-order"), b.chunks()));
  auto q = Axis(d, 0);
  auto hits = store->Search(Key("c-order"), q, 4, {});
  ASSERT_TRUE(hits) << hits.error().ToString();
  ASSERT_EQ(Ids(*hits), (std::vector<std::int64_t>{1, 2, 3, 4}));
  EXPECT_NEAR((*hits)[0].score, 1.0f, kEps);
  EXPECT_NEAR((*hits)[1].score, 0.8f, kEps);
  EXPECT_NEAR((*hits)[2].score, 0.0f, kEps);
  EXPECT_NEAR((*hits)[3].score, -1.0f, kEps);
  auto top2 = store->Search(Key("c-order"), q, 2, {});
  ASSERT_TRUE(top2);
  EXPECT_EQ(Ids(*top2), (std::vector<std::int64_t>{1, 2}));
}

TEST_P(VectorStoreContract, TiesAreBrokenByChunkIdAscending) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  Batch b(d);
  b.Add(30, Axis(d, 2)).Add(10, Axis(d, 2)).Add(20, Axis(d, 2)).Add(5, Axis(d, 3));
  ASSERT_TRUE(store->Upsert(Key("c-ties"), b.chunks()));
  auto hits = store->Search(Key("c-ties"), Axis(d, 2), 4, {});
  ASSERT_TRUE(hits);
  EXPECT_EQ(Ids(*hits), (std::vector<std::int64_t>{10, 20, 30, 5}));
  ExpectSorted(*hits);
}

TEST_P(VectorStoreContract, UpsertOfAnExistingIdReplacesItsVectorFileAndPage) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  Batch first(d);
  first.Add(7, Axis(d, 0), "old-file", 1).Add(8, Axis(d, 5));
  ASSERT_TRUE(store->Upsert(Key("c-replace"), first.chunks()));
  Batch second(d);
  second.Add(7, Axis(d, 1), "new-file", 9);
  ASSERT_TRUE(store->Upsert(Key("c-replace"), second.chunks()));
  EXPECT_EQ(*store->Count(Key("c-replace")), 2u);

  auto hits = store->Search(Key("c-replace"), Axis(d, 1), 1, {});
  ASSERT_TRUE(hits);
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].chunk_id, 7);
  EXPECT_NEAR((*hits)[0].score, 1.0f, kEps);
  auto old = store->Search(Key("c-replace"), Axis(d, 0), 2, {});
  ASSERT_TRUE(old);
  for (const auto& h : *old) EXPECT_LT(h.score, 0.5f) << "the old vector of 7 is still indexed";

  SearchFilter old_file;
  old_file.file_ids = std::vector<std::string>{"old-file"};
  EXPECT_TRUE(store->Search(Key("c-replace"), Axis(d, 1), 5, old_file)->empty());
  SearchFilter new_file;
  new_file.file_ids = std::vector<std::string>{"new-file"};
  new_file.page_min = 9;
  EXPECT_EQ(Ids(*store->Search(Key("c-replace"), Axis(d, 0), 5, new_file)), (std::vector<std::int64_t>{7}));

  // Within one batch the last occurrence of an id wins.
  Batch dup(d);
  dup.Add(9, Axis(d, 2)).Add(9, Axis(d, 3));
  ASSERT_TRUE(store->Upsert(Key("c-replace"), dup.chunks()));
  EXPECT_EQ(*store->Count(Key("c-replace")), 3u);
  auto nine = store->Search(Key("c-replace"), Axis(d, 3), 1, {});
  ASSERT_TRUE(nine);
  ASSERT_EQ(nine->size(), 1u);
  EXPECT_EQ((*nine)[0].chunk_id, 9);
  EXPECT_NEAR((*nine)[0].score, 1.0f, kEps);
}

TEST_P(VectorStoreContract, RemoveDeletesAndAbsentIdsAreNotErrors) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  Batch b(d);
  for (int i = 1; i <= 6; ++i) b.Add(i, Axis(d, std::size_t(i)  % d));
  ASSERT_TRUE(store->Upsert(Key("c-remove"), b.chunks()));
  const std::vector<std::int64_t> gone{2, 4, 999};
  ASSERT_TRUE(store->Remove(Key("c-remove"), gone));
  EXPECT_EQ(*store->Count(Key("c-remove")), 4u);
  auto hits = store->Search(Key("c-remove"), Axis(d, 2), 10, {});
  ASSERT_TRUE(hits);
  EXPECT_EQ(hits->size(), 4u);
  for (const auto& h : *hits) EXPECT_TRUE(h.chunk_id != 2 && h.chunk_id != 4);
  ASSERT_TRUE(store->Remove(Key("c-remove"), gone));                // again: nothing to do
  ASSERT_TRUE(store->Remove(Key("c-never-created"), gone));         // no index at all
  // A removed id can come back.
  Batch back(d);
  back.Add(2, Axis(d, 2));
  ASSERT_TRUE(store->Upsert(Key("c-remove"), back.chunks()));
  EXPECT_EQ(*store->Count(Key("c-remove")), 5u);
  EXPECT_EQ((*store->Search(Key("c-remove"), Axis(d, 2), 1, {}))[0].chunk_id, 2);
}

TEST_P(VectorStoreContract, DropRemovesTheWholeIndexOnly) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  Batch b(d);
  b.Add(1, Axis(d, 0)).Add(2, Axis(d, 1));
  ASSERT_TRUE(store->Upsert(Key("c-drop", 1), b.chunks()));
  Batch b2(d);
  b2.Add(3, Axis(d, 0));
  ASSERT_TRUE(store->Upsert(Key("c-drop", 2), b2.chunks()));
  ASSERT_TRUE(store->Drop(Key("c-drop", 1)));
  EXPECT_EQ(*store->Count(Key("c-drop", 1)), 0u);
  EXPECT_TRUE(store->Search(Key("c-drop", 1), Axis(d, 0), 5, {})->empty());
  EXPECT_EQ(*store->Count(Key("c-drop", 2)), 1u);
  ASSERT_TRUE(store->Drop(Key("c-drop", 1)));  // dropping twice is fine
  ASSERT_TRUE(store->Upsert(Key("c-drop", 1), b.chunks()));
  EXPECT_EQ(*store->Count(Key("c-drop", 1)), 2u);
}

TEST_P(VectorStoreContract, CountIsPerCollectionAndGeneration) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  EXPECT_EQ(*store->Count(Key("c-count-a")), 0u);
  Batch b(d);
  for (int i = 1; i <= 5; ++i) b.Add(i, Axis(d, std::size_t(i) % d));
  ASSERT_TRUE(store->Upsert(Key("c-count-a"), b.chunks()));
  Batch c(d);
  c.Add(100, Axis(d, 0)).Add(101, Axis(d, 1));
  ASSERT_TRUE(store->Upsert(Key("c-count-a", 2), c.chunks()));
  ASSERT_TRUE(store->Upsert(Key("c-count-b"), c.chunks()));
  EXPECT_EQ(*store->Count(Key("c-count-a")), 5u);
  EXPECT_EQ(*store->Count(Key("c-count-a", 2)), 2u);
  EXPECT_EQ(*store->Count(Key("c-count-b")), 2u);
  // Generation 2 does not see generation 1's chunks.
  auto hits = store->Search(Key("c-count-a", 2), Axis(d, 3), 10, {});
  ASSERT_TRUE(hits);
  EXPECT_EQ(Ids(*hits), (std::vector<std::int64_t>{100, 101}));
}

TEST_P(VectorStoreContract, SearchOfAMissingIndexReturnsNoHits) {
  auto store = Make(8);
  auto hits = store->Search(Key("c-missing"), Axis(8, 0), 5, {});
  ASSERT_TRUE(hits) << hits.error().ToString();
  EXPECT_TRUE(hits->empty());
  EXPECT_TRUE(store->Upsert(Key("c-missing"), {}));  // an empty batch is fine
}

TEST_P(VectorStoreContract, FilterByFileIds) {
  constexpr std::size_t d = 16;
  auto store = Make(d);
  std::mt19937 rng(7);
  Batch b(d);
  for (int i = 1; i <= 60; ++i) b.Add(i, Random(d, rng), "file-" + std::to_string(i % 3), i);
  ASSERT_TRUE(store->Upsert(Key("c-files"), b.chunks()));
  const auto q = Random(d, rng);
  SearchFilter f;
  f.file_ids = std::vector<std::string>{"file-1", "file-2", "no-such-file"};
  auto hits = store->Search(Key("c-files"), q, 10, f);
  ASSERT_TRUE(hits);
  EXPECT_EQ(Ids(*hits), BruteForce(b, q, 10, [](const IndexedChunk& c) { return c.file_id != "file-0"; }));
  ExpectSorted(*hits);

  SearchFilter nothing;
  nothing.file_ids = std::vector<std::string>{"no-such-file"};
  EXPECT_TRUE(store->Search(Key("c-files"), q, 10, nothing)->empty());
  SearchFilter empty_list;  // an engaged but empty list restricts to no document at all
  empty_list.file_ids = std::vector<std::string>{};
  EXPECT_TRUE(store->Search(Key("c-files"), q, 10, empty_list)->empty());
}

TEST_P(VectorStoreContract, PageRangeIsInclusiveAndCombinesWithFiles) {
  constexpr std::size_t d = 16;
  auto store = Make(d);
  std::mt19937 rng(11);
  Batch b(d);
  for (int i = 1; i <= 50; ++i) b.Add(i, Random(d, rng), i % 2 ? "odd" : "even", i);
  ASSERT_TRUE(store->Upsert(Key("c-pages"), b.chunks()));
  const auto q = Random(d, rng);
  SearchFilter range;
  range.page_min = 10;
  range.page_max = 14;
  auto hits = store->Search(Key("c-pages"), q, 10, range);
  ASSERT_TRUE(hits);
  auto ids = Ids(*hits);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::int64_t>{10, 11, 12, 13, 14}));

  SearchFilter from;
  from.page_min = 48;
  auto tail = Ids(*store->Search(Key("c-pages"), q, 10, from));
  std::sort(tail.begin(), tail.end());
  EXPECT_EQ(tail, (std::vector<std::int64_t>{48, 49, 50}));
  SearchFilter upto;
  upto.page_max = 2;
  auto head = Ids(*store->Search(Key("c-pages"), q, 10, upto));
  std::sort(head.begin(), head.end());
  EXPECT_EQ(head, (std::vector<std::int64_t>{1, 2}));

  SearchFilter both = range;
  both.file_ids = std::vector<std::string>{"odd"};
  auto odd = Ids(*store->Search(Key("c-pages"), q, 10, both));
  std::sort(odd.begin(), odd.end());
  EXPECT_EQ(odd, (std::vector<std::int64_t>{11, 13}));
  SearchFilter inverted;
  inverted.page_min = 5;
  inverted.page_max = 4;
  EXPECT_TRUE(store->Search(Key("c-pages"), q, 10, inverted)->empty());
}

TEST_P(VectorStoreContract, SelectiveFilterInALargeIndexStillReturnsKHits) {
  constexpr std::size_t d = 16;
  auto store = Make(d);
  std::mt19937 rng(3);
  Batch b(d);
  for (int i = 1; i <= 3000; ++i) {
    const char* file = i % 250 == 0 ? "rare" : i % 600 == 1 ? "rarer" : "common";
    b.Add(i, Random(d, rng), file, i % 40);
  }
  ASSERT_TRUE(store->Upsert(Key("c-selective"), b.chunks()));
  for (int trial = 0; trial < 5; ++trial) {
    const auto q = Random(d, rng);
    SearchFilter rare;  // 12 chunks of 3000
    rare.file_ids = std::vector<std::string>{"rare"};
    auto hits = store->Search(Key("c-selective"), q, 10, rare);
    ASSERT_TRUE(hits);
    EXPECT_EQ(Ids(*hits), BruteForce(b, q, 10, [](const IndexedChunk& c) { return c.file_id == "rare"; }));
    SearchFilter rarer;  // 5 chunks: all of them
    rarer.file_ids = std::vector<std::string>{"rarer"};
    hits = store->Search(Key("c-selective"), q, 10, rarer);
    ASSERT_TRUE(hits);
    EXPECT_EQ(hits->size(), 5u);
    SearchFilter page;  // 75 chunks on page 7
    page.page_min = 7;
    page.page_max = 7;
    hits = store->Search(Key("c-selective"), q, 10, page);
    ASSERT_TRUE(hits);
    EXPECT_EQ(hits->size(), 10u);
    for (const auto& h : *hits) EXPECT_EQ(h.chunk_id % 40, 7);
  }
}

TEST_P(VectorStoreContract, KLargerThanTheIndexReturnsEverything) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  Batch b(d);
  for (int i = 1; i <= 5; ++i) b.Add(i, Mix(d, {{0, float(i)}, {1, 1.f}}));
  ASSERT_TRUE(store->Upsert(Key("c-bigk"), b.chunks()));
  auto hits = store->Search(Key("c-bigk"), Axis(d, 0), 100, {});
  ASSERT_TRUE(hits);
  EXPECT_EQ(Ids(*hits), (std::vector<std::int64_t>{5, 4, 3, 2, 1}));
}

TEST_P(VectorStoreContract, InvalidArgumentsAreRejected) {
  constexpr std::size_t d = 8;
  auto store = Make(d);
  Batch b(d);
  b.Add(1, Axis(d, 0));
  ASSERT_TRUE(store->Upsert(Key("c-invalid"), b.chunks()));
  std::vector<float> short_query(d - 1, 0.1f), long_query(d + 1, 0.1f);
  EXPECT_EQ(store->Search(Key("c-invalid"), short_query, 1, {}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->Search(Key("c-invalid"), long_query, 1, {}).error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(store->Search(Key("c-invalid"), Axis(d, 0), 0, {}).error().code(), ErrorCode::kInvalidArgument);
  IndexedChunk no_vector;
  no_vector.chunk_id = 2;
  no_vector.file_id = "f";
  std::vector<IndexedChunk> bad{no_vector};
  auto s = store->Upsert(Key("c-invalid"), bad);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(*store->Count(Key("c-invalid")), 1u);
}

TEST_P(VectorStoreContract, AStoredVectorIsItsOwnNearestNeighbour) {
  constexpr std::size_t d = 32;
  auto store = Make(d);
  std::mt19937 rng(5);
  Batch b(d);
  for (int i = 1; i <= 1500; ++i) b.Add(i, Random(d, rng), "f", 1);
  ASSERT_TRUE(store->Upsert(Key("c-self"), b.chunks()));
  for (std::size_t i = 0; i < b.size(); i += 97) {
    auto hits = store->Search(Key("c-self"), b.vec(i), 3, {});
    ASSERT_TRUE(hits);
    ASSERT_FALSE(hits->empty());
    EXPECT_EQ((*hits)[0].chunk_id, b.chunk(i).chunk_id);
    EXPECT_NEAR((*hits)[0].score, 1.0f, kEps);
  }
}

TEST_P(VectorStoreContract, SearchesRunConcurrentlyWithWrites) {
  constexpr std::size_t d = 16;
  auto store = Make(d);
  std::mt19937 rng(9);
  Batch base(d);
  for (int i = 1; i <= 400; ++i) base.Add(i, Random(d, rng), "f" + std::to_string(i % 4), i % 10);
  ASSERT_TRUE(store->Upsert(Key("c-concurrent"), base.chunks()));
  std::vector<Batch> batches;
  for (int w = 0; w < 20; ++w) {
    Batch b(d);
    for (int i = 0; i < 50; ++i) b.Add(1000 + w * 50 + i, Random(d, rng), "f" + std::to_string(i % 4), i % 10);
    batches.push_back(std::move(b));
  }
  std::vector<std::vector<float>> queries;
  for (int i = 0; i < 16; ++i) queries.push_back(Random(d, rng));

  std::atomic<bool> done{false};
  std::atomic<int> searches{0}, bad{0};
  auto searcher = [&](int t) {
    std::size_t i = std::size_t(t);
    do {
      SearchFilter f;
      if (i % 3 == 1) f.file_ids = std::vector<std::string>{"f1"};
      if (i % 3 == 2) f.page_min = 5;
      auto hits = store->Search(Key("c-concurrent"), queries[i % queries.size()], 10, f);
      if (!hits || hits->size() != 10) ++bad;  // 100+ chunks always match every filter
      if (hits) {
        for (std::size_t j = 0; j < hits->size(); ++j) {
          const auto& h = (*hits)[j];
          if (h.chunk_id <= 0 || h.chunk_id >= 2000 || !(h.score >= -1.01f && h.score <= 1.01f)) ++bad;
          if (j > 0 && (*hits)[j - 1].score < h.score) ++bad;
          if (i % 3 == 2 && h.chunk_id < 1000 && h.chunk_id % 10 < 5) ++bad;
        }
      }
      ++searches;
      ++i;
    } while (!done.load());
  };
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) readers.emplace_back(searcher, t);
  std::thread writer([&] {
    for (std::size_t w = 0; w < batches.size(); ++w) {
      EXPECT_TRUE(store->Upsert(Key("c-concurrent"), batches[w].chunks()));
      std::vector<std::int64_t> gone{std::int64_t(1 + w * 7), std::int64_t(2 + w * 7)};
      EXPECT_TRUE(store->Remove(Key("c-concurrent"), gone));
    }
  });
  writer.join();
  done = true;
  for (auto& r : readers) r.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(*store->Count(Key("c-concurrent")), 400u + 20 * 50 - 40);
}

}  // namespace
}  // namespace modulo::index
